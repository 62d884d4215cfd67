//! Stable error codes and the errors of decoding a frame.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code. Clients match on these; the human-readable message
/// next to it may change between releases, the code never does.
///
/// Codes for which [`ErrorCode::close_code`] is `Some` end the connection: the hub sends the
/// `error` message, then closes the WebSocket with that close code and the code as reason.
/// The others are answered with an `error` message and the connection stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON / MessagePack.
    Malformed,
    /// Valid JSON / MessagePack, but not the shape of any message (missing or mistyped field).
    InvalidMessage,
    /// The `type` field names no message this protocol version knows.
    UnknownType,
    /// The message carries a field only the server may set (`from`).
    ForbiddenField,
    /// A text frame on a MessagePack connection, or a binary frame on a JSON connection.
    WrongFrameType,
    /// The target peer id is not in your room (or does not exist).
    UnknownPeer,
    /// No peer in your room has that user name.
    UnknownName,
    /// Over the per-connection message rate: the message was dropped.
    RateLimited,
    /// The client asked for a protocol version this server does not speak.
    UnsupportedVersion,
    /// The client asked for an encoding other than `json` or `msgpack`.
    UnsupportedEncoding,
    /// The room name in the URL is not acceptable.
    InvalidRoom,
    /// The user name is not acceptable.
    InvalidName,
    /// Another peer in the room already has that user name.
    NameTaken,
    /// The room has reached its peer limit.
    RoomFull,
    /// The server or your IP address has reached its connection limit.
    TooManyConnections,
    /// A frame was larger than the server accepts.
    MessageTooBig,
    /// The peer did not read its messages fast enough and its send queue filled up.
    SlowReader,
    /// Nothing was received from the peer within the idle timeout.
    IdleTimeout,
    /// The server is shutting down.
    Shutdown,
    /// Only the room's host may do that (kick, change the room's metadata).
    NotHost,
    /// The room does not exist and the request does not create rooms (a code, a session id,
    /// `create=false`).
    NoSuchRoom,
    /// The resume token is unknown, used already, or its grace period is over.
    ResumeFailed,
    /// The room's host removed you.
    Kicked,
    /// The room was closed (its host left and the room closes then).
    RoomClosed,
    /// A room option in the URL is not acceptable (topology, capacity, players, metadata...).
    InvalidOptions,
    /// The same peer resumed on another connection; this one is closed.
    Replaced,
    /// More WebSocket control frames (pings) than `control_frames_per_second` allows.
    Flooding,
    /// Too many joins from your address or into that room, or too many lookups of room codes
    /// from your address: try again later.
    Throttled,
    /// Auth is on and the token is missing, malformed, expired, not yet valid, for another
    /// audience or badly signed (HTTP 401 before the upgrade; `reason` says which).
    Unauthorized,
    /// The token is valid but does not allow this: another user name, a room outside its
    /// `rooms`, creating a room without `host` (HTTP 403 before the upgrade).
    Forbidden,
    /// Cluster mode: the node that holds your room did not answer in time (it may have just
    /// stopped): connect again.
    Unavailable,
    /// Cluster mode: the node you are connected to is draining (a restart); your room lives on
    /// another node. Connect again, to any node, with your resume token.
    Draining,
}

impl ErrorCode {
    /// The code as it appears on the wire, e.g. `"unknown_peer"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::InvalidMessage => "invalid_message",
            Self::UnknownType => "unknown_type",
            Self::ForbiddenField => "forbidden_field",
            Self::WrongFrameType => "wrong_frame_type",
            Self::UnknownPeer => "unknown_peer",
            Self::UnknownName => "unknown_name",
            Self::RateLimited => "rate_limited",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnsupportedEncoding => "unsupported_encoding",
            Self::InvalidRoom => "invalid_room",
            Self::InvalidName => "invalid_name",
            Self::NameTaken => "name_taken",
            Self::RoomFull => "room_full",
            Self::TooManyConnections => "too_many_connections",
            Self::MessageTooBig => "message_too_big",
            Self::SlowReader => "slow_reader",
            Self::IdleTimeout => "idle_timeout",
            Self::Shutdown => "shutdown",
            Self::NotHost => "not_host",
            Self::NoSuchRoom => "no_such_room",
            Self::ResumeFailed => "resume_failed",
            Self::Kicked => "kicked",
            Self::RoomClosed => "room_closed",
            Self::InvalidOptions => "invalid_options",
            Self::Replaced => "replaced",
            Self::Flooding => "flooding",
            Self::Throttled => "throttled",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::Unavailable => "unavailable",
            Self::Draining => "draining",
        }
    }

    /// The WebSocket close code used when this error ends the connection, or `None` when the
    /// connection stays open.
    pub const fn close_code(self) -> Option<u16> {
        match self {
            Self::Malformed
            | Self::InvalidMessage
            | Self::UnknownType
            | Self::ForbiddenField
            | Self::WrongFrameType
            | Self::UnknownPeer
            | Self::UnknownName
            | Self::RateLimited
            | Self::NotHost => None,
            Self::UnsupportedVersion => Some(4000),
            Self::UnsupportedEncoding => Some(4001),
            Self::InvalidRoom => Some(4002),
            Self::InvalidName => Some(4003),
            Self::NameTaken => Some(4004),
            Self::RoomFull => Some(4005),
            Self::TooManyConnections => Some(4006),
            Self::SlowReader => Some(4007),
            Self::IdleTimeout => Some(4008),
            Self::NoSuchRoom => Some(4009),
            Self::ResumeFailed => Some(4010),
            Self::Kicked => Some(4011),
            Self::RoomClosed => Some(4012),
            Self::InvalidOptions => Some(4013),
            Self::Replaced => Some(4014),
            Self::Flooding => Some(4015),
            Self::Throttled => Some(4016),
            Self::Unauthorized => Some(4017),
            Self::Forbidden => Some(4018),
            Self::Unavailable => Some(1013),
            Self::Draining => Some(1012),
            Self::MessageTooBig => Some(1009),
            Self::Shutdown => Some(1001),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A frame that could not be turned into a message: the code to answer with and a human-readable
/// explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtocolError {
    /// What kind of error this is.
    pub code: ErrorCode,
    /// What exactly was wrong, for a human.
    pub message: String,
}

impl ProtocolError {
    /// An error with this code and explanation.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
