//! Shared state of a running server: the hub core behind one lock, and the outbox of every
//! connection. Deliveries are encoded once per encoding and queued without blocking.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use axum::extract::ws::Message;
use switchboard_protocol::{ErrorCode, PeerId, ProtocolError, ServerMessage};
use tokio_util::sync::CancellationToken;

use crate::cluster::envelope::{Closing, NodeId, Record, WireFrame};
use crate::cluster::outgoing::Outgoing;
use crate::cluster::owned::Owned;
use crate::cluster::store::unix_ms;
use crate::compat::mailbox::{Expired, Mailboxes};
use crate::compat::peerjs;
use crate::connection::Speaker;
use crate::hub::{CloseReason, Delivery, Effects, Hub, PeerMap};
use crate::metrics::Metrics;
use crate::send_queue::{QueueSender, Refused};
use crate::wire::{encode_for, Wire};

/// Asks one connection to close, with a reason.
#[derive(Debug)]
pub struct Closer {
    token: CancellationToken,
    reason: OnceLock<CloseReason>,
}

impl Closer {
    /// A closer that also fires when `parent` (the server's shutdown token) is cancelled.
    pub fn new(parent: &CancellationToken) -> Self {
        Self {
            token: parent.child_token(),
            reason: OnceLock::new(),
        }
    }

    /// Asks the connection to close with this code (the first reason given wins).
    pub fn close(&self, code: ErrorCode) {
        let message = match code {
            ErrorCode::SlowReader => "your send queue is full: read faster",
            ErrorCode::Shutdown => "the server is shutting down",
            _ => "closed by the server",
        };
        self.close_for(CloseReason::Error(ProtocolError::new(code, message)));
    }

    /// Asks the connection to close for this reason (the first reason given wins).
    pub fn close_for(&self, reason: CloseReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// Whether the connection was already asked to close.
    pub fn is_closing(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when the connection should close.
    pub async fn closed(&self) {
        self.token.cancelled().await
    }

    /// Why the connection is closing: the reason given, or shutdown.
    pub fn reason(&self) -> CloseReason {
        self.reason.get().cloned().unwrap_or_else(|| {
            CloseReason::Error(ProtocolError::new(
                ErrorCode::Shutdown,
                "the server is shutting down",
            ))
        })
    }
}

/// Where messages for one peer go.
pub struct Outbox {
    /// Which connection of the peer this is (a resumed peer gets a new one).
    pub conn: u64,
    /// What the connection speaks.
    pub wire: Wire,
    /// The connection here, or the node it is on.
    pub sink: Sink,
}

/// Where a peer's connection is.
pub enum Sink {
    /// On this node.
    Local {
        /// The connection's bounded send queue.
        queue: QueueSender,
        /// Closes the connection (slow reader).
        closer: Arc<Closer>,
        /// Cluster mode: the peer's room and the node that owns it, when that is another node
        /// (only its deliveries and closes are taken for this connection).
        owner: Option<Box<RemoteRoom>>,
    },
    /// Cluster mode: a member of a room this node owns, connected to another node.
    Remote {
        /// The node of its connection.
        node: NodeId,
        /// The peer as its frames are acted on here.
        speaker: Arc<Speaker>,
    },
}

/// Cluster mode: a room owned by another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRoom {
    /// The owner.
    pub node: NodeId,
    /// The room's name.
    pub room: String,
}

impl Outbox {
    /// Cluster mode: the node owning this connection's room, when it is another node.
    pub fn owner(&self) -> Option<NodeId> {
        match &self.sink {
            Sink::Local {
                owner: Some(remote),
                ..
            } => Some(remote.node),
            _ => None,
        }
    }

    /// The outbox of a connection on this node.
    pub fn local(conn: u64, wire: Wire, queue: QueueSender, closer: Arc<Closer>) -> Self {
        Self {
            conn,
            wire,
            sink: Sink::Local {
                queue,
                closer,
                owner: None,
            },
        }
    }

