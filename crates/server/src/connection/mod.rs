//! One WebSocket connection: join or resume, pump frames both ways, heartbeat, leave.
//!
//! A thin shell: every decision is made by the hub core; this task only moves frames between
//! the socket, the decoder and the connection's bounded send queue, and carries out the hub's
//! effects.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::Message;
use switchboard_protocol::{
    ErrorCode, IceServer, LeaveReason, PeerId, ProtocolError, ServerMessage,
};

mod closing;
mod dispatch;
pub(crate) mod entry;
mod inbound;
mod start;

use closing::{close, close_with_error, refuse_on, CLOSE_TIMEOUT};
pub use dispatch::Speaker;
use entry::{enter, with_turn};
use start::{Stages, Start};

use crate::cluster::capacity::Seat;
use crate::cluster::envelope::{NodeId, Record};
use crate::handshake::{Dialect, Handshake};
use crate::hub::{CloseReason, TokenBucket};
use crate::relay::{lock, Closer, Outbox};
use crate::send_queue::{send_queue, QueueReceiver};
use crate::server::Shared;
use crate::wire::{encode_for, Wire};
use switchboard_ws::{self as ws, WebSocket};

/// Most queued frames written per flush.
const WRITE_BATCH: usize = 64;

/// What an upgraded connection starts from: the handshake's outcome (or the refusal to answer in
/// the client's wire) and what the upgrade request told. Boxed by the endpoints, so the upgrade
/// task holds one pointer until the socket is ready.
pub struct Upgrade {
    /// The server.
    pub shared: Arc<Shared>,
    /// The accepted handshake, or the wire and error of a refusal.
    pub outcome: Result<Handshake, (Wire, ProtocolError)>,
    /// Where the client connects from.
    pub ip: IpAddr,
    /// The ICE servers for its welcome.
    pub ice_servers: Vec<IceServer>,
}

/// A boxed future that runs a connection.
pub type Served = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The future that runs an upgraded connection from join to close (or answers its refusal).
/// Set up here, outside any async fn, and boxed at its exact size: an async fn keeps its
/// arguments beside what is moved out of them, which made every idle connection's task hold
/// its socket and handshake twice.
pub fn serve(mut socket: WebSocket, upgrade: Box<Upgrade>) -> Served {
    let Upgrade {
        shared,
        outcome,
        ip,
        ice_servers,
    } = *upgrade;
    let handshake = match outcome {
        Ok(handshake) => handshake,
        Err((wire, error)) => {
            shared.metrics.error(error.code);
            return Box::pin(refuse_on(socket, wire, error));
        }
    };
    let wire = match handshake.dialect {
        Dialect::Switchboard => Wire::Switchboard(handshake.encoding),
        Dialect::Matchbox => Wire::Matchbox,
        Dialect::Peerjs => Wire::Peerjs,
        Dialect::Rustysignal => Wire::Rustysignal,
    };
    // In a cluster the socket takes a seat of this node's own for as long as it lives: its room
    // may be owned, and counted, elsewhere.
    let seat = match shared.cluster.as_ref().map(|c| c.sockets.take(ip)) {
        None => None,
        Some(Ok(seat)) => Some(seat),
        Some(Err(error)) => {
            shared.metrics.error(error.code);
            return Box::pin(async move { close_with_error(&mut socket, wire, error).await });
        }
    };
    let conn = shared.connections.fetch_add(1, Ordering::Relaxed);
    let (queue, outgoing) = send_queue(shared.config.limits.send_queue_messages);
    let closer = Arc::new(Closer::new(&shared.shutdown));
    let outbox = Outbox::local(conn, wire, queue, closer.clone());
    // With TURN, fresh credentials go out at half their life (`ice_servers` message).
    let turn_refresh = shared
        .config
        .turn
        .secret
        .is_some()
        .then(|| (ice_servers.clone(), shared.config.turn.refresh_interval()));
    let start = Start {
        origin: handshake.origin.clone(),
        shared,
        socket,
        conn,
        wire,
        ip,
        outgoing,
        closer,
        turn_refresh,
        seat,
    };
    if let Some(cluster) = start.shared.cluster.clone() {
        // It yields the next step on purpose: `Stages` runs it after dropping this one.
        #[allow(clippy::async_yields_async)]
        let entering = async move {
            let entered = crate::cluster::entry::enter(
                &cluster,
                &start.shared,
                handshake,
                (conn, ip),
                ice_servers,
                outbox,
            )
            .await;
            match entered {
                Ok((place, owner)) => Box::pin(start.session(place, owner).run()) as Served,
                Err(error) => {
                    start.shared.metrics.error(error.code);
                    let mut start = start;
                    Box::pin(async move { close_with_error(&mut start.socket, wire, error).await })
                }
            }
        };
        return Box::pin(Stages::Entering(Box::pin(entering)));
    }
    match enter(&start.shared, handshake, conn, ip, ice_servers, outbox) {
        Ok(place) => Box::pin(start.session(place, None).run()),
        Err(error) => {
            let mut start = start;
            start.shared.metrics.error(error.code);
            Box::pin(async move { close_with_error(&mut start.socket, wire, error).await })
        }
    }
}

