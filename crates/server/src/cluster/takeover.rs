//! Rooms outliving their owner: the owner writes each room down whenever its members change
//! (batched, every `snapshot_interval_ms`), and the nodes of the room's other members watch the
//! owner's heartbeat. When it expires, the first of them to claim the room rebuilds it from the
//! last snapshot (`Hub::restore`), becomes its owner and tells the others (`Moved`). The dead
//! node's peers are suspended (resumable ones, for the resume grace) or leave with `timeout`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use switchboard_protocol::{ErrorCode, PeerId, ProtocolError};

use super::envelope::{NodeId, Record};
use super::owned::Key;
use super::Cluster;
use crate::connection::Speaker;
use crate::hub::{CloseReason, RoomSnapshot};
use crate::relay::{lock, Outbox, Relay, Sink};
use crate::server::Shared;
use crate::wire::Wire;

/// A room as stored: the hub's snapshot and where each member's connection is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRoom {
    /// The hub's view.
    pub room: RoomSnapshot,
    /// Each connected member's node and connection.
    pub links: Vec<StoredLink>,
}

/// Where one member's connection is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredLink {
    /// The member.
    pub id: PeerId,
    /// The node of its connection.
    pub node: NodeId,
    /// The connection.
    pub conn: u64,
    /// What it speaks ([`Wire::slot`]).
    pub wire: u8,
    /// `ws(s)://host` as it reached the server (empty when its node did not keep it).
    pub origin: String,
}

/// Writes down the rooms `names` as the hub has them now (`None`: the room is gone).
fn write_down(
    relay: &Relay,
    node: NodeId,
    names: HashSet<String>,
) -> Vec<(String, Option<Vec<u8>>)> {
    names
        .into_iter()
        .map(|name| {
            let Some(room) = relay.hub.snapshot(&name) else {
                return (name, None);
            };
            let links = room
                .members
                .iter()
                .filter_map(|member| {
                    let outbox = relay.outboxes.get(&member.id)?;
                    let (node, origin) = match &outbox.sink {
                        Sink::Local { .. } => (node, String::new()),
                        Sink::Remote { node, speaker } => (*node, speaker.origin.clone()),
                    };
                    Some(StoredLink {
                        id: member.id,
                        node,
                        conn: outbox.conn,
                        wire: outbox.wire.slot() as u8,
                        origin,
                    })
                })
                .collect();
            let stored = StoredRoom { room, links };
            // Plain values: writing to a Vec cannot fail.
            let bytes = rmp_serde::to_vec_named(&stored).unwrap_or_default();
            (name, Some(bytes))
        })
        .collect()
}

