//! A room written down and rebuilt: what a cluster node stores of each room it owns, and how
//! another node takes the room over when the owner is gone. Pure, like the rest of the hub.

use std::net::IpAddr;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use switchboard_protocol::{LeaveReason, PeerId, RoomKind};

use super::room::Room;
use super::{Effects, Hub, Link, Peer, RoomOptions, TokenBucket};

/// A room's settings and members, in join order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    /// The room's name.
    pub name: String,
    /// How it came to be.
    pub kind: RoomKind,
    /// Its settings.
    pub options: RoomOptions,
    /// Most peers in it.
    pub capacity: usize,
    /// Its host.
    pub host: Option<PeerId>,
    /// A match that started.
    pub started: bool,
    /// Its members, oldest first.
    pub members: Vec<MemberSnapshot>,
}

/// One member of a written-down room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberSnapshot {
    /// Its id.
    pub id: PeerId,
    /// Its user name.
    pub name: Option<String>,
    /// Where it connects from.
    pub ip: IpAddr,
    /// Its resume token, when resumable.
    pub token: Option<u128>,
}

impl Hub {
    /// The room as it can be written down, if it exists.
    pub fn snapshot(&self, name: &str) -> Option<RoomSnapshot> {
        let room = self.rooms.get(name)?;
        let members = room
            .members
            .iter()
            .filter_map(|id| {
                let peer = self.peers.get(id)?;
                Some(MemberSnapshot {
                    id: *id,
                    name: peer.name.clone(),
                    ip: peer.ip,
                    token: peer.token,
                })
            })
            .collect();
        Some(RoomSnapshot {
            name: name.to_owned(),
            kind: room.kind,
            options: room.options.clone(),
            capacity: room.capacity,
            host: room.host,
            started: room.started,
            members,
        })
    }

    /// Takes a room out of this hub for another node to hold (a hand-over): its snapshot, and
    /// the room and its members forgotten here without a word to anyone.
    pub fn hand_over(&mut self, name: &str) -> Option<RoomSnapshot> {
        let snapshot = self.snapshot(name)?;
        for member in &snapshot.members {
            if let Some(peer) = self.peers.remove(&member.id) {
                self.forget(member.id, &peer);
            }
        }
        self.drop_room(name);
        Some(snapshot)
    }

