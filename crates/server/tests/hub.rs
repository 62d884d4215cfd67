//! The hub end to end: real WebSocket clients over loopback against a real server.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use switchboard_protocol::{
    ClientMessage, Encoding, ErrorCode, LeaveReason, Payload, PeerInfo, ServerMessage, Target,
};

#[tokio::test]
async fn welcome_lists_present_peers_and_presence_is_announced() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut ann = Client::join(addr, "lobby", "user=ann").await;
    assert_eq!(ann.welcome.version, 1);
    assert_eq!(ann.welcome.room, "lobby");
    assert!(ann.welcome.peers.is_empty());
    let bob = Client::join(addr, "lobby", "").await;
    assert_eq!(
        bob.welcome.peers,
        vec![PeerInfo {
            id: ann.id(),
            name: Some("ann".into()),
            resumable: false,
        }]
    );
    assert_ne!(ann.id(), bob.id());
    assert_eq!(
        ann.recv().await,
        ServerMessage::PeerJoined(PeerInfo {
            id: bob.id(),
            name: None,
            resumable: false,
        })
    );
    let bob_id = bob.id();
    drop(bob);
    assert_eq!(
        ann.recv().await,
        ServerMessage::PeerLeft {
            id: bob_id,
            reason: LeaveReason::Closed
        }
    );
    server.shutdown().await;
}

