//! One WebSocket connection: join, pump frames both ways, heartbeat, leave.
//!
//! A thin shell: every decision is made by the hub core; this task only moves frames between
//! the socket, the decoder and the connection's bounded send queue.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use switchboard_protocol::{
    decode_client, Encoding, ErrorCode, Frame, IceServer, LeaveReason, PeerId, ProtocolError,
    ServerMessage, Welcome, PROTOCOL_VERSION,
};
use tokio::sync::mpsc;

use crate::handshake::{Handshake, Refusal};
use crate::hub::JoinRequest;
use crate::relay::{encode, lock, Closer, Outbox};
use crate::server::Shared;

/// How long a closing handshake may take before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Most queued frames written per flush.
const WRITE_BATCH: usize = 64;

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

/// Runs a connection from upgrade to close.
pub async fn run(
    socket: WebSocket,
    shared: Arc<Shared>,
    handshake: Handshake,
    ip: IpAddr,
    ice_servers: Vec<IceServer>,
) {
    let (mut sink, mut stream) = socket.split();
    let encoding = handshake.encoding;
    let id = PeerId::from_u128(rand::random());
    let (queue, outgoing) = mpsc::channel(shared.config.limits.send_queue_messages);
    let closer = Arc::new(Closer::new(&shared.shutdown));
    let outbox = Outbox {
        queue,
        encoding,
        closer: closer.clone(),
    };
    if let Err(error) = join(
        &shared,
        Joining {
            id,
            handshake,
            ip,
            ice_servers,
            outbox,
        },
    ) {
        shared.metrics.error(error.code);
        close(&mut sink, &mut stream, encoding, error).await;
        return;
    }
    let mut membership = Membership {
        shared: &shared,
        id,
        reason: LeaveReason::Closed,
    };
    let mut pump = Pump {
        shared: &shared,
        id,
        encoding,
        sink,
        outgoing,
        closer: &closer,
    };
    let ending = pump.run(&mut stream).await;
    membership.reason = ending.reason;
    // The room hears the leave now; the closing handshake with a dead or stalled peer may take
    // up to `CLOSE_TIMEOUT` and must not delay it.
    drop(membership);
    if let Some(error) = ending.close {
        close(&mut pump.sink, &mut stream, encoding, error).await;
    }
}

/// How a joined connection ended: the leave reason the room hears, and the error to close the
/// socket with (if the server is the one closing).
struct Ending {
    reason: LeaveReason,
    close: Option<ProtocolError>,
}

impl Ending {
    fn quietly(reason: LeaveReason) -> Self {
        Self {
            reason,
            close: None,
        }
    }
}

/// A joined peer's place in the hub. Dropping it leaves the room, also when the connection task
/// is cancelled or fails, so the room is always told and the peer never lingers.
struct Membership<'a> {
    shared: &'a Shared,
    id: PeerId,
    reason: LeaveReason,
}

impl Drop for Membership<'_> {
    fn drop(&mut self) {
        tracing::debug!(peer = %self.id, reason = ?self.reason, "left");
        let metrics = &self.shared.metrics;
        let mut relay = lock(&self.shared.relay);
        relay.outboxes.remove(&self.id);
        if let Some(left) = relay.hub.leave(self.id, self.reason) {
            relay.deliver(left, None, metrics);
        }
        metrics.connections.set(relay.hub.peer_count() as i64);
        metrics.rooms.set(relay.hub.room_count() as i64);
    }
}

/// Answers a refused handshake with an `error` message and a close frame.
pub async fn refuse(socket: WebSocket, refusal: Refusal) {
    let (mut sink, mut stream) = socket.split();
    close(&mut sink, &mut stream, refusal.encoding, refusal.error).await;
}

/// Everything a join needs besides the shared state.
struct Joining {
    id: PeerId,
    handshake: Handshake,
    ip: IpAddr,
    ice_servers: Vec<IceServer>,
    outbox: Outbox,
}

