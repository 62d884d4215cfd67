//! Draining a node (SIGTERM, or `POST /admin/drain`): its rooms are handed to other nodes and its
//! peers told to connect again elsewhere, so a rolling restart is invisible to players.
//!
//! 1. New connections are refused with `draining`; forwarded joins get `NotOwner`.
//! 2. Each room this node owns gets a successor: the node of one of its other members, or any
//!    other node. The store names the successors (one script), then each room leaves this hub
//!    and goes to its successor written down (`Handover`); the successor holds it from then on,
//!    with this node's peers suspended for the resume grace.
//! 3. This node's peers are closed with `draining` (1012): they resume, on any node, with their
//!    tokens; the rooms they were in keep their places.
//! 4. Once the records are out, the node's heartbeat is deleted.

use std::sync::atomic::Ordering;
use std::time::Duration;

use switchboard_protocol::{ErrorCode, ProtocolError};

use super::envelope::{NodeId, Record};
use super::owned::Key;
use super::takeover::write_room;
use super::Cluster;
use crate::hub::CloseReason;
use crate::relay::{lock, RemoteRoom, Sink};
use crate::server::Shared;

/// What a drain did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Drained {
    /// Rooms handed to other nodes.
    pub rooms_handed_over: usize,
    /// Connections told to connect again elsewhere.
    pub peers_moved: usize,
}

/// The error that closes a draining node's peers.
pub(crate) fn draining() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::Draining,
        "this node is restarting: connect again with your resume token",
    )
}

impl Cluster {
    /// Whether this node is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Drains this node (see the module). Returns what it did; a second call does nothing.
    pub async fn drain(&self, shared: &Shared) -> Drained {
        if self.draining.swap(true, Ordering::Relaxed) {
            return Drained::default();
        }
        let others: Vec<NodeId> = match self.directory.nodes().await {
            Ok(nodes) => nodes.into_iter().filter(|n| *n != self.node).collect(),
            Err(_) => Vec::new(),
        };
        let successors = self.successors(shared, &others);
        let keys = successors
            .iter()
            .map(|(room, to)| (Key::Room(room.clone()).store_key(), *to))
            .collect();
        if self.directory.hand_over(keys, self.node).await.is_err() {
            self.metrics.redis_error("hand_over");
        }
        let mut drained = Drained::default();
        let released = {
            let mut relay = lock(&shared.relay);
            for (room, to) in successors {
                let Some(stored) = write_room(&relay, self.node, &room) else {
                    continue;
                };
                relay.hub.hand_over(&room);
                // Members elsewhere are the successor's now; members here send it their leave.
                for member in &stored.links {
                    let Some(outbox) = relay.outboxes.get_mut(&member.id) else {
                        continue;
                    };
                    match &mut outbox.sink {
                        Sink::Remote { .. } => {
                            relay.outboxes.remove(&member.id);
                        }
                        Sink::Local { owner, .. } => {
                            let room = room.clone();
                            *owner = Some(Box::new(RemoteRoom { node: to, room }));
                        }
                    }
                }
                if let Some(owner) = relay.cluster.as_mut() {
                    owner.owned.remove(&Key::Room(room.clone()));
                }
                self.out.push(to, Record::Handover { room: stored });
                drained.rooms_handed_over += 1;
            }
            relay
                .cluster
                .as_mut()
                .map(|owner| owner.owned.take_all())
                .unwrap_or_default()
        };
        let keys = released.iter().map(Key::store_key).collect();
        if self.directory.release(keys, self.node).await.is_err() {
            self.metrics.redis_error("release");
        }
        // The successors have their rooms before any peer comes back to resume there.
        self.out.flushed(Duration::from_secs(2)).await;
        {
            let relay = lock(&shared.relay);
            for outbox in relay.outboxes.values() {
                if let Sink::Local { closer, .. } = &outbox.sink {
                    closer.close_for(CloseReason::Error(draining()));
                    drained.peers_moved += 1;
                }
            }
        }
        // The connections' leaves, then every record, go out before the node says it is gone.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while tokio::time::Instant::now() < deadline && local_connections(shared) > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.out.flushed(Duration::from_secs(2)).await;
        if self.directory.leave(self.node).await.is_err() {
            self.metrics.redis_error("leave");
        }
        tracing::info!(?drained, "cluster: drained");
        drained
    }

    /// A successor for each room this node owns: the node of another member, else any other
    /// node (spread by the room's position), else none (the room ends with this node).
    fn successors(&self, shared: &Shared, others: &[NodeId]) -> Vec<(String, NodeId)> {
        let relay = lock(&shared.relay);
        let Some(owner) = relay.cluster.as_ref() else {
            return Vec::new();
        };
        let mut successors = Vec::new();
        for (n, key) in owner.owned.keys().into_iter().enumerate() {
            let Key::Room(room) = key else { continue };
            let Some(snapshot) = relay.hub.snapshot(&room) else {
                continue;
            };
            let member_node = snapshot.members.iter().find_map(|m| {
                match relay.outboxes.get(&m.id).map(|o| &o.sink) {
                    Some(Sink::Remote { node, .. }) if others.contains(node) => Some(*node),
                    _ => None,
                }
            });
            let any = (!others.is_empty()).then(|| others[n % others.len()]);
            if let Some(to) = member_node.or(any) {
                successors.push((room, to));
            }
        }
        successors
    }
}

/// How many connections this node still has.
fn local_connections(shared: &Shared) -> usize {
    lock(&shared.relay)
        .outboxes
        .values()
        .filter(|o| matches!(o.sink, Sink::Local { .. }))
        .count()
}
