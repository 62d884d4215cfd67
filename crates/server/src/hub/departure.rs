//! A peer leaving: its room is told, the host handed on or the room closed, its counts,
//! token and deadline forgotten, the public listing kept true.

use switchboard_protocol::{ErrorCode, HostLeaves, LeaveReason, PeerId, ServerMessage};

use super::{Effects, Hub, Link, Peer};

impl Hub {
    /// Takes a peer out of the hub and tells its room; hands the room to a new host or closes
    /// it when the host goes.
    pub(super) fn remove(&mut self, id: PeerId, reason: LeaveReason, effects: &mut Effects) {
        let room = self.peers.get(&id).map(|peer| peer.room.clone());
        self.remove_member(id, reason, effects);
        if let Some(room) = room {
            self.relist(&room);
        }
    }

    /// Shows a public room in the listing while one of its members is connected or about to
    /// resume, hides it while all are detached (nobody could answer a newcomer).
    pub(super) fn relist(&mut self, name: &str) {
        let shown = self.rooms.get(name).is_some_and(|room| {
            room.options.public
                && room.members.iter().any(|member| {
                    self.peers
                        .get(member)
                        .is_some_and(|p| !matches!(p.link, Link::Detached { .. }))
                })
        });
        self.public.show(name, shown);
    }

    pub(super) fn remove_member(&mut self, id: PeerId, reason: LeaveReason, effects: &mut Effects) {
        let Some(peer) = self.peers.remove(&id) else {
            return;
        };
        self.forget(id, &peer);
        let Some(room) = self.rooms.get_mut(&peer.room) else {
            return;
        };
        effects.changed.push(peer.room.clone());
        room.members.retain(|member| *member != id);
        if let Some(name) = &peer.name {
            room.names.remove(name);
        }
        if room.members.is_empty() {
            self.drop_room(&peer.room);
            return;
        }
        if room.options.directory {
            return;
        }
        // With host-only presence only the host heard of a client, so only it hears it leave.
        let told = match room.host {
            Some(host) if room.options.host_only && host != id => vec![host],
            _ => room.members.clone(),
        };
        effects.deliver(told, ServerMessage::PeerLeft { id, reason });
        if room.host != Some(id) {
            return;
        }
        match room.options.host_leaves {
            HostLeaves::Migrate => {
                let host = room.members[0];
                room.host = Some(host);
                effects.deliver(room.members.clone(), ServerMessage::HostChanged { host });
            }
            HostLeaves::Close => {
                let members = std::mem::take(&mut room.members);
                self.close_room(
                    &peer.room,
                    members,
                    "the host left and the room is closed",
                    effects,
                );
            }
        }
    }

    /// Drops a room and its `members`: each gets `room_closed` with `why` and is forgotten.
    pub(super) fn close_room(
        &mut self,
        name: &str,
        members: Vec<PeerId>,
        why: &str,
        effects: &mut Effects,
    ) {
        self.drop_room(name);
        for member in members {
            if let Some(gone) = self.peers.remove(&member) {
                effects.close_with_error(member, gone.link, ErrorCode::RoomClosed, why);
                self.forget(member, &gone);
            }
        }
    }

    /// Drops a removed peer's per-IP count, token and deadline.
    pub(super) fn forget(&mut self, id: PeerId, peer: &Peer) {
        if let Some(count) = self.per_ip.get_mut(&peer.ip) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&peer.ip);
            }
        }
        if let Some(token) = peer.token {
            self.tokens.remove(&token);
        }
        if let Link::Suspended { until } | Link::Detached { until } = peer.link {
            self.deadlines.remove(&(until, id));
        }
    }

    pub(super) fn drop_room(&mut self, name: &str) {
        self.public.remove(name);
        if let Some(room) = self.rooms.remove(name) {
            if let Some(slot) = room.open_match {
                self.open_matches.remove(&slot);
            }
        }
    }
}
