//! One address must not be able to take the server down. Each test runs an attack from
//! 127.0.0.1 while a normal client from 127.0.0.2 (another loopback address, so per-address
//! limits tell them apart) connects and relays as usual. Real sockets, a real server.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use switchboard_protocol::{LeaveReason, ServerMessage, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Joins `room` as a normal client from 127.0.0.2.
async fn bystander(addr: SocketAddr, room: &str) -> Client {
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(tcp_from("127.0.0.2", addr).await);
    let (socket, _) = tokio_tungstenite::client_async(url(addr, &format!("/ws/{room}")), stream)
        .await
        .expect("the bystander connects");
    Client::from_socket(socket, switchboard_protocol::Encoding::Json).await
}

/// Two bystanders from 127.0.0.2 meet in a room and relay a message: the server still serves.
async fn bystanders_relay(addr: SocketAddr, room: &str) {
    let mut a = bystander(addr, room).await;
    let mut b = bystander(addr, room).await;
    assert!(matches!(a.recv().await, ServerMessage::PeerJoined(_)));
    a.send_json(Target::Peer(b.id()), "\"still served\"").await;
    match b.recv().await {
        ServerMessage::Message { data, .. } => assert_eq!(data, json("\"still served\"")),
        other => panic!("expected the relayed message, got {other:?}"),
    }
}

/// Whether the server has closed `stream` (EOF or reset) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// A WebSocket handshake by hand (the attacker's client does not read after it).
async fn handshake(stream: &mut TcpStream, path: &str) {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.expect("a response");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
}

