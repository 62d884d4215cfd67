//! The hub core: rooms, peers, names, routing and limits, as a plain state machine.
//!
//! No sockets, no clocks, no tasks: the shell calls [`Hub::join`], [`Hub::handle`] and
//! [`Hub::leave`] with the current time and carries out the [`Delivery`] values they return.
//! Everything here is deterministic and unit-tested without a network.

mod peer_map;
mod rate;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use switchboard_protocol::{
    ClientMessage, ErrorCode, LeaveReason, PeerId, PeerInfo, ProtocolError, ServerMessage, Target,
};

pub use peer_map::PeerMap;
pub use rate::TokenBucket;

/// The limits the hub core enforces. (Frame size, queues and timeouts are the shell's.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubLimits {
    /// Most peers in one room.
    pub max_peers_per_room: usize,
    /// Most connected peers in all.
    pub max_connections: usize,
    /// Most connected peers from one IP address.
    pub max_connections_per_ip: usize,
    /// Sustained messages per second one connection may send.
    pub messages_per_second: u32,
    /// Messages one connection may send in a burst above the sustained rate.
    pub message_burst: u32,
}

/// A message for a list of peers. The shell encodes it once per encoding and queues it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Recipients, in room order.
    pub to: Vec<PeerId>,
    /// What they get.
    pub message: ServerMessage,
}

impl Delivery {
    fn error(to: PeerId, error: ProtocolError) -> Self {
        Self {
            to: vec![to],
            message: ServerMessage::Error {
                code: error.code,
                message: error.message,
            },
        }
    }
}

/// A peer asking to join a room.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The id the shell drew for it.
    pub id: PeerId,
    /// The room, already validated by the handshake.
    pub room: String,
    /// The user name it asked for, already validated.
    pub name: Option<String>,
    /// Where it connects from.
    pub ip: IpAddr,
}

/// A successful join: who was already there, and the announcement for them.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// The peers already in the room, oldest first.
    pub peers: Vec<PeerInfo>,
    /// `peer_joined` for those peers.
    pub announce: Delivery,
}

#[derive(Debug)]
struct Peer {
    room: String,
    name: Option<String>,
    ip: IpAddr,
    bucket: TokenBucket,
    /// Set when a message was dropped for the rate limit; cleared by the next accepted one.
    /// Only the first drop of a run is answered with an error.
    throttled: bool,
}

#[derive(Debug, Default)]
struct Room {
    members: Vec<PeerId>,
    names: HashMap<String, PeerId>,
}

/// All rooms and peers of one hub.
#[derive(Debug)]
pub struct Hub {
    limits: HubLimits,
    peers: PeerMap<Peer>,
    rooms: HashMap<String, Room>,
    per_ip: HashMap<IpAddr, usize>,
}

impl Hub {
    /// An empty hub with these limits.
    pub fn new(limits: HubLimits) -> Self {
        Self {
            limits,
            peers: PeerMap::default(),
            rooms: HashMap::new(),
            per_ip: HashMap::new(),
        }
    }

    /// Number of connected peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Number of rooms with at least one peer (empty rooms are removed at once).
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Adds a peer to its room, or says why it may not join.
    pub fn join(&mut self, request: JoinRequest, now: Instant) -> Result<Joined, ProtocolError> {
        let JoinRequest { id, room, name, ip } = request;
        if self.peers.len() >= self.limits.max_connections {
            return Err(ProtocolError::new(
                ErrorCode::TooManyConnections,
                format!(
                    "the server has reached max_connections ({})",
                    self.limits.max_connections
                ),
            ));
        }
        let from_ip = self.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.limits.max_connections_per_ip {
            return Err(ProtocolError::new(
                ErrorCode::TooManyConnections,
                format!(
                    "your address has reached max_connections_per_ip ({})",
                    self.limits.max_connections_per_ip
                ),
            ));
        }
        let members = self.rooms.get(&room);
        if members.is_some_and(|r| r.members.len() >= self.limits.max_peers_per_room) {
            return Err(ProtocolError::new(
                ErrorCode::RoomFull,
                format!(
                    "room {room:?} is full (max_peers_per_room {})",
                    self.limits.max_peers_per_room
                ),
            ));
        }
        if let Some(name) = &name {
            if members.is_some_and(|r| r.names.contains_key(name)) {
                return Err(ProtocolError::new(
                    ErrorCode::NameTaken,
                    format!("the name {name:?} is taken in room {room:?}"),
                ));
            }
        }

        let entry = self.rooms.entry(room.clone()).or_default();
        let peers = entry
            .members
            .iter()
            .map(|other| PeerInfo {
                id: *other,
                name: self.peers.get(other).and_then(|p| p.name.clone()),
            })
            .collect();
        let announce = Delivery {
            to: entry.members.clone(),
            message: ServerMessage::PeerJoined(PeerInfo {
                id,
                name: name.clone(),
            }),
        };
        entry.members.push(id);
        if let Some(name) = &name {
            entry.names.insert(name.clone(), id);
        }
        *self.per_ip.entry(ip).or_insert(0) += 1;
        self.peers.insert(
            id,
            Peer {
                room,
                name,
                ip,
                bucket: TokenBucket::full(self.limits.message_burst, now),
                throttled: false,
            },
        );
        Ok(Joined { peers, announce })
    }

