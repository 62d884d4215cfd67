//! A native client and the server peer (`switchboard-peer`): in one hub room (the server peer
//! hosts the room and offers), and without a hub by `POST /connect`, over WebRTC and over the
//! WebSocket fallback. Echoes come back on both channels.

use std::time::Duration;

use switchboard_client::{
    ConnectOptions, Connection, ConnectionEvent, Data, Event, JoinOptions, Room, Transport,
};
use switchboard_peer::{Event as PeerEvent, PeerConfig, Server as PeerServer};
use switchboard_server::{Config, Server};

const WAIT: Duration = Duration::from_secs(20);

async fn hub() -> Server {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..Config::default()
    };
    config.stun.listen = vec!["127.0.0.1:0".parse().expect("address")];
    config.stun.workers = 1;
    Server::start(config).await.expect("hub starts")
}

/// Starts a server peer that echoes every message on its channel (and kicks who sends
/// `kick me`), and returns it with the
/// events it saw besides messages (opens and closes), as lines.
async fn echo_peer() -> (PeerServer, tokio::sync::mpsc::UnboundedReceiver<String>) {
    echo_peer_with(PeerConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..PeerConfig::default()
    })
    .await
}

async fn echo_peer_with(
    config: PeerConfig,
) -> (PeerServer, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (server, mut events) = PeerServer::new(config).await.expect("server peer starts");
    let (lines, seen) = tokio::sync::mpsc::unbounded_channel();
    let echo = server.clone();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                PeerEvent::Received(peer, _, data) if data == Data::Text("kick me".into()) => {
                    echo.kick(peer, "you asked")
                }
                PeerEvent::Received(peer, channel, data) => echo.send_to(&[peer], channel, data),
                PeerEvent::Open(peer) => {
                    let _ = lines.send(format!("open {peer}"));
                }
                PeerEvent::Closed(peer, reason) => {
                    let _ = lines.send(format!("closed {peer} {reason}"));
                }
            }
        }
    });
    (server, seen)
}

