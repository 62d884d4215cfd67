//! What a room reports to the application.

use switchboard_protocol::{Data, Payload, PeerId, PeerInfo};

use crate::Error;

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
