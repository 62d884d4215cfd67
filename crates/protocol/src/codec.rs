//! Frames to messages and back, in either encoding.
//!
//! Decoding goes through a flat "envelope" (every field optional) rather than serde's internally
//! tagged enums: those buffer the whole message, which would defeat the zero-copy JSON payload,
//! and they cannot tell "unknown type" from "wrong field".

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::{
    ClientMessage, ErrorCode, IceServer, LeaveReason, Payload, PeerId, PeerInfo, ProtocolError,
    RoomInfo, ServerMessage, Target, Welcome,
};

/// The two encodings of protocol v1. A connection uses one, chosen when it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// JSON in WebSocket text frames.
    Json,
    /// MessagePack (maps with field names) in WebSocket binary frames.
    MsgPack,
}

impl Encoding {
    /// Parses the name used in `?enc=` and in the subprotocol: `json` or `msgpack`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "json" => Some(Self::Json),
            "msgpack" => Some(Self::MsgPack),
            _ => None,
        }
    }

    /// The name used in `?enc=` and in the subprotocol.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::MsgPack => "msgpack",
        }
    }
}

/// One WebSocket data frame to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A text frame.
    Text(&'a [u8]),
    /// A binary frame.
    Binary(&'a [u8]),
}

/// An encoded message, ready to send as one WebSocket frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoded {
    /// JSON: send as a text frame.
    Text(String),
    /// MessagePack: send as a binary frame.
    Binary(Vec<u8>),
}

impl Encoded {
    /// The frame for decoding (as the receiving end would see it).
    pub fn as_frame(&self) -> Frame<'_> {
        match self {
            Self::Text(text) => Frame::Text(text.as_bytes()),
            Self::Binary(bytes) => Frame::Binary(bytes),
        }
    }
}

/// Decodes a frame a peer sent on a connection that uses `encoding`.
pub fn decode_client(frame: Frame<'_>, encoding: Encoding) -> Result<ClientMessage, ProtocolError> {
    if let (Frame::Text(bytes), Encoding::Json) = (frame, encoding) {
        if let Some(message) = relayed::relayed(bytes) {
            return Ok(message);
        }
    }
    decode_client_envelope(frame, encoding)
}

/// Decodes any client frame through the envelope.
fn decode_client_envelope(
    frame: Frame<'_>,
    encoding: Encoding,
) -> Result<ClientMessage, ProtocolError> {
    let envelope: ClientEnvelope = decode_envelope(frame, encoding)?;
    if envelope.from.is_some() {
        return Err(ProtocolError::new(
            ErrorCode::ForbiddenField,
            "`from` is set by the server; do not send it",
        ));
    }
    let relay = |envelope: ClientEnvelope| -> Result<(Target, Payload), ProtocolError> {
        let to = envelope.to.ok_or_else(|| missing("to"))?;
        let data = envelope.data.ok_or_else(|| missing("data"))?;
        Ok((to, data))
    };
    match envelope.kind.as_ref() {
        "message" => relay(envelope).map(|(to, data)| ClientMessage::Message { to, data }),
        "signal" => relay(envelope).map(|(to, data)| ClientMessage::Signal { to, data }),
        "ping" => Ok(ClientMessage::Ping {
            nonce: envelope.nonce,
        }),
        "kick" => Ok(ClientMessage::Kick {
            peer: envelope.peer.ok_or_else(|| missing("peer"))?,
        }),
        "set_meta" => Ok(ClientMessage::SetMeta {
            meta: envelope.meta.ok_or_else(|| missing("meta"))?,
        }),
        "detach" => Ok(ClientMessage::Detach),
        "gone" => Ok(ClientMessage::Gone {
            peer: envelope.peer.ok_or_else(|| missing("peer"))?,
        }),
        "push_subscribe" => Ok(ClientMessage::PushSubscribe {
            subscription: envelope.subscription.ok_or_else(|| missing("subscription"))?,
        }),
        "push_unsubscribe" => Ok(ClientMessage::PushUnsubscribe),
        "connection_request" => Ok(ClientMessage::ConnectionRequest {
            name: envelope.name.ok_or_else(|| missing("name"))?,
        }),
        other => Err(ProtocolError::new(
            ErrorCode::UnknownType,
            format!(
                "unknown message type {other:?}; expected message, signal, ping, kick, set_meta, detach, gone, push_subscribe, push_unsubscribe or connection_request"
            ),
        )),
    }
}