async fn expect<T>(room: &mut Room, what: &str, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    let wait = async {
        while let Some(event) = room.next_event().await {
            if let Some(found) = pick(event) {
                return found;
            }
        }
        panic!("events ended before {what}");
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
}

fn numbered(i: u32, size: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..size.max(4)).map(|b| (b % 251) as u8).collect();
    bytes[..4].copy_from_slice(&i.to_be_bytes());
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_client_and_server_peer_echo_on_both_channels() {
    let hub = hub().await;
    let (peer_server, mut seen) = echo_peer().await;
    let url = format!("ws://{}/ws/with-server", hub.local_addr());
    let link = switchboard_peer::hub::join_hub(&peer_server, &url)
        .await
        .expect("server peer hosts the room");

    let mut room = Room::join(&url, JoinOptions::default())
        .await
        .expect("client joins");
    let server_id = expect(&mut room, "the server peer connected", |e| match e {
        Event::PeerConnected(peer) => Some(peer.id),
        _ => None,
    })
    .await;
    assert_eq!(server_id, link.id);

    // Reliable: 200 in order, every 40th past the 16 KiB frame (chunked by both sides), echoed.
    // Sent as soon as the client sees the connection, as a game would, whether or not the server
    // peer has reported it open yet.
    let sizes: Vec<usize> = (0..200)
        .map(|i| if i % 40 == 0 { 64 * 1024 + 3 } else { 200 })
        .collect();
    for (i, &size) in sizes.iter().enumerate() {
        room.send(server_id, "reliable", numbered(i as u32, size))
            .expect("queued");
    }
    let open = tokio::time::timeout(WAIT, seen.recv()).await.expect("open");
    assert_eq!(
        open.as_deref(),
        Some(format!("open {}", room.id()).as_str())
    );
    for (i, &size) in sizes.iter().enumerate() {
        let data = expect(&mut room, "an echo on reliable", |e| match e {
            Event::Message {
                peer,
                channel,
                data,
            } if channel == "reliable" => {
                assert_eq!(peer, server_id);
                Some(data)
            }
            _ => None,
        })
        .await;
        assert_eq!(data, Data::Binary(numbered(i as u32, size)), "echo {i}");
    }

    // Unreliable: a burst, echoed on the unreliable channel (loopback loses few if any).
    for i in 0..50 {
        room.send(server_id, "unreliable", format!("u{i}"))
            .expect("sent");
    }
    let mut echoed = 0;
    while echoed < 10 {
        let text = expect(&mut room, "an echo on unreliable", |e| match e {
            Event::Message {
                channel,
                data: Data::Text(text),
                ..
            } if channel == "unreliable" => Some(text),
            _ => None,
        })
        .await;
        assert!(text.starts_with('u'), "{text}");
        echoed += 1;
    }

    // The client leaves: the server peer closes its side.
    let id = room.id();
    room.close();
    let closed = tokio::time::timeout(WAIT, seen.recv())
        .await
        .expect("close");
    let closed = closed.expect("a line");
    assert!(closed.starts_with(&format!("closed {id}")), "{closed}");
}

/// Serves the server peer's `POST /connect` and `GET /connect/ws`; returns the `POST` URL.
async fn serve_http(server: &PeerServer) -> String {
    let app = switchboard_peer::http::router(server.clone(), 16 * 1024)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let url = format!("http://{}/connect", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn next_server_event(connection: &mut Connection, what: &str) -> ConnectionEvent {
    tokio::time::timeout(WAIT, connection.next_event())
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
        .unwrap_or_else(|| panic!("events ended before {what}"))
}

/// Sends 100 reliable messages (every 25th chunked, one of 1 MiB) and checks every echo comes
/// back in order; then a burst of unreliable ones, of which some must echo. The burst goes once
/// the reliable echoes are all back: the server peer drops an unreliable frame that finds the
/// peer's transport full (docs/server-peer.md), so a burst sent into the 1 MiB of reliable
/// echoes may lose every one of its frames, and whether it did was a matter of timing.
async fn echoes_on_both_channels(connection: &mut Connection) {
    let sizes: Vec<usize> = (0..100)
        .map(|i| match i {
            50 => 1024 * 1024,
            i if i % 25 == 0 => 64 * 1024 + 1,
            _ => 300,
        })
        .collect();
    for (i, &size) in sizes.iter().enumerate() {
        connection
            .send("reliable", numbered(i as u32, size))
            .expect("queued");
    }
    for (next, &size) in sizes.iter().enumerate() {
        let what = format!("reliable echo {next}");
        match next_server_event(connection, &what).await {
            ConnectionEvent::Message { channel, data } => {
                assert_eq!(channel, "reliable", "{what}");
                assert_eq!(data, Data::Binary(numbered(next as u32, size)), "{what}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    for i in 0..30 {
        connection
            .send("unreliable", format!("u{i}"))
            .expect("sent");
    }
    match next_server_event(connection, "an unreliable echo").await {
        ConnectionEvent::Message { channel, data } => {
            assert_eq!(channel, "unreliable");
            assert!(
                matches!(&data, Data::Text(t) if t.starts_with('u')),
                "{data:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_client_connects_to_a_server_peer_by_post() {
    let (peer_server, mut seen) = echo_peer().await;
    let url = serve_http(&peer_server).await;
    let mut connection = Connection::to_server(&url, ConnectOptions::default())
        .await
        .expect("connects");
    assert_eq!(connection.transport(), Transport::WebRtc);
    let id = connection.id().expect("an id from the answer");
    let open = tokio::time::timeout(WAIT, seen.recv()).await.expect("open");
    assert_eq!(open, Some(format!("open {id}")));
    assert_eq!(
        peer_server.transport(id).await,
        Some(switchboard_peer::Transport::WebRtc)
    );
    echoes_on_both_channels(&mut connection).await;

    // Past the limits, refused at once: one byte over a frame on the unreliable channel.
    let too_big = connection.send("unreliable", vec![0u8; 16 * 1024]);
    assert_eq!(too_big.unwrap_err().code, "message_too_big");
    assert!(connection
        .send("unreliable", vec![0u8; 16 * 1024 - 1])
        .is_ok());
    assert_eq!(
        connection.send("nope", "x").unwrap_err().code,
        "unknown_channel"
    );

    // `kick me`: the server peer closes with a goodbye.
    connection.send("reliable", "kick me").expect("sent");
    let closed = loop {
        match next_server_event(&mut connection, "the kick").await {
            ConnectionEvent::Closed { code, .. } => break code,
            ConnectionEvent::Message { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(closed, "goodbye");
    assert!(connection.is_closed());
    assert_eq!(
        connection.send("reliable", "late").unwrap_err().code,
        "room_closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_client_falls_back_to_the_websocket_when_webrtc_cannot_connect() {
    // The server peer advertises an address nobody can reach (TEST-NET-1): ICE never succeeds.
    let (peer_server, mut seen) = echo_peer_with(PeerConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        public_ips: vec!["192.0.2.1".parse().expect("address")],
        ..PeerConfig::default()
    })
    .await;
    let url = serve_http(&peer_server).await;
    let options = ConnectOptions {
        webrtc_timeout: Duration::from_millis(1500),
        ..ConnectOptions::default()
    };
    let mut connection = Connection::to_server(&url, options)
        .await
        .expect("connects over the fallback");
    assert_eq!(connection.transport(), Transport::WebSocket);
    let open = tokio::time::timeout(WAIT, seen.recv()).await.expect("open");
    let open = open.expect("a line");
    assert!(open.starts_with("open "), "{open}");
    echoes_on_both_channels(&mut connection).await;

    connection.close();
    loop {
        match next_server_event(&mut connection, "the close").await {
            ConnectionEvent::Closed { code, .. } => break assert_eq!(code, "closed"),
            // Echoes still on their way.
            ConnectionEvent::Message { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let closed = tokio::time::timeout(WAIT, seen.recv())
        .await
        .expect("closed");
    let closed = closed.expect("a line");
    assert!(closed.contains(" goodbye"), "{closed}");

    // Without the fallback the same server is a clear error.
    let no_fallback = ConnectOptions {
        webrtc_timeout: Duration::from_millis(500),
        websocket_fallback: false,
        ..ConnectOptions::default()
    };
    let refused = Connection::to_server(&url, no_fallback).await;
    assert_eq!(refused.err().map(|e| e.code), Some("webrtc_timeout".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_keep_the_server_peers_code() {
    let (peer_server, _seen) = echo_peer_with(PeerConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        max_peers: 1,
        ..PeerConfig::default()
    })
    .await;
    let url = serve_http(&peer_server).await;
    let _first = Connection::to_server(&url, ConnectOptions::default())
        .await
        .expect("the first fits");
    let second = Connection::to_server(&url, ConnectOptions::default()).await;
    assert_eq!(second.err().map(|e| e.code), Some("server_full".into()));
    // Nothing listens on the path: a clear error, no panic.
    let wrong = url.replace("/connect", "/nothing-here");
    let error = Connection::to_server(&wrong, ConnectOptions::default())
        .await
        .err()
        .expect("refused");
    assert_eq!(error.code, "connection_failed", "{error}");
}

const TLS_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/tests/data");

/// Serves the server peer's HTTP endpoints over TLS (a certificate for `localhost` from a
/// private CA); returns the `https://` `POST` URL.
async fn serve_https(server: &PeerServer) -> String {
    let app = switchboard_peer::http::router(server.clone(), 16 * 1024)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(
        format!("{TLS_DATA}/localhost.crt"),
        format!("{TLS_DATA}/localhost.key"),
    )
    .await
    .expect("the test certificate");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("non-blocking");
    let port = listener.local_addr().expect("address").port();
    let served = axum_server::from_tcp_rustls(listener, tls).expect("a TLS listener");
    tokio::spawn(async move { served.serve(app).await });
    format!("https://localhost:{port}/connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_client_reaches_a_server_peer_over_https_and_its_fallback_over_wss() {
    let trusted = ConnectOptions {
        tls_roots_pem: Some(std::fs::read_to_string(format!("{TLS_DATA}/ca.crt")).expect("ca")),
        webrtc_timeout: Duration::from_millis(1500),
        ..ConnectOptions::default()
    };
    // POST over TLS, then WebRTC.
    let (peer_server, _seen) = echo_peer().await;
    let url = serve_https(&peer_server).await;
    let mut connection = Connection::to_server(&url, trusted.clone())
        .await
        .expect("connects over https");
    assert_eq!(connection.transport(), Transport::WebRtc);
    echoes_on_both_channels(&mut connection).await;
    connection.close();
    // Without the private CA: the TLS handshake fails, clearly.
    let refused = Connection::to_server(&url, ConnectOptions::default()).await;
    let error = refused.err().expect("refused");
    assert_eq!(error.code, "connection_failed");
    assert!(error.message.contains("TLS"), "{}", error.message);

    // WebRTC cannot connect: the fallback goes over wss://.
    let (unreachable, _seen) = echo_peer_with(PeerConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        public_ips: vec!["192.0.2.1".parse().expect("address")],
        ..PeerConfig::default()
    })
    .await;
    let url = serve_https(&unreachable).await;
    let mut connection = Connection::to_server(&url, trusted)
        .await
        .expect("connects over the wss fallback");
    assert_eq!(connection.transport(), Transport::WebSocket);
    echoes_on_both_channels(&mut connection).await;
    connection.close();
}