/// The counter of an error code in `/metrics`.
async fn error_count(addr: SocketAddr, code: &str) -> u64 {
    let (_, body) = http_get(addr, "/metrics").await;
    body.lines()
        .find(|l| {
            l.starts_with("switchboard_errors_total") && l.contains(&format!("code=\"{code}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_client_flooding_pings_without_reading_is_closed_and_others_are_served() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut attacker = tcp_from("127.0.0.1", addr).await;
    handshake(&mut attacker, "/ws/flood").await;
    // Masked empty pings as fast as the socket takes them; never a read.
    let ping = [0x89u8, 0x80, 1, 2, 3, 4];
    let burst: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1000)
        .collect();
    let started = Instant::now();
    let mut refused = false;
    while started.elapsed() < Duration::from_secs(10) {
        match tokio::time::timeout(Duration::from_millis(200), attacker.write_all(&burst)).await {
            Ok(Ok(())) => {}
            // The server closed the connection: writes fail (reset) or stop being taken.
            Ok(Err(_)) | Err(_) => {
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "the flooding connection was never closed");
    bystanders_relay(addr, "flood").await;
    assert_eq!(error_count(addr, "flooding").await, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_peer_whose_socket_stops_taking_writes_is_closed_as_a_slow_reader_and_announced() {
    let mut config = config();
    // Only the write deadline can catch it: a queue and a write buffer it cannot overflow.
    config.limits.write_timeout_ms = 500;
    config.limits.send_queue_messages = 100_000;
    config.limits.max_write_buffer_bytes = 1 << 30;
    config.limits.messages_per_second = 100_000;
    config.limits.message_burst = 100_000;
    config.limits.bytes_per_second = 1 << 30;
    config.limits.byte_burst = 1 << 30;
    let server = start(config).await;
    let addr = server.local_addr();
    // The stalled peer joins and never reads again (its socket stays open).
    let stalled = Client::join(addr, "stall", "").await;
    let stalled_id = stalled.id();
    let mut sender = bystander(addr, "stall").await;
    let mut observer = bystander(addr, "stall").await;
    let payload = format!("\"{}\"", "x".repeat(60 * 1024));
    let started = Instant::now();
    let mut left = None;
    while left.is_none() && started.elapsed() < Duration::from_secs(20) {
        for _ in 0..20 {
            sender.send_json(Target::Peer(stalled_id), &payload).await;
        }
        // The observer watches the room while the sender floods the stalled peer.
        while let Ok(Some(Ok(frame))) =
            tokio::time::timeout(Duration::from_millis(20), observer.socket.next()).await
        {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
                let message = switchboard_protocol::decode_server(
                    switchboard_protocol::Frame::Text(text.as_bytes()),
                    switchboard_protocol::Encoding::Json,
                )
                .expect("decodes");
                if let ServerMessage::PeerLeft { id, reason } = message {
                    left = Some((id, reason));
                }
            }
        }
    }
    assert_eq!(left, Some((stalled_id, LeaveReason::SlowReader)));
    // Well before the idle timeout (15 s) could have done it.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(stalled);
    bystanders_relay(addr, "after-stall").await;
    server.shutdown().await;
}

#[tokio::test]
async fn connections_that_never_upgrade_are_capped_per_address_and_timed_out() {
    let mut config = config();
    config.limits.max_pending_per_ip = 8;
    config.limits.http_idle_timeout_ms = 600;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(tcp_from("127.0.0.1", addr).await);
    }
    // Past the cap, from the same address: closed at once.
    for _ in 0..4 {
        let mut extra = tcp_from("127.0.0.1", addr).await;
        assert!(
            closed_within(&mut extra, Duration::from_millis(300)).await,
            "a connection past max_pending_per_ip stays open"
        );
    }
    // Another address is not affected.
    bystanders_relay(addr, "pending").await;
    let (head, body) = {
        let mut stream = tcp_from("127.0.0.2", addr).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("writes");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("reads");
        let (head, body) = response.split_once("\r\n\r\n").expect("a response");
        (head.to_owned(), body.to_owned())
    };
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "ok\n");
    // A slowloris sends a header byte every 100 ms: closed at the deadline all the same.
    let mut slow = tcp_from("127.0.0.3", addr).await;
    let started = Instant::now();
    let mut cut = false;
    for byte in
        b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter()
    {
        if slow.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        if closed_within(&mut slow, Duration::from_millis(100)).await {
            cut = true;
            break;
        }
    }
    assert!(cut, "the slowloris connection was never closed");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    // The idle ones are gone after the deadline; their places are free again.
    for stream in &mut idle {
        assert!(
            closed_within(stream, Duration::from_secs(2)).await,
            "an idle connection stays"
        );
    }
    let mut again = tcp_from("127.0.0.1", addr).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("writes");
    let mut response = String::new();
    again.read_to_string(&mut response).await.expect("reads");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    server.shutdown().await;
}

#[tokio::test]
async fn an_unfinished_huge_request_head_is_refused() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut stream = tcp_from("127.0.0.1", addr).await;
    // 64 KiB of headers (the limit is 16 KiB) with no end.
    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    while head.len() < 64 * 1024 {
        head.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let _ = stream.write_all(&head).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 431"),
        "{response}"
    );
    assert!(closed_within(&mut stream, Duration::from_secs(1)).await);
    bystanders_relay(addr, "headers").await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_per_address_connection_limit_is_a_429_with_json_before_the_upgrade() {
    let mut config = config();
    config.limits.max_connections_per_ip = 2;
    let server = start(config).await;
    let addr = server.local_addr();
    let _a = Client::join(addr, "limit", "").await;
    let _b = Client::join(addr, "limit", "").await;
    let mut third = tcp_from("127.0.0.1", addr).await;
    let request = "GET /ws/limit HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    third.write_all(request.as_bytes()).await.expect("writes");
    let mut response = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), third.read(&mut response))
        .await
        .expect("an answer")
        .expect("reads");
    let response = String::from_utf8_lossy(&response[..n]);
    assert!(response.starts_with("HTTP/1.1 429"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{response}"
    );
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    let value: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(value["error"], "too_many_connections");
    // Another address still joins.
    bystanders_relay(addr, "limit").await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_admin_listener_answers_when_the_main_one_is_saturated() {
    let mut config = config();
    config.admin_listen = Some("127.0.0.1:0".parse().expect("an address"));
    config.limits.max_pending_connections = 4;
    let server = start(config).await;
    let addr = server.local_addr();
    let admin = server.admin_addr().expect("an admin listener");
    let mut held = Vec::new();
    for source in ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        held.push(tcp_from(source, addr).await);
    }
    // The main listener takes no more (from any address)...
    let mut refused = tcp_from("127.0.0.5", addr).await;
    assert!(closed_within(&mut refused, Duration::from_millis(500)).await);
    // ...the operators' listener does.
    let (head, body) = http_get(admin, "/healthz").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "ok\n");
    let (_, metrics) = http_get(admin, "/metrics").await;
    assert!(metrics.contains("switchboard_connections"), "{metrics}");
    // Nothing else is served there.
    let (head, _) = http_get(admin, "/rooms").await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    drop(held);
    server.shutdown().await;
}

/// Joins through a path from `source`; `Ok` with the client, or `Err` with the refusal's code.
async fn join_from(
    source: &str,
    addr: SocketAddr,
    path: &str,
) -> Result<Client, switchboard_protocol::ErrorCode> {
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(tcp_from(source, addr).await);
    let (mut socket, _) = tokio_tungstenite::client_async(url(addr, path), stream)
        .await
        .expect("upgrades");
    let frame = tokio::time::timeout(WAIT, socket.next())
        .await
        .expect("a first message")
        .expect("open")
        .expect("no error");
    let tokio_tungstenite::tungstenite::Message::Text(text) = frame else {
        panic!("expected a text frame");
    };
    match switchboard_protocol::decode_server(
        switchboard_protocol::Frame::Text(text.as_bytes()),
        switchboard_protocol::Encoding::Json,
    )
    .expect("decodes")
    {
        ServerMessage::Welcome(welcome) => Ok(Client {
            socket,
            encoding: switchboard_protocol::Encoding::Json,
            welcome: *welcome,
        }),
        ServerMessage::Error { code, .. } => Err(code),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_join_and_leave_storm_from_one_address_is_throttled() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut watcher = bystander(addr, "storm").await;
    // For one second, 127.0.0.1 joins and leaves the room as fast as it can.
    let started = Instant::now();
    let (mut joined, mut throttled) = (0u32, 0u32);
    while started.elapsed() < Duration::from_secs(1) {
        match join_from("127.0.0.1", addr, "/ws/storm").await {
            Ok(client) => {
                joined += 1;
                drop(client);
            }
            Err(code) => {
                assert_eq!(code, switchboard_protocol::ErrorCode::Throttled);
                throttled += 1;
            }
        }
    }
    // Defaults: a burst of 50, then 10 a second.
    assert!(joined <= 50 + 12, "{joined} joins went through");
    assert!(
        throttled > 0,
        "the storm was never throttled ({joined} joins)"
    );
    // The watcher saw only those joins, and still relays.
    let mut seen = 0;
    while let Ok(Some(Ok(_))) =
        tokio::time::timeout(Duration::from_millis(300), watcher.socket.next()).await
    {
        seen += 1;
    }
    assert!(
        seen <= 2 * (joined + 12),
        "{seen} presence messages for {joined} joins"
    );
    bystanders_relay(addr, "storm").await;
    server.shutdown().await;
}

#[tokio::test]
async fn guessing_room_codes_is_throttled_per_address() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let owner = bystander_at(addr, "/ws?create=code").await;
    let code = owner.welcome.room.clone();
    // Misses from 127.0.0.1 spend its 20 lookups; then every lookup is refused, the right one too.
    let mut misses = 0;
    let mut refused = 0;
    for guess in 0..30u32 {
        let wrong = format!("{:0>6}", guess).replace('0', "A").replace('1', "B");
        match join_from("127.0.0.1", addr, &format!("/ws?code={wrong}Z")).await {
            Err(switchboard_protocol::ErrorCode::NoSuchRoom) => misses += 1,
            Err(switchboard_protocol::ErrorCode::Throttled) => refused += 1,
            other => panic!("unexpected {:?}", other.map(|c| c.welcome.room)),
        }
    }
    assert_eq!((misses, refused), (20, 10));
    assert_eq!(
        join_from("127.0.0.1", addr, &format!("/ws?code={code}"))
            .await
            .err(),
        Some(switchboard_protocol::ErrorCode::Throttled)
    );
    // The code still works from elsewhere.
    let guest = join_from("127.0.0.2", addr, &format!("/ws?code={code}")).await;
    assert_eq!(guest.map(|c| c.welcome.room).ok(), Some(code));
    server.shutdown().await;
}

/// Joins through any path as a normal client from 127.0.0.2.
async fn bystander_at(addr: SocketAddr, path: &str) -> Client {
    join_from("127.0.0.2", addr, path).await.expect("joins")
}

#[tokio::test]
async fn a_connection_has_a_byte_budget_as_well_as_a_message_rate() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut sender = Client::join(addr, "bytes", "").await;
    let mut receiver = bystander(addr, "bytes").await;
    assert!(matches!(sender.recv().await, ServerMessage::PeerJoined(_)));
    // 40 messages of 60 KiB at once: within the message rate (burst 200), far over the byte
    // budget (a burst of 1 MiB, then 256 KiB/s).
    let payload = format!("\"{}\"", "x".repeat(60 * 1024));
    for _ in 0..40 {
        sender
            .send_json(Target::Peer(receiver.id()), &payload)
            .await;
    }
    assert_eq!(
        sender.recv_error().await,
        switchboard_protocol::ErrorCode::RateLimited
    );
    let mut delivered = 0;
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(Duration::from_millis(500), receiver.socket.next()).await
    {
        if frame.is_text() {
            delivered += 1;
        }
    }
    // 1 MiB of burst is 17 such messages, plus what the rate refilled meanwhile.
    assert!((16..=24).contains(&delivered), "{delivered} delivered");
    // Small messages flow again once the budget refills.
    tokio::time::sleep(Duration::from_millis(500)).await;
    sender
        .send_json(Target::Peer(receiver.id()), "\"small\"")
        .await;
    match receiver.recv().await {
        ServerMessage::Message { data, .. } => assert_eq!(data, json("\"small\"")),
        other => panic!("expected the small message, got {other:?}"),
    }
    server.shutdown().await;
}

/// A masked client frame (mask 1,2,3,4).
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![first];
    if payload.len() < 126 {
        frame.push(0x80 | payload.len() as u8);
    } else {
        frame.push(0x80 | 126);
        frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Reads server frames until a close frame; returns its code (`None`: the socket just ended).
async fn close_code(stream: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // Parse whole unmasked server frames from the front of `buf`.
        while buf.len() >= 2 {
            let len = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => u16::from_be_bytes([buf[2], buf[3]]) as usize,
                126 => break,
                127 => return None,
                n => n as usize,
            };
            let head = if buf[1] & 0x7f == 126 { 4 } else { 2 };
            if buf.len() < head + len {
                break;
            }
            if buf[0] & 0x0f == 0x8 {
                return (len >= 2).then(|| u16::from_be_bytes([buf[head], buf[head + 1]]));
            }
            buf.drain(..head + len);
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test]
async fn protocol_violations_and_closes_are_answered_as_rfc_6455_says() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let cases: [(&str, Vec<u8>, u16); 4] = [
        ("RSV1 set", masked(0xC1, b"hi"), 1002),
        ("unmasked frame", vec![0x81, 0x02, b'h', b'i'], 1002),
        ("126-byte ping", masked(0x89, &[0u8; 126]), 1002),
        ("text that is not UTF-8", masked(0x81, &[0xff, 0xfe]), 1007),
    ];
    for (what, frame, expected) in cases {
        let mut stream = tcp_from("127.0.0.1", addr).await;
        handshake(&mut stream, "/ws/rfc").await;
        stream.write_all(&frame).await.expect("writes");
        assert_eq!(close_code(&mut stream).await, Some(expected), "{what}");
    }
    // A client's close frame is answered (no 1006 on the client's side).
    let mut client = Client::join(addr, "rfc", "").await;
    client
        .socket
        .send(tokio_tungstenite::tungstenite::Message::Close(Some(
            tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
                reason: "bye".into(),
            },
        )))
        .await
        .expect("sends the close");
    let reply = tokio::time::timeout(WAIT, client.socket.next())
        .await
        .expect("a reply");
    assert!(
        matches!(reply, Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(ref f)))) if u16::from(f.code) == 1000),
        "{reply:?}"
    );
    bystanders_relay(addr, "rfc").await;
    server.shutdown().await;
}