fn join(shared: &Shared, joining: Joining) -> Result<(), ProtocolError> {
    let Joining {
        id,
        handshake,
        ip,
        ice_servers,
        outbox,
    } = joining;
    let limits = &shared.config.limits;
    let mut relay = lock(&shared.relay);
    let request = JoinRequest {
        id,
        room: handshake.room.clone(),
        name: handshake.name.clone(),
        ip,
    };
    let joined = relay.hub.join(request, Instant::now())?;
    let welcome = ServerMessage::Welcome(Welcome {
        version: PROTOCOL_VERSION,
        id,
        room: handshake.room,
        name: handshake.name,
        peers: joined.peers,
        ice_servers,
        heartbeat_ms: limits.heartbeat_interval_ms,
        idle_timeout_ms: limits.idle_timeout_ms,
        max_message_bytes: limits.max_message_bytes,
    });
    // The queue is new and its capacity is at least 1 (validated), so the welcome goes first.
    let _ = outbox.queue.try_send(encode(&welcome, outbox.encoding)?);
    relay.outboxes.insert(id, outbox);
    relay.deliver(joined.announce, None, &shared.metrics);
    tracing::debug!(peer = %id, %ip, "joined");
    shared.metrics.connections_accepted.inc();
    shared
        .metrics
        .connections
        .set(relay.hub.peer_count() as i64);
    shared.metrics.rooms.set(relay.hub.room_count() as i64);
    Ok(())
}

struct Pump<'a> {
    shared: &'a Shared,
    id: PeerId,
    encoding: Encoding,
    sink: Sink,
    outgoing: mpsc::Receiver<Message>,
    closer: &'a Closer,
}

impl Pump<'_> {
    /// Moves frames until the connection ends; returns why it ended.
    async fn run(&mut self, stream: &mut Stream) -> Ending {
        let limits = &self.shared.config.limits;
        let (heartbeat, idle) = (limits.heartbeat_interval(), limits.idle_timeout());
        let mut last_heard = Instant::now();
        let mut next_ping = last_heard + heartbeat;
        let timer = tokio::time::sleep_until(next_ping.min(last_heard + idle).into());
        tokio::pin!(timer);
        // Created once: a cancellation future registers a waiter, too costly to redo per frame.
        let closer = self.closer;
        let closed = closer.closed();
        tokio::pin!(closed);
        loop {
            tokio::select! {
                biased;
                () = &mut closed => return self.close_as_asked(),
                frame = stream.next() => {
                    last_heard = Instant::now();
                    match frame {
                        Some(Ok(Message::Text(text))) => self.receive(Frame::Text(text.as_bytes()), last_heard),
                        Some(Ok(Message::Binary(bytes))) => self.receive(Frame::Binary(&bytes), last_heard),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Ok(Message::Close(_))) | None => return Ending::quietly(LeaveReason::Closed),
                        Some(Err(error)) => {
                            if !is_too_big(&error) {
                                return Ending::quietly(LeaveReason::Closed);
                            }
                            let max = limits.max_message_bytes;
                            let error = ProtocolError::new(
                                ErrorCode::MessageTooBig,
                                format!("frame larger than max_message_bytes ({max})"),
                            );
                            self.shared.metrics.error(error.code);
                            return Ending { reason: LeaveReason::Closed, close: Some(error) };
                        }
                    }
                }
                first = self.outgoing.recv() => {
                    let Some(first) = first else { return Ending::quietly(LeaveReason::Closed) };
                    // A stalled socket must not delay a close request (slow reader, shutdown).
                    tokio::select! {
                        result = write_batch(&mut self.sink, &mut self.outgoing, first) => {
                            if result.is_err() {
                                return Ending::quietly(LeaveReason::Closed);
                            }
                        }
                        () = &mut closed => return self.close_as_asked(),
                    }
                }
                () = &mut timer => {
                    let now = Instant::now();
                    if now >= last_heard + idle {
                        let error = ProtocolError::new(
                            ErrorCode::IdleTimeout,
                            format!("nothing received for {} ms", idle.as_millis()),
                        );
                        self.shared.metrics.error(error.code);
                        return Ending { reason: LeaveReason::Timeout, close: Some(error) };
                    }
                    if now >= next_ping {
                        if self.sink.send(Message::Ping(Default::default())).await.is_err() {
                            return Ending::quietly(LeaveReason::Closed);
                        }
                        next_ping = now + heartbeat;
                    }
                    timer.as_mut().reset(next_ping.min(last_heard + idle).into());
                }
            }
        }
    }

    /// The ending for the reason the connection's `Closer` was given.
    fn close_as_asked(&self) -> Ending {
        let code = self.closer.reason();
        let message = match code {
            ErrorCode::SlowReader => format!(
                "send queue full ({} messages): read faster",
                self.shared.config.limits.send_queue_messages
            ),
            _ => "the server is shutting down".to_owned(),
        };
        Ending {
            reason: leave_reason(code),
            close: Some(ProtocolError::new(code, message)),
        }
    }

    /// Decodes one frame and lets the hub act on it.
    fn receive(&self, frame: Frame<'_>, now: Instant) {
        let metrics = &self.shared.metrics;
        metrics.messages_received.inc();
        let decoded = decode_client(frame, self.encoding);
        let mut relay = lock(&self.shared.relay);
        match decoded {
            Ok(message) => {
                if let Some(delivery) = relay.hub.handle(self.id, message, now) {
                    relay.deliver(delivery, Some(self.id), metrics);
                }
            }
            Err(error) => relay.send_error(self.id, error, metrics),
        }
    }
}