    /// Asks the connection to close, here or on its node.
    pub fn close_for(&self, peer: PeerId, reason: CloseReason, cluster: Option<&Outgoing>) {
        match &self.sink {
            Sink::Local { closer, .. } => closer.close_for(reason),
            Sink::Remote { node, .. } => {
                if let (Some(out), Some(reason)) = (cluster, Closing::from_reason(reason)) {
                    let conn = self.conn;
                    out.push(*node, Record::Close { peer, conn, reason });
                }
            }
        }
    }
}

/// The hub and the outboxes, changed together under one lock.
pub struct Relay {
    /// The hub core.
    pub hub: Hub,
    /// Outboxes of joined connections.
    pub outboxes: PeerMap<Outbox>,
    /// PeerJS messages held for ids that are not connected.
    pub mailboxes: Mailboxes,
    /// Cluster mode: records for other nodes, and the rooms this node owns.
    pub cluster: Option<Owner>,
}

/// Cluster mode: what the relay needs to act as the owner of rooms.
pub struct Owner {
    /// Records waiting to be published to other nodes.
    pub out: Arc<Outgoing>,
    /// The placement keys (rooms, match keys) this node owns.
    pub owned: Owned,
    /// Rooms whose members changed since they were last written down, each with when the
    /// first of those changes was noticed (Unix milliseconds).
    pub dirty: Mutex<HashMap<String, u64>>,
}

impl Owner {
    /// What the cluster needs beside the hub: the outgoing records, nothing owned yet.
    pub fn new(out: Arc<Outgoing>) -> Self {
        Self {
            out,
            owned: Owned::default(),
            dirty: Mutex::new(HashMap::new()),
        }
    }

    /// Notes rooms to write down (their members changed).
    pub fn mark(&self, rooms: impl IntoIterator<Item = String>) {
        let mut rooms = rooms.into_iter().peekable();
        if rooms.peek().is_some() {
            let now = unix_ms();
            let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
            for room in rooms {
                dirty.entry(room).or_insert(now);
            }
        }
    }