/// Encodes a message for a peer whose connection uses `encoding`.
pub fn encode_server(
    message: &ServerMessage,
    encoding: Encoding,
) -> Result<Encoded, ProtocolError> {
    if encoding == Encoding::Json {
        if let Some(text) = relayed_json(message) {
            return Ok(Encoded::Text(text));
        }
    }
    encode(message, encoding)
}

/// The JSON of a relayed message or signal, written directly at its exact size: these are
/// nearly every frame a busy server sends, and serde's way through the tagged enum costs more
/// than the copy. The bytes are the ones serde writes (tested).
fn relayed_json(message: &ServerMessage) -> Option<String> {
    let (kind, from, raw) = match message {
        ServerMessage::Message {
            from,
            data: Payload::Json(raw),
        } => ("message", from, raw),
        ServerMessage::Signal {
            from,
            data: Payload::Json(raw),
        } => ("signal", from, raw),
        _ => return None,
    };
    let hex = from.to_hex();
    let from = std::str::from_utf8(&hex).ok()?;
    let data = raw.get();
    let (head, middle, tail) = (r#"{"type":""#, r#"","from":""#, r#"","data":"#);
    let size = head.len() + kind.len() + middle.len() + from.len() + tail.len() + data.len() + 1;
    let mut out = String::with_capacity(size);
    for part in [head, kind, middle, from, tail, data, "}"] {
        out.push_str(part);
    }
    Some(out)
}

/// Encodes a message to send to the hub (for clients).
pub fn encode_client(
    message: &ClientMessage,
    encoding: Encoding,
) -> Result<Encoded, ProtocolError> {
    encode(message, encoding)
}

/// Decodes a frame the hub sent (for clients).
pub fn decode_server(frame: Frame<'_>, encoding: Encoding) -> Result<ServerMessage, ProtocolError> {
    let e: ServerEnvelope = decode_envelope(frame, encoding)?;
    let message = match e.kind.as_ref() {
        "welcome" => ServerMessage::Welcome(Box::new(Welcome {
            version: e.version.ok_or_else(|| missing("version"))?,
            id: e.id.ok_or_else(|| missing("id"))?,
            room: e.room.ok_or_else(|| missing("room"))?,
            name: e.name,
            peers: e.peers.unwrap_or_default(),
            ice_servers: e.ice_servers.unwrap_or_default(),
            heartbeat_ms: e.heartbeat_ms.ok_or_else(|| missing("heartbeat_ms"))?,
            idle_timeout_ms: e
                .idle_timeout_ms
                .ok_or_else(|| missing("idle_timeout_ms"))?,
            max_message_bytes: e
                .max_message_bytes
                .ok_or_else(|| missing("max_message_bytes"))?,
            resume_grace_ms: e
                .resume_grace_ms
                .ok_or_else(|| missing("resume_grace_ms"))?,
            detached_ttl_ms: e
                .detached_ttl_ms
                .ok_or_else(|| missing("detached_ttl_ms"))?,
            room_info: e.room_info.ok_or_else(|| missing("room_info"))?,
            resume_token: e.resume_token,
            resumed: e.resumed.unwrap_or(false),
        })),
        "peer_joined" => ServerMessage::PeerJoined(PeerInfo {
            id: e.id.ok_or_else(|| missing("id"))?,
            name: e.name,
            resumable: e.resumable.unwrap_or(false),
        }),
        "host_changed" => ServerMessage::HostChanged {
            host: e.host.ok_or_else(|| missing("host"))?,
        },
        "room_started" => ServerMessage::RoomStarted,
        "room_updated" => ServerMessage::RoomUpdated {
            meta: e.meta.ok_or_else(|| missing("meta"))?,
        },
        "peer_left" => ServerMessage::PeerLeft {
            id: e.id.ok_or_else(|| missing("id"))?,
            reason: e.reason.ok_or_else(|| missing("reason"))?,
        },
        "message" => ServerMessage::Message {
            from: e.from.ok_or_else(|| missing("from"))?,
            data: e.data.ok_or_else(|| missing("data"))?,
        },
        "signal" => ServerMessage::Signal {
            from: e.from.ok_or_else(|| missing("from"))?,
            data: e.data.ok_or_else(|| missing("data"))?,
        },
        "pong" => ServerMessage::Pong { nonce: e.nonce },
        "ice_servers" => ServerMessage::IceServers {
            ice_servers: e.ice_servers.ok_or_else(|| missing("ice_servers"))?,
        },
        "error" => ServerMessage::Error {
            code: e.code.ok_or_else(|| missing("code"))?,
            message: e.message.unwrap_or_default(),
        },
        other => {
            return Err(ProtocolError::new(
                ErrorCode::UnknownType,
                format!("unknown message type {other:?}"),
            ))
        }
    };
    Ok(message)
}

#[derive(Deserialize)]
struct ClientEnvelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    to: Option<Target>,
    #[serde(default, deserialize_with = "present")]
    data: Option<Payload>,
    nonce: Option<u64>,
    peer: Option<PeerId>,
    #[serde(default, deserialize_with = "present")]
    meta: Option<Payload>,
    #[serde(default, deserialize_with = "present")]
    subscription: Option<Payload>,
    name: Option<String>,
    #[serde(default, deserialize_with = "present_any")]
    from: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ServerEnvelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    version: Option<u32>,
    id: Option<PeerId>,
    room: Option<String>,
    name: Option<String>,
    peers: Option<Vec<PeerInfo>>,
    ice_servers: Option<Vec<IceServer>>,
    heartbeat_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    max_message_bytes: Option<usize>,
    resume_grace_ms: Option<u64>,
    detached_ttl_ms: Option<u64>,
    reason: Option<LeaveReason>,
    from: Option<PeerId>,
    #[serde(default, deserialize_with = "present")]
    data: Option<Payload>,
    nonce: Option<u64>,
    code: Option<ErrorCode>,
    message: Option<String>,
    room_info: Option<RoomInfo>,
    resume_token: Option<String>,
    resumed: Option<bool>,
    resumable: Option<bool>,
    host: Option<PeerId>,
    #[serde(default, deserialize_with = "present")]
    meta: Option<Payload>,
}

