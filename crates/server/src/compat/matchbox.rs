//! matchbox_server's protocol (0.15), so unmodified `matchbox_socket` clients meet on the hub at
//! `/matchbox/{room}` (`?next=N`: auto-match in groups of N). Pure translation both ways; the
//! hub core decides everything, as for native peers.
//!
//! To a peer: `{"IdAssigned": "<uuid>"}` first, then `{"NewPeer": "<uuid>"}` when a peer joins
//! (the peers already there start the WebRTC handshake), `{"PeerLeft": "<uuid>"}` and
//! `{"Signal": {"sender": "<uuid>", "data": ...}}`. From a peer: `{"Signal": {"receiver":
//! "<uuid>", "data": ...}}` and `"KeepAlive"`. Peer ids are the hub's 128-bit ids written as
//! UUIDs. Hub messages matchbox has no word for (pongs, host changes, errors that do not close)
//! are not sent.

use serde::Deserialize;
use serde_json::value::RawValue;
use switchboard_protocol::{
    ClientMessage, ErrorCode, Payload, PeerId, ProtocolError, ServerMessage, Target,
};

/// The hub room of a matchbox room: its own namespace (`:` cannot occur in a native room name),
/// so native rooms of the same name are other rooms and native peers cannot enter.
pub fn hub_room(room: &str) -> String {
    format!("matchbox:{room}")
}

/// The hub room of a matchbox room in the client/server topology: a namespace apart from the
/// full-mesh rooms, whose options are fixed when a room is created.
pub fn client_server_room(room: &str) -> String {
    format!("matchbox-client-server:{room}")
}

/// Appends `id` as matchbox writes peer ids: a hyphenated UUID (8-4-4-4-12 lowercase hex digits), without formatting
/// machinery: this runs once per relayed signal.
fn push_uuid(out: &mut String, id: PeerId) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = id.as_u128();
    for nibble in 0..32 {
        if matches!(nibble, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        let digit = (bits >> (124 - 4 * nibble)) & 0xf;
        out.push(char::from(HEX[digit as usize]));
    }
}

/// `{"<kind>":"<uuid>"}`.
fn id_event(kind: &str, id: PeerId) -> String {
    // Exactly: a frame made from a string with spare capacity is copied once more.
    let mut out = String::with_capacity(kind.len() + 43);
    out.push_str("{\"");
    out.push_str(kind);
    out.push_str("\":\"");
    push_uuid(&mut out, id);
    out.push_str("\"}");
    out
}

const SIGNAL_PREFIX: &str = "{\"Signal\":{\"sender\":\"";

/// `{"Signal":{"sender":"<uuid>","data":<data>}}`, the data copied as it came when it is JSON.
fn signal_event(from: PeerId, data: &Payload) -> Result<String, ProtocolError> {
    let converted;
    let json = match data {
        Payload::Json(raw) => raw.get(),
        other => {
            converted = other
                .to_json_string()
                .map_err(|e| ProtocolError::new(ErrorCode::InvalidMessage, e.to_string()))?;
            converted.as_str()
        }
    };
    // Exactly (see `id_event`): the prefix, the UUID, `","data":`, the data and `}}`.
    let mut out = String::with_capacity(SIGNAL_PREFIX.len() + 36 + 9 + json.len() + 2);
    out.push_str(SIGNAL_PREFIX);
    push_uuid(&mut out, from);
    out.push_str("\",\"data\":");
    out.push_str(json);
    out.push_str("}}");
    Ok(out)
}

/// A UUID (hyphenated or not, any case) as a peer id. Runs once per relayed signal: no
/// allocation.
pub fn parse_uuid(text: &str) -> Option<PeerId> {
    let mut bits: u128 = 0;
    let mut digits = 0;
    for byte in text.bytes().filter(|b| *b != b'-') {
        let digit = char::from(byte).to_digit(16)?;
        digits += 1;
        if digits > 32 {
            return None;
        }
        bits = bits << 4 | u128::from(digit);
    }
    (digits == 32).then_some(PeerId::from_u128(bits))
}

/// The matchbox event for a hub message, or `None` when matchbox has none for it.
pub fn encode_event(message: &ServerMessage) -> Option<Result<String, ProtocolError>> {
    match message {
        ServerMessage::Welcome(welcome) => Some(Ok(id_event("IdAssigned", welcome.id))),
        ServerMessage::PeerJoined(peer) => Some(Ok(id_event("NewPeer", peer.id))),
        ServerMessage::PeerLeft { id, .. } => Some(Ok(id_event("PeerLeft", *id))),
        ServerMessage::Signal { from, data } => Some(signal_event(*from, data)),
        ServerMessage::Message { .. }
        | ServerMessage::Pong { .. }
        | ServerMessage::HostChanged { .. }
        | ServerMessage::RoomStarted
        | ServerMessage::RoomUpdated { .. }
        | ServerMessage::IceServers { .. }
        | ServerMessage::Error { .. } => None,
    }
}

