//! The WebSocket fallback (`GET /connect/ws`) over real sockets on loopback: the application sees
//! the same events as for a WebRTC peer, sends reach the browser on both channels, kicks and
//! closes are reported once, bad input closes only the sender with a reason, silent peers time out.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use switchboard_peer::{Channel, Data, Event, Events, PeerConfig, PeerId, Server, Transport};
use switchboard_protocol::frame::{self, Message as Frame, Reassembler};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(5);

/// A server peer with its HTTP router on a free loopback port.
async fn start(config: PeerConfig) -> (Server, Events, String) {
    let config = PeerConfig {
        listen: "127.0.0.1:0".parse().expect("an address"),
        ..config
    };
    let (server, events) = Server::new(config).await.expect("the server starts");
    let app = switchboard_peer::http::router(server.clone(), 16 * 1024);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!(
        "ws://{}/connect/ws",
        listener.local_addr().expect("an address")
    );
    // With the client address, so per-address limits apply (`max_peers_per_ip`).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (server, events, url)
}

async fn open(url: &str) -> Socket {
    tokio_tungstenite::connect_async(url)
        .await
        .expect("the websocket opens")
        .0
}

async fn next_event(events: &mut Events) -> Event {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event in time")
}

async fn opened(events: &mut Events) -> PeerId {
    match next_event(events).await {
        Event::Open(peer) => peer,
        other => panic!("expected Open, got {other:?}"),
    }
}

/// One WebSocket message: a channel byte, then a data channel frame.
fn message(channel: u8, frame: &[u8]) -> Message {
    let mut bytes = vec![channel];
    bytes.extend_from_slice(frame);
    Message::Binary(bytes.into())
}

fn frames(text: bool, data: &[u8]) -> Vec<Vec<u8>> {
    frame::encode(text, data, 16 * 1024, true, 16 << 20).expect("fits")
}

/// Reads until a whole message arrives on the socket; returns its channel byte and message.
async fn receive(socket: &mut Socket, reassemblers: &mut [Reassembler; 2]) -> (u8, Frame) {
    loop {
        let next = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("no socket error");
        let Message::Binary(bytes) = next else {
            continue;
        };
        let (&channel, frame) = bytes.split_first().expect("a channel byte");
        let reassembler = &mut reassemblers[usize::from(channel)];
        if let Some(message) = reassembler.push(frame).expect("a good frame") {
            return (channel, message);
        }
    }
}

