//! The hub core: rooms, peers, names, routing, hosts, matches, resumption and limits, as a
//! plain state machine.
//!
//! No sockets, no clocks, no tasks, no randomness: the shell calls [`Hub::join`],
//! [`Hub::resume`], [`Hub::handle`], [`Hub::disconnect`] and [`Hub::expire_due`] with the
//! current time (and random values it drew) and carries out the [`Effects`] they return.
//! Everything here is deterministic and unit-tested without a network.

mod admin;
mod departure;
mod listing;
mod peer_map;
mod permits;
mod placement;
mod room;
mod snapshot;
mod throttle;

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use switchboard_protocol::{
    ClientMessage, ErrorCode, LeaveReason, Payload, PeerId, PeerInfo, ProtocolError, RoomInfo,
    ServerMessage, Target,
};

pub use admin::{AdminPeer, AdminRoom};
pub use peer_map::PeerMap;
pub use permits::Permits;
pub use room::{normalize_code, RoomOptions, CODE_ALPHABET, CODE_LENGTH};
pub use snapshot::{MemberSnapshot, RoomSnapshot};
pub use switchboard_protocol::rate::TokenBucket;
pub use throttle::RateTable;

use listing::PublicIndex;
use room::Room;
use throttle::Throttles;

/// The limits the hub core enforces. (Frame size, queues and socket timeouts are the shell's.)
#[derive(Debug, Clone, PartialEq)]
pub struct HubLimits {
    /// Most peers in one room (and the largest capacity or match a peer may ask for).
    pub max_peers_per_room: usize,
    /// Most peers in one directory (`RoomOptions::directory`).
    pub max_peers_per_directory: usize,
    /// Most peers in all (connected, suspended or detached).
    pub max_connections: usize,
    /// Most peers from one IP address.
    pub max_connections_per_ip: usize,
    /// Sustained messages per second one connection may send.
    pub messages_per_second: u32,
    /// Messages one connection may send in a burst above the sustained rate.
    pub message_burst: u32,
    /// How long a resumable peer whose connection dropped keeps its place.
    pub resume_grace: Duration,
    /// How long a detached peer stays in its room at most.
    pub detached_ttl: Duration,
    /// Largest room metadata (JSON text), in bytes.
    pub max_room_meta_bytes: usize,
    /// Sustained joins per second from one IP address, and the burst above it.
    pub joins_per_ip: (f64, u32),
    /// Sustained joins per second into one room, and the burst above it.
    pub joins_per_room: (f64, u32),
    /// Sustained lookups per second of private rooms by name (codes) from one IP address that
    /// miss, and the burst above it.
    pub code_lookups_per_ip: (f64, u32),
    /// Most public rooms created from one IP address that exist at once.
    pub max_public_rooms_per_ip: usize,
    /// Sustained messages per second to everyone in one directory, and the burst above it.
    pub directory_broadcasts: (f64, u32),
}

#[cfg(test)]
impl HubLimits {
    /// Limits no test reaches unless it means to, for the tests of the cluster's pure parts.
    pub(crate) fn roomy() -> Self {
        Self {
            max_peers_per_room: 8,
            max_peers_per_directory: 100,
            max_connections: 100,
            max_connections_per_ip: 100,
            messages_per_second: 100,
            message_burst: 100,
            resume_grace: Duration::from_secs(10),
            detached_ttl: Duration::from_secs(60),
            max_room_meta_bytes: 100,
            joins_per_ip: (100.0, 100),
            joins_per_room: (100.0, 100),
            code_lookups_per_ip: (100.0, 100),
            max_public_rooms_per_ip: 10,
            directory_broadcasts: (100.0, 100),
        }
    }
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

/// Why the shell must close a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// With an `error` message and the error's close code.
    Error(ProtocolError),
    /// Normally (1000): the peer detached and stays in its room without a connection.
    Detached,
    /// With a bare close frame: the client broke the WebSocket protocol itself (RFC 6455: 1002
    /// for a protocol error, 1007 for a text frame that is not UTF-8). Only the shell uses it.
    Violation {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: &'static str,
    },
}