    /// Handles one decoded message from a joined peer. Returns what to deliver: the relayed
    /// message, a pong, or an error for the sender; `None` when nothing is to be sent.
    pub fn handle(
        &mut self,
        from: PeerId,
        message: ClientMessage,
        now: Instant,
    ) -> Option<Delivery> {
        let limits = &self.limits;
        let peer = self.peers.get_mut(&from)?;
        if !peer
            .bucket
            .try_take(limits.messages_per_second, limits.message_burst, now)
        {
            let first_drop = !peer.throttled;
            peer.throttled = true;
            return first_drop.then(|| {
                Delivery::error(
                    from,
                    ProtocolError::new(
                        ErrorCode::RateLimited,
                        format!(
                            "over {} messages/s (burst {}): messages are dropped until the rate falls",
                            limits.messages_per_second, limits.message_burst
                        ),
                    ),
                )
            });
        }
        peer.throttled = false;
        let (to, message) = match message {
            ClientMessage::Ping { nonce } => {
                return Some(Delivery {
                    to: vec![from],
                    message: ServerMessage::Pong { nonce },
                })
            }
            ClientMessage::Message { to, data } => (to, ServerMessage::Message { from, data }),
            ClientMessage::Signal { to, data } => (to, ServerMessage::Signal { from, data }),
        };
        match self.recipients(from, &to) {
            Ok(to) => Some(Delivery { to, message }),
            Err(error) => Some(Delivery::error(from, error)),
        }
    }

    /// Removes a peer; returns the `peer_left` announcement for the rest of its room.
    /// Removing an unknown peer does nothing.
    pub fn leave(&mut self, id: PeerId, reason: LeaveReason) -> Option<Delivery> {
        let peer = self.peers.remove(&id)?;
        if let Some(count) = self.per_ip.get_mut(&peer.ip) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&peer.ip);
            }
        }
        let room = self.rooms.get_mut(&peer.room)?;
        room.members.retain(|member| *member != id);
        if let Some(name) = &peer.name {
            room.names.remove(name);
        }
        if room.members.is_empty() {
            self.rooms.remove(&peer.room);
            return None;
        }
        Some(Delivery {
            to: room.members.clone(),
            message: ServerMessage::PeerLeft { id, reason },
        })
    }

    fn recipients(&self, from: PeerId, target: &Target) -> Result<Vec<PeerId>, ProtocolError> {
        let room_name = self
            .peers
            .get(&from)
            .map(|p| p.room.as_str())
            .unwrap_or_default();
        let room = self.rooms.get(room_name);
        match target {
            Target::Myself => Ok(vec![from]),
            Target::Room => Ok(room
                .map(|r| r.members.iter().copied().filter(|m| *m != from).collect())
                .unwrap_or_default()),
            Target::Peer(id) => match self.peers.get(id) {
                Some(peer) if peer.room == room_name => Ok(vec![*id]),
                _ => Err(ProtocolError::new(
                    ErrorCode::UnknownPeer,
                    format!("no peer {id} in your room"),
                )),
            },
            Target::Name(name) => room
                .and_then(|r| r.names.get(name))
                .map(|id| vec![*id])
                .ok_or_else(|| {
                    ProtocolError::new(
                        ErrorCode::UnknownName,
                        format!("no peer named {name:?} in your room"),
                    )
                }),
        }
    }
}

#[cfg(test)]
mod tests;
