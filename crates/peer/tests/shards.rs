//! Peers spread over several shards (one socket each on the one UDP port, SO_REUSEPORT): the
//! kernel picks a browser's shard by its address, so most peers move from the shard that made
//! them; every API still reaches every peer. Real sockets, native WebRTC clients.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{server, Client};
use switchboard_peer::{Channel, Data, Event, PeerConfig, PeerId};
use switchboard_protocol::frame::Message;

const SHARDS: usize = 4;
const CLIENTS: usize = 12;

async fn next_open(events: &mut switchboard_peer::Events) -> PeerId {
    loop {
        if let Event::Open(peer) = events.recv().await {
            return peer;
        }
    }
}

fn text(message: &(bool, Message)) -> (bool, String) {
    match message {
        (reliable, Message::Binary(bytes)) => (*reliable, String::from_utf8_lossy(bytes).into()),
        (reliable, Message::Text(text)) => (*reliable, text.clone()),
        (reliable, Message::Goodbye(reason)) => (*reliable, format!("goodbye: {reason}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kick_broadcast_send_to_and_shutdown_reach_peers_on_every_shard() {
    let config = PeerConfig {
        shards: SHARDS,
        ..PeerConfig::default()
    };
    let (server, mut events, http) = server(config).await;
    // Each client is told its id by the server in a first message, so it can be matched.
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(Client::connect(http).await);
        ids.push(next_open(&mut events).await);
    }
    assert_eq!(server.peer_count().await, CLIENTS);
    // Four shards, twelve clients: the chance that the kernel sent every client to the shard that
    // made its peer is 4^-12.
    assert!(
        server.stats().peers_moved.get() > 0,
        "{}",
        server.stats().render()
    );
    for (client, id) in clients.iter_mut().zip(&ids) {
        server.send_reliable(*id, format!("you are {id}"));
        assert_eq!(
            text(&client.message(Duration::from_secs(5)).await),
            (true, format!("you are {id}"))
        );
        // And the other way: what a client sends reaches the application as its peer.
        client.send(true, b"hello");
    }
    let mut heard = HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while heard.len() < CLIENTS {
        assert!(
            std::time::Instant::now() < deadline,
            "heard {} of {CLIENTS}",
            heard.len()
        );
        // The clients' frames go out as they are stepped.
        for client in &mut clients {
            let until = std::time::Instant::now() + Duration::from_millis(2);
            client.step(until).await.expect("a client");
        }
        for event in events.pop_all() {
            match event {
                Event::Received(peer, Channel::Reliable, Data::Binary(bytes)) => {
                    assert_eq!(bytes, b"hello");
                    heard.insert(peer);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(heard, ids.iter().copied().collect());

    // A broadcast on each channel reaches every shard's peers.
    server.broadcast_reliable("everyone");
    for client in &mut clients {
        assert_eq!(
            text(&client.message(Duration::from_secs(5)).await),
            (true, "everyone".into())
        );
    }
    // send_to a set spread over shards: those peers get it, in order before the next broadcast;
    // the others only get the broadcast.
    let chosen: Vec<PeerId> = ids.iter().copied().step_by(2).collect();
    server.send_to(&chosen, Channel::Reliable, "some");
    server.broadcast_reliable("end");
    for (client, id) in clients.iter_mut().zip(&ids) {
        if chosen.contains(id) {
            assert_eq!(
                text(&client.message(Duration::from_secs(5)).await),
                (true, "some".into())
            );
        }
        assert_eq!(
            text(&client.message(Duration::from_secs(5)).await),
            (true, "end".into())
        );
    }

    // A kick reaches its peer wherever it lives.
    let kicked = ids[CLIENTS - 1];
    server.kick(kicked, "bye");
    assert_eq!(
        text(&clients[CLIENTS - 1].message(Duration::from_secs(5)).await),
        (true, "goodbye: bye".into())
    );
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Event::Closed(peer, reason)) => {
                assert_eq!((peer, reason.as_str()), (kicked, "kicked: bye"));
                break;
            }
            Ok(_) => {}
            Err(_) => panic!("no Closed for the kicked peer"),
        }
    }

    // Shutdown closes every shard's peers with a goodbye.
    server.shutdown();
    for client in clients.iter_mut().take(CLIENTS - 1) {
        assert_eq!(
            text(&client.message(Duration::from_secs(5)).await),
            (true, "goodbye: shutdown".into())
        );
    }
    let mut closed = HashSet::new();
    while closed.len() < CLIENTS - 1 {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Event::Closed(peer, reason)) => {
                assert_eq!(reason, "shutdown");
                closed.insert(peer);
            }
            Ok(_) => {}
            Err(_) => panic!("closed {} of {}", closed.len(), CLIENTS - 1),
        }
    }
    assert!(!closed.contains(&kicked));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_port_in_use_is_an_error_not_shared() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = PeerConfig {
        listen: taken.local_addr().unwrap(),
        shards: SHARDS,
        ..PeerConfig::default()
    };
    let error = switchboard_peer::Server::new(config).await.err();
    assert!(error.is_some(), "a second server on a taken port must fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_stops_every_shard_and_frees_the_port() {
    let config = PeerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        shards: SHARDS,
        ..PeerConfig::default()
    };
    let (server, events) = switchboard_peer::Server::new(config).await.unwrap();
    let addr = server.local_addr();
    assert!(
        std::net::UdpSocket::bind(addr).is_err(),
        "the shards hold the port"
    );
    drop((server, events));
    // The shards hold only weak senders to each other: with every handle gone they stop and
    // close their sockets.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::net::UdpSocket::bind(addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "a shard outlived its handles"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