/// How deeply MessagePack values may nest (serde_json's own limit is the same).
const MAX_MSGPACK_DEPTH: usize = 128;

/// `Some` whenever the field is present, even when its value is `null` / `nil`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Payload>, D::Error> {
    Payload::deserialize(deserializer).map(Some)
}

/// `Some` whenever the field is present, whatever its value (`null` / `nil` included).
fn present_any<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<IgnoredAny>, D::Error> {
    IgnoredAny::deserialize(deserializer).map(Some)
}

fn missing(field: &str) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::InvalidMessage,
        format!("missing field `{field}`"),
    )
}

fn decode_envelope<'a, T: Deserialize<'a>>(
    frame: Frame<'a>,
    encoding: Encoding,
) -> Result<T, ProtocolError> {
    match (frame, encoding) {
        (Frame::Text(bytes), Encoding::Json) => serde_json::from_slice(bytes).map_err(|e| {
            let code = match e.classify() {
                serde_json::error::Category::Data => ErrorCode::InvalidMessage,
                _ => ErrorCode::Malformed,
            };
            ProtocolError::new(code, e.to_string())
        }),
        (Frame::Binary(bytes), Encoding::MsgPack) => {
            let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
            de.set_max_depth(MAX_MSGPACK_DEPTH);
            let value = T::deserialize(&mut de).map_err(|e| {
                use rmp_serde::decode::Error as E;
                let code = match e {
                    E::TypeMismatch(rmp::Marker::Reserved) => ErrorCode::Malformed,
                    E::Syntax(_) | E::TypeMismatch(_) | E::OutOfRange | E::LengthMismatch(_) => {
                        ErrorCode::InvalidMessage
                    }
                    _ => ErrorCode::Malformed,
                };
                ProtocolError::new(code, e.to_string())
            })?;
            if de.position() != bytes.len() as u64 {
                return Err(ProtocolError::new(
                    ErrorCode::Malformed,
                    "trailing bytes after the MessagePack value",
                ));
            }
            Ok(value)
        }
        (Frame::Text(_), Encoding::MsgPack) => Err(ProtocolError::new(
            ErrorCode::WrongFrameType,
            "this connection uses MessagePack: send binary frames",
        )),
        (Frame::Binary(_), Encoding::Json) => Err(ProtocolError::new(
            ErrorCode::WrongFrameType,
            "this connection uses JSON: send text frames",
        )),
    }
}

fn encode<T: Serialize>(message: &T, encoding: Encoding) -> Result<Encoded, ProtocolError> {
    let unrepresentable = |e: String| {
        ProtocolError::new(
            ErrorCode::InvalidMessage,
            format!("cannot encode as {}: {e}", encoding.name()),
        )
    };
    match encoding {
        Encoding::Json => serde_json::to_string(message)
            .map(Encoded::Text)
            .map_err(|e| unrepresentable(e.to_string())),
        Encoding::MsgPack => rmp_serde::to_vec_named(message)
            .map(Encoded::Binary)
            .map_err(|e| unrepresentable(e.to_string())),
    }
}

mod relayed;
#[cfg(test)]
mod tests;
