//! Switchboard's own WebSocket layer (RFC 6455, server side): the upgrade, a pure codec and a
//! thin socket shell. It replaces axum's (tungstenite's) on the hub's hot path: one read buffer
//! that hands out messages without copying them, unmasking a word at a time, UTF-8 checked once
//! per message, frames batched into one write. The messages are axum's `Message` values, so the
//! rest of the server and the server peer's WebSocket fallback share one message type. A crate of
//! its own so that the codec can be fuzzed (`fuzz/`, target `ws_decode`) without the server.
//!
//! * `codec`: bytes to messages and back (pure).
//! * `socket`: `WebSocket`, the connection's reads and writes.
//! * `upgrade`: `WebSocketUpgrade`, the HTTP/1.1 upgrade and its refusals.

pub mod codec;
mod socket;
mod upgrade;

/// The messages and close frames the codec reads and writes: axum's.
pub use axum::extract::ws::{CloseFrame, Message};
pub use socket::WebSocket;
pub use upgrade::{Rejection, WebSocketUpgrade};

/// The limits of one WebSocket (from `Limits`: see docs/configuration.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Read buffer kept by an idle connection.
    pub read_buffer_bytes: usize,
    /// Largest read of a busy connection.
    pub busy_read_buffer_bytes: usize,
    /// Bytes of encoded frames that are written together.
    pub write_buffer_bytes: usize,
    /// Most bytes waiting to be written (pongs owed included) before a write fails.
    pub max_write_buffer_bytes: usize,
    /// Largest frame, and largest message, accepted.
    pub max_message_bytes: usize,
}

/// Why a WebSocket failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client broke the protocol (answered with close code 1002).
    #[error("WebSocket protocol error: {0}")]
    Protocol(&'static str),
    /// A text message, or a close reason, that is not UTF-8 (answered with close code 1007).
    #[error("text that is not UTF-8")]
    InvalidUtf8,
    /// A frame or message larger than `max_message_bytes`.
    #[error("a frame or message larger than max_message_bytes")]
    TooBig,
    /// More than `max_write_buffer_bytes` waiting to be written.
    #[error("more unsent data than max_write_buffer_bytes")]
    WriteBufferFull,
    /// The socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Protocol(a), Self::Protocol(b)) => a == b,
            (Self::Io(a), Self::Io(b)) => a.kind() == b.kind(),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl Error {
    /// The RFC 6455 close code and reason for a client that broke the protocol: 1002 (reserved
    /// bits, an unmasked frame, an oversized or fragmented control frame...) or 1007 (text that
    /// is not UTF-8). `None` for the other failures.
    pub fn violation(&self) -> Option<(u16, &'static str)> {
        match self {
            Self::Protocol(_) => Some((1002, "protocol_error")),
            Self::InvalidUtf8 => Some((1007, "invalid_utf8")),
            _ => None,
        }
    }
}