/// A connection the shell must close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The peer.
    pub peer: PeerId,
    /// Which of its connections (a resumed peer's old connection differs from its new one).
    pub conn: u64,
    /// Why.
    pub reason: CloseReason,
}

/// What the shell must do after a call: deliver messages, close connections.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Effects {
    /// Messages to queue, in order.
    pub deliveries: Vec<Delivery>,
    /// Connections to close.
    pub closes: Vec<Close>,
    /// A deadline was added: the shell's reaper should look at [`Hub::next_deadline`] again.
    pub new_deadline: bool,
    /// Rooms that changed as a shell writes them down (cluster mode's snapshots and listing): a
    /// join, a leave, a resume (a new token), a detach, new metadata. May repeat a room.
    pub changed: Vec<String>,
}

impl Effects {
    fn deliver(&mut self, to: Vec<PeerId>, message: ServerMessage) {
        if !to.is_empty() {
            self.deliveries.push(Delivery { to, message });
        }
    }

    fn error(&mut self, to: PeerId, error: ProtocolError) {
        self.deliveries.push(Delivery::error(to, error));
    }

    /// Closes the peer's connection with an error, if it has one.
    fn close_with_error(&mut self, peer: PeerId, link: Link, code: ErrorCode, message: &str) {
        if let Link::Attached { conn } = link {
            let reason = CloseReason::Error(error(code, message));
            self.closes.push(Close { peer, conn, reason });
        }
    }
}

/// Where a joining peer wants to go.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Destination {
    /// A room by name; `create: false` refuses to create it (`no_such_room`).
    Named {
        /// The room name (validated).
        room: String,
        /// Whether joining may create the room.
        create: bool,
        /// Settings if this join creates it.
        options: RoomOptions,
    },
    /// A new room with a short code drawn by the server.
    NewCode {
        /// Its settings.
        options: RoomOptions,
    },
    /// A new one-to-one session with a 128-bit id drawn by the server.
    NewSession,
    /// Auto-match: the open match of `players` peers for `key`, or a new one.
    Match {
        /// Players in a match.
        players: usize,
        /// Game mode or other matching key (may be empty).
        key: String,
    },
}

/// A peer asking to join.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The id the shell drew for it.
    pub id: PeerId,
    /// Which connection this is (the shell numbers them).
    pub conn: u64,
    /// Where to.
    pub destination: Destination,
    /// The user name it asked for, already validated.
    pub name: Option<String>,
    /// Where it connects from.
    pub ip: IpAddr,
    /// `Some(token)` (drawn by the shell) when the peer asks to be resumable.
    pub token: Option<u128>,
    /// Random bits for a generated room code, session id or match room name.
    pub entropy: u128,
    /// What its token allows (everything when auth is off).
    pub permits: Permits,
}

/// A peer taking its place back with a resume token.
#[derive(Debug, Clone)]
pub struct ResumeRequest {
    /// The token it was given.
    pub token: u128,
    /// The new connection.
    pub conn: u64,
    /// The next token (drawn by the shell): tokens are single-use.
    pub next_token: u128,
    /// With auth: the new connection's token must name the same user (its `sub`) ...
    pub name: Option<String>,
    /// ... and allow the peer's room.
    pub permits: Permits,
}

/// A peer's place in a room, for its `welcome`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Seat {
    /// The peer's id (drawn at join, kept across resumes).
    pub id: PeerId,
    /// The room name.
    pub room: String,
    /// Its user name.
    pub name: Option<String>,
    /// The other peers, oldest first.
    pub peers: Vec<PeerInfo>,
    /// The room's settings and state.
    pub info: RoomInfo,
    /// Its resume token, when resumable.
    pub token: Option<u128>,
}

/// A public room in the listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// The room name.
    pub room: String,
    /// Peers in it.
    pub players: usize,
    /// Its settings and state.
    pub info: RoomInfo,
}

/// Whether a peer has a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Attached {
        conn: u64,
    },
    /// The connection dropped; the peer may resume until the deadline.
    Suspended {
        until: Instant,
    },
    /// The peer closed its connection on purpose and stays until reported gone or the deadline.
    Detached {
        until: Instant,
    },
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
    token: Option<u128>,
    link: Link,
}