/// Writes `first` and whatever else is queued (up to a batch), then flushes once.
async fn write_batch(
    sink: &mut Sink,
    queue: &mut mpsc::Receiver<Message>,
    first: Message,
) -> Result<(), axum::Error> {
    sink.feed(first).await?;
    for _ in 1..WRITE_BATCH {
        match queue.try_recv() {
            Ok(next) => sink.feed(next).await?,
            Err(_) => break,
        }
    }
    sink.flush().await
}

/// Sends an `error` message, then a close frame carrying the error's close code and name, then
/// waits (briefly) for the peer's close reply: dropping the socket with unread input would make
/// the kernel send a reset, and the peer could lose the close frame and its reason.
async fn close(sink: &mut Sink, stream: &mut Stream, encoding: Encoding, error: ProtocolError) {
    let code = error.code;
    tracing::debug!(code = code.as_str(), reason = %error.message, "closing connection");
    let message = ServerMessage::Error {
        code: error.code,
        message: error.message,
    };
    let close_frame = CloseFrame {
        code: code.close_code().unwrap_or(1000),
        reason: code.as_str().into(),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        if let Ok(frame) = encode(&message, encoding) {
            sink.feed(frame).await?;
        }
        sink.send(Message::Close(Some(close_frame))).await?;
        while let Some(Ok(frame)) = stream.next().await {
            if matches!(frame, Message::Close(_)) {
                break;
            }
        }
        Ok::<(), axum::Error>(())
    })
    .await;
}

fn leave_reason(code: ErrorCode) -> LeaveReason {
    match code {
        ErrorCode::SlowReader => LeaveReason::SlowReader,
        ErrorCode::IdleTimeout => LeaveReason::Timeout,
        ErrorCode::Shutdown => LeaveReason::Shutdown,
        _ => LeaveReason::Closed,
    }
}

fn is_too_big(error: &axum::Error) -> bool {
    use std::error::Error as _;
    let mut source = error.source();
    while let Some(inner) = source {
        if let Some(tungstenite::Error::Capacity(_)) = inner.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = inner.source();
    }
    false
}
