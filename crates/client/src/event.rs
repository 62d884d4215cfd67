//! What a room reports to the application, and the data it carries.

use switchboard_protocol::{Payload, PeerId, PeerInfo};

use crate::Error;

/// A message's contents: binary, or text (UTF-8). Browsers see binary as `Uint8Array` and text
/// as `string`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// Bytes.
    Binary(Vec<u8>),
    /// Text.
    Text(String),
}

impl Data {
    /// The bytes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Binary(bytes) => bytes,
            Self::Text(text) => text.as_bytes(),
        }
    }

    /// Whether this is text.
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }
}

impl From<Vec<u8>> for Data {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Binary(bytes)
    }
}

impl From<&[u8]> for Data {
    fn from(bytes: &[u8]) -> Self {
        Self::Binary(bytes.to_vec())
    }
}

impl From<String> for Data {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<&str> for Data {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

/// An event of a room, in the order things happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A peer is in the room (present when you joined, or joined later). Connection follows.
    PeerJoined(PeerInfo),
    /// Every channel to the peer is open: `send` works.
    PeerConnected(PeerInfo),
    /// The connection to a resumable peer dropped; it may come back with new offers (or leave).
    PeerDisconnected(PeerInfo),
    /// A peer is gone, reported once. `reason`: from the hub `closed`, `timeout`, `slow_reader`,
    /// `shutdown`, `kicked`, `gone`; from the connection `disconnected`, `goodbye`,
    /// `connection_failed`, `connection_lost`, `channel_mismatch`.
    PeerLeft {
        /// Who.
        peer: PeerInfo,
        /// Why.
        reason: String,
    },
    /// A whole message from a peer on a channel.
    Message {
        /// The sender.
        peer: PeerId,
        /// The channel's name.
        channel: String,
        /// The message.
        data: Data,
    },
    /// The room has a new host.
    HostChanged(PeerId),
    /// A match is full and starts.
    Started,
    /// The host changed the room's metadata.
    MetaChanged(Payload),
    /// A problem that does not end the room (a refused message, a bad signal...).
    Error {
        /// What.
        error: Error,
        /// The peer it concerns, if any.
        peer: Option<PeerId>,
    },
    /// The room is over for you; no events follow. `code`: `room_closed` after `close()`, else
    /// the server's or the client's error code (`kicked`, `shutdown`, `server_timeout`, ...).
    Closed {
        /// Stable code.
        code: String,
        /// For humans.
        reason: String,
    },
}
