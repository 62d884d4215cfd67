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

/// The hub room of a matchbox room: its own namespace, so native rooms of the same name are
/// other rooms.
pub fn hub_room(room: &str) -> String {
    format!("matchbox.{room}")
}

/// A peer id as matchbox writes it: a hyphenated UUID.
pub fn uuid(id: PeerId) -> String {
    let bits = id.as_u128();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        bits >> 96,
        (bits >> 80) & 0xffff,
        (bits >> 64) & 0xffff,
        (bits >> 48) & 0xffff,
        bits & 0xffff_ffff_ffff
    )
}

/// A UUID (hyphenated or not, any case) as a peer id.
pub fn parse_uuid(text: &str) -> Option<PeerId> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let valid = hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    valid
        .then(|| u128::from_str_radix(&hex, 16).ok())
        .flatten()
        .map(PeerId::from_u128)
}

/// The matchbox event for a hub message, or `None` when matchbox has none for it.
pub fn encode_event(message: &ServerMessage) -> Option<Result<String, ProtocolError>> {
    let json = |value: serde_json::Value| Some(Ok(value.to_string()));
    match message {
        ServerMessage::Welcome(welcome) => {
            json(serde_json::json!({ "IdAssigned": uuid(welcome.id) }))
        }
        ServerMessage::PeerJoined(peer) => json(serde_json::json!({ "NewPeer": uuid(peer.id) })),
        ServerMessage::PeerLeft { id, .. } => json(serde_json::json!({ "PeerLeft": uuid(*id) })),
        ServerMessage::Signal { from, data } => Some(
            data.to_json_string()
                .map(|data| {
                    format!(
                        "{{\"Signal\":{{\"sender\":\"{}\",\"data\":{data}}}}}",
                        uuid(*from)
                    )
                })
                .map_err(|e| ProtocolError::new(ErrorCode::InvalidMessage, e.to_string())),
        ),
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
        #[serde(borrow)]
        data: &'a RawValue,
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
            let data = Payload::from_json(data.get())
                .map_err(|e| ProtocolError::new(ErrorCode::Malformed, e.to_string()))?;
            Ok(Some(ClientMessage::Signal {
                to: Target::Peer(to),
                data,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
