//! The ceiling of the signaling benchmark: a relay that does only what the load generator's
//! matchbox workload needs, on the WebSocket stack named by the first argument.
//!
//! On connect a peer gets `{"IdAssigned":"<id>"}`; `{"Signal":{"receiver":R,"data":D}}` goes to
//! R as `{"Signal":{"sender":S,"data":D}}`. No rooms, limits, heartbeats or names: whatever a
//! real server spends beyond this is the price of its features. Every stack runs the same design
//! (one reader task and one writer task per connection, a sharded id -> queue map, writes
//! batched per wake-up with one flush), so the rows differ only by the WebSocket layer.
//!
//! Usage: `ceiling-relay tungstenite|tokio-websockets|fastwebsockets ADDR`

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SHARDS: usize = 16;
const QUEUE: usize = 1024;
const WRITE_BATCH: usize = 64;

/// Who is connected: id -> the queue of its writer, in shards so lookups rarely contend.
struct Peers {
    shards: Vec<RwLock<HashMap<u64, mpsc::Sender<String>>>>,
    next: AtomicU64,
}

impl Peers {
    fn shard(&self, id: u64) -> &RwLock<HashMap<u64, mpsc::Sender<String>>> {
        &self.shards[id as usize % SHARDS]
    }

    fn join(&self) -> (u64, mpsc::Receiver<String>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(QUEUE);
        self.shard(id).write().expect("lock").insert(id, tx);
        (id, rx)
    }

    fn leave(&self, id: u64) {
        self.shard(id).write().expect("lock").remove(&id);
    }

    /// Relays one client message; anything that is not a signal to a connected peer is dropped.
    fn relay(&self, from: u64, text: &[u8]) {
        #[derive(Deserialize)]
        enum Inbound<'a> {
            Signal {
                #[serde(borrow)]
                receiver: &'a str,
                #[serde(borrow)]
                data: &'a RawValue,
            },
        }
        let Ok(Inbound::Signal { receiver, data }) = serde_json::from_slice(text) else {
            return;
        };
        let Ok(to) = receiver.parse::<u64>() else {
            return;
        };
        let Some(queue) = self.shard(to).read().expect("lock").get(&to).cloned() else {
            return;
        };
        let data = data.get();
        let mut out = String::with_capacity(32 + 20 + data.len());
        out.push_str(r#"{"Signal":{"sender":""#);
        out.push_str(&from.to_string());
        out.push_str(r#"","data":"#);
        out.push_str(data);
        out.push_str("}}");
        let _ = queue.try_send(out);
    }
}

fn welcome(id: u64) -> String {
    format!(r#"{{"IdAssigned":"{id}"}}"#)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let stack = args.next().unwrap_or_default();
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3536".into());
    let listener = TcpListener::bind(&addr).await.expect("bind");
    let peers = Arc::new(Peers {
        shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
        next: AtomicU64::new(0),
    });
    println!("ceiling-relay ({stack}) on {addr}");
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let peers = peers.clone();
        match stack.as_str() {
            "tungstenite" => tokio::spawn(tungstenite(tcp, peers)),
            "tokio-websockets" => tokio::spawn(tokio_websockets(tcp, peers)),
            "fastwebsockets" => tokio::spawn(fastwebsockets(tcp, peers)),
            other => panic!("unknown stack {other:?}"),
        };
    }
}

async fn tungstenite(tcp: TcpStream, peers: Arc<Peers>) {
    use tokio_tungstenite::tungstenite::Message;
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (sink, stream) = ws.split();
    fn text(m: &Message) -> Option<&[u8]> {
        match m {
            Message::Text(t) => Some(t.as_bytes()),
            _ => None,
        }
    }
    pump(sink, stream, peers, |s: String| Message::Text(s.into()), text).await;
}

async fn tokio_websockets(tcp: TcpStream, peers: Arc<Peers>) {
    use tokio_websockets::{Message, ServerBuilder};
    let Ok((_, ws)) = ServerBuilder::new().accept(tcp).await else {
        return;
    };
    let (sink, stream) = ws.split();
    fn text(m: &Message) -> Option<&[u8]> {
        m.as_text().map(str::as_bytes)
    }
    pump(sink, stream, peers, Message::text, text).await;
}

/// The reader and writer of one connection on a stack that offers futures' Sink and Stream.
async fn pump<M, E>(
    mut sink: impl Sink<M, Error = E> + Unpin + Send + 'static,
    stream: impl Stream<Item = Result<M, E>> + Send,
    peers: Arc<Peers>,
    frame: fn(String) -> M,
    text: fn(&M) -> Option<&[u8]>,
) where
    M: Send + 'static,
    E: Send + 'static,
{
    let (id, mut queue) = peers.join();
    if sink.send(frame(welcome(id))).await.is_err() {
        peers.leave(id);
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(first) = queue.recv().await {
            if sink.feed(frame(first)).await.is_err() {
                return;
            }
            for _ in 1..WRITE_BATCH {
                let Ok(next) = queue.try_recv() else { break };
                if sink.feed(frame(next)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    futures_util::pin_mut!(stream);
    while let Some(Ok(message)) = stream.next().await {
        if let Some(bytes) = text(&message) {
            peers.relay(id, bytes);
        }
    }
    peers.leave(id);
    writer.abort();
}

async fn fastwebsockets(mut tcp: TcpStream, peers: Arc<Peers>) {
    use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket};
    if accept_by_hand(&mut tcp).await.is_none() {
        return;
    }
    let ws = WebSocket::after_handshake(tcp, Role::Server);
    let (mut read, mut write) = ws.split(|tcp| {
        let (r, w) = tcp.into_split();
        (r, BufWriter::new(w))
    });
    write.set_writev(false);
    let (id, mut queue) = peers.join();
    let hello = welcome(id);
    if write
        .write_frame(Frame::text(Payload::Borrowed(hello.as_bytes())))
        .await
        .is_err()
        || write.flush().await.is_err()
    {
        peers.leave(id);
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(first) = queue.recv().await {
            let mut next = Some(first);
            let mut n = 0;
            while let Some(text) = next.take() {
                let frame = Frame::text(Payload::Owned(text.into_bytes()));
                if write.write_frame(frame).await.is_err() {
                    return;
                }
                n += 1;
                if n < WRITE_BATCH {
                    next = queue.try_recv().ok();
                }
            }
            if write.flush().await.is_err() {
                return;
            }
        }
    });
    // Pongs and close replies are not needed by the benchmark: the reader discards them.
    let mut obligated = |_frame: Frame<'_>| async { Ok::<(), std::io::Error>(()) };
    while let Ok(frame) = read.read_frame(&mut obligated).await {
        match frame.opcode {
            OpCode::Text => peers.relay(id, &frame.payload),
            OpCode::Close => break,
            _ => {}
        }
    }
    peers.leave(id);
    writer.abort();
}

/// The server side of the WebSocket upgrade (RFC 6455 section 4.2), for the stack that leaves it
/// to hyper.
async fn accept_by_hand(tcp: &mut TcpStream) -> Option<()> {
    use base64::Engine;
    let mut head = Vec::with_capacity(1024);
    let key = loop {
        if tcp.read_buf(&mut head).await.ok()? == 0 || head.len() > 16 * 1024 {
            return None;
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if request.parse(&head).ok()?.is_complete() {
            let key = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))?;
            break key.value.to_vec();
        }
    };
    let mut sha = sha1_smol::Sha1::new();
    sha.update(&key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes());
    let reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    tcp.write_all(reply.as_bytes()).await.ok()
}
