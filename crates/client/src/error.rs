//! The client's error: a stable code (the server's error codes, or the client's own) and a
//! message for humans.

use std::fmt;

/// Something was refused or went wrong. `code` is stable (docs/protocol.md lists the server's;
/// the client adds `invalid_options`, `unknown_channel`, `unknown_peer`, `peer_not_connected`,
/// `message_too_big`, `send_queue_full`, `room_closed`, `connection_failed`, `join_timeout`,
/// `bad_signal`, `channel_mismatch`, `bad_frame`, `bad_server_message`, `webrtc_error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Stable code.
    pub code: String,
    /// Explanation for humans; may change.
    pub message: String,
}

impl Error {
    /// An error with this code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}