/// A joined connection: its place in the hub and its pump.
struct Session {
    membership: Membership,
    pump: Pump,
}

impl Session {
    /// Moves frames until the connection ends, tells the hub, then closes the socket.
    async fn run(mut self) {
        let ending = self.pump.run().await;
        let close_with = ending.close.clone();
        self.membership.ending = ending;
        // The room hears the leave now; the closing handshake with a dead or stalled peer may
        // take up to `CLOSE_TIMEOUT` and must not delay it.
        drop(self.membership);
        if let Some(reason) = close_with {
            // What the hub queued before it closed the connection (a `peer_left` for the host of
            // a room that closes with it) goes out first; a slow reader's queue is not waited for.
            let pump = &mut self.pump;
            let slow = matches!(&reason, CloseReason::Error(e) if e.code == ErrorCode::SlowReader);
            let mut pending = Vec::new();
            while let (false, Some(frame)) = (slow, pump.outgoing.try_recv()) {
                pending.push(frame);
            }
            close(&mut pump.socket, pump.speaker.wire, pending, reason).await;
        }
    }
}

/// How a joined connection ended: the leave reason the room hears, whether the peer may resume
/// (a lost connection, not a goodbye), and how to close the socket (if the server closes it).
struct Ending {
    reason: LeaveReason,
    may_suspend: bool,
    close: Option<CloseReason>,
}

impl Ending {
    fn quietly(reason: LeaveReason) -> Self {
        Self {
            reason,
            may_suspend: true,
            close: None,
        }
    }

    /// A peer that cannot be written to (a write past `write_timeout_ms`, or more unsent bytes
    /// than `max_write_buffer_bytes`): closed and announced as a slow reader.
    fn slow_reader(why: String) -> Self {
        Self {
            reason: LeaveReason::SlowReader,
            may_suspend: true,
            close: Some(CloseReason::Error(ProtocolError::new(
                ErrorCode::SlowReader,
                why,
            ))),
        }
    }

    /// An ending for a failed write: a slow reader if the socket would not take it, else the
    /// connection is simply gone.
    fn write_failed(error: &ws::Error) -> Self {
        if matches!(error, ws::Error::WriteBufferFull) {
            Self::slow_reader("more unsent data than max_write_buffer_bytes".into())
        } else {
            Self::quietly(LeaveReason::Closed)
        }
    }
}

/// A joined peer's place in the hub. Dropping it tells the hub the connection ended, also when
/// the connection task is cancelled or fails, so the room is always told and the peer never
/// lingers (a resumable peer is suspended instead, until its grace period ends).
struct Membership {
    shared: Arc<Shared>,
    id: PeerId,
    conn: u64,
    ending: Ending,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let Ending {
            reason,
            may_suspend,
            ..
        } = self.ending;
        tracing::debug!(peer = %self.id, ?reason, may_suspend, "connection ended");
        let metrics = &self.shared.metrics;
        let mut relay = lock(&self.shared.relay);
        let owner = relay.owner_of(self.id, self.conn);
        relay.remove_outbox(self.id, self.conn);
        if let (Some(owner), Some(out)) = (owner, relay.outgoing()) {
            out.push(
                owner,
                Record::leave(self.id, self.conn, reason, may_suspend),
            );
            return;
        }
        let effects = relay
            .hub
            .disconnect(self.id, self.conn, reason, may_suspend, Instant::now());
        self.shared.settle(&relay, effects);
        metrics.connections.set(relay.hub.peer_count() as i64);
        metrics.rooms.set(relay.hub.room_count() as i64);
    }
}

