//! A native client and the server peer (`switchboard-peer`) in one hub room: the server peer
//! hosts the room and offers; the client answers. Echoes come back on both channels.

use std::time::Duration;

use switchboard_client::{Data, Event, JoinOptions, Room};
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

/// Starts a server peer that echoes every message on its channel, and returns it with the
/// events it saw besides messages (opens and closes), as lines.
async fn echo_peer() -> (PeerServer, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let config = PeerConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..PeerConfig::default()
    };
    let (server, mut events) = PeerServer::new(config).await.expect("server peer starts");
    let (lines, seen) = tokio::sync::mpsc::unbounded_channel();
    let echo = server.clone();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
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
