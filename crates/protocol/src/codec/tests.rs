use super::*;
use crate::{HostLeaves, RoomKind, Topology};

fn id(n: u128) -> PeerId {
    PeerId::from_u128(n)
}

fn text(s: &str) -> Frame<'_> {
    Frame::Text(s.as_bytes())
}

#[test]
fn decodes_every_client_message_in_json() {
    let to_peer = format!(
        r#"{{"type":"message","to":{{"peer":"{}"}},"data":{{"x":1}}}}"#,
        id(7)
    );
    assert_eq!(
        decode_client(text(&to_peer), Encoding::Json).unwrap(),
        ClientMessage::Message {
            to: Target::Peer(id(7)),
            data: Payload::from_json(r#"{"x":1}"#).unwrap()
        }
    );
    let signal = r#"{"type":"signal","to":{"name":"bob"},"data":"sdp"}"#;
    assert!(matches!(
        decode_client(text(signal), Encoding::Json).unwrap(),
        ClientMessage::Signal { to: Target::Name(n), .. } if n == "bob"
    ));
    let room = r#"{"type":"message","to":"room","data":null}"#;
    assert_eq!(
        decode_client(text(room), Encoding::Json).unwrap(),
        ClientMessage::Message {
            to: Target::Room,
            data: Payload::from_json("null").unwrap()
        }
    );
    let me = r#"{"type":"message","to":"self","data":[1]}"#;
    assert!(matches!(
        decode_client(text(me), Encoding::Json).unwrap(),
        ClientMessage::Message {
            to: Target::Myself,
            ..
        }
    ));
    assert_eq!(
        decode_client(text(r#"{"type":"ping","nonce":9}"#), Encoding::Json).unwrap(),
        ClientMessage::Ping { nonce: Some(9) }
    );
}

#[test]
fn json_payload_is_kept_verbatim() {
    let raw = r#"{"type":"message","to":"room","data":{"b": [1, 2.5e3, "é"]}}"#;
    let ClientMessage::Message { data, .. } = decode_client(text(raw), Encoding::Json).unwrap()
    else {
        panic!("not a message")
    };
    let out = encode_server(
        &ServerMessage::Message { from: id(1), data },
        Encoding::Json,
    )
    .unwrap();
    let Encoded::Text(out) = out else {
        panic!("json is text")
    };
    let expected = format!(
        r#"{{"type":"message","from":"{}","data":{{"b": [1, 2.5e3, "é"]}}}}"#,
        id(1)
    );
    assert_eq!(out, expected);
}

#[test]
fn client_messages_round_trip_in_both_encodings() {
    let messages = [
        ClientMessage::Message {
            to: Target::Room,
            data: Payload::from_json(r#"{"k":[1,"two",null]}"#).unwrap(),
        },
        ClientMessage::Signal {
            to: Target::Peer(id(42)),
            data: Payload::from_json(r#""candidate""#).unwrap(),
        },
        ClientMessage::Message {
            to: Target::Name("ann".into()),
            data: Payload::from_json("3").unwrap(),
        },
        ClientMessage::Message {
            to: Target::Myself,
            data: Payload::from_json("true").unwrap(),
        },
        ClientMessage::Ping { nonce: Some(5) },
        ClientMessage::Ping { nonce: None },
        ClientMessage::Kick { peer: id(7) },
        ClientMessage::SetMeta {
            meta: Payload::from_json(r#"{"mode":"ctf"}"#).unwrap(),
        },
        ClientMessage::Detach,
        ClientMessage::Gone { peer: id(8) },
    ];
    for encoding in [Encoding::Json, Encoding::MsgPack] {
        for message in &messages {
            let frame = encode_client(message, encoding).unwrap();
            let decoded = decode_client(frame.as_frame(), encoding);
            assert_eq!(&decoded.unwrap(), message, "{encoding:?}");
        }
    }
}

#[test]
fn server_messages_round_trip_in_both_encodings() {
    let messages = [
        ServerMessage::Welcome(Box::new(Welcome {
            version: 1,
            id: id(1),
            room: "r".into(),
            name: Some("me".into()),
            peers: vec![PeerInfo {
                id: id(2),
                name: None,
                resumable: true,
            }],
            ice_servers: vec![IceServer {
                urls: vec!["stun:127.0.0.1:3478".into()],
                username: None,
                credential: None,
            }],
            heartbeat_ms: 5000,
            idle_timeout_ms: 15000,
            max_message_bytes: 65536,
            resume_grace_ms: 10_000,
            detached_ttl_ms: 3_600_000,
            room_info: RoomInfo {
                kind: RoomKind::Match,
                topology: Topology::Star,
                capacity: 4,
                host: Some(id(2)),
                host_leaves: HostLeaves::Close,
                public: true,
                meta: Some(Payload::from_json(r#"{"name":"x"}"#).unwrap()),
                started: true,
            },
            resume_token: Some("00112233445566778899aabbccddeeff".into()),
            resumed: true,
        })),
        ServerMessage::PeerJoined(PeerInfo {
            id: id(3),
            name: Some("x".into()),
            resumable: false,
        }),
        ServerMessage::HostChanged { host: id(3) },
        ServerMessage::RoomStarted,
        ServerMessage::RoomUpdated {
            meta: Payload::from_json(r#"{"round":3}"#).unwrap(),
        },
        ServerMessage::PeerLeft {
            id: id(3),
            reason: LeaveReason::Timeout,
        },
        ServerMessage::Message {
            from: id(4),
            data: Payload::MsgPack(rmpv::Value::Array(vec![1.into(), "x".into()])),
        },
        ServerMessage::Signal {
            from: id(4),
            data: Payload::from_json(r#"{"sdp":"v=0"}"#).unwrap(),
        },
        ServerMessage::Pong { nonce: Some(1) },
        ServerMessage::IceServers {
            ice_servers: vec![IceServer {
                urls: vec!["turn:turn.example:3478?transport=tcp".into()],
                username: Some("1800003600:ann".into()),
                credential: Some("Cr6BV9Y6S/ZFXiZ47vdlFLWYOog=".into()),
            }],
        },
        ServerMessage::Error {
            code: ErrorCode::UnknownPeer,
            message: "nope".into(),
        },
    ];
    for encoding in [Encoding::Json, Encoding::MsgPack] {
        for message in &messages {
            let frame = encode_server(message, encoding).unwrap();
            let decoded = decode_server(frame.as_frame(), encoding);
            assert_eq!(&decoded.unwrap(), message, "{encoding:?}");
        }
    }
}

#[test]
fn msgpack_uses_field_names_and_string_targets() {
    let frame = encode_client(
        &ClientMessage::Message {
            to: Target::Room,
            data: Payload::from_json("1").unwrap(),
        },
        Encoding::MsgPack,
    )
    .unwrap();
    let Encoded::Binary(bytes) = frame else {
        panic!("msgpack is binary")
    };
    let value: rmpv::Value = rmp_serde::from_slice(&bytes).unwrap();
    let map = value.as_map().unwrap();
    let get = |k: &str| {
        map.iter()
            .find(|(key, _)| key.as_str() == Some(k))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("type"), Some(rmpv::Value::from("message")));
    assert_eq!(get("to"), Some(rmpv::Value::from("room")));
}

fn error_code(frame: Frame<'_>, encoding: Encoding) -> ErrorCode {
    decode_client(frame, encoding).unwrap_err().code
}

#[test]
fn classifies_bad_frames() {
    use ErrorCode::*;
    let j = Encoding::Json;
    assert_eq!(error_code(text("{not json"), j), Malformed);
    assert_eq!(error_code(text(""), j), Malformed);
    assert_eq!(error_code(text(r#"{"type":"message"}"#), j), InvalidMessage);
    assert_eq!(error_code(text(r#"{"type":5}"#), j), InvalidMessage);
    assert_eq!(error_code(text(r#"["message"]"#), j), InvalidMessage);
    assert_eq!(error_code(text(r#"{"type":"dance"}"#), j), UnknownType);
    assert_eq!(
        error_code(text(r#"{"type":"message","to":{"peer":"zz"},"data":1}"#), j),
        InvalidMessage
    );
    assert_eq!(
        error_code(text(r#"{"type":"message","to":"everyone","data":1}"#), j),
        InvalidMessage
    );
    assert_eq!(
        error_code(
            text(r#"{"type":"message","to":"room","data":1,"from":"x"}"#),
            j
        ),
        ForbiddenField
    );
    // Not JSON at all, even when the break is inside `data`: malformed, as the docs say.
    assert_eq!(
        error_code(text(r#"{"type":"message","to":"room","data":{"a":[1,2"#), j),
        Malformed
    );
    assert_eq!(
        error_code(text(r#"{"type":"message","to":"room","data":}"#), j),
        Malformed
    );
    // Any `from`, null included, is refused.
    assert_eq!(
        error_code(
            text(r#"{"type":"message","to":"room","data":1,"from":null}"#),
            j
        ),
        ForbiddenField
    );
    assert_eq!(error_code(Frame::Binary(b"\x80"), j), WrongFrameType);
    let m = Encoding::MsgPack;
    let nil_from =
        rmp_serde::to_vec_named(&serde_json::json!({"type": "ping", "from": null})).unwrap();
    assert_eq!(error_code(Frame::Binary(&nil_from), m), ForbiddenField);
    assert_eq!(error_code(text("{}"), m), WrongFrameType);
    assert_eq!(error_code(Frame::Binary(b"\xc1"), m), Malformed);
    assert_eq!(error_code(Frame::Binary(b""), m), Malformed);
    assert_eq!(
        error_code(Frame::Binary(b"\xdf\xff\xff\xff\xff"), m),
        Malformed
    );
    let ping = rmp_serde::to_vec_named(&ClientMessage::Ping { nonce: None }).unwrap();
    let mut trailing = ping.clone();
    trailing.push(0);
    assert_eq!(error_code(Frame::Binary(&trailing), m), Malformed);
    assert!(decode_client(Frame::Binary(&ping), m).is_ok());
    let unknown = rmp_serde::to_vec_named(&serde_json::json!({"type": "dance"})).unwrap();
    assert_eq!(error_code(Frame::Binary(&unknown), m), UnknownType);
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    // JSON payloads are relayed verbatim to JSON peers; converting one for MessagePack peers is
    // depth-limited and fails cleanly.
    let deep = format!(
        r#"{{"type":"message","to":"room","data":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    if let Ok(ClientMessage::Message { data, .. }) = decode_client(text(&deep), Encoding::Json) {
        assert!(data.to_msgpack_value().is_err());
    }
    let mut bytes =
        rmp_serde::to_vec_named(&serde_json::json!({"type": "message", "to": "room"})).unwrap();
    bytes[0] = 0x83; // three entries: add "data" with deep nesting
    bytes.extend(rmp_serde::to_vec("data").unwrap());
    bytes.extend(std::iter::repeat_n(0x91, 100_000));
    bytes.push(0xc0);
    assert!(decode_client(Frame::Binary(&bytes), Encoding::MsgPack).is_err());
}

#[test]
fn relay_fast_path_writes_what_serde_writes() {
    let data = Payload::from_json(r#"{"k":"v\"q","n":[1,2]}"#).unwrap();
    for message in [
        ServerMessage::Message {
            from: id(0xabc),
            data: data.clone(),
        },
        ServerMessage::Signal {
            from: id(u128::MAX),
            data: data.clone(),
        },
    ] {
        let fast = encode_server(&message, Encoding::Json).unwrap();
        let slow = Encoded::Text(serde_json::to_string(&message).unwrap());
        assert_eq!(fast, slow);
    }
}

#[test]
fn msgpack_ping_matches_the_documented_bytes() {
    let Encoded::Binary(bytes) =
        encode_client(&ClientMessage::Ping { nonce: Some(1) }, Encoding::MsgPack).unwrap()
    else {
        panic!("msgpack is binary")
    };
    let documented = [
        0x82, 0xa4, 0x74, 0x79, 0x70, 0x65, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa5, 0x6e, 0x6f, 0x6e,
        0x63, 0x65, 0x01,
    ];
    assert_eq!(bytes, documented, "docs/protocol.md shows these bytes");
}

#[test]
fn the_relay_shape_reads_as_the_envelope_does_and_only_that_shape_is_taken() {
    let peer = id(0x0123_4567_89ab_cdef_0011_2233_4455_6677).to_string();
    let targets = [
        format!(r#"{{"peer":"{peer}"}}"#),
        r#""room""#.to_owned(),
        r#""self""#.to_owned(),
        // Not the fast shape (names, an uppercase id, a short id): the envelope reads them.
        r#"{"name":"ann"}"#.to_owned(),
        format!(r#"{{"peer":"{}"}}"#, peer.to_uppercase()),
        r#"{"peer":"0123"}"#.to_owned(),
    ];
    let datas = [
        r#"{"s":1,"n":2,"t":3}"#,
        "null",
        r#""a \"quoted\" }""#,
        r#"[1,{"x":[]}]"#,
        " 1 ",
        "1,\"from\":\"x\"",
        "{",
        "1}",
        "",
        r#"{"k":"v"},"data":2"#,
    ];
    let mut fast = 0;
    for kind in ["message", "signal", "ping"] {
        for to in &targets {
            for data in datas {
                for frame in [
                    format!(r#"{{"type":"{kind}","to":{to},"data":{data}}}"#),
                    format!(r#"{{"type":"{kind}","to":{to},"data":{data}}} "#),
                    format!(r#"{{ "type":"{kind}","to":{to},"data":{data}}}"#),
                    format!(r#"{{"to":{to},"type":"{kind}","data":{data}}}"#),
                ] {
                    let general = decode_client_envelope(text(&frame), Encoding::Json);
                    if let Some(message) = relayed::relayed(frame.as_bytes()) {
                        fast += 1;
                        assert_eq!(Ok(message), general, "{frame}");
                    }
                    assert_eq!(
                        decode_client(text(&frame), Encoding::Json),
                        general,
                        "{frame}"
                    );
                }
            }
        }
    }
    // message and signal, to a peer, the room or self, the five whole values (" 1 " too).
    assert_eq!(fast, 2 * 3 * 5);
}
