//! A reliable send is never lost while the peer is connected: messages far past str0m's 128 KiB
//! send buffer, and bursts of thousands, come back whole and in order; a peer that stops reading
//! is closed with `send_queue_full` while its neighbour is unaffected; unreliable frames past a
//! full transport are dropped and counted. A native str0m client over real UDP on loopback.

mod common;

use std::time::{Duration, Instant};

use common::{echo, pattern, server, Client, Seen};
use switchboard_peer::{Event, PeerConfig};
use switchboard_protocol::frame::Message;

/// Sends `messages` reliably and checks that each comes back whole and in order.
async fn echoed_in_order(client: &mut Client, messages: &[Vec<u8>], within: Duration) {
    for message in messages {
        client.send(true, message);
    }
    let deadline = Instant::now() + within;
    for (i, sent) in messages.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        let (reliable, got) = client.message(left).await;
        assert!(reliable, "message {i} came back on the reliable channel");
        let Message::Binary(got) = got else {
            panic!("message {i}: not binary");
        };
        assert_eq!(got.len(), sent.len(), "message {i} has its length");
        assert!(&got == sent, "message {i} came back byte for byte");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_past_the_transport_buffer_come_back_whole_and_in_order() {
    let (server, events, http) = server(PeerConfig::default()).await;
    let _seen = echo(server.clone(), events);
    let mut client = Client::connect(http).await;
    // Both sides of str0m's 128 KiB buffer, then 1 MiB and the 16 MiB maximum.
    let sizes = [
        128 * 1024 - 64,
        128 * 1024 + 64,
        140_000,
        1024 * 1024,
        16 * 1024 * 1024,
    ];
    let messages: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| pattern(i as u32, size))
        .collect();
    echoed_in_order(&mut client, &messages, Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_a_thousand_8_kib_messages_comes_back_in_order() {
    let (server, events, http) = server(PeerConfig::default()).await;
    let _seen = echo(server.clone(), events);
    let mut client = Client::connect(http).await;
    let messages: Vec<Vec<u8>> = (0..1000).map(|i| pattern(i, 8 * 1024)).collect();
    echoed_in_order(&mut client, &messages, Duration::from_secs(60)).await;
    // Nothing is left waiting once everything came back.
    let peer_backlog = server.stats().render();
    assert!(
        peer_backlog.contains("switchboard_peer_queued_bytes 0"),
        "{peer_backlog}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_is_closed_and_its_neighbour_is_not_disturbed() {
    let limit = 1024 * 1024;
    let config = PeerConfig {
        send_queue_bytes: limit,
        max_message_bytes: 512 * 1024,
        ..PeerConfig::default()
    };
    let (server, mut events, http) = server(config).await;
    let mut neighbour = Client::connect(http).await;
    let stalled = Client::connect(http).await;
    let mut peers = Vec::new();
    while peers.len() < 2 {
        if let Event::Open(peer) = events.recv().await {
            peers.push(peer);
        }
    }
    let (neighbour_id, stalled_id) = (peers[0], peers[1]);
    // The stalled client never steps again: it acknowledges nothing. Fill its queue one 64 KiB
    // message at a time, watching its backlog grow to the limit and not past it.
    let chunk = pattern(7, 64 * 1024);
    let mut sent = 0;
    let mut closed = None;
    let mut largest = 0;
    while closed.is_none() {
        assert!(sent < 100, "the stalled peer was never closed");
        server.send_reliable(stalled_id, chunk.clone());
        sent += 1;
        match server.buffered(stalled_id).await {
            Some(backlog) => largest = largest.max(backlog),
            None => {
                for event in events.pop_all() {
                    if let Event::Closed(peer, reason) = event {
                        closed = Some((peer, reason));
                    }
                }
            }
        }
    }
    // Up to the limit, plus the transport's own 128 KiB.
    assert!(largest > limit - 64 * 1024, "largest backlog {largest}");
    assert!(largest <= limit + 128 * 1024, "largest backlog {largest}");
    assert_eq!(
        closed,
        Some((stalled_id, "send_queue_full".to_owned())),
        "closed for its full queue"
    );
    assert_eq!(server.buffered(stalled_id).await, None);
    assert!(server
        .stats()
        .render()
        .contains("switchboard_peer_send_queue_full_total 1"));
    // The neighbour keeps working: a burst past its transport's buffer arrives whole, and its
    // backlog drains to nothing.
    let burst: Vec<Vec<u8>> = (0..12).map(|i| pattern(i, 64 * 1024)).collect();
    for message in &burst {
        server.send_reliable(neighbour_id, message.clone());
    }
    for (i, message) in burst.into_iter().enumerate() {
        let got = neighbour.message(Duration::from_secs(10)).await;
        assert_eq!(
            got,
            (true, Message::Binary(message)),
            "neighbour message {i}"
        );
    }
    server.send_reliable(neighbour_id, "still here");
    assert_eq!(
        neighbour.message(Duration::from_secs(5)).await,
        (true, Message::Text("still here".into()))
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.buffered(neighbour_id).await != Some(0) {
        assert!(Instant::now() < deadline, "the neighbour's backlog drains");
        let _ = neighbour.next(Duration::from_millis(50)).await;
    }
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreliable_frames_past_a_full_transport_are_dropped_and_counted() {
    let (server, mut events, http) = server(PeerConfig::default()).await;
    let stalled = Client::connect(http).await;
    let peer = loop {
        if let Event::Open(peer) = events.recv().await {
            break peer;
        }
    };
    // 400 x 1 KiB with nobody acknowledging: str0m takes 128 KiB, the rest is dropped.
    for i in 0..400u32 {
        server.send_unreliable(peer, common::pattern(i, 1024));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = server.stats().render();
        let dropped: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("switchboard_peer_unreliable_dropped_total "))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if dropped > 0 {
            assert!(dropped < 400, "the first ones went out ({dropped} dropped)");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no unreliable frame was dropped: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Dropping unreliable frames does not close the peer.
    assert!(server.buffered(peer).await.is_some());
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_closes_the_channels_and_the_association_after_the_goodbye() {
    // A long linger: the close waits for the acknowledgement, however slow this machine is.
    let config = PeerConfig {
        close_linger: Duration::from_secs(30),
        ..PeerConfig::default()
    };
    let (server, mut events, http) = server(config).await;
    let mut client = Client::connect(http).await;
    let peer = loop {
        if let Event::Open(peer) = events.recv().await {
            break peer;
        }
    };
    // A large message is queued first: the goodbye comes after it, in order.
    let big = pattern(3, 1024 * 1024);
    server.send_reliable(peer, big.clone());
    server.kick(peer, "cheating");
    let started = Instant::now();
    assert_eq!(
        client.message(Duration::from_secs(10)).await,
        (true, Message::Binary(big))
    );
    assert_eq!(
        client.message(Duration::from_secs(5)).await,
        (true, Message::Goodbye("cheating".into()))
    );
    // Then the transport closes as soon as the goodbye is acknowledged: a client that ignores
    // the goodbye still sees its channels end.
    let acknowledged = Instant::now();
    assert_eq!(
        client.next(Duration::from_secs(5)).await,
        Some(Seen::Closed)
    );
    assert!(
        acknowledged.elapsed() < Duration::from_secs(1),
        "{:?}",
        acknowledged.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // The application saw it closed once, with the reason.
    let closed = tokio::time::timeout(Duration::from_secs(2), events.recv()).await;
    assert_eq!(closed, Ok(Event::Closed(peer, "kicked: cheating".into())));
    assert!(events.pop_all().is_empty(), "nothing after Closed");
    assert_eq!(server.peer_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kicked_peer_that_takes_nothing_is_removed_after_the_linger() {
    let config = PeerConfig {
        close_linger: Duration::from_millis(300),
        ..PeerConfig::default()
    };
    let (server, mut events, http) = server(config).await;
    let stalled = Client::connect(http).await;
    let peer = loop {
        if let Event::Open(peer) = events.recv().await {
            break peer;
        }
    };
    server.kick(peer, "bye");
    assert_eq!(
        events.recv().await,
        Event::Closed(peer, "kicked: bye".into()),
        "the application is told at once"
    );
    assert_eq!(server.peer_count().await, 1, "lingering for the goodbye");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(server.peer_count().await, 0, "gone after the linger");
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_says_goodbye_and_closes_every_transport() {
    let (server, mut events, http) = server(PeerConfig::default()).await;
    let mut client = Client::connect(http).await;
    assert!(matches!(events.recv().await, Event::Open(_)));
    server.shutdown();
    assert_eq!(
        client.message(Duration::from_secs(5)).await,
        (true, Message::Goodbye("shutdown".into()))
    );
    assert_eq!(
        client.next(Duration::from_secs(5)).await,
        Some(Seen::Closed)
    );
    assert!(matches!(events.recv().await, Event::Closed(_, reason) if reason == "shutdown"));
    // A stopped server takes no new peers.
    let (status, body) = common::post(http, "/connect", "v=0").await;
    assert_eq!(status, 503, "{body}");
}
