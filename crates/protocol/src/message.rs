//! The messages of protocol v1.

use serde::{Deserialize, Serialize};

use crate::{ErrorCode, Payload, PeerId};

/// Who a relayed message goes to. A peer only ever reaches peers of its own room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Every other peer in the room (not the sender). Wire form: `"room"`.
    Room,
    /// The sender itself (echo). Wire form: `"self"`.
    #[serde(rename = "self")]
    Myself,
    /// One peer, by id. Wire form: `{"peer": "<id>"}`.
    Peer(PeerId),
    /// One peer, by user name. Wire form: `{"name": "<name>"}`.
    Name(String),
}

/// A message from a peer to the hub.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Application data to relay; recipients get [`ServerMessage::Message`].
    Message {
        /// Recipients.
        to: Target,
        /// The data, relayed unchanged.
        data: Payload,
    },
    /// A WebRTC signal (offer, answer, ICE candidate) to relay; recipients get
    /// [`ServerMessage::Signal`]. The hub treats it exactly like `message`; the separate type
    /// lets clients keep connection plumbing apart from game data.
    Signal {
        /// Recipients.
        to: Target,
        /// The signal, relayed unchanged.
        data: Payload,
    },
    /// An application-level ping (browsers cannot send WebSocket pings); answered with
    /// [`ServerMessage::Pong`] carrying the same nonce.
    Ping {
        /// Echoed back in the pong.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<u64>,
    },
    /// Host only: remove a peer from the room (it is closed with `kicked`; the room hears
    /// `peer_left` with reason `kicked`).
    Kick {
        /// Who.
        peer: PeerId,
    },
    /// Host only: replace the room's public metadata (a JSON object); the room hears
    /// `room_updated`.
    SetMeta {
        /// The new metadata.
        meta: Payload,
    },
    /// Close-after-connect: stay a member of the room without a connection. The server closes
    /// this connection; the room keeps the peer until another peer reports it `gone`, it resumes,
    /// or `detached_ttl_ms` passes.
    Detach,
    /// Report that a detached peer's data channels closed: the server removes it.
    Gone {
        /// The detached peer.
        peer: PeerId,
    },
    /// Web Push: store this browser push subscription (`PushSubscription.toJSON()`) under the
    /// sender's user name in its room, for connection requests while it is away.
    PushSubscribe {
        /// `{endpoint, keys: {p256dh, auth}}`.
        subscription: Payload,
    },
    /// Web Push: forget the sender's push subscription.
    PushUnsubscribe,
    /// Web Push: ask the user `name` of this room, who is not connected, to connect: the server
    /// pushes to its subscription who asks and where.
    ConnectionRequest {
        /// The user name.
        name: String,
    },
}

/// How peers of a room connect to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    /// Everyone connects to everyone.
    #[default]
    Mesh,
    /// Clients connect only to the host.
    Star,
}

/// What happens when the host leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostLeaves {
    /// The oldest remaining peer becomes host (`host_changed`).
    #[default]
    Migrate,
    /// The room closes: everyone is closed with `room_closed`.
    Close,
}

/// How a room came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// A room whose name the peers chose.
    #[default]
    Named,
    /// A room with a short code drawn by the server.
    Code,
    /// A one-to-one session with a 128-bit id drawn by the server.
    Session,
    /// An auto-matched room.
    Match,
}

/// A room's settings and state, in `welcome` and in the public room list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// How the room came to be.
    pub kind: RoomKind,
    /// How peers connect.
    pub topology: Topology,
    /// Most peers in the room.
    pub capacity: usize,
    /// The host: the peer that created the room, or the one that took over. `None` only in an
    /// empty listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<PeerId>,
    /// What happens when the host leaves.
    pub host_leaves: HostLeaves,
    /// Whether the room is in the public list.
    pub public: bool,
    /// Application metadata (a JSON object), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Payload>,
    /// For matches: the room is full and started; nobody else joins.
    #[serde(default, skip_serializing_if = "is_false")]
    pub started: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A peer as other peers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The peer's id.
    pub id: PeerId,
    /// The peer's user name, if it chose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The peer may come back with the same id after its connection drops (within the resume
    /// grace period): a dropped data channel to it is not yet a leave.
    #[serde(default, skip_serializing_if = "is_false")]
    pub resumable: bool,
}

/// An ICE server entry, in the shape of the browser's `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:` or `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The first message on every connection: who you are and who is already here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// The protocol version the server speaks on this connection.
    pub version: u32,
    /// Your id, assigned by the server.
    pub id: PeerId,
    /// The room you joined.
    pub room: String,
    /// Your user name, if you asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The peers already in the room, oldest first.
    pub peers: Vec<PeerInfo>,
    /// ICE servers to configure `RTCPeerConnection` with.
    pub ice_servers: Vec<IceServer>,
    /// How often the server pings, in milliseconds.
    pub heartbeat_ms: u64,
    /// After this many milliseconds without hearing from you, the server closes the connection.
    pub idle_timeout_ms: u64,
    /// The largest frame the server accepts, in bytes.
    pub max_message_bytes: usize,
    /// How long a resumable peer whose connection broke stays suspended (and can resume with its
    /// token), in milliseconds.
    pub resume_grace_ms: u64,
    /// How long a detached peer (close-after-connect) stays in the room unless reported `gone`,
    /// in milliseconds.
    pub detached_ttl_ms: u64,
    /// The room's settings, host and state.
    pub room_info: RoomInfo,
    /// Present when you asked to be resumable: reconnect with `?resume=<token>` to keep your id.
    /// Secret; valid once (each resume hands out a new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_token: Option<String>,
    /// This connection resumed an earlier one: same id, the room saw no leave or join.
    #[serde(default, skip_serializing_if = "is_false")]
    pub resumed: bool,
}

/// Why a peer left the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// The peer closed its connection, or the connection broke.
    Closed,
    /// The peer was silent longer than the idle timeout.
    Timeout,
    /// The server closed the peer for reading too slowly.
    SlowReader,
    /// The server is shutting down.
    Shutdown,
    /// The host removed the peer.
    Kicked,
    /// The peer had detached and another peer reported it gone, or `detached_ttl_ms` passed.
    Gone,
}

/// A message from the hub to a peer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Sent once, first.
    Welcome(Box<Welcome>),
    /// Another peer joined your room.
    PeerJoined(PeerInfo),
    /// A peer left your room.
    PeerLeft {
        /// Who left.
        id: PeerId,
        /// Why.
        reason: LeaveReason,
    },
    /// Application data relayed from `from`.
    Message {
        /// The sender, stamped by the server.
        from: PeerId,
        /// The data as the sender sent it.
        data: Payload,
    },
    /// A WebRTC signal relayed from `from`.
    Signal {
        /// The sender, stamped by the server.
        from: PeerId,
        /// The signal as the sender sent it.
        data: Payload,
    },
    /// Answer to a ping.
    Pong {
        /// The nonce of the ping.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<u64>,
    },
    /// The room has a new host (the previous one left).
    HostChanged {
        /// The new host.
        host: PeerId,
    },
    /// An auto-matched room is full: the match starts, nobody else joins.
    RoomStarted,
    /// The host changed the room's metadata.
    RoomUpdated {
        /// The new metadata.
        meta: Payload,
    },
    /// Fresh ICE servers (new TURN credentials before the old ones expire): use them from now on,
    /// for connections already open too (`setConfiguration`).
    IceServers {
        /// The ICE servers, as in `welcome`.
        ice_servers: Vec<IceServer>,
    },
    /// Something you sent was refused, or the connection is about to close.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// Explanation for humans.
        message: String,
    },
}
