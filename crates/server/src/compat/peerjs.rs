//! peerjs-server's protocol (as the `peerjs` npm client 1.5 speaks it), so unmodified PeerJS
//! clients connect at `/peerjs` on the hub. Pure translation both ways; the hub core routes.
//!
//! A PeerJS key is a directory (`RoomOptions::directory`) named `peerjs:<key>`: no presence, one
//! user name per PeerJS id. Peers send `{"type": "OFFER" | "ANSWER" | "CANDIDATE" | "LEAVE" |
//! "EXPIRE", "dst": "<id>", "payload": ...}` and `{"type": "HEARTBEAT"}`; the server adds
//! `"src"` (the sender's own id: it cannot be spoofed) and hands the message on as it came. The
//! server sends `{"type": "OPEN"}` once registered, `ID-TAKEN` or `ERROR` (each followed by a
//! close) and `EXPIRE` for messages held for an absent id that nobody came for.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use switchboard_protocol::{validate_user_name, ErrorCode, Payload, ProtocolError, ServerMessage};

/// The hub directory of a PeerJS key. `:` cannot occur in a room name a native client asks for,
/// so native peers cannot enter it.
pub fn hub_room(key: &str) -> String {
    format!("peerjs:{key}")
}

/// The hub resume token of a PeerJS peer: its key, id and the client's own token, hashed. A
/// client that comes back with the same id and token (PeerJS's reconnect) takes its place back;
/// another token for a taken id gets `ID-TAKEN`.
pub fn claim_token(key: &str, id: &str, token: &str) -> u128 {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [key, id, token] {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part.as_bytes());
    }
    let digest = context.finish();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest.as_ref()[..16]);
    u128::from_le_bytes(first)
}

/// A fresh id for `GET /peerjs/{key}/id`: a random version 4 UUID, as peerjs-server hands out.
pub fn random_id(bits: u128) -> String {
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A message for another PeerJS peer, with the sender's id filled in.
#[derive(Debug)]
pub struct Relay {
    /// The id it is for.
    pub dst: String,
    /// `LEAVE` and `EXPIRE` for an absent id are dropped; the other types are held for it.
    pub hold: bool,
    /// The whole message as the recipient gets it.
    pub message: Payload,
}

/// A decoded PeerJS request.
#[derive(Debug)]
pub enum Request {
    /// `HEARTBEAT`: being heard is all it does.
    Heartbeat,
    /// A message for another peer.
    Relay(Relay),
}

#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    dst: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    payload: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Outgoing<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    src: &'a str,
    dst: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a RawValue>,
}

fn invalid(why: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidMessage, why)
}

/// Decodes a text frame from the peer whose id is `own_id`.
pub fn decode_request(text: &str, own_id: &str) -> Result<Request, ProtocolError> {
    let incoming: Incoming = serde_json::from_str(text).map_err(|e| {
        let code = if e.is_data() {
            ErrorCode::InvalidMessage
        } else {
            ErrorCode::Malformed
        };
        ProtocolError::new(code, format!("not a PeerJS message: {e}"))
    })?;
    let hold = match incoming.kind.as_ref() {
        "HEARTBEAT" => return Ok(Request::Heartbeat),
        "OFFER" | "ANSWER" | "CANDIDATE" => true,
        "LEAVE" | "EXPIRE" => false,
        other => return Err(invalid(format!("unknown PeerJS message type {other:?}"))),
    };
    let dst = incoming
        .dst
        .ok_or_else(|| invalid(format!("{} without dst", incoming.kind)))?;
    validate_user_name(&dst).map_err(|why| invalid(format!("dst {why}")))?;
    let message = serde_json::to_string(&Outgoing {
        kind: &incoming.kind,
        src: own_id,
        dst: &dst,
        payload: incoming.payload,
    })
    .map_err(|e| invalid(e.to_string()))?;
    Ok(Request::Relay(Relay {
        dst: dst.into_owned(),
        hold,
        message: Payload::from_json(&message).map_err(|e| invalid(e.to_string()))?,
    }))
}

/// `{"type":"EXPIRE","src":<about>,"dst":<to>}`: the messages `to` sent `about` were not taken.
pub fn expire_event(about: &str, to: &str) -> String {
    serde_json::json!({ "type": "EXPIRE", "src": about, "dst": to }).to_string()
}