#[tokio::test]
async fn relays_to_room_peer_name_and_self_with_the_sender_stamped() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut ann = Client::join(addr, "r", "user=ann").await;
    let mut bob = Client::join(addr, "r", "user=bob").await;
    let mut cat = Client::join(addr, "r", "").await;
    ann.recv().await; // bob joined
    ann.recv().await; // cat joined
    bob.recv().await; // cat joined

    ann.send_json(Target::Room, r#"{"hello":"room"}"#).await;
    for client in [&mut bob, &mut cat] {
        assert_eq!(
            client.recv().await,
            ServerMessage::Message {
                from: ann.welcome.id,
                data: json(r#"{"hello":"room"}"#)
            }
        );
    }
    cat.send(ClientMessage::Signal {
        to: Target::Peer(bob.id()),
        data: json(r#"{"sdp":"offer"}"#),
    })
    .await;
    assert_eq!(
        bob.recv().await,
        ServerMessage::Signal {
            from: cat.id(),
            data: json(r#"{"sdp":"offer"}"#)
        }
    );
    cat.send_json(Target::Name("ann".into()), "[1,2,3]").await;
    assert_eq!(
        ann.recv().await,
        ServerMessage::Message {
            from: cat.id(),
            data: json("[1,2,3]")
        }
    );
    bob.send_json(Target::Myself, r#""echo""#).await;
    assert_eq!(
        bob.recv().await,
        ServerMessage::Message {
            from: bob.id(),
            data: json(r#""echo""#)
        }
    );
    // Nobody got anything else.
    for client in [&mut ann, &mut bob, &mut cat] {
        client.expect_silence(Duration::from_millis(200)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn msgpack_and_json_peers_share_a_room() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut packed = Client::join(addr, "mixed", "enc=msgpack&user=p").await;
    let mut other_packed = Client::join(addr, "mixed", "enc=msgpack").await;
    let mut plain = Client::join(addr, "mixed", "enc=json").await;
    packed.recv().await;
    packed.recv().await;
    other_packed.recv().await;

    // JSON in, MessagePack and JSON out.
    plain
        .send_json(Target::Room, r#"{"x":1.5,"tags":["a","b"],"ok":true}"#)
        .await;
    for client in [&mut packed, &mut other_packed] {
        assert_eq!(
            client.recv().await,
            ServerMessage::Message {
                from: plain.id(),
                data: json(r#"{"x":1.5,"tags":["a","b"],"ok":true}"#)
            }
        );
    }
    // MessagePack binary stays binary between MessagePack peers and becomes bytes in JSON.
    let bytes = rmpv::Value::Binary(vec![0, 1, 254, 255]);
    packed
        .send(ClientMessage::Message {
            to: Target::Room,
            data: Payload::MsgPack(bytes.clone()),
        })
        .await;
    match other_packed.recv().await {
        ServerMessage::Message {
            data: Payload::MsgPack(value),
            ..
        } => assert_eq!(value, bytes),
        other => panic!("expected a MessagePack payload, got {other:?}"),
    }
    assert_eq!(
        plain.recv().await,
        ServerMessage::Message {
            from: packed.id(),
            data: json("[0,1,254,255]")
        }
    );
    server.shutdown().await;
}

#[tokio::test]
async fn subprotocol_selects_the_encoding() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let (socket, selected) = with_subprotocols(addr, "/ws/sp", "switchboard.v1.msgpack").await;
    assert_eq!(selected.as_deref(), Some("switchboard.v1.msgpack"));
    let mut client = Client::from_socket(socket, Encoding::MsgPack).await;
    client.send(ClientMessage::Ping { nonce: Some(3) }).await;
    assert_eq!(client.recv().await, ServerMessage::Pong { nonce: Some(3) });

    let (mut socket, selected) = with_subprotocols(addr, "/ws/sp", "switchboard.v2.json").await;
    assert_eq!(
        selected.as_deref(),
        Some("switchboard.v2.json"),
        "echoed so the client can read the refusal"
    );
    let (code, close, reason) = expect_refusal(&mut socket, Encoding::Json).await;
    assert_eq!(
        (code, close, reason.as_str()),
        (ErrorCode::UnsupportedVersion, 4000, "unsupported_version")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn rooms_are_isolated() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut red = Client::join(addr, "red", "user=same").await;
    let mut blue = Client::join(addr, "blue", "user=same").await;
    red.send_json(Target::Room, "1").await;
    red.send_json(Target::Peer(blue.id()), "2").await;
    assert_eq!(red.recv_error().await, ErrorCode::UnknownPeer);
    red.send_json(Target::Name("nobody".into()), "3").await;
    assert_eq!(red.recv_error().await, ErrorCode::UnknownName);
    blue.expect_silence(Duration::from_millis(300)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn silent_peer_is_announced_as_left_within_the_idle_timeout() {
    let mut config = config();
    config.limits.heartbeat_interval_ms = 100;
    config.limits.idle_timeout_ms = 400;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut watcher = Client::join(addr, "hb", "").await;
    // A peer that stops reading never answers pings: it is dead to the server.
    let silent = Client::join(addr, "hb", "").await;
    let silent_id = silent.id();
    assert!(matches!(watcher.recv().await, ServerMessage::PeerJoined(_)));
    let started = std::time::Instant::now();
    // The watcher keeps reading (so it answers pings) and must outlive the timeout.
    assert_eq!(
        watcher.recv().await,
        ServerMessage::PeerLeft {
            id: silent_id,
            reason: LeaveReason::Timeout
        }
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "left too early: {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(2_000),
        "left too late: {waited:?}"
    );
    watcher.expect_silence(Duration::from_millis(800)).await;
    drop(silent);
    server.shutdown().await;
}

#[tokio::test]
async fn idle_peer_gets_a_close_with_the_reason() {
    let mut config = config();
    config.limits.heartbeat_interval_ms = 100;
    config.limits.idle_timeout_ms = 300;
    let server = start(config).await;
    let mut client = Client::join(server.local_addr(), "idle", "").await;
    // Wait without reading: pings go unanswered. Then read what the server said.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (code, close, reason) = expect_refusal(&mut client.socket, Encoding::Json).await;
    assert_eq!(
        (code, close, reason.as_str()),
        (ErrorCode::IdleTimeout, 4008, "idle_timeout")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_every_peer_with_a_reason() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut ann = Client::join(addr, "s", "").await;
    let mut bob = Client::join(addr, "t", "enc=msgpack").await;
    let shutting_down = tokio::spawn(server.shutdown());
    for (client, encoding) in [(&mut ann, Encoding::Json), (&mut bob, Encoding::MsgPack)] {
        let (code, close, reason) = expect_refusal(&mut client.socket, encoding).await;
        assert_eq!(
            (code, close, reason.as_str()),
            (ErrorCode::Shutdown, 1001, "shutdown")
        );
    }
    shutting_down.await.unwrap();
    assert!(
        tokio_tungstenite::connect_async(url(addr, "/ws/s"))
            .await
            .is_err(),
        "listener is closed"
    );
}

#[tokio::test]
async fn health_metrics_and_landing_page_are_served() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut ann = Client::join(addr, "m", "").await;
    let _bob = Client::join(addr, "m", "").await;
    ann.recv().await;
    ann.send_json(Target::Room, "1").await;
    ann.send_json(
        Target::Peer(switchboard_protocol::PeerId::from_u128(1)),
        "1",
    )
    .await;
    assert_eq!(ann.recv_error().await, ErrorCode::UnknownPeer);

    assert_eq!(http_get(addr, "/healthz").await.1, "ok\n");
    let (head, metrics) = http_get(addr, "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    for line in [
        "switchboard_connections 2",
        "switchboard_rooms 1",
        "switchboard_connections_accepted_total 2",
        "switchboard_messages_received_total 2",
        "switchboard_errors_total{code=\"unknown_peer\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in\n{metrics}"
        );
    }
    let (_, page) = http_get(addr, "/").await;
    assert!(page.contains("/ws/{room}") && page.contains("/metrics"));
    server.shutdown().await;
}

#[tokio::test]
async fn serves_the_client_bundle_and_the_demos_embedded() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let (head, bundle) = http_get(addr, "/switchboard.js").await;
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(bundle.contains("joinRoom") && bundle.len() > 10_000);
    for demo in ["/demo/chat", "/demo/dots", "/demo/pair"] {
        let (head, page) = http_get(addr, demo).await;
        assert!(head
            .to_ascii_lowercase()
            .contains("content-type: text/html"));
        assert!(
            page.contains("from \"/switchboard.js\""),
            "{demo} imports the bundle"
        );
    }
    // The Rust client's wasm demo: its page loads the committed wasm-bindgen glue (the
    // browser test runs it).
    let (_, page) = http_get(addr, "/demo/rust-chat").await;
    assert!(page.contains("from \"/demo/wasm/switchboard_wasm_chat.js\""));
    let (head, glue) = http_get(addr, "/demo/wasm/switchboard_wasm_chat.js").await;
    assert!(head
        .to_ascii_lowercase()
        .contains("content-type: text/javascript"));
    assert!(glue.contains("class WasmRoom") && glue.contains("switchboard_wasm_chat_bg.wasm"));
    let (_, landing) = http_get(addr, "/").await;
    assert!(landing.contains("/demo/chat") && landing.contains("/demo/dots"));
    assert!(landing.contains("/demo/rust-chat"));
    let (head, _) = http_get(addr, "/demo/missing").await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    server.shutdown().await;
}

#[tokio::test]
async fn tls_listener_serves_wss() {
    use std::sync::Arc;
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let mut config = config();
    config.tls_cert = Some(format!("{data}/localhost.crt").into());
    config.tls_key = Some(format!("{data}/localhost.key").into());
    let server = start(config).await;
    assert!(server.is_tls());

    let pem = std::fs::read(format!("{data}/ca.crt")).unwrap();
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for cert in rustls_pemfile_certs(&pem) {
        roots.add(cert).unwrap();
    }
    let tls = tokio_rustls::rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.expect("TLS handshake");
    let url = format!("wss://localhost:{}/ws/secure", server.local_addr().port());
    let (mut socket, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("WebSocket over TLS");
    let first = socket.next().await.unwrap().unwrap();
    assert!(first.to_text().unwrap().contains(r#""type":"welcome""#));
    server.shutdown().await;
}

fn rustls_pemfile_certs(
    pem: &[u8],
) -> Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    tokio_rustls::rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .map(|c| c.unwrap())
        .collect()
}