    /// The rooms to write down now, with when their first change was noticed.
    pub fn take_dirty(&self) -> HashMap<String, u64> {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Relay {
    /// Carries out what the hub decided: queues the deliveries, asks connections to close.
    pub fn apply(&self, effects: Effects, sender: Option<PeerId>, metrics: &Metrics) {
        if let Some(owner) = &self.cluster {
            owner.mark(effects.changed);
        }
        for delivery in effects.deliveries {
            self.deliver(delivery, sender, metrics);
        }
        for close in effects.closes {
            if let Some(outbox) = self
                .outboxes
                .get(&close.peer)
                .filter(|o| o.conn == close.conn)
            {
                outbox.close_for(close.peer, close.reason, self.outgoing());
            }
        }
    }

    /// Cluster mode: where records for other nodes go.
    pub fn outgoing(&self) -> Option<&Outgoing> {
        self.cluster.as_ref().map(|c| &*c.out)
    }

    /// Cluster mode: the node owning the room of this connection here, if another node.
    pub fn owner_of(&self, id: PeerId, conn: u64) -> Option<NodeId> {
        self.outboxes
            .get(&id)
            .filter(|o| o.conn == conn)
            .and_then(Outbox::owner)
    }

    /// Removes a connection's outbox, unless the peer has moved on to a newer connection.
    pub fn remove_outbox(&mut self, id: PeerId, conn: u64) {
        if self.outboxes.get(&id).is_some_and(|o| o.conn == conn) {
            self.outboxes.remove(&id);
        }
    }

    /// Queues a delivery for every recipient. A recipient whose queue is full is closed as a slow
    /// reader; its neighbours are not held up. If the message cannot be encoded for some
    /// recipient's encoding, `sender` (when given) gets an error instead.
    pub fn deliver(&self, delivery: Delivery, sender: Option<PeerId>, metrics: &Metrics) {
        let mut frames: [Option<Option<Result<Message, ProtocolError>>>; Wire::COUNT] =
            Default::default();
        let mut failure = None;
        let mut relayed = 0;
        // Cluster mode: recipients on other nodes, one record per node and wire.
        let mut remote: Vec<(NodeId, usize, Vec<PeerId>)> = Vec::new();
        let last = delivery.to.len().saturating_sub(1);
        for (n, id) in delivery.to.iter().enumerate() {
            let Some(outbox) = self.outboxes.get(id) else {
                continue;
            };
            let wire_slot = outbox.wire.slot();
            let slot = &mut frames[wire_slot];
            if slot.is_none() {
                *slot = Some(encode_for(&delivery.message, outbox.wire));
            }
            let (queue, closer) = match &outbox.sink {
                Sink::Local { queue, closer, .. } => (queue, closer),
                Sink::Remote { node, .. } => {
                    match remote
                        .iter_mut()
                        .find(|(to, s, _)| to == node && *s == wire_slot)
                    {
                        Some((_, _, ids)) => ids.push(*id),
                        None => remote.push((*node, wire_slot, vec![*id])),
                    }
                    continue;
                }
            };
            // The last recipient takes the frame itself: a frame for one recipient (a signal, a
            // message by id) is queued as encoded, without sharing its bytes.
            let frame = if n == last && remote.is_empty() {
                slot.take().flatten()
            } else {
                slot.clone().flatten()
            };
            match frame {
                Some(Ok(frame)) => {
                    push(queue, closer, frame, metrics);
                    relayed += 1;
                }
                Some(Err(error)) => failure = Some(error),
                // The wire has no word for this message: nothing to send.
                None => {}
            }
        }
        if let Some(out) = self.outgoing() {
            for (node, wire_slot, to) in remote {
                match frames[wire_slot].clone().flatten() {
                    Some(Ok(frame)) => {
                        relayed += to.len() as u64;
                        let frame = wire_frame(frame);
                        out.push(node, Record::Deliver { to, frame });
                    }
                    Some(Err(error)) => failure = Some(error),
                    None => {}
                }
            }
        }
        metrics.messages_relayed.inc_by(relayed);
        if let ServerMessage::Error { code, .. } = &delivery.message {
            metrics.error(*code);
        }
        if let (Some(error), Some(sender)) = (failure, sender) {
            self.send_error(sender, error, metrics);
        }
    }

    /// Queues an error for one peer.
    pub fn send_error(&self, to: PeerId, error: ProtocolError, metrics: &Metrics) {
        let message = ServerMessage::Error {
            code: error.code,
            message: error.message,
        };
        self.deliver(
            Delivery {
                to: vec![to],
                message,
            },
            None,
            metrics,
        );
    }

    /// Closes the mailboxes whose time is up: each sender still connected gets `EXPIRE`.
    pub fn expire_mail(&mut self, now: Instant, metrics: &Metrics) {
        for expired in self.mailboxes.expire_due(now) {
            self.send_expire(&expired, metrics);
        }
    }

    /// Tells the sender of held messages that nobody came for them (PeerJS `EXPIRE`).
    pub fn send_expire(&self, expired: &Expired, metrics: &Metrics) {
        if let Some(to) = self.hub.connected_by_name(&expired.room, &expired.to) {
            let event = peerjs::expire_event(&expired.about, &expired.to);
            self.send_frame(to, Message::Text(event.into()), metrics);
        }
    }

    /// Queues a frame as it is (a compat wire's own event) for one peer, if it is connected.
    pub fn send_frame(&self, to: PeerId, frame: Message, metrics: &Metrics) {
        let Some(outbox) = self.outboxes.get(&to) else {
            return;
        };
        match &outbox.sink {
            Sink::Local { queue, closer, .. } => push(queue, closer, frame, metrics),
            Sink::Remote { node, .. } => {
                if let Some(out) = self.outgoing() {
                    let frame = wire_frame(frame);
                    out.push(
                        *node,
                        Record::Deliver {
                            to: vec![to],
                            frame,
                        },
                    );
                }
            }
        }
    }
}

/// A frame as a cluster record carries it.
pub fn wire_frame(frame: Message) -> WireFrame {
    match frame {
        Message::Binary(bytes) => WireFrame { text: false, bytes },
        other => WireFrame {
            text: true,
            bytes: other.into_data(),
        },
    }
}

/// Queues a frame on a connection of this node; a full queue closes it as a slow reader.
pub fn push(queue: &QueueSender, closer: &Closer, frame: Message, metrics: &Metrics) {
    match queue.try_send(frame) {
        Ok(()) => {}
        Err(Refused::Full) => {
            if !closer.is_closing() {
                tracing::info!("closing a slow reader: its send queue is full");
                metrics.error(ErrorCode::SlowReader);
            }
            closer.close(ErrorCode::SlowReader);
        }
        // The connection is already gone; its leave is on the way.
        Err(Refused::Closed) => {}
    }
}

/// Locks the relay. A poisoned lock (a panic elsewhere) is recovered: the hub's invariants hold
/// between calls, so the data is still consistent.
pub fn lock(relay: &Mutex<Relay>) -> MutexGuard<'_, Relay> {
    relay
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