/// Reads until the close frame; returns its code and reason.
async fn closed(socket: &mut Socket) -> (CloseCode, String) {
    loop {
        match tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a close in time")
        {
            Some(Ok(Message::Close(Some(close)))) => return (close.code, close.reason.to_string()),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

fn reassemblers() -> [Reassembler; 2] {
    [Reassembler::new(16 << 20), Reassembler::new(16 << 20)]
}

#[tokio::test]
async fn both_channels_both_ways_with_the_same_events_as_webrtc() {
    let (server, mut events, url) = start(PeerConfig::default()).await;
    let mut socket = open(&url).await;
    let peer = opened(&mut events).await;
    assert_eq!(server.transport(peer).await, Some(Transport::WebSocket));
    assert_eq!(server.peer_count().await, 1);

    // Browser to server: text on reliable, a chunked 100 kB binary on reliable, binary on
    // unreliable.
    let big = vec![5u8; 100_000];
    for frame in frames(true, b"hello") {
        socket.send(message(0, &frame)).await.expect("sent");
    }
    for frame in frames(false, &big) {
        socket.send(message(0, &frame)).await.expect("sent");
    }
    for frame in frames(false, &[1, 2, 3]) {
        socket.send(message(1, &frame)).await.expect("sent");
    }
    assert_eq!(
        next_event(&mut events).await,
        Event::Received(peer, Channel::Reliable, Data::Text("hello".into()))
    );
    assert_eq!(
        next_event(&mut events).await,
        Event::Received(peer, Channel::Reliable, Data::Binary(big.clone()))
    );
    assert_eq!(
        next_event(&mut events).await,
        Event::Received(peer, Channel::Unreliable, Data::Binary(vec![1, 2, 3]))
    );

    // Server to browser: sends, sends to a set, broadcasts.
    let mut inbound = reassemblers();
    server.send_reliable(peer, big.clone());
    server.send_unreliable(peer, "fast");
    server.send_to(&[peer], Channel::Reliable, "to a set");
    server.broadcast_unreliable(vec![9u8]);
    assert_eq!(
        receive(&mut socket, &mut inbound).await,
        (0, Frame::Binary(big))
    );
    assert_eq!(
        receive(&mut socket, &mut inbound).await,
        (1, Frame::Text("fast".into()))
    );
    assert_eq!(
        receive(&mut socket, &mut inbound).await,
        (0, Frame::Text("to a set".into()))
    );
    assert_eq!(
        receive(&mut socket, &mut inbound).await,
        (1, Frame::Binary(vec![9]))
    );

    // Many sends queued at once (more than the loop takes in one wake-up) all arrive, in order.
    for n in 0..500 {
        server.send_reliable(peer, format!("burst {n}"));
    }
    for n in 0..500 {
        assert_eq!(
            receive(&mut socket, &mut inbound).await,
            (0, Frame::Text(format!("burst {n}")))
        );
    }

    // The browser says goodbye: Closed once, with its reason.
    socket
        .send(message(0, &frame::goodbye("page closed")))
        .await
        .expect("sent");
    assert_eq!(
        next_event(&mut events).await,
        Event::Closed(peer, "goodbye: page closed".into())
    );
    assert_eq!(server.transport(peer).await, None);
    assert_eq!(server.peer_count().await, 0);
}

#[tokio::test]
async fn a_kick_reaches_the_browser_as_goodbye_and_closes_the_socket() {
    let (server, mut events, url) = start(PeerConfig::default()).await;
    let mut socket = open(&url).await;
    let peer = opened(&mut events).await;
    server.kick(peer, "cheating");
    assert_eq!(
        next_event(&mut events).await,
        Event::Closed(peer, "kicked: cheating".into())
    );
    assert_eq!(
        receive(&mut socket, &mut reassemblers()).await,
        (0, Frame::Goodbye("cheating".into()))
    );
    assert_eq!(closed(&mut socket).await.0, CloseCode::Normal);
}

/// A browser whose connection ends with no close frame (a crash, a killed tab's process) is
/// reported as `websocket_closed` whether TCP ends with a FIN or a reset, not as an error.
#[tokio::test]
async fn a_socket_that_ends_without_a_close_frame_is_websocket_closed() {
    let (_server, mut events, url) = start(PeerConfig::default()).await;
    for reset in [false, true] {
        let mut socket = open(&url).await;
        let peer = opened(&mut events).await;
        let MaybeTlsStream::Plain(tcp) = socket.get_mut() else {
            panic!("plain TCP")
        };
        if reset {
            tcp.set_zero_linger().expect("linger set");
        } else {
            tokio::io::AsyncWriteExt::shutdown(tcp)
                .await
                .expect("the FIN is sent");
        }
        drop(socket);
        assert_eq!(
            next_event(&mut events).await,
            Event::Closed(peer, "websocket_closed".into()),
            "reset: {reset}"
        );
    }
}

#[tokio::test]
async fn bad_input_closes_only_its_sender_with_a_reason() {
    let (server, mut events, url) = start(PeerConfig::default()).await;
    let mut bystander = open(&url).await;
    let bystander_id = opened(&mut events).await;
    let cases: [(Message, CloseCode, &str); 4] = [
        (
            Message::Text("hello".into()),
            CloseCode::Unsupported,
            "bad_frame: text message",
        ),
        (
            message(7, &[0, 1]),
            CloseCode::Policy,
            "bad_frame: unknown channel",
        ),
        (
            Message::Binary(Vec::new().into()),
            CloseCode::Policy,
            "bad_frame: unknown channel",
        ),
        (
            message(0, &[42, 1, 2]),
            CloseCode::Policy,
            "bad_frame: bad frame: unknown frame kind",
        ),
    ];
    for (bad, code, reason) in cases {
        let mut socket = open(&url).await;
        let peer = opened(&mut events).await;
        socket.send(bad).await.expect("sent");
        assert_eq!(
            next_event(&mut events).await,
            Event::Closed(peer, reason.into())
        );
        assert_eq!(closed(&mut socket).await.0, code);
    }
    // A message bigger than socket_max_frame_bytes ends that socket too.
    let mut socket = open(&url).await;
    let peer = opened(&mut events).await;
    let _ = socket.send(message(0, &vec![0u8; 300 * 1024])).await;
    match next_event(&mut events).await {
        Event::Closed(closed, reason) => {
            assert_eq!(closed, peer);
            assert!(reason.starts_with("websocket_error"), "{reason}");
        }
        other => panic!("expected Closed, got {other:?}"),
    }
    // The bystander saw none of it and still works both ways.
    server.send_reliable(bystander_id, "still here");
    assert_eq!(
        receive(&mut bystander, &mut reassemblers()).await,
        (0, Frame::Text("still here".into()))
    );
    for frame in frames(true, b"me too") {
        bystander.send(message(0, &frame)).await.expect("sent");
    }
    assert_eq!(
        next_event(&mut events).await,
        Event::Received(bystander_id, Channel::Reliable, Data::Text("me too".into()))
    );
}

#[tokio::test]
async fn a_silent_peer_times_out_and_max_peers_counts_both_transports() {
    let config = PeerConfig {
        socket_ping_interval: Duration::from_millis(100),
        socket_idle_timeout: Duration::from_millis(400),
        max_peers: 1,
        ..PeerConfig::default()
    };
    let (server, mut events, url) = start(config).await;
    // This client never reads, so it never answers pings: it looks dead to the server.
    let _silent = open(&url).await;
    let peer = opened(&mut events).await;
    // Full: a second socket is refused before the upgrade (503, server_full), with no event.
    let refused = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect_err("refused");
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("expected an HTTP refusal, got {refused:?}");
    };
    assert_eq!(response.status(), 503);
    let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
    assert!(body.contains("server_full"), "{body}");
    assert_eq!(
        next_event(&mut events).await,
        Event::Closed(peer, "timeout".into())
    );
    assert_eq!(server.peer_count().await, 0);
}

#[tokio::test]
async fn the_fallback_can_be_turned_off() {
    let config = PeerConfig {
        websocket_fallback: false,
        ..PeerConfig::default()
    };
    let (_server, _events, url) = start(config).await;
    let error = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect_err("no such route");
    assert!(error.to_string().contains("404"), "{error}");
}
