//! Hostile input: every case gets an error with a stable code or a close with a reason, never a
//! panic, and the bystanders in the room keep receiving everything.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use switchboard_protocol::{
    ClientMessage, Encoding, ErrorCode, Payload, PeerId, ServerMessage, Target,
};
use tokio_tungstenite::tungstenite::Message;

/// A room with a bystander that must see every good message, in order, and nothing else.
struct Witness {
    sender: Client,
    bystander: Client,
    sent: u32,
}

impl Witness {
    async fn new(addr: std::net::SocketAddr, room: &str) -> Witness {
        let sender = Client::join(addr, room, "user=sender").await;
        let bystander = Client::join(addr, room, "user=bystander&enc=msgpack").await;
        Witness {
            sender,
            bystander,
            sent: 0,
        }
    }

    /// One good message from the sender reaches the bystander, with nothing unexpected before it
    /// except presence events.
    async fn check(&mut self) {
        self.sent += 1;
        let payload = format!(r#"{{"seq":{}}}"#, self.sent);
        self.sender
            .send_json(Target::Name("bystander".into()), &payload)
            .await;
        loop {
            match self.bystander.recv().await {
                ServerMessage::Message { from, data } => {
                    assert_eq!(from, self.sender.id());
                    assert_eq!(
                        data,
                        json(&payload),
                        "bystander lost or reordered a message"
                    );
                    return;
                }
                ServerMessage::PeerJoined(_) | ServerMessage::PeerLeft { .. } => continue,
                other => panic!("bystander got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn bad_frames_get_stable_error_codes_and_disturb_nobody() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut witness = Witness::new(addr, "hostile").await;
    let mut json_attacker = Client::join(addr, "hostile", "").await;
    let mut mp_attacker = Client::join(addr, "hostile", "enc=msgpack").await;
    let mut elsewhere = Client::join(addr, "other-room", "user=far").await;
    witness.check().await;

    let unknown_id = PeerId::from_u128(0xdead_beef);
    let cases: Vec<(&str, Message, ErrorCode)> = vec![
        (
            "malformed JSON",
            Message::Text("{\"type\":".into()),
            ErrorCode::Malformed,
        ),
        (
            "empty text frame",
            Message::Text("".into()),
            ErrorCode::Malformed,
        ),
        (
            "JSON array instead of object",
            Message::Text("[1,2]".into()),
            ErrorCode::InvalidMessage,
        ),
        (
            "type is a number",
            Message::Text(r#"{"type":5}"#.into()),
            ErrorCode::InvalidMessage,
        ),
        (
            "missing target",
            Message::Text(r#"{"type":"message","data":1}"#.into()),
            ErrorCode::InvalidMessage,
        ),
        (
            "missing data",
            Message::Text(r#"{"type":"signal","to":"room"}"#.into()),
            ErrorCode::InvalidMessage,
        ),
        (
            "unknown kind",
            Message::Text(r#"{"type":"teleport","to":"room","data":1}"#.into()),
            ErrorCode::UnknownType,
        ),
        (
            "unknown target form",
            Message::Text(r#"{"type":"message","to":"everyone","data":1}"#.into()),
            ErrorCode::InvalidMessage,
        ),
        (
            "malformed peer id",
            Message::Text(r#"{"type":"message","to":{"peer":"not-hex"},"data":1}"#.into()),
            ErrorCode::InvalidMessage,
        ),
        (
            "unknown peer id",
            Message::Text(
                format!(r#"{{"type":"message","to":{{"peer":"{unknown_id}"}},"data":1}}"#).into(),
            ),
            ErrorCode::UnknownPeer,
        ),
        (
            "peer in another room",
            Message::Text(
                format!(
                    r#"{{"type":"signal","to":{{"peer":"{}"}},"data":1}}"#,
                    elsewhere.id()
                )
                .into(),
            ),
            ErrorCode::UnknownPeer,
        ),
        (
            "name in another room",
            Message::Text(r#"{"type":"message","to":{"name":"far"},"data":1}"#.into()),
            ErrorCode::UnknownName,
        ),
        (
            "spoofed sender",
            Message::Text(
                format!(
                    r#"{{"type":"message","to":"room","from":"{}","data":1}}"#,
                    witness.sender.id()
                )
                .into(),
            ),
            ErrorCode::ForbiddenField,
        ),
        (
            "binary frame on a JSON connection",
            Message::Binary(vec![0x80].into()),
            ErrorCode::WrongFrameType,
        ),
    ];
    for (name, frame, expected) in cases {
        json_attacker.socket.send(frame).await.unwrap();
        assert_eq!(json_attacker.recv_error().await, expected, "{name}");
        witness.check().await;
    }

    let unknown_kind = rmp_serde::to_vec_named(&serde_json::json!({"type": "teleport"})).unwrap();
    let wrong_type = rmp_serde::to_vec_named(&serde_json::json!({"type": ["message"]})).unwrap();
    let mp_cases: Vec<(&str, Message, ErrorCode)> = vec![
        (
            "reserved MessagePack marker",
            Message::Binary(vec![0xc1].into()),
            ErrorCode::Malformed,
        ),
        (
            "truncated MessagePack",
            Message::Binary(vec![0x82, 0xa4, b't'].into()),
            ErrorCode::Malformed,
        ),
        (
            "huge declared length",
            Message::Binary(vec![0xdf, 0xff, 0xff, 0xff, 0xff].into()),
            ErrorCode::Malformed,
        ),
        (
            "MessagePack unknown kind",
            Message::Binary(unknown_kind.into()),
            ErrorCode::UnknownType,
        ),
        (
            "MessagePack wrong field type",
            Message::Binary(wrong_type.into()),
            ErrorCode::InvalidMessage,
        ),
        (
            "text frame on a MessagePack connection",
            Message::Text(r#"{"type":"ping"}"#.into()),
            ErrorCode::WrongFrameType,
        ),
    ];
    for (name, frame, expected) in mp_cases {
        mp_attacker.socket.send(frame).await.unwrap();
        assert_eq!(mp_attacker.recv_error().await, expected, "{name}");
        witness.check().await;
    }

    // A MessagePack payload that JSON cannot represent (binary map key) fails for JSON
    // recipients only; the sender is told, MessagePack recipients still get it.
    let odd = rmpv::Value::Map(vec![(rmpv::Value::Binary(vec![1]), rmpv::Value::Nil)]);
    mp_attacker
        .send(ClientMessage::Message {
            to: Target::Room,
            data: Payload::MsgPack(odd.clone()),
        })
        .await;
    assert_eq!(mp_attacker.recv_error().await, ErrorCode::InvalidMessage);
    match witness.bystander.recv().await {
        ServerMessage::Message {
            data: Payload::MsgPack(value),
            ..
        } => assert_eq!(value, odd),
        other => panic!("bystander expected the MessagePack payload, got {other:?}"),
    }
    witness.check().await;

    // Every attacker is still connected and usable.
    for attacker in [&mut json_attacker, &mut mp_attacker] {
        attacker.send(ClientMessage::Ping { nonce: Some(1) }).await;
        assert_eq!(
            attacker.recv().await,
            ServerMessage::Pong { nonce: Some(1) }
        );
    }
    elsewhere.expect_silence(Duration::from_millis(100)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_frame_closes_only_that_connection() {
    let mut config = config();
    config.limits.max_message_bytes = 1024;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut witness = Witness::new(addr, "big").await;
    let mut attacker = Client::join(addr, "big", "").await;
    let huge = format!(
        r#"{{"type":"message","to":"room","data":"{}"}}"#,
        "x".repeat(4096)
    );
    attacker
        .socket
        .send(Message::Text(huge.into()))
        .await
        .unwrap();
    let (code, close, reason) = expect_refusal(&mut attacker.socket, Encoding::Json).await;
    assert_eq!(
        (code, close, reason.as_str()),
        (ErrorCode::MessageTooBig, 1009, "message_too_big")
    );
    witness.check().await;
    server.shutdown().await;
}

#[tokio::test]
async fn flood_past_the_rate_limit_is_dropped_with_one_error() {
    let mut config = config();
    config.limits.messages_per_second = 5;
    config.limits.message_burst = 10;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut witness = Witness::new(addr, "flood").await;
    let mut flooder = Client::join(addr, "flood", "user=flooder").await;
    for i in 0..200 {
        flooder
            .send_json(
                Target::Name("bystander".into()),
                &format!(r#"{{"flood":{i}}}"#),
            )
            .await;
    }
    assert_eq!(flooder.recv_error().await, ErrorCode::RateLimited);
    flooder.expect_silence(Duration::from_millis(200)).await;
    // The bystander got exactly the burst, in order.
    let mut got = Vec::new();
    while got.len() < 10 {
        if let ServerMessage::Message { data, .. } = witness.bystander.recv().await {
            got.push(data);
        }
    }
    let expected: Vec<Payload> = (0..10)
        .map(|i| json(&format!(r#"{{"flood":{i}}}"#)))
        .collect();
    assert_eq!(got, expected);
    witness.check().await;
    witness
        .bystander
        .expect_silence(Duration::from_millis(200))
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn refused_connections_get_an_error_and_a_close_reason() {
    let mut config = config();
    config.limits.max_peers_per_room = 2;
    config.limits.max_connections_per_ip = 4;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut witness = Witness::new(addr, "full").await;

    let cases = [
        ("/ws/full?user=x", Encoding::Json, ErrorCode::RoomFull, 4005),
        (
            "/ws/other?user=sender",
            Encoding::Json,
            ErrorCode::NameTaken,
            4004,
        ),
        (
            "/ws/bad%20room",
            Encoding::Json,
            ErrorCode::InvalidRoom,
            4002,
        ),
        (
            "/ws/ok?user=no/slash",
            Encoding::Json,
            ErrorCode::InvalidName,
            4003,
        ),
        (
            "/ws/ok?v=2",
            Encoding::Json,
            ErrorCode::UnsupportedVersion,
            4000,
        ),
        (
            "/ws/ok?enc=xml",
            Encoding::Json,
            ErrorCode::UnsupportedEncoding,
            4001,
        ),
        (
            "/ws/ok?enc=msgpack&user=a%20b",
            Encoding::MsgPack,
            ErrorCode::InvalidName,
            4003,
        ),
    ];
    // The name-taken case needs the name in the same room: join "other" as "sender" first.
    let _holder = Client::join(addr, "other", "user=sender").await;
    for (path, encoding, expected, close_code) in cases {
        let (code, close, reason) = refused(addr, path, encoding).await;
        assert_eq!((code, close), (expected, close_code), "{path}");
        assert_eq!(reason, expected.as_str(), "{path}");
        witness.check().await;
    }

    // Per-IP limit: 3 connections are open (witness 2, holder 1); one more fits, then refusal.
    // The refusal comes before the upgrade: HTTP 429 with the JSON error.
    let _fourth = Client::join(addr, "ip", "").await;
    match tokio_tungstenite::connect_async(url(addr, "/ws/ip")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 429);
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("a JSON body");
            assert_eq!(body["error"], ErrorCode::TooManyConnections.as_str());
        }
        other => panic!("expected a 429 refusal, got {other:?}"),
    }
    witness.check().await;
    server.shutdown().await;
}

#[tokio::test]
async fn slow_reader_is_closed_and_the_room_keeps_flowing() {
    let mut config = config();
    config.limits.send_queue_messages = 8;
    config.limits.messages_per_second = 100_000;
    config.limits.message_burst = 100_000;
    config.limits.bytes_per_second = 1 << 30;
    config.limits.byte_burst = 1 << 30;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut witness = Witness::new(addr, "slow").await;
    let slow = Client::join(addr, "slow", "user=slow").await;
    let slow_id = slow.id();
    assert!(matches!(
        witness.bystander.recv().await,
        ServerMessage::PeerJoined(_)
    ));
    // Fill the slow peer's socket buffers and queue: it never reads.
    let chunk = format!(r#""{}""#, "z".repeat(60_000));
    let mut left = None;
    for _ in 0..2_000 {
        witness
            .sender
            .send_json(Target::Name("slow".into()), &chunk)
            .await;
        if let Ok(Some(Ok(message))) = tokio::time::timeout(
            Duration::from_millis(1),
            futures_util::StreamExt::next(&mut witness.bystander.socket),
        )
        .await
        {
            left = Some(message);
            break;
        }
    }
    let left = left.expect("the slow reader was closed before 2000 messages");
    let announced = switchboard_protocol::decode_server(
        switchboard_protocol::Frame::Binary(&left.into_data()),
        Encoding::MsgPack,
    )
    .unwrap();
    assert_eq!(
        announced,
        ServerMessage::PeerLeft {
            id: slow_id,
            reason: switchboard_protocol::LeaveReason::SlowReader
        }
    );
    witness.check().await;
    drop(slow);
    server.shutdown().await;
}