/// All rooms and peers of one hub.
#[derive(Debug)]
pub struct Hub {
    limits: HubLimits,
    peers: PeerMap<Peer>,
    rooms: HashMap<String, Room>,
    per_ip: HashMap<IpAddr, usize>,
    tokens: HashMap<u128, PeerId>,
    /// The open (not yet full) match room for each `(key, players)`.
    open_matches: HashMap<(String, usize), String>,
    /// Suspended and detached peers by deadline.
    deadlines: BTreeSet<(Instant, PeerId)>,
    throttles: Throttles,
    public: PublicIndex,
}

fn error(code: ErrorCode, message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(code, message)
}

fn throttled(why: &str) -> ProtocolError {
    error(ErrorCode::Throttled, why)
}

impl Hub {
    /// An empty hub with these limits.
    pub fn new(limits: HubLimits) -> Self {
        Self {
            peers: PeerMap::default(),
            rooms: HashMap::new(),
            per_ip: HashMap::new(),
            tokens: HashMap::new(),
            open_matches: HashMap::new(),
            deadlines: BTreeSet::new(),
            public: PublicIndex::new(limits.max_public_rooms_per_ip),
            throttles: Throttles {
                joins_by_ip: RateTable::new(limits.joins_per_ip.0, limits.joins_per_ip.1),
                joins_by_room: RateTable::new(limits.joins_per_room.0, limits.joins_per_room.1),
                lookups_by_ip: RateTable::new(
                    limits.code_lookups_per_ip.0,
                    limits.code_lookups_per_ip.1,
                ),
            },
            limits,
        }
    }

    /// Number of peers in rooms (connected, suspended or detached).
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Number of rooms with at least one peer (empty rooms are removed at once).
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Whether a room of this name exists.
    pub fn has_room(&self, name: &str) -> bool {
        self.rooms.contains_key(name)
    }

    /// The connected peer called `name` in `room`, if there is one (a suspended or detached
    /// peer has no connection to deliver to).
    pub fn connected_by_name(&self, room: &str, name: &str) -> Option<PeerId> {
        let id = *self.rooms.get(room)?.names.get(name)?;
        let attached = matches!(self.peers.get(&id)?.link, Link::Attached { .. });
        attached.then_some(id)
    }

    /// The user names in `room`, in join order (a directory's listing).
    pub fn names_in(&self, room: &str) -> Vec<String> {
        let Some(room) = self.rooms.get(room) else {
            return Vec::new();
        };
        room.members
            .iter()
            .filter_map(|id| self.peers.get(id)?.name.clone())
            .collect()
    }

    /// Whether a match for `(key, players)` is open (waiting for players).
    pub fn has_open_match(&self, key: &str, players: usize) -> bool {
        self.open_matches.contains_key(&(key.to_owned(), players))
    }

    /// Number of open matches waiting for players.
    pub fn open_match_count(&self) -> usize {
        self.open_matches.len()
    }