    /// Rebuilds a room whose owner is gone. `connection(id)` is the connection of each member
    /// still connected (to a node that is alive); the others are lost: a resumable one is
    /// suspended for the resume grace (it may resume anywhere), the others leave now with
    /// `timeout`, which the room hears. A room that exists already, or a member already in
    /// another room here, is left as it is.
    pub fn restore(
        &mut self,
        snapshot: RoomSnapshot,
        connection: impl Fn(PeerId) -> Option<u64>,
        now: Instant,
    ) -> Effects {
        let mut effects = Effects::default();
        if self.rooms.contains_key(&snapshot.name) {
            return effects;
        }
        let mut room = Room::new(snapshot.kind, snapshot.options.clone(), snapshot.capacity);
        room.host = snapshot.host;
        room.started = snapshot.started;
        let mut lost = Vec::new();
        for member in &snapshot.members {
            if self.peers.contains_key(&member.id) {
                continue;
            }
            let link = match connection(member.id) {
                Some(conn) => Link::Attached { conn },
                None if member.token.is_some() => {
                    let until = now + self.limits.resume_grace;
                    self.deadlines.insert((until, member.id));
                    effects.new_deadline = true;
                    Link::Suspended { until }
                }
                None => {
                    lost.push(member.id);
                    Link::Suspended { until: now }
                }
            };
            room.members.push(member.id);
            if let Some(name) = &member.name {
                room.names.insert(name.clone(), member.id);
            }
            if let Some(token) = member.token {
                self.tokens.insert(token, member.id);
            }
            *self.per_ip.entry(member.ip).or_insert(0) += 1;
            self.peers.insert(
                member.id,
                Peer {
                    room: snapshot.name.clone(),
                    name: member.name.clone(),
                    ip: member.ip,
                    bucket: TokenBucket::full(self.limits.message_burst, now),
                    throttled: false,
                    token: member.token,
                    link,
                },
            );
        }
        if room.members.is_empty() {
            return effects;
        }
        if room.host.is_some_and(|host| !room.members.contains(&host)) {
            room.host = room.members.first().copied();
        }
        let creator = snapshot.members.first().map(|m| m.ip);
        self.rooms.insert(snapshot.name.clone(), room);
        if let Some(ip) = creator {
            self.index_public(&snapshot.name, &snapshot.options, ip);
        }
        effects.changed.push(snapshot.name.clone());
        for id in lost {
            self.remove(id, LeaveReason::Timeout, &mut effects);
        }
        self.relist(&snapshot.name);
        effects
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchboard_protocol::{ServerMessage, Target};

    use super::*;
    use crate::hub::{Destination, HubLimits, JoinRequest, Permits};

    fn id(n: u128) -> PeerId {
        PeerId::from_u128(n)
    }

    /// A room "r" with peers 1 (host, "ann"), 2 ("bob", resumable) and 3.
    fn three(now: Instant) -> Hub {
        let mut hub = Hub::new(HubLimits::roomy());
        for (n, name, token) in [
            (1, Some("ann"), None),
            (2, Some("bob"), Some(22)),
            (3, None, None),
        ] {
            let request = JoinRequest {
                id: id(n),
                conn: n as u64,
                destination: Destination::Named {
                    room: "r".into(),
                    create: true,
                    options: RoomOptions::default(),
                },
                name: name.map(Into::into),
                ip: "127.0.0.1".parse().unwrap(),
                token,
                entropy: n,
                permits: Permits::default(),
            };
            let (_, effects) = hub.join(request, now).unwrap();
            assert_eq!(effects.changed, vec!["r".to_owned()]);
        }
        hub
    }

    #[test]
    fn a_room_rebuilt_elsewhere_keeps_members_names_host_and_tokens() {
        let now = Instant::now();
        let old = three(now);
        let snapshot = old.snapshot("r").unwrap();
        assert_eq!(snapshot.host, Some(id(1)));
        assert_eq!(snapshot.members.len(), 3);
        assert_eq!(old.snapshot("nowhere"), None);
        // Everyone still connected (to nodes that are alive), on new connections numbers.
        let mut hub = Hub::new(HubLimits::roomy());
        let effects = hub.restore(snapshot.clone(), |id| Some(id.as_u128() as u64 + 10), now);
        assert!(effects.deliveries.is_empty(), "{effects:?}");
        assert_eq!(hub.connected_by_name("r", "bob"), Some(id(2)));
        assert_eq!(hub.snapshot("r").unwrap(), snapshot);
        assert!(hub.holds_token(22));
        // Routing works on the new connections; names stay unique.
        let effects = hub.handle(
            id(3),
            13,
            switchboard_protocol::ClientMessage::Message {
                to: Target::Name("ann".into()),
                data: switchboard_protocol::Payload::from_json("1").unwrap(),
            },
            now,
        );
        assert_eq!(effects.deliveries[0].to, vec![id(1)]);
        // A second restore of the same room changes nothing.
        assert_eq!(hub.restore(snapshot, |_| None, now), Effects::default());
    }

    #[test]
    fn members_of_the_dead_node_are_suspended_or_leave_with_timeout() {
        let now = Instant::now();
        let snapshot = three(now).snapshot("r").unwrap();
        let mut hub = Hub::new(HubLimits::roomy());
        // Only peer 3 is on a live node: the host (1) is lost for good, bob (2) may resume.
        let conn = |id: PeerId| (id.as_u128() == 3).then_some(3);
        let effects = hub.restore(snapshot, conn, now);
        assert!(effects.new_deadline);
        let left: Vec<_> = effects
            .deliveries
            .iter()
            .map(|d| (d.to.clone(), d.message.clone()))
            .collect();
        assert_eq!(
            left[0],
            (
                vec![id(2), id(3)],
                ServerMessage::PeerLeft {
                    id: id(1),
                    reason: LeaveReason::Timeout
                }
            )
        );
        // The host's seat passes on, as when a host leaves.
        assert!(matches!(left[1].1, ServerMessage::HostChanged { host } if host == id(2)));
        assert_eq!(
            hub.connected_by_name("r", "bob"),
            None,
            "suspended, not connected"
        );
        assert!(hub.holds_token(22));
        // Bob does not come back within the grace: the room hears he timed out.
        let later = hub.expire_due(now + Duration::from_secs(11));
        assert_eq!(
            later.deliveries[0].message,
            ServerMessage::PeerLeft {
                id: id(2),
                reason: LeaveReason::Timeout
            }
        );
        assert_eq!(hub.peer_count(), 1);
    }
}
