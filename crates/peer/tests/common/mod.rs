//! Shared by the server peer's integration tests: a server with an echo application on loopback
//! (`POST /connect` over real HTTP) and a native WebRTC client on str0m, with its own queue of
//! frames so its sends honour str0m's send buffer exactly as the server's must.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use switchboard_peer::{Data, Event as ServerEvent, Events, PeerConfig, Server};
use switchboard_protocol::frame::{self, Message, Reassembler};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The browser client's frame size.
pub const FRAME_BYTES: usize = 16 * 1024;
/// The largest message the client reassembles.
pub const MAX_MESSAGE: usize = 32 * 1024 * 1024;

/// A server peer on loopback with its HTTP router; returns the server, its events and the HTTP
/// address.
pub async fn server(config: PeerConfig) -> (Server, Events, SocketAddr) {
    let config = PeerConfig {
        listen: "127.0.0.1:0".parse().expect("an address"),
        ..config
    };
    let max_offer = config.max_offer_bytes;
    let (server, events) = Server::new(config).await.expect("the server starts");
    let app = switchboard_peer::http::router(server.clone(), max_offer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let http = listener.local_addr().expect("bound");
    // With the client address, so per-address limits apply (`max_peers_per_ip`).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (server, events, http)
}

/// The echo application: every message goes back on its channel; returns what it saw closing.
pub fn echo(
    server: Server,
    mut events: Events,
) -> tokio::sync::mpsc::UnboundedReceiver<ServerEvent> {
    let (seen, closes) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                ServerEvent::Received(peer, channel, data) => {
                    server.send_to(&[peer], channel, data)
                }
                other => {
                    let _ = seen.send(other);
                }
            }
        }
    });
    closes
}

fn channel(label: &str, id: u16, reliable: bool) -> ChannelConfig {
    ChannelConfig {
        label: label.into(),
        ordered: reliable,
        reliability: if reliable {
            Reliability::Reliable
        } else {
            Reliability::MaxRetransmits { retransmits: 0 }
        },
        negotiated: Some(id),
        protocol: String::new(),
    }
}

/// What the client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A whole message; `true` on the reliable channel.
    Message(bool, Message),
    /// A channel or the association closed.
    Closed,
}

/// A native WebRTC client of the server peer, speaking the browser client's framing.
pub struct Client {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    reliable: ChannelId,
    unreliable: ChannelId,
    /// Frames waiting for room in str0m's send buffer, in order.
    queue: VecDeque<(ChannelId, Vec<u8>)>,
    reliable_in: Reassembler,
    unreliable_in: Reassembler,
    seen: VecDeque<Seen>,
}

impl Client {
    /// Offer, `POST /connect`, answer, and run until both channels are open.
    pub async fn connect(http: SocketAddr) -> Client {
        Self::connect_at(http, "/connect").await
    }

    /// `connect`, posting the offer to `path` (with a query, e.g. a token).
    pub async fn connect_at(http: SocketAddr, path: &str) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("a port");
        let local = socket.local_addr().expect("bound");
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .set_stats_interval(None)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").expect("a candidate"));
        let mut api = rtc.sdp_api();
        let reliable = api.add_channel_with_config(channel("reliable", 0, true));
        let unreliable = api.add_channel_with_config(channel("unreliable", 1, false));
        let (offer, pending) = api.apply().expect("an offer");
        let (status, body) = post(http, path, &offer.to_sdp_string()).await;
        assert_eq!(status, 200, "{body}");
        let value: serde_json::Value = serde_json::from_str(&body).expect("json");
        let answer =
            SdpAnswer::from_sdp_string(value["sdp"].as_str().expect("an sdp")).expect("an answer");
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .expect("accepted");
        let mut client = Client {
            rtc,
            socket,
            local,
            reliable,
            unreliable,
            queue: VecDeque::new(),
            reliable_in: Reassembler::new(MAX_MESSAGE),
            unreliable_in: Reassembler::new(MAX_MESSAGE),
            seen: VecDeque::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut open = 0;
        while open < 2 {
            assert!(Instant::now() < deadline, "channels did not open");
            for event in client.step(deadline).await.expect("connecting") {
                if matches!(event, Event::ChannelOpen(..)) {
                    open += 1;
                }
            }
        }
        client
    }

