//! What operators see and do (the admin API): every room with its peers, removing a peer,
//! closing a room. The same effects as a host's kick and a host leaving a `close` room.

use std::net::IpAddr;

use switchboard_protocol::{ErrorCode, LeaveReason, PeerId, RoomInfo};

use super::{Effects, Hub, Link};

/// A room as an operator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminRoom {
    /// Its name (a code or session id for those kinds).
    pub room: String,
    /// Settings, host and state.
    pub info: RoomInfo,
    /// Members, oldest first.
    pub peers: Vec<AdminPeer>,
}

/// A member as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminPeer {
    /// Its id.
    pub id: PeerId,
    /// Its user name.
    pub name: Option<String>,
    /// Where it connected from.
    pub ip: IpAddr,
    /// `connected`, `suspended` (may resume) or `detached` (close-after-connect).
    pub state: &'static str,
}

impl Hub {
    /// Every room with its members, by name.
    pub fn admin_rooms(&self) -> Vec<AdminRoom> {
        let mut rooms: Vec<AdminRoom> = self
            .rooms
            .iter()
            .map(|(name, room)| AdminRoom {
                room: name.clone(),
                info: room.info(),
                peers: room
                    .members
                    .iter()
                    .filter_map(|id| {
                        self.peers.get(id).map(|peer| AdminPeer {
                            id: *id,
                            name: peer.name.clone(),
                            ip: peer.ip,
                            state: match peer.link {
                                Link::Attached { .. } => "connected",
                                Link::Suspended { .. } => "suspended",
                                Link::Detached { .. } => "detached",
                            },
                        })
                    })
                    .collect(),
            })
            .collect();
        rooms.sort_by(|a, b| a.room.cmp(&b.room));
        rooms
    }

    /// Removes a peer: it gets `kicked` with the operator's reason, its room hears it left
    /// (`kicked`). `None` when there is no such peer.
    pub fn admin_kick(&mut self, id: PeerId, reason: &str) -> Option<Effects> {
        let link = self.peers.get(&id)?.link;
        let mut effects = Effects::default();
        effects.close_with_error(
            id,
            link,
            ErrorCode::Kicked,
            &format!("an operator removed you: {reason}"),
        );
        self.remove(id, LeaveReason::Kicked, &mut effects);
        Some(effects)
    }

    /// Closes a room: every member gets `room_closed` and the room is gone. `None` when there
    /// is no such room.
    pub fn admin_close_room(&mut self, name: &str) -> Option<Effects> {
        let members = self.rooms.get(name)?.members.clone();
        let mut effects = Effects::default();
        self.close_room(name, members, "an operator closed the room", &mut effects);
        Some(effects)
    }
}