    /// Adds a peer to a room, or says why it may not join.
    pub fn join(
        &mut self,
        request: JoinRequest,
        now: Instant,
    ) -> Result<(Seat, Effects), ProtocolError> {
        self.check_capacity(request.ip)?;
        if !self.throttles.joins_by_ip.try_take(&request.ip, now) {
            return Err(throttled(
                "joins from your address are over joins_per_ip_per_second",
            ));
        }
        let room_name = self.place_looked_up(&request, now)?;
        let room = self.rooms.get(&room_name);
        if let Some(name) = &request.name {
            if room.is_some_and(|r| r.names.contains_key(name)) {
                return Err(error(
                    ErrorCode::NameTaken,
                    format!("the name {name:?} is taken in room {room_name:?}"),
                ));
            }
        }
        let mut effects = Effects::default();
        let room = self
            .rooms
            .get_mut(&room_name)
            .ok_or_else(|| error(ErrorCode::NoSuchRoom, "room vanished"))?;
        let id = request.id;
        let peers = if room.options.directory {
            Vec::new()
        } else {
            // With host-only presence a newcomer meets the host and only the host hears of it.
            let (known, told) = match (room.options.host_only, room.host) {
                (true, Some(host)) => (vec![host], vec![host]),
                _ => (room.members.clone(), room.members.clone()),
            };
            let peers = known
                .iter()
                .filter_map(|other| self.peers.get(other).map(|p| info(*other, p)))
                .collect();
            effects.deliver(
                told,
                ServerMessage::PeerJoined(PeerInfo {
                    id,
                    name: request.name.clone(),
                    resumable: request.token.is_some(),
                }),
            );
            room.host.get_or_insert(id);
            peers
        };
        room.members.push(id);
        effects.changed.push(room_name.clone());
        if let Some(name) = &request.name {
            room.names.insert(name.clone(), id);
        }
        if room.open_match.is_some() && room.is_full() {
            if let Some(key) = room.open_match.take() {
                self.open_matches.remove(&key);
            }
            room.started = true;
            effects.deliver(room.members.clone(), ServerMessage::RoomStarted);
        }
        let seat_info = room.info();
        *self.per_ip.entry(request.ip).or_insert(0) += 1;
        if let Some(token) = request.token {
            self.tokens.insert(token, id);
        }
        self.peers.insert(
            id,
            Peer {
                room: room_name.clone(),
                name: request.name.clone(),
                ip: request.ip,
                bucket: TokenBucket::full(self.limits.message_burst, now),
                throttled: false,
                token: request.token,
                link: Link::Attached { conn: request.conn },
            },
        );
        self.relist(&room_name);
        let seat = Seat {
            id,
            room: room_name,
            name: request.name,
            peers,
            info: seat_info,
            token: request.token,
        };
        Ok((seat, effects))
    }

    /// Gives a peer its place back: same id, same room, no leave or join for the room. Works
    /// while the peer is suspended, detached, or even still attached (its old connection is
    /// closed with `replaced`).
    pub fn resume(&mut self, request: ResumeRequest) -> Result<(Seat, Effects), ProtocolError> {
        let refused = || {
            error(
                ErrorCode::ResumeFailed,
                "unknown or expired resume token: join again",
            )
        };
        let id = *self.tokens.get(&request.token).ok_or_else(refused)?;
        let peer = self.peers.get(&id).ok_or_else(refused)?;
        // A refused resume leaves the place and its token as they were.
        if request.name.is_some() && request.name != peer.name {
            return Err(error(
                ErrorCode::Forbidden,
                "your token names another user than the peer you resume",
            ));
        }
        request.permits.check_room(&peer.room)?;
        self.tokens.remove(&request.token);
        let peer = self.peers.get_mut(&id).ok_or_else(refused)?;
        let mut effects = Effects::default();
        match peer.link {
            Link::Attached { conn } => effects.closes.push(Close {
                peer: id,
                conn,
                reason: CloseReason::Error(error(
                    ErrorCode::Replaced,
                    "this peer resumed on another connection",
                )),
            }),
            Link::Suspended { until } | Link::Detached { until } => {
                self.deadlines.remove(&(until, id));
            }
        }
        peer.link = Link::Attached { conn: request.conn };
        peer.token = Some(request.next_token);
        let (room_name, name) = (peer.room.clone(), peer.name.clone());
        effects.changed.push(room_name.clone());
        self.tokens.insert(request.next_token, id);
        self.relist(&room_name);
        let room = self.rooms.get(&room_name).ok_or_else(refused)?;
        let peers = if room.options.directory {
            Vec::new()
        } else {
            room.members
                .iter()
                .filter(|other| **other != id)
                .filter(|other| {
                    !room.options.host_only || room.host == Some(id) || room.host == Some(**other)
                })
                .filter_map(|other| self.peers.get(other).map(|p| info(*other, p)))
                .collect()
        };
        let seat = Seat {
            id,
            room: room_name,
            name,
            peers,
            info: room.info(),
            token: Some(request.next_token),
        };
        Ok((seat, effects))
    }