struct Pump {
    shared: Arc<Shared>,
    /// The peer and its connection.
    speaker: Speaker,
    /// Cluster mode: the node that owns the peer's room, when it is another node (its frames
    /// go there undecoded), as the outbox said at the last look (a takeover changes it).
    owner: Option<NodeId>,
    /// The socket, read and written by this task alone (one frame direction at a time).
    socket: WebSocket,
    outgoing: QueueReceiver,
    closer: Arc<Closer>,
    /// Bytes the client may still send now (`bytes_per_second`, `byte_burst`).
    bytes: TokenBucket,
    /// A frame was dropped for the byte budget; cleared by the next accepted one.
    bytes_throttled: bool,
    /// With TURN: the ICE servers without TURN, and how often to send fresh credentials.
    turn_refresh: Option<(Vec<IceServer>, Duration)>,
    /// Cluster mode: this socket's seat among the node's sockets, given back with the pump.
    _seat: Option<Seat>,
}

impl Pump {
    /// Moves frames until the connection ends; returns why it ended.
    async fn run(&mut self) -> Ending {
        let shared = self.shared.clone();
        let limits = &shared.config.limits;
        let (heartbeat, idle) = (limits.heartbeat_interval(), limits.idle_timeout());
        let write_timeout = limits.write_timeout();
        let too_slow = || {
            Ending::slow_reader(format!(
                "a write took longer than write_timeout_ms ({})",
                write_timeout.as_millis()
            ))
        };
        let (control_rate, control_burst) =
            (limits.control_frames_per_second, limits.control_burst);
        let mut control = TokenBucket::full(control_burst, Instant::now());
        let mut last_heard = Instant::now();
        let mut next_ping = last_heard + heartbeat;
        // Only with TURN: when to send fresh credentials.
        let refresh_every = self.turn_refresh.as_ref().map(|(_, every)| *every);
        let mut next_refresh = refresh_every.map(|every| last_heard + every);
        let wake = |ping: Instant, heard: Instant, refresh: Option<Instant>| {
            let due = ping.min(heard + idle);
            refresh.map_or(due, |refresh| due.min(refresh))
        };
        let timer = tokio::time::sleep_until(wake(next_ping, last_heard, next_refresh).into());
        tokio::pin!(timer);
        // Created once: a cancellation future registers a waiter, too costly to redo per frame.
        let closer = self.closer.clone();
        let closed = closer.closed();
        tokio::pin!(closed);
        loop {
            tokio::select! {
                biased;
                () = &mut closed => return self.close_as_asked(),
                frame = self.socket.next() => {
                    last_heard = Instant::now();
                    // The data frames the socket already holds go to the hub together, under one
                    // lock of the relay; what ends the run (a control frame, the end) follows.
                    let mut steps = Vec::new();
                    let rest = self.gather(frame, &mut steps, last_heard);
                    if let Some(ending) = self.receive(steps, last_heard) {
                        return ending;
                    }
                    match rest {
                        None | Some(Some(Ok(Message::Text(_) | Message::Binary(_)))) => {}
                        Some(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {
                            // Each ping owes a pong: control frames have their own budget.
                            if !control.try_take(control_rate, control_burst, last_heard) {
                                let error = ProtocolError::new(
                                    ErrorCode::Flooding,
                                    format!("more than {control_rate} control frames per second"),
                                );
                                self.shared.metrics.error(error.code);
                                return Ending { reason: LeaveReason::Closed, may_suspend: false, close: Some(CloseReason::Error(error)) };
                            }
                        }
                        Some(Some(Ok(Message::Close(frame)))) => {
                            self.answer_close().await;
                            let goodbye = self.speaker.wire.is_goodbye(frame.map(|f| f.code));
                            return Ending { reason: LeaveReason::Closed, may_suspend: !goodbye, close: None };
                        }
                        Some(None) => return Ending::quietly(LeaveReason::Closed),
                        Some(Some(Err(error))) => {
                            if let Some((code, reason)) = error.violation() {
                                return Ending { reason: LeaveReason::Closed, may_suspend: false, close: Some(CloseReason::Violation { code, reason }) };
                            }
                            if matches!(error, ws::Error::WriteBufferFull) {
                                // Pongs owed past `max_write_buffer_bytes`: a client that does not read.
                                return Ending::write_failed(&error);
                            }
                            if !matches!(error, ws::Error::TooBig) {
                                return Ending::quietly(LeaveReason::Closed);
                            }
                            let max = limits.max_message_bytes;
                            let error = ProtocolError::new(
                                ErrorCode::MessageTooBig,
                                format!("frame larger than max_message_bytes ({max})"),
                            );
                            self.shared.metrics.error(error.code);
                            return Ending { reason: LeaveReason::Closed, may_suspend: false, close: Some(CloseReason::Error(error)) };
                        }
                    }
                }
                first = self.outgoing.recv() => {
                    let Some(first) = first else { return Ending::quietly(LeaveReason::Closed) };
                    // A stalled socket must not delay a close request (slow reader, shutdown).
                    // Every write has a deadline: a peer that stops reading is closed and announced.
                    tokio::select! {
                        result = tokio::time::timeout(write_timeout, write_batch(&mut self.socket, &mut self.outgoing, first)) => {
                            match result {
                                Ok(Ok(())) => {}
                                Ok(Err(error)) => return Ending::write_failed(&error),
                                Err(_) => return too_slow(),
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
                        return Ending { reason: LeaveReason::Timeout, may_suspend: true, close: Some(CloseReason::Error(error)) };
                    }
                    if now >= next_ping {
                        let ping = self.socket.send(Message::Ping(Default::default()));
                        match tokio::time::timeout(write_timeout, ping).await {
                            Ok(Ok(())) => {}
                            Ok(Err(error)) => return Ending::write_failed(&error),
                            Err(_) => return too_slow(),
                        }
                        next_ping = now + heartbeat;
                    }
                    if let (Some(due), Some(every)) = (next_refresh, refresh_every) {
                        if now >= due {
                            if let Err(ending) = self.refresh_turn(write_timeout).await {
                                return ending;
                            }
                            next_refresh = Some(now + every);
                        }
                    }
                    timer.as_mut().reset(wake(next_ping, last_heard, next_refresh).into());
                }
            }
        }
    }

    /// Sends fresh TURN credentials (`ice_servers`), with a write deadline like every write.
    async fn refresh_turn(&mut self, write_timeout: Duration) -> Result<(), Ending> {
        let Some((base, _)) = &self.turn_refresh else {
            return Ok(());
        };
        let ice_servers = with_turn(&self.shared.config.turn, base.clone(), self.speaker.id);
        let Some(Ok(frame)) = encode_for(
            &ServerMessage::IceServers { ice_servers },
            self.speaker.wire,
        ) else {
            return Ok(());
        };
        match tokio::time::timeout(write_timeout, self.socket.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Ending::write_failed(&error)),
            Err(_) => Err(Ending::slow_reader(format!(
                "a write took longer than write_timeout_ms ({})",
                write_timeout.as_millis()
            ))),
        }
    }

    /// Sends the reply to the client's close frame (queued by the WebSocket layer), so the client
    /// sees a clean close rather than 1006.
    async fn answer_close(&mut self) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.socket.flush()).await;
    }

    /// The ending for the reason the connection's `Closer` was given.
    fn close_as_asked(&self) -> Ending {
        let reason = self.closer.reason();
        let (leave, may_suspend) = match &reason {
            CloseReason::Error(error) => match error.code {
                ErrorCode::SlowReader => (LeaveReason::SlowReader, true),
                // The peer connects again elsewhere with its token: its room keeps its place.
                ErrorCode::Draining => (LeaveReason::Shutdown, true),
                _ => (LeaveReason::Shutdown, false),
            },
            CloseReason::Detached | CloseReason::Violation { .. } => (LeaveReason::Closed, false),
        };
        Ending {
            reason: leave,
            may_suspend,
            close: Some(reason),
        }
    }
}

/// Writes `first` and whatever else is queued (up to a batch), then flushes once.
async fn write_batch(
    socket: &mut WebSocket,
    queue: &mut QueueReceiver,
    first: Message,
) -> Result<(), ws::Error> {
    let mut batch = Vec::new();
    queue.take(&mut batch, WRITE_BATCH - 1);
    socket.feed(first).await?;
    for next in batch {
        socket.feed(next).await?;
    }
    socket.flush().await
}