/// A matchbox request: `Signal` to one peer, or `KeepAlive`.
#[derive(Deserialize)]
enum Request<'a> {
    Signal {
        receiver: &'a str,
        /// Kept as the JSON text it came as (parsed once, here).
        data: Box<RawValue>,
    },
    KeepAlive,
}

/// The hub message for a matchbox request; `Ok(None)` for `KeepAlive`.
pub fn decode_request(text: &str) -> Result<Option<ClientMessage>, ProtocolError> {
    let request: Request = serde_json::from_str(text).map_err(|e| {
        let code = if e.is_data() {
            ErrorCode::InvalidMessage
        } else {
            ErrorCode::Malformed
        };
        ProtocolError::new(code, format!("not a matchbox request: {e}"))
    })?;
    match request {
        Request::KeepAlive => Ok(None),
        Request::Signal { receiver, data } => {
            let to = parse_uuid(receiver).ok_or_else(|| {
                ProtocolError::new(ErrorCode::InvalidMessage, "receiver is not a UUID")
            })?;
            Ok(Some(ClientMessage::Signal {
                to: Target::Peer(to),
                data: Payload::Json(data),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(id: PeerId) -> String {
        let mut out = String::new();
        push_uuid(&mut out, id);
        out
    }

    #[test]
    fn events_are_built_at_their_exact_size() {
        let id = PeerId::from_u128(u128::MAX);
        let event = id_event("NewPeer", id);
        assert_eq!(event.len(), event.capacity(), "{event}");
        let data = Payload::from_json(r#"{"IceCandidate":"c"}"#).unwrap();
        let signal = signal_event(id, &data).unwrap();
        assert_eq!(signal.len(), signal.capacity(), "{signal}");
    }

    #[test]
    fn ids_are_uuids_both_ways() {
        let id = PeerId::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(uuid(id), "01234567-89ab-cdef-0011-223344556677");
        assert_eq!(parse_uuid(&uuid(id)), Some(id));
        assert_eq!(parse_uuid("0123456789ABCDEF0011223344556677"), Some(id));
        for bad in [
            "",
            "01234567-89ab-cdef-0011-22334455667",
            "g1234567-89ab-cdef-0011-223344556677",
            "01234567-89ab-cdef-0011-2233445566778",
            "+1234567-89ab-cdef-0011-223344556677",
            "0123456789abcdef00112233445566é",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad}");
        }
    }

    #[test]
    fn requests_become_signals_and_keep_alives_nothing() {
        let signal = r#"{"Signal":{"receiver":"01234567-89ab-cdef-0011-223344556677","data":{"IceCandidate":"c"}}}"#;
        match decode_request(signal) {
            Ok(Some(ClientMessage::Signal { to, data })) => {
                assert_eq!(
                    to,
                    Target::Peer(PeerId::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677))
                );
                assert_eq!(data.to_json_string().unwrap(), r#"{"IceCandidate":"c"}"#);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(decode_request("\"KeepAlive\""), Ok(None)));
        let cases = [
            ("{", ErrorCode::Malformed),
            (
                "{\"Signal\":{\"receiver\":\"nope\",\"data\":1}}",
                ErrorCode::InvalidMessage,
            ),
            ("{\"Other\":1}", ErrorCode::InvalidMessage),
            ("\"KeepAlive\" trailing", ErrorCode::Malformed),
            ("{\"Signal\":{\"data\":1}}", ErrorCode::InvalidMessage),
        ];
        for (text, code) in cases {
            assert_eq!(
                decode_request(text).map(|_| ()).map_err(|e| e.code),
                Err(code),
                "{text}"
            );
        }
    }

    #[test]
    fn hub_messages_become_matchbox_events() {
        let id = PeerId::from_u128(1);
        let text = |m: &ServerMessage| encode_event(m).map(|r| r.unwrap());
        assert_eq!(
            text(&ServerMessage::PeerLeft {
                id,
                reason: switchboard_protocol::LeaveReason::Closed
            }),
            Some(r#"{"PeerLeft":"00000000-0000-0000-0000-000000000001"}"#.to_owned())
        );
        let signal = ServerMessage::Signal {
            from: id,
            data: Payload::from_json(r#"{"Offer":"v=0"}"#).unwrap(),
        };
        let event: serde_json::Value = serde_json::from_str(&text(&signal).unwrap()).unwrap();
        assert_eq!(
            event,
            serde_json::json!({"Signal": {"sender": "00000000-0000-0000-0000-000000000001", "data": {"Offer": "v=0"}}})
        );
        assert_eq!(text(&ServerMessage::Pong { nonce: Some(1) }), None);
        assert_eq!(text(&ServerMessage::RoomStarted), None);
    }
}
