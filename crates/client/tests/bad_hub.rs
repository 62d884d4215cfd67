//! A hub that misbehaves (garbage, closes mid-handshake, silence, hostile signals) gives the
//! native client clear errors and never a panic. The hub here is a plain WebSocket server on
//! loopback that plays a script.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use switchboard_client::{Error, Event, JoinOptions, Room};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);
const ME: &str = "6f1c0e7d9a2b4c8e9f00112233445566";
const OTHER: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// What the fake hub does with the one connection it takes.
#[derive(Clone)]
enum Script {
    /// Drops the TCP connection before the WebSocket handshake.
    DropTcp,
    /// Upgrades, then sends these frames, then either closes with a reason or drops the socket.
    Send(Vec<Message>, Option<&'static str>),
    /// Upgrades and says nothing for a long time.
    Silent,
}

async fn fake_hub(script: Script) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listener");
    let url = format!("ws://{}/ws/lobby", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        if matches!(script, Script::DropTcp) {
            return;
        }
        let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
            return;
        };
        match script {
            Script::DropTcp => {}
            Script::Silent => tokio::time::sleep(Duration::from_secs(30)).await,
            Script::Send(frames, close) => {
                for frame in frames {
                    if ws.send(frame).await.is_err() {
                        return;
                    }
                }
                // Let the client read before the ending.
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Some(reason) = close {
                    let frame = CloseFrame {
                        code: CloseCode::Policy,
                        reason: reason.into(),
                    };
                    let _ = ws.send(Message::Close(Some(frame))).await;
                    // Reads until the client's close answer (or the end).
                    while let Some(Ok(_)) = ws.next().await {}
                }
                // Dropped without a close frame when there is no reason.
            }
        }
    });
    url
}

fn welcome() -> Message {
    Message::text(format!(
        r#"{{"type": "welcome", "version": 1, "id": "{ME}", "room": "lobby", "peers": [],
        "ice_servers": [], "heartbeat_ms": 5000, "idle_timeout_ms": 15000,
        "max_message_bytes": 65536, "resume_grace_ms": 10000, "detached_ttl_ms": 3600000,
        "room_info": {{"kind": "named", "topology": "mesh", "capacity": 8, "host": "{ME}",
        "host_leaves": "migrate", "public": false}}}}"#
    ))
}

async fn join_error(script: Script, options: JoinOptions) -> Error {
    let url = fake_hub(script).await;
    match tokio::time::timeout(WAIT, Room::join(&url, options)).await {
        Ok(Ok(_)) => panic!("joined a hub that misbehaved"),
        Ok(Err(error)) => error,
        Err(_) => panic!("join did not give up"),
    }
}

#[tokio::test]
async fn garbage_before_the_welcome_is_a_bad_server_message() {
    let error = join_error(
        Script::Send(vec![Message::text("this is not json")], None),
        JoinOptions::default(),
    )
    .await;
    assert_eq!(error.code, "bad_server_message", "{error}");
    let error = join_error(
        Script::Send(vec![Message::binary(vec![0xc1, 0xff, 0x00])], None),
        JoinOptions::default(),
    )
    .await;
    assert_eq!(error.code, "bad_server_message", "{error}");
    // Valid JSON, but not a welcome.
    let early = format!(r#"{{"type": "peer_joined", "id": "{OTHER}"}}"#);
    let error = join_error(
        Script::Send(vec![Message::text(early)], None),
        JoinOptions::default(),
    )
    .await;
    assert_eq!(error.code, "bad_server_message", "{error}");
}

#[tokio::test]
async fn a_hub_that_closes_mid_handshake_is_a_clear_error() {
    let error = join_error(Script::DropTcp, JoinOptions::default()).await;
    assert_eq!(error.code, "connection_failed", "{error}");
    let error = join_error(
        Script::Send(Vec::new(), Some("too_many_connections")),
        JoinOptions::default(),
    )
    .await;
    assert_eq!(error.code, "too_many_connections", "{error}");
    let error = join_error(Script::Send(Vec::new(), None), JoinOptions::default()).await;
    assert!(
        ["connection_closed", "connection_failed"].contains(&error.code.as_str()),
        "{error}"
    );
    let quick = JoinOptions {
        join_timeout: Duration::from_millis(300),
        ..JoinOptions::default()
    };
    let error = join_error(Script::Silent, quick).await;
    assert_eq!(error.code, "join_timeout", "{error}");
}

#[tokio::test]
async fn garbage_after_the_welcome_is_reported_and_the_room_goes_on() {
    let frames = vec![
        welcome(),
        Message::text("{not json"),
        Message::binary(vec![0x93, 0x01]),
        // A type from a later server: skipped without a word.
        Message::text(r#"{"type": "from_the_future", "x": 1}"#),
        Message::text(r#"{"type": "peer_joined", "id": "not-an-id"}"#),
        Message::text(format!(r#"{{"type": "peer_joined", "id": "{OTHER}"}}"#)),
        // It joined after us, so we offer: an offer from it is out of turn (bad_signal).
        Message::text(format!(
            r#"{{"type": "signal", "from": "{OTHER}", "data": {{"type": "offer", "sdp": "garbage",
            "channels": "0:reliable:o:-:-,1:unreliable:u:0:-"}}}}"#
        )),
        // A signal that is not a signal.
        Message::text(format!(
            r#"{{"type": "signal", "from": "{OTHER}", "data": {{"type": "nonsense"}}}}"#
        )),
        // Its answer is not SDP at all: that connection fails, nothing else.
        Message::text(format!(
            r#"{{"type": "signal", "from": "{OTHER}", "data": {{"type": "answer", "sdp": "garbage"}}}}"#
        )),
        // A signal from nobody in the room.
        Message::text(format!(
            r#"{{"type": "signal", "from": "{ME}", "data": {{"type": "answer", "sdp": "v=0"}}}}"#
        )),
    ];
    let url = fake_hub(Script::Send(frames, None)).await;
    let mut room = tokio::time::timeout(WAIT, Room::join(&url, JoinOptions::default()))
        .await
        .expect("in time")
        .expect("joins");
    let mut errors = Vec::new();
    let mut joined = false;
    let mut left = None;
    let closed = loop {
        let event = tokio::time::timeout(WAIT, room.next_event())
            .await
            .expect("events go on")
            .expect("a closed event before the end");
        match event {
            Event::Error { error, .. } => errors.push(error.code),
            Event::PeerJoined(peer) => {
                assert_eq!(peer.id.to_string(), OTHER);
                joined = true;
            }
            Event::PeerLeft { peer, reason } => {
                assert_eq!(peer.id.to_string(), OTHER);
                left = Some(reason);
            }
            Event::Closed { code, .. } => break code,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(joined, "the valid peer_joined after the garbage was taken");
    assert_eq!(
        errors.iter().filter(|c| *c == "bad_server_message").count(),
        3,
        "{errors:?}"
    );
    assert_eq!(
        errors.iter().filter(|c| *c == "bad_signal").count(),
        2,
        "{errors:?}"
    );
    assert_eq!(left.as_deref(), Some("connection_failed"), "{errors:?}");
    // The hub dropped the socket without a close frame.
    assert_eq!(closed, "connection_closed");
    assert!(room.is_closed());
}
