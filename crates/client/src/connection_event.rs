//! What a connection outside a room (to a server peer, or paired) reports, on every target.

use switchboard_protocol::Data;

use crate::Error;

/// How a `Connection` travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebRTC data channels (UDP).
    WebRtc,
    /// The WebSocket fallback: both channels reliable and ordered over TCP.
    WebSocket,
}

/// What a connection reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionEvent {
    /// A whole message from the other side on a channel.
    Message {
        /// The channel's name.
        channel: String,
        /// The message.
        data: Data,
    },
    /// A problem that does not end the connection (a bad frame).
    Error(Error),
    /// The connection is over; nothing follows. `code`: `closed` after `close()`, `goodbye`
    /// (the server closed on purpose, `reason` says why: a kick's reason), `connection_lost`,
    /// `timeout`, or the server's close reason.
    Closed {
        /// Stable code.
        code: String,
        /// For humans.
        reason: String,
    },
}