    /// Queues a message (chunked on the reliable channel, as the browser client does).
    pub fn send(&mut self, reliable: bool, data: &[u8]) {
        let frames = frame::encode(false, data, FRAME_BYTES, reliable, MAX_MESSAGE)
            .expect("the message fits");
        let id = if reliable {
            self.reliable
        } else {
            self.unreliable
        };
        self.queue.extend(frames.into_iter().map(|f| (id, f)));
    }

    /// Sends a goodbye frame, as a closing browser does.
    pub fn goodbye(&mut self, reason: &str) {
        self.queue
            .push_back((self.reliable, frame::goodbye(reason)));
    }

    /// Frames not yet taken by str0m.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Writes queued frames while str0m takes them.
    fn flush(&mut self) -> Result<(), String> {
        while let Some((id, frame)) = self.queue.front() {
            let Some(mut channel) = self.rtc.channel(*id) else {
                return Err("channel gone".into());
            };
            if !channel.write(true, frame).map_err(|e| e.to_string())? {
                break;
            }
            self.queue.pop_front();
        }
        Ok(())
    }

    /// Writes, drains the engine, then (unless a message or close was seen) waits for a datagram
    /// or its timeout (at most until `until`); returns the events seen (messages and closes are
    /// also kept for `next`).
    pub async fn step(&mut self, until: Instant) -> Result<Vec<Event>, String> {
        self.flush()?;
        let mut events = Vec::new();
        let timeout = loop {
            match self.rtc.poll_output().map_err(|e| e.to_string())? {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(e) => {
                    self.note(&e);
                    events.push(e);
                }
            }
        };
        if !self.seen.is_empty() {
            // Something to report: do not wait for the network first.
            return Ok(events);
        }
        let mut buf = [0u8; 2048];
        tokio::select! {
            received = self.socket.recv_from(&mut buf) => {
                let (n, source) = received.map_err(|e| e.to_string())?;
                if let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, &buf[..n]) {
                    self.rtc
                        .handle_input(Input::Receive(Instant::now(), receive))
                        .map_err(|e| e.to_string())?;
                }
            }
            () = tokio::time::sleep_until(timeout.min(until).into()) => {
                self.rtc
                    .handle_input(Input::Timeout(Instant::now()))
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(events)
    }

    fn note(&mut self, event: &Event) {
        match event {
            Event::ChannelData(data) => {
                let reliable = data.id == self.reliable;
                let reassembler = if reliable {
                    &mut self.reliable_in
                } else {
                    &mut self.unreliable_in
                };
                match reassembler.push(&data.data) {
                    Ok(Some(message)) if reliable => {
                        self.seen.push_back(Seen::Message(true, message))
                    }
                    Ok(Some(message)) => self.seen.push_back(Seen::Message(false, message)),
                    Ok(None) => {}
                    Err(error) => panic!("the server sent a bad frame: {error}"),
                }
            }
            Event::ChannelClose(_) | Event::Closed => self.seen.push_back(Seen::Closed),
            _ => {}
        }
    }

    /// The next thing seen, waiting at most `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Seen> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(seen) = self.seen.pop_front() {
                return Some(seen);
            }
            if Instant::now() >= deadline || !self.rtc.is_alive() {
                return None;
            }
            if self.step(deadline).await.is_err() {
                return Some(Seen::Closed);
            }
        }
    }

    /// The next message, failing the test if something else comes or nothing does.
    pub async fn message(&mut self, within: Duration) -> (bool, Message) {
        match self.next(within).await {
            Some(Seen::Message(reliable, message)) => (reliable, message),
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// A binary message as a server `Data`.
pub fn binary(bytes: &[u8]) -> Data {
    Data::Binary(bytes.to_vec())
}

/// A message of `size` bytes whose content depends on `seed` (so a mixed-up order shows).
pub fn pattern(seed: u32, size: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// One HTTP/1.1 POST; returns the status and the body.
pub async fn post(http: SocketAddr, path: &str, body: &str) -> (u16, String) {
    post_bytes(http, path, "application/sdp", body.as_bytes()).await
}

/// One HTTP/1.1 POST of raw bytes; returns the status and the body.
pub async fn post_bytes(
    http: SocketAddr,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(http).await.expect("connects");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {http}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("writes");
    // A server may answer before it has read a large body; a reset then is fine.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