impl Cluster {
    /// Writes down, every `snapshot_interval_ms`, the rooms whose members changed.
    pub(super) async fn snapshots(self: Arc<Self>, shared: Arc<Shared>) {
        let mut tick = tokio::time::interval(self.config.snapshot_interval());
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shared.shutdown.cancelled() => return,
            }
            let rooms = {
                let relay = lock(&shared.relay);
                let Some(owner) = relay.cluster.as_ref() else {
                    return;
                };
                let dirty = owner.take_dirty();
                if dirty.is_empty() {
                    continue;
                }
                write_down(&relay, self.node, dirty)
            };
            let started = Instant::now();
            match self
                .directory
                .save_rooms(rooms, self.config.token_ttl())
                .await
            {
                Ok(()) => self.metrics.latency(started.elapsed()),
                Err(_) => self.metrics.redis_error("snapshot"),
            }
        }
    }

    /// Looks at the owners of the rooms this node's connections are in; takes over the rooms
    /// of owners that are gone.
    pub(super) async fn watch_owners(self: &Arc<Self>, shared: &Arc<Shared>) {
        let mut watched: HashMap<NodeId, HashSet<String>> = HashMap::new();
        for outbox in lock(&shared.relay).outboxes.values() {
            if let Sink::Local {
                owner: Some(remote),
                ..
            } = &outbox.sink
            {
                let rooms = watched.entry(remote.node).or_default();
                rooms.insert(remote.room.clone());
            }
        }
        if watched.is_empty() {
            return;
        }
        let nodes: Vec<NodeId> = watched.keys().copied().collect();
        let Ok(alive) = self.directory.alive(nodes.clone()).await else {
            self.metrics.redis_error("alive");
            return;
        };
        for (node, alive) in nodes.into_iter().zip(alive) {
            if alive {
                continue;
            }
            for room in watched.remove(&node).unwrap_or_default() {
                self.take_over(shared, node, room).await;
            }
        }
    }

    /// Takes over `room` from `dead`, if this node claims it first.
    async fn take_over(self: &Arc<Self>, shared: &Arc<Shared>, dead: NodeId, room: String) {
        let Ok(owner) = self.claim(&Key::Room(room.clone()), shared).await else {
            return;
        };
        if owner != self.node {
            // Another node took it (its `Moved` comes), or the room moved on.
            return;
        }
        let stored = match self.directory.load_room(room.clone()).await {
            Ok(Some(bytes)) => rmp_serde::from_slice::<StoredRoom>(&bytes).ok(),
            Ok(None) => None,
            Err(_) => {
                self.metrics.redis_error("load");
                None
            }
        };
        let alive: HashSet<NodeId> = match self.directory.nodes().await {
            Ok(nodes) => nodes.into_iter().collect(),
            Err(_) => HashSet::from([self.node]),
        };
        let mut relay = lock(&shared.relay);
        let Some(stored) = stored.filter(|s| s.room.name == room) else {
            // Nothing to rebuild from: this node's members of the room connect again.
            tracing::warn!(%room, "cluster: a room's owner is gone and left no snapshot");
            close_members(&relay, dead, &room);
            return;
        };
        tracing::info!(%room, dead = format!("{dead:016x}"), "cluster: taking a room over");
        let links: HashMap<PeerId, &StoredLink> = stored.links.iter().map(|l| (l.id, l)).collect();
        // Members here whose frames went to the dead owner, and members on other live nodes.
        let connection = |id: PeerId| match relay.outboxes.get(&id) {
            Some(outbox) if outbox.owner() == Some(dead) => Some(outbox.conn),
            Some(_) => None,
            None => links
                .get(&id)
                .filter(|l| l.node != dead && l.node != self.node && alive.contains(&l.node))
                .map(|l| l.conn),
        };
        let attached: Vec<(PeerId, u64)> = stored
            .room
            .members
            .iter()
            .filter_map(|m| connection(m.id).map(|conn| (m.id, conn)))
            .collect();
        let names: HashMap<PeerId, Option<String>> = stored
            .room
            .members
            .iter()
            .map(|m| (m.id, m.name.clone()))
            .collect();
        let ips: HashMap<PeerId, std::net::IpAddr> =
            stored.room.members.iter().map(|m| (m.id, m.ip)).collect();
        let conns: HashMap<PeerId, u64> = attached.iter().copied().collect();
        let effects = relay.hub.restore(
            stored.room.clone(),
            |id| conns.get(&id).copied(),
            Instant::now(),
        );
        let mut moved: HashMap<NodeId, Vec<(PeerId, u64)>> = HashMap::new();
        for (id, conn) in attached {
            if let Some(outbox) = relay.outboxes.get_mut(&id) {
                if let Sink::Local { owner, .. } = &mut outbox.sink {
                    *owner = None;
                }
                continue;
            }
            let Some(link) = links.get(&id) else { continue };
            let Some(wire) = Wire::from_slot(link.wire) else {
                continue;
            };
            let speaker = Speaker {
                id,
                conn,
                wire,
                room: room.clone(),
                name: names.get(&id).cloned().flatten().unwrap_or_default(),
                origin: link.origin.clone(),
                ip: ips
                    .get(&id)
                    .copied()
                    .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
            };
            let node = link.node;
            let sink = Sink::Remote {
                node,
                speaker: Arc::new(speaker),
            };
            relay.outboxes.insert(id, Outbox { conn, wire, sink });
            moved.entry(node).or_default().push((id, conn));
        }
        // The members' nodes hear of the move before anything the room hears from here.
        for (node, peers) in moved {
            let room = room.clone();
            self.out.push(node, Record::Moved { room, peers });
        }
        shared.settle(&relay, effects);
        shared.update_gauges(&relay);
    }
}

/// Closes this node's connections in `room` (owned by `dead`) with `unavailable`.
fn close_members(relay: &Relay, dead: NodeId, room: &str) {
    for outbox in relay.outboxes.values() {
        if let Sink::Local {
            owner: Some(remote),
            closer,
            ..
        } = &outbox.sink
        {
            if remote.node == dead && remote.room == room {
                closer.close_for(CloseReason::Error(ProtocolError::new(
                    ErrorCode::Unavailable,
                    "the node that held your room is gone: connect again",
                )));
            }
        }
    }
}

/// As a member's node: the room's new owner says it took the room over.
pub(super) fn moved(relay: &mut Relay, from: NodeId, room: &str, peers: Vec<(PeerId, u64)>) {
    for (id, conn) in peers {
        let Some(outbox) = relay.outboxes.get_mut(&id).filter(|o| o.conn == conn) else {
            continue;
        };
        if let Sink::Local {
            owner: Some(remote),
            ..
        } = &mut outbox.sink
        {
            if remote.room == room {
                remote.node = from;
            }
        }
    }
}
