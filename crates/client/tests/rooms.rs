//! Native clients in rooms of a real `switchboard` server on loopback: presence, both kinds of
//! channel, messages past every buffer, leaves.

use std::time::Duration;

use switchboard_client::{Data, Event, JoinOptions, PeerId, Room};
use switchboard_server::{Config, Server};

const WAIT: Duration = Duration::from_secs(20);

async fn server() -> Server {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..Config::default()
    };
    config.stun.listen = vec!["127.0.0.1:0".parse().expect("address")];
    config.stun.workers = 1;
    Server::start(config).await.expect("server starts")
}

fn room_url(server: &Server, room: &str) -> String {
    format!("ws://{}/ws/{room}", server.local_addr())
}

/// Waits for the first event that `pick` accepts (others are dropped); fails after `WAIT`.
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

async fn connected(room: &mut Room) -> PeerId {
    expect(room, "a connected peer", |e| match e {
        Event::PeerConnected(peer) => Some(peer.id),
        _ => None,
    })
    .await
}

/// A message `i` of `size` bytes: its number first, then a pattern.
fn numbered(i: u32, size: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..size.max(4)).map(|b| (b % 253) as u8).collect();
    bytes[..4].copy_from_slice(&i.to_be_bytes());
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_native_clients_meet_and_exchange_on_both_channels() {
    let server = server().await;
    let mut a = Room::join(&room_url(&server, "native"), JoinOptions::default())
        .await
        .expect("a joins");
    let mut b = Room::join(&room_url(&server, "native"), JoinOptions::default())
        .await
        .expect("b joins");
    assert_eq!(connected(&mut a).await, b.id());
    assert_eq!(connected(&mut b).await, a.id());

    // Reliable: 300 in order, every 50th past the 16 KiB frame (chunked), one of 16 MiB (the
    // default max_message_bytes, far past str0m's 128 KiB send buffer).
    let sizes: Vec<usize> = (0..300)
        .map(|i| match i {
            150 => 16 * 1024 * 1024,
            i if i % 50 == 0 => 64 * 1024 + 7,
            _ => 100,
        })
        .collect();
    for (i, &size) in sizes.iter().enumerate() {
        a.send(b.id(), "reliable", numbered(i as u32, size))
            .expect("queued");
    }
    let mut next = 0u32;
    let a_id = a.id();
    while (next as usize) < sizes.len() {
        let data = expect(&mut b, "a reliable message", |e| match e {
            Event::Message {
                peer,
                channel,
                data,
            } if channel == "reliable" => {
                assert_eq!(peer, a_id);
                Some(data)
            }
            _ => None,
        })
        .await;
        assert_eq!(
            data,
            Data::Binary(numbered(next, sizes[next as usize])),
            "message {next}"
        );
        next += 1;
    }

    // Unreliable: both ways; on loopback most arrive.
    for i in 0..50 {
        b.send(a.id(), "unreliable", format!("u{i}")).expect("sent");
    }
    let first = expect(&mut a, "an unreliable message", |e| match e {
        Event::Message {
            channel,
            data: Data::Text(text),
            ..
        } if channel == "unreliable" => Some(text),
        _ => None,
    })
    .await;
    assert!(first.starts_with('u'), "{first}");
    // Unreliable messages are never chunked: one frame at most.
    let too_big = b.send(a.id(), "unreliable", vec![0u8; 16 * 1024]);
    assert_eq!(too_big.unwrap_err().code, "message_too_big");
    assert!(b
        .send(a.id(), "unreliable", vec![0u8; 16 * 1024 - 1])
        .is_ok());
    assert_eq!(
        b.send(a.id(), "nope", "x").unwrap_err().code,
        "unknown_channel"
    );

    // A channel taken out of the events: its messages go to the socket, until it is dropped.
    let mut socket = a.take_channel("reliable").expect("taken");
    assert_eq!(socket.name(), "reliable");
    assert_eq!(
        a.take_channel("reliable").err().map(|e| e.code),
        Some("channel_taken".to_string())
    );
    b.send(a.id(), "reliable", "to the socket").expect("sent");
    let got = tokio::time::timeout(WAIT, socket.next())
        .await
        .expect("socket message");
    assert_eq!(got, Some((b.id(), Data::Text("to the socket".into()))));
    socket
        .send(b.id(), "back from the socket")
        .expect("socket sends");
    let back = expect(&mut b, "the socket's message", |e| match e {
        Event::Message { data, .. } if data == Data::Text("back from the socket".into()) => {
            Some(())
        }
        _ => None,
    });
    back.await;
    drop(socket);
    b.send(a.id(), "reliable", "to the events").expect("sent");
    let text = expect(&mut a, "a message among the events again", |e| match e {
        Event::Message {
            channel,
            data: Data::Text(text),
            ..
        } if channel == "reliable" => Some(text),
        _ => None,
    })
    .await;
    assert_eq!(text, "to the events");

    // b leaves: a hears it once.
    b.close();
    let reason = expect(&mut a, "b's leave", |e| match e {
        Event::PeerLeft { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert!(
        ["closed", "goodbye", "disconnected"].contains(&reason.as_str()),
        "{reason}"
    );
    assert!(a.peers().is_empty());
}

/// Bytes a reliable message of `len` bytes takes on the wire (what `max_buffered_bytes` counts).
fn framed(len: usize, options: &JoinOptions) -> usize {
    switchboard_protocol::frame::encode(
        false,
        &vec![0u8; len],
        options.frame_bytes,
        true,
        options.max_message_bytes,
    )
    .expect("within max_message_bytes")
    .iter()
    .map(Vec::len)
    .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_thousands_arrives_in_order_and_the_send_queue_limit_holds_on_both_sides() {
    let server = server().await;
    let options = JoinOptions {
        max_buffered_bytes: 1024 * 1024,
        ..JoinOptions::default()
    };
    let mut a = Room::join(&room_url(&server, "burst"), options.clone())
        .await
        .expect("a joins");
    let mut b = Room::join(&room_url(&server, "burst"), JoinOptions::default())
        .await
        .expect("b joins");
    assert_eq!(connected(&mut a).await, b.id());
    assert_eq!(connected(&mut b).await, a.id());

    // 5,000 sends in one go: far more than the room's task takes in one wake-up.
    const BURST: u32 = 5000;
    for i in 0..BURST {
        a.send(b.id(), "reliable", numbered(i, 200))
            .expect("queued");
    }
    for i in 0..BURST {
        let data = expect(&mut b, "a burst message", |e| match e {
            Event::Message { channel, data, .. } if channel == "reliable" => Some(data),
            _ => None,
        })
        .await;
        assert_eq!(
            data,
            Data::Binary(numbered(i, 200)),
            "message {i} of the burst"
        );
    }

    // max_buffered_bytes (1 MiB here), with nothing waiting: a message one byte over it on
    // the wire is refused at once, one exactly at it is accepted and arrives whole.
    let mut at_limit = options.max_buffered_bytes - options.max_buffered_bytes / 64;
    while framed(at_limit + 1, &options) <= options.max_buffered_bytes {
        at_limit += 1;
    }
    assert_eq!(framed(at_limit, &options), options.max_buffered_bytes);
    let over = a.send(b.id(), "reliable", vec![1u8; at_limit + 1]);
    assert_eq!(over.unwrap_err().code, "send_queue_full");
    a.send(b.id(), "reliable", numbered(7, at_limit))
        .expect("exactly max_buffered_bytes is accepted");
    let data = expect(&mut b, "the message at the limit", |e| match e {
        Event::Message { channel, data, .. } if channel == "reliable" => Some(data),
        _ => None,
    })
    .await;
    assert_eq!(data, Data::Binary(numbered(7, at_limit)));
    a.close();
    b.close();
}
