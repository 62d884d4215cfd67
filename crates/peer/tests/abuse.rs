//! One address must not be able to fill the server peer or grow its memory: per-address limits
//! on both transports, and a WebSocket fallback peer that floods pings or stops reading is closed
//! with a reason while a peer from another address is served. Real sockets on loopback.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{post, server};
use str0m::Rtc;
use switchboard_peer::{Event, Events, PeerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection from `source` (a loopback IP).
async fn tcp_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(format!("{source}:0").parse().expect("an address"))
        .expect("binds");
    socket.connect(addr).await.expect("connects")
}

/// Opens `GET /connect/ws` by hand from `source`; returns the stream and the status line.
async fn upgrade_from(source: &str, http: SocketAddr) -> (TcpStream, String) {
    let mut stream = tcp_from(source, http).await;
    let request = "GET /connect/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read_exact(&mut byte).await.is_err() {
            break;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    (stream, head)
}

/// The next `Closed` event's reason, skipping others, within 10 s.
async fn closed_reason(events: &mut Events) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Event::Closed(_, reason)) => return reason,
            Ok(_) => continue,
            Err(_) => panic!("no Closed event in time"),
        }
    }
}

fn offer() -> String {
    let mut rtc = Rtc::builder().build(Instant::now());
    let addr = "127.0.0.1:9".parse().expect("an address");
    rtc.add_local_candidate(str0m::Candidate::host(addr, "udp").expect("a candidate"));
    let mut api = rtc.sdp_api();
    api.add_channel("reliable".into());
    let (offer, _pending) = api.apply().expect("an offer");
    offer.to_sdp_string()
}

#[tokio::test]
async fn one_address_gets_max_peers_per_ip_on_either_transport_and_others_still_connect() {
    let config = PeerConfig {
        max_peers_per_ip: 2,
        ..PeerConfig::default()
    };
    let (server, _events, http) = server(config).await;
    // Two fallback sockets from 127.0.0.1 take its places...
    let (_first, head) = upgrade_from("127.0.0.1", http).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (_second, head) = upgrade_from("127.0.0.1", http).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // ...so a third upgrade and a half-open offer from it are refused, with the JSON error.
    let (mut third, head) = upgrade_from("127.0.0.1", http).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    let mut body = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(2), third.read(&mut body))
        .await
        .expect("a body")
        .expect("reads");
    let body = String::from_utf8_lossy(&body[..n]);
    assert!(body.contains("\"too_many_connections\""), "{body}");
    let (status, body) = post(http, "/connect", &offer()).await;
    // `post` connects from 127.0.0.1.
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("\"too_many_connections\""), "{body}");
    // Another address still gets in, on both transports.
    let (_other, head) = upgrade_from("127.0.0.2", http).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(server.peer_count().await, 3);
    // A place is given back when its peer goes.
    drop(_first);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.peer_count().await != 2 {
        assert!(
            Instant::now() < deadline,
            "the closed socket's place is given back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = post(http, "/connect", &offer()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_fallback_peer_flooding_pings_is_closed() {
    let (server, mut events, http) = server(PeerConfig::default()).await;
    let (mut attacker, head) = upgrade_from("127.0.0.1", http).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let ping = [0x89u8, 0x80, 1, 2, 3, 4];
    let burst: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1000)
        .collect();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        match tokio::time::timeout(Duration::from_millis(200), attacker.write_all(&burst)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    assert_eq!(closed_reason(&mut events).await, "flooding");
    assert_eq!(server.peer_count().await, 0);
}

#[tokio::test]
async fn a_fallback_peer_that_stops_reading_is_closed_by_the_write_deadline() {
    let config = PeerConfig {
        socket_write_timeout: Duration::from_millis(500),
        // Only the deadline can catch it: a queue and write buffer it cannot overflow.
        send_queue_bytes: 1 << 30,
        socket_max_write_buffer_bytes: 1 << 30,
        ..PeerConfig::default()
    };
    let (server, mut events, http) = server(config).await;
    let (stalled, head) = upgrade_from("127.0.0.1", http).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let peer = match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
        Ok(Event::Open(peer)) => peer,
        other => panic!("expected Open, got {other:?}"),
    };
    let started = Instant::now();
    // 64 KiB messages until the socket's buffers are full and a write waits past the deadline.
    let chunk = vec![7u8; 64 * 1024];
    let reason = loop {
        assert!(started.elapsed() < Duration::from_secs(10), "never closed");
        for _ in 0..16 {
            server.send_reliable(peer, chunk.clone());
        }
        if let Ok(Event::Closed(_, reason)) =
            tokio::time::timeout(Duration::from_millis(50), events.recv()).await
        {
            break reason;
        }
    };
    assert_eq!(reason, "write_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(stalled);
}

/// Reads server frames until a close frame; returns its code (`None`: the socket just ended).
async fn close_code(stream: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        while buf.len() >= 2 && (buf[1] & 0x7f) < 126 {
            let len = (buf[1] & 0x7f) as usize;
            if buf.len() < 2 + len {
                break;
            }
            if buf[0] & 0x0f == 0x8 {
                return (len >= 2).then(|| u16::from_be_bytes([buf[2], buf[3]]));
            }
            buf.drain(..2 + len);
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test]
async fn fallback_protocol_violations_are_answered_as_rfc_6455_says() {
    let (_server, mut events, http) = server(PeerConfig::default()).await;
    let mask = [1u8, 2, 3, 4];
    let not_utf8: Vec<u8> = [0xffu8, 0xfe]
        .iter()
        .zip(mask.iter().cycle())
        .map(|(b, m)| b ^ m)
        .collect();
    let cases: [(&str, Vec<u8>, u16); 2] = [
        ("unmasked frame", vec![0x82, 0x02, 0, 1], 1002),
        (
            "text that is not UTF-8",
            [&[0x81u8, 0x82][..], &mask, &not_utf8].concat(),
            1007,
        ),
    ];
    for (what, frame, expected) in cases {
        let (mut stream, head) = upgrade_from("127.0.0.1", http).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        stream.write_all(&frame).await.expect("writes");
        assert_eq!(close_code(&mut stream).await, Some(expected), "{what}");
        assert!(
            closed_reason(&mut events)
                .await
                .starts_with("websocket_error"),
            "{what}"
        );
    }
}
