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
}

/// A peer as other peers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The peer's id.
    pub id: PeerId,
    /// The peer's user name, if it chose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
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
}

/// A message from the hub to a peer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Sent once, first.
    Welcome(Welcome),
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
    /// Something you sent was refused, or the connection is about to close.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// Explanation for humans.
        message: String,
    },
}