/// The PeerJS event for a hub message, or `None` when PeerJS has none for it. Errors that do not
/// close the connection have none: a PeerJS client treats every `ERROR` as fatal.
pub fn encode_event(message: &ServerMessage) -> Option<Result<String, ProtocolError>> {
    match message {
        ServerMessage::Welcome(_) => Some(Ok(r#"{"type":"OPEN"}"#.to_owned())),
        ServerMessage::Signal { data, .. } => Some(
            data.to_json_string()
                .map_err(|e| ProtocolError::new(ErrorCode::InvalidMessage, e.to_string())),
        ),
        _ => None,
    }
}

/// What a PeerJS client reads before the server closes its connection: `ID-TAKEN` for a taken
/// id, else `ERROR` with the reason.
pub fn closing_event(error: &ProtocolError) -> String {
    let (kind, msg) = match error.code {
        ErrorCode::NameTaken => ("ID-TAKEN", "ID is taken"),
        _ => ("ERROR", error.message.as_str()),
    };
    serde_json::json!({ "type": kind, "payload": { "msg": msg } }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::PeerId;

    fn relay(text: &str) -> Relay {
        match decode_request(text, "me") {
            Ok(Request::Relay(relay)) => relay,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_get_the_senders_id_and_keep_their_payload() {
        let offer = relay(
            r#"{"type":"OFFER","dst":"bob","src":"spoofed","payload":{"sdp":"v=0","connectionId":"dc_1"}}"#,
        );
        assert_eq!(offer.dst, "bob");
        assert!(offer.hold);
        let value: serde_json::Value =
            serde_json::from_str(&offer.message.to_json_string().unwrap()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"type": "OFFER", "src": "me", "dst": "bob", "payload": {"sdp": "v=0", "connectionId": "dc_1"}})
        );
        assert!(!relay(r#"{"type":"LEAVE","dst":"bob"}"#).hold);
        assert!(!relay(r#"{"type":"EXPIRE","dst":"bob"}"#).hold);
        assert!(relay(r#"{"type":"CANDIDATE","dst":"bob","payload":null}"#).hold);
        assert!(matches!(
            decode_request(r#"{"type":"HEARTBEAT"}"#, "me"),
            Ok(Request::Heartbeat)
        ));
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        let cases = [
            ("{", ErrorCode::Malformed),
            ("[]", ErrorCode::InvalidMessage),
            (r#"{"dst":"bob"}"#, ErrorCode::InvalidMessage),
            (r#"{"type":"OPEN","dst":"bob"}"#, ErrorCode::InvalidMessage),
            (r#"{"type":"OFFER"}"#, ErrorCode::InvalidMessage),
            (
                r#"{"type":"OFFER","dst":"b o b"}"#,
                ErrorCode::InvalidMessage,
            ),
            (r#"{"type":"OFFER","dst":""}"#, ErrorCode::InvalidMessage),
            (r#"{"type":7,"dst":"bob"}"#, ErrorCode::InvalidMessage),
        ];
        for (text, code) in cases {
            assert_eq!(
                decode_request(text, "me").map(|_| ()).map_err(|e| e.code),
                Err(code),
                "{text}"
            );
        }
    }

    #[test]
    fn hub_messages_become_peerjs_events() {
        let data = Payload::from_json(r#"{"type":"ANSWER","src":"a","dst":"b"}"#).unwrap();
        let signal = ServerMessage::Signal {
            from: PeerId::from_u128(1),
            data,
        };
        assert_eq!(
            encode_event(&signal).map(|r| r.unwrap()).as_deref(),
            Some(r#"{"type":"ANSWER","src":"a","dst":"b"}"#)
        );
        let pong = ServerMessage::Pong { nonce: None };
        assert!(encode_event(&pong).is_none());
        let taken = ProtocolError::new(ErrorCode::NameTaken, "the name is taken");
        assert_eq!(
            closing_event(&taken),
            r#"{"payload":{"msg":"ID is taken"},"type":"ID-TAKEN"}"#
        );
        assert_eq!(
            expire_event("gone", "me"),
            r#"{"dst":"me","src":"gone","type":"EXPIRE"}"#
        );
    }

    #[test]
    fn claim_tokens_differ_by_key_id_and_token() {
        let base = claim_token("peerjs", "ann", "t0k3n");
        assert_eq!(base, claim_token("peerjs", "ann", "t0k3n"));
        assert_ne!(base, claim_token("peerjs", "ann", "other"));
        assert_ne!(base, claim_token("peerjs", "bob", "t0k3n"));
        assert_ne!(base, claim_token("other", "ann", "t0k3n"));
        // Lengths are part of the hash: moving a character from one part to the next differs.
        assert_ne!(claim_token("ab", "c", "d"), claim_token("a", "bc", "d"));
    }

    #[test]
    fn random_ids_are_version_4_uuids() {
        for bits in [0, u128::MAX, 0x0123_4567_89ab_cdef_0011_2233_4455_6677] {
            let id = random_id(bits);
            assert_eq!(id.len(), 36, "{id}");
            assert_eq!(&id[14..15], "4", "{id}");
            assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
            assert!(validate_user_name(&id).is_ok());
        }
    }
}
