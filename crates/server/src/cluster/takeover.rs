//! Rooms outliving their owner: the owner writes each room down whenever its members change
//! (batched, every `snapshot_interval_ms`), and the nodes of the room's other members watch the
//! owner's heartbeat. When it expires, the first of them to claim the room rebuilds it from the
//! last snapshot (`Hub::restore`), becomes its owner and tells the others (`Moved`). The dead
//! node's peers are suspended (resumable ones, for the resume grace) or leave with `timeout`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use switchboard_protocol::{ErrorCode, PeerId, ProtocolError};

use super::envelope::{NodeId, Record, StoredLink, StoredRoom};
use super::owned::Key;
use super::store::Written;
use super::Cluster;
use crate::connection::Speaker;
use crate::hub::CloseReason;
use crate::relay::{lock, Outbox, Relay, Sink};
use crate::server::Shared;
use crate::wire::Wire;

/// Writes down the rooms `names` (with when each first changed) as the hub has them now (gone rooms forgotten), with their
/// entries in the public listing.
fn write_down(relay: &Relay, node: NodeId, names: HashMap<String, u64>) -> Vec<Written> {
    names
        .into_iter()
        .map(|(room, changed_ms)| {
            // Plain values: writing to a Vec cannot fail.
            let snapshot = write_room(relay, node, &room)
                .map(|stored| rmp_serde::to_vec_named(&stored).unwrap_or_default());
            let listing = relay.hub.listing(&room).map(|listing| {
                serde_json::json!({
                    "players": listing.players,
                    "info": listing.info,
                    "node": format!("{node:016x}"),
                })
                .to_string()
            });
            Written {
                room,
                snapshot,
                listing,
                changed_ms,
            }
        })
        .collect()
}

/// The room `name` as stored, if it exists: the hub's snapshot and where each member is.
pub(super) fn write_room(relay: &Relay, node: NodeId, name: &str) -> Option<StoredRoom> {
    let room = relay.hub.snapshot(name)?;
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
    Some(StoredRoom { room, links })
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

    /// Looks at the nodes this one depends on: the owners of its peers' rooms (their rooms are
    /// taken over when they are gone) and the nodes of its rooms' members (those members are
    /// lost when their node is gone: suspended if resumable, else they leave with `timeout`).
    pub(super) async fn watch_owners(self: &Arc<Self>, shared: &Arc<Shared>) {
        if !self.may_judge() {
            return;
        }
        let mut owners: HashMap<NodeId, HashSet<String>> = HashMap::new();
        let mut members: HashMap<NodeId, Vec<(PeerId, u64)>> = HashMap::new();
        for (id, outbox) in lock(&shared.relay).outboxes.iter() {
            match &outbox.sink {
                Sink::Local {
                    owner: Some(remote),
                    ..
                } => {
                    let rooms = owners.entry(remote.node).or_default();
                    rooms.insert(remote.room.clone());
                }
                Sink::Remote { node, .. } => {
                    members.entry(*node).or_default().push((*id, outbox.conn));
                }
                Sink::Local { owner: None, .. } => {}
            }
        }
        let nodes: Vec<NodeId> = owners.keys().chain(members.keys()).copied().collect();
        if nodes.is_empty() {
            return;
        }
        let Ok((alive, epoch)) = self.directory.alive(nodes.clone()).await else {
            self.metrics.redis_error("alive");
            return;
        };
        // Only a store that has not forgotten everything since the last heartbeat says a node
        // is gone.
        if !self.same_epoch(epoch) {
            return;
        }
        for (node, alive) in nodes.into_iter().zip(alive) {
            if alive {
                continue;
            }
            if let Some(lost) = members.remove(&node) {
                lose_members(shared, node, lost);
            }
            for room in owners.remove(&node).unwrap_or_default() {
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
        self.rebuild(shared, &mut relay, stored, dead, |node| {
            alive.contains(&node)
        });
    }

    /// Holds `stored` here from now on: the room's members on `gone` are lost (suspended or
    /// gone), those on nodes `alive` says are up keep their connections; their nodes hear of the
    /// move (`Moved`) before anything the room hears from here.
    pub(super) fn rebuild(
        &self,
        shared: &Shared,
        relay: &mut Relay,
        stored: StoredRoom,
        gone: NodeId,
        alive: impl Fn(NodeId) -> bool,
    ) {
        let room = stored.room.name.clone();
        if let Some(owner) = relay.cluster.as_mut() {
            owner.owned.insert(Key::Room(room.clone()));
        }
        let links: HashMap<PeerId, &StoredLink> = stored.links.iter().map(|l| (l.id, l)).collect();
        // Members here whose frames went to the dead owner, and members on other live nodes.
        let connection = |id: PeerId| match relay.outboxes.get(&id) {
            Some(outbox) if outbox.owner() == Some(gone) => Some(outbox.conn),
            Some(_) => None,
            None => links
                .get(&id)
                .filter(|l| l.node != gone && l.node != self.node && alive(l.node))
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
        shared.settle(relay, effects);
        shared.update_gauges(relay);
    }
}

/// Members of rooms owned here whose node is gone: their connections are lost, as if they had
/// dropped (a resumable one is suspended for the resume grace).
fn lose_members(shared: &Shared, node: NodeId, lost: Vec<(PeerId, u64)>) {
    let mut relay = lock(&shared.relay);
    let now = Instant::now();
    for (id, conn) in lost {
        let still = relay.outboxes.get(&id).is_some_and(|o| {
            o.conn == conn && matches!(&o.sink, Sink::Remote { node: n, .. } if *n == node)
        });
        if !still {
            continue;
        }
        relay.remove_outbox(id, conn);
        let effects = relay.hub.disconnect(
            id,
            conn,
            switchboard_protocol::LeaveReason::Timeout,
            true,
            now,
        );
        shared.settle(&relay, effects);
    }
    shared.update_gauges(&relay);
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