    /// A connection ended. An explicit leave (`may_suspend` false) removes the peer; a lost
    /// connection of a resumable peer suspends it for the resume grace period. A connection that
    /// is no longer the peer's (resumed elsewhere, detached, kicked) changes nothing.
    pub fn disconnect(
        &mut self,
        id: PeerId,
        conn: u64,
        reason: LeaveReason,
        may_suspend: bool,
        now: Instant,
    ) -> Effects {
        let mut effects = Effects::default();
        let Some(peer) = self.peers.get_mut(&id) else {
            return effects;
        };
        if peer.link != (Link::Attached { conn }) {
            return effects;
        }
        if may_suspend && peer.token.is_some() {
            let until = now + self.limits.resume_grace;
            peer.link = Link::Suspended { until };
            self.deadlines.insert((until, id));
            effects.new_deadline = true;
            return effects;
        }
        self.remove(id, reason, &mut effects);
        effects
    }

    /// The earliest deadline of a suspended or detached peer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Removes the suspended and detached peers whose time is up.
    pub fn expire_due(&mut self, now: Instant) -> Effects {
        let mut effects = Effects::default();
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            let reason = match self.peers.get(&id).map(|p| p.link) {
                Some(Link::Suspended { until }) if until == at => LeaveReason::Timeout,
                Some(Link::Detached { until }) if until == at => LeaveReason::Gone,
                _ => continue,
            };
            self.remove(id, reason, &mut effects);
        }
        effects
    }

    /// Public rooms that someone in them can answer, newest first: at most `limit`, older than
    /// the cursor `before` if given (`open_only`: not full, not started). Returns them and the
    /// cursor of the next page, if there may be one. Costs what it returns, plus the rooms it
    /// skips as full or started.
    pub fn public_rooms(
        &self,
        open_only: bool,
        limit: usize,
        before: Option<u64>,
    ) -> (Vec<Listing>, Option<u64>) {
        let mut listed = Vec::new();
        let mut next = None;
        for (seq, name) in self.public.newest(before) {
            let Some(room) = self.rooms.get(name) else {
                continue;
            };
            if open_only && (room.is_full() || room.started) {
                continue;
            }
            if listed.len() == limit {
                break;
            }
            listed.push(Listing {
                room: name.to_owned(),
                players: room.members.len(),
                info: room.info(),
            });
            next = Some(seq);
        }
        if listed.len() < limit {
            next = None;
        }
        (listed, next)
    }

    /// The room as `/rooms` lists it, when it is public and shown now.
    pub fn listing(&self, name: &str) -> Option<Listing> {
        if !self.public.is_shown(name) {
            return None;
        }
        let room = self.rooms.get(name)?;
        Some(Listing {
            room: name.to_owned(),
            players: room.members.len(),
            info: room.info(),
        })
    }

    /// Takes one message's worth of the peer's `messages_per_second` budget, for a message the
    /// shell acts on itself (a PeerJS message held for an absent id, a push action). `Err` holds
    /// what to deliver instead (the first drop of a run is answered with `rate_limited`); a
    /// connection that is no longer the peer's gets `Err` with nothing to deliver.
    pub fn charge(&mut self, from: PeerId, conn: u64, now: Instant) -> Result<(), Effects> {
        let mut effects = Effects::default();
        let limits = &self.limits;
        let Some(peer) = self.peers.get_mut(&from) else {
            return Err(effects);
        };
        if peer.link != (Link::Attached { conn }) {
            return Err(effects);
        }
        if !peer
            .bucket
            .try_take(limits.messages_per_second, limits.message_burst, now)
        {
            if !peer.throttled {
                effects.error(
                    from,
                    error(
                        ErrorCode::RateLimited,
                        format!(
                            "over {} messages/s (burst {}): messages are dropped until the rate falls",
                            limits.messages_per_second, limits.message_burst
                        ),
                    ),
                );
            }
            peer.throttled = true;
            return Err(effects);
        }
        peer.throttled = false;
        Ok(())
    }

    /// A signal to everyone in the sender's room, the sender too (rustysignal's `one-to-all`),
    /// as one message.
    pub fn signal_everyone(
        &mut self,
        from: PeerId,
        conn: u64,
        data: Payload,
        now: Instant,
    ) -> Effects {
        if let Err(effects) = self.charge(from, conn, now) {
            return effects;
        }
        let mut effects = Effects::default();
        match self.broadcast_recipients(from, now) {
            Ok(mut to) => {
                to.push(from);
                effects.deliver(to, ServerMessage::Signal { from, data });
            }
            Err(error) => effects.error(from, error),
        }
        effects
    }

    /// Everyone else in the sender's room; in a directory, within its broadcast budget.
    fn broadcast_recipients(
        &mut self,
        from: PeerId,
        now: Instant,
    ) -> Result<Vec<PeerId>, ProtocolError> {
        let (rate, burst) = self.limits.directory_broadcasts;
        let room = self
            .peers
            .get(&from)
            .and_then(|p| self.rooms.get_mut(&p.room));
        let Some(room) = room else {
            return Ok(Vec::new());
        };
        if room.options.directory {
            let bucket = room
                .broadcasts
                .get_or_insert_with(|| TokenBucket::full(burst, now));
            if !bucket.try_take_amount(rate, burst, 1.0, now) {
                return Err(error(
                    ErrorCode::RateLimited,
                    format!("messages to everyone here are over directory_broadcasts_per_second ({rate})"),
                ));
            }
        }
        Ok(room
            .members
            .iter()
            .copied()
            .filter(|m| *m != from)
            .collect())
    }

    /// Handles one decoded message from a connected peer.
    pub fn handle(
        &mut self,
        from: PeerId,
        conn: u64,
        message: ClientMessage,
        now: Instant,
    ) -> Effects {
        if let Err(effects) = self.charge(from, conn, now) {
            return effects;
        }
        let mut effects = Effects::default();
        let (to, message) = match message {
            ClientMessage::Ping { nonce } => {
                effects.deliver(vec![from], ServerMessage::Pong { nonce });
                return effects;
            }
            ClientMessage::Message { to, data } => (to, ServerMessage::Message { from, data }),
            ClientMessage::Signal { to, data } => (to, ServerMessage::Signal { from, data }),
            ClientMessage::Kick { peer } => {
                self.kick(from, peer, &mut effects);
                return effects;
            }
            ClientMessage::SetMeta { meta } => {
                self.set_meta(from, meta, &mut effects);
                return effects;
            }
            ClientMessage::Detach => {
                let until = now + self.limits.detached_ttl;
                if let Some(peer) = self.peers.get_mut(&from) {
                    peer.link = Link::Detached { until };
                    let room = peer.room.clone();
                    self.relist(&room);
                    effects.changed.push(room);
                }
                self.deadlines.insert((until, from));
                effects.new_deadline = true;
                effects.closes.push(Close {
                    peer: from,
                    conn,
                    reason: CloseReason::Detached,
                });
                return effects;
            }
            // Web Push is the shell's (`crate::push`); it never reaches the core.
            ClientMessage::PushSubscribe { .. }
            | ClientMessage::PushUnsubscribe
            | ClientMessage::ConnectionRequest { .. } => return effects,
            ClientMessage::Gone { peer } => {
                let same_room = self.peers.get(&peer).is_some_and(|p| {
                    matches!(p.link, Link::Detached { .. })
                        && Some(&p.room) == self.peers.get(&from).map(|f| &f.room)
                });
                if same_room {
                    self.remove(peer, LeaveReason::Gone, &mut effects);
                }
                return effects;
            }
        };
        let directory_broadcast = to == Target::Room
            && self
                .peers
                .get(&from)
                .and_then(|p| self.rooms.get(&p.room))
                .is_some_and(|r| r.options.directory);
        let recipients = if directory_broadcast {
            self.broadcast_recipients(from, now)
        } else {
            self.recipients(from, &to)
        };
        match recipients {
            Ok(to) => effects.deliver(to, message),
            Err(error) => effects.error(from, error),
        }
        effects
    }

    /// Whether a resume token holds a place (a claim that will resume, not join).
    pub fn holds_token(&self, token: u128) -> bool {
        self.tokens.contains_key(&token)
    }

    /// Whether a new peer from `ip` fits under `max_connections` and `max_connections_per_ip`
    /// (checked again at join; the shell also asks before the WebSocket upgrade).
    pub fn check_capacity(&self, ip: IpAddr) -> Result<(), ProtocolError> {
        if self.peers.len() >= self.limits.max_connections {
            return Err(error(
                ErrorCode::TooManyConnections,
                format!(
                    "the server has reached max_connections ({})",
                    self.limits.max_connections
                ),
            ));
        }
        if self.per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.max_connections_per_ip {
            return Err(error(
                ErrorCode::TooManyConnections,
                format!(
                    "your address has reached max_connections_per_ip ({})",
                    self.limits.max_connections_per_ip
                ),
            ));
        }
        Ok(())
    }

    fn kick(&mut self, from: PeerId, target: PeerId, effects: &mut Effects) {
        let Some(room_name) = self.peers.get(&from).map(|p| p.room.clone()) else {
            return;
        };
        if self.rooms.get(&room_name).and_then(|r| r.host) != Some(from) {
            effects.error(from, error(ErrorCode::NotHost, "only the host may kick"));
            return;
        }
        let target_link = match self.peers.get(&target) {
            Some(peer) if peer.room == room_name && target != from => peer.link,
            _ => {
                effects.error(
                    from,
                    error(
                        ErrorCode::UnknownPeer,
                        format!("no other peer {target} in your room"),
                    ),
                );
                return;
            }
        };
        effects.close_with_error(
            target,
            target_link,
            ErrorCode::Kicked,
            "the host removed you from the room",
        );
        self.remove(target, LeaveReason::Kicked, effects);
    }

    fn set_meta(&mut self, from: PeerId, meta: Payload, effects: &mut Effects) {
        let Some(room_name) = self.peers.get(&from).map(|p| p.room.clone()) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(&room_name) else {
            return;
        };
        if room.host != Some(from) {
            effects.error(
                from,
                error(
                    ErrorCode::NotHost,
                    "only the host may change the room's metadata",
                ),
            );
            return;
        }
        if let Err(why) = check_meta(&meta, self.limits.max_room_meta_bytes) {
            effects.error(from, error(ErrorCode::InvalidMessage, why));
            return;
        }
        room.options.meta = Some(meta.clone());
        effects.changed.push(room_name.clone());
        let others = room
            .members
            .iter()
            .copied()
            .filter(|m| *m != from)
            .collect();
        effects.deliver(others, ServerMessage::RoomUpdated { meta });
    }

    fn recipients(&self, from: PeerId, target: &Target) -> Result<Vec<PeerId>, ProtocolError> {
        let room_name = self
            .peers
            .get(&from)
            .map(|p| p.room.as_str())
            .unwrap_or_default();
        let room = self.rooms.get(room_name);
        // With host-only presence a client reaches the host and nobody else.
        let host_only_client = room
            .filter(|r| r.options.host_only && r.host != Some(from))
            .map(|r| r.host);
        let reachable = |id: &PeerId| host_only_client.is_none_or(|host| host == Some(*id));
        match target {
            Target::Myself => Ok(vec![from]),
            Target::Room => Ok(room
                .map(|r| {
                    r.members
                        .iter()
                        .copied()
                        .filter(|m| *m != from && reachable(m))
                        .collect()
                })
                .unwrap_or_default()),
            Target::Peer(id) => match self.peers.get(id) {
                Some(peer) if peer.room == room_name && reachable(id) => Ok(vec![*id]),
                _ => Err(error(
                    ErrorCode::UnknownPeer,
                    format!("no peer {id} in your room"),
                )),
            },
            Target::Name(name) => room
                .and_then(|r| r.names.get(name))
                .filter(|id| reachable(id))
                .map(|id| vec![*id])
                .ok_or_else(|| {
                    error(
                        ErrorCode::UnknownName,
                        format!("no peer named {name:?} in your room"),
                    )
                }),
        }
    }
}

fn info(id: PeerId, peer: &Peer) -> PeerInfo {
    PeerInfo {
        id,
        name: peer.name.clone(),
        resumable: peer.token.is_some(),
    }
}

/// Room metadata must be a JSON object (a map) of at most `max_bytes` bytes as JSON.
pub fn check_meta(meta: &Payload, max_bytes: usize) -> Result<(), String> {
    let json = serde_json::to_string(meta)
        .map_err(|e| format!("metadata cannot be written as JSON: {e}"))?;
    if !json.starts_with('{') {
        return Err("metadata must be an object".into());
    }
    if json.len() > max_bytes {
        return Err(format!(
            "metadata is {} bytes as JSON, over max_room_meta_bytes ({max_bytes})",
            json.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
