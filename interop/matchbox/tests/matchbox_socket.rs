//! Two unmodified `matchbox_socket` 0.15 peers (native, webrtc-rs) meet through `switchboard
//! serve`'s matchbox endpoint and exchange reliable and unreliable messages over WebRTC; the
//! built-in STUN server is their ICE server; `?next=2` pairs them; a peer that goes away is
//! reported disconnected to the other.

use std::time::{Duration, Instant};

use matchbox_socket::{PeerId, PeerState, RtcIceServerConfig, WebRtcSocket};
use switchboard_server::{Config, Server};

const RELIABLE: usize = 0;
const UNRELIABLE: usize = 1;
const WAIT: Duration = Duration::from_secs(30);

async fn server() -> Server {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("an address"),
        ..Config::default()
    };
    config.stun.listen = vec!["127.0.0.1:0".parse().expect("an address")];
    config.stun.workers = 1;
    Server::start(config).await.expect("the server starts")
}

/// A matchbox socket with a reliable and an unreliable channel, its message loop on tokio.
fn socket(server: &Server, path: &str) -> WebRtcSocket {
    let stun = server.stun_addrs()[0];
    let (socket, message_loop) =
        WebRtcSocket::builder(format!("ws://{}/matchbox/{path}", server.local_addr()))
            .ice_server(RtcIceServerConfig {
                urls: vec![format!("stun:{stun}")],
                username: None,
                credential: None,
            })
            .add_reliable_channel()
            .add_unreliable_channel()
            .build();
    tokio::spawn(message_loop);
    socket
}

/// Polls `socket` (as a game loop would) until `done` says yes or `WAIT` passes.
async fn until<T>(
    socket: &mut WebRtcSocket,
    mut done: impl FnMut(&mut WebRtcSocket) -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = done(socket) {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for the first peer to connect; returns its id.
async fn connected(socket: &mut WebRtcSocket) -> PeerId {
    until(socket, |s| {
        s.update_peers()
            .into_iter()
            .find(|(_, state)| *state == PeerState::Connected)
            .map(|(peer, _)| peer)
    })
    .await
}

/// Waits for `count` messages on `channel` (a receive drains every message waiting); returns
/// them with their senders, in arrival order.
async fn received(
    socket: &mut WebRtcSocket,
    channel: usize,
    count: usize,
) -> Vec<(PeerId, Vec<u8>)> {
    let mut got = Vec::new();
    until(socket, |s| {
        got.extend(
            s.channel_mut(channel)
                .receive()
                .into_iter()
                .map(|(peer, packet)| (peer, packet.to_vec())),
        );
        (got.len() >= count).then(|| std::mem::take(&mut got))
    })
    .await
}

async fn meet_and_talk(path: &str) {
    let server = server().await;
    let mut ann = socket(&server, path);
    let mut bob = socket(&server, path);
    let (ann_sees, bob_sees) = tokio::join!(connected(&mut ann), connected(&mut bob));
    assert_eq!(Some(ann_sees), bob.id(), "ann's peer is bob");
    assert_eq!(Some(bob_sees), ann.id(), "bob's peer is ann");
    // Reliable both ways, in order; unreliable arrives on loopback.
    for n in 0..20u8 {
        ann.channel_mut(RELIABLE)
            .send(vec![n; 1000].into(), ann_sees);
    }
    let expected: Vec<(PeerId, Vec<u8>)> = (0..20u8).map(|n| (bob_sees, vec![n; 1000])).collect();
    assert_eq!(received(&mut bob, RELIABLE, 20).await, expected);
    bob.channel_mut(UNRELIABLE)
        .send(b"fast".to_vec().into(), bob_sees);
    assert_eq!(
        received(&mut ann, UNRELIABLE, 1).await,
        vec![(ann_sees, b"fast".to_vec())]
    );
    // Bob goes away: ann's socket reports him disconnected.
    drop(bob);
    until(&mut ann, |s| {
        s.update_peers()
            .into_iter()
            .any(|(peer, state)| peer == ann_sees && state == PeerState::Disconnected)
            .then_some(())
    })
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_matchbox_sockets_meet_in_a_room() {
    meet_and_talk("arena").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_two_pairs_two_matchbox_sockets() {
    meet_and_talk("lobby?next=2").await;
}

/// The ids of the peers `socket` is connected to now.
fn connected_now(socket: &mut WebRtcSocket) -> Vec<PeerId> {
    socket.update_peers();
    socket.connected_peers().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_server_topology_connects_each_client_to_the_host_only() {
    let server = server().await;
    let path = "arena?topology=client_server";
    let mut host = socket(&server, path);
    let host_id = until(&mut host, |s| {
        s.update_peers();
        s.id()
    })
    .await;
    let mut a = socket(&server, path);
    let mut b = socket(&server, path);
    until(&mut host, |s| (connected_now(s).len() == 2).then_some(())).await;
    assert_eq!(connected(&mut a).await, host_id);
    assert_eq!(connected(&mut b).await, host_id);
    // Each client knows the host and nobody else, then and a while later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(connected_now(&mut a), vec![host_id]);
    assert_eq!(connected_now(&mut b), vec![host_id]);
    let (a_id, b_id) = (a.id().expect("a's id"), b.id().expect("b's id"));
    for (client, id) in [(&mut a, a_id), (&mut b, b_id)] {
        client
            .channel_mut(RELIABLE)
            .send(id.to_string().into_bytes().into(), host_id);
    }
    let mut got = received(&mut host, RELIABLE, 2).await;
    got.sort();
    let mut expected = vec![
        (a_id, a_id.to_string().into_bytes()),
        (b_id, b_id.to_string().into_bytes()),
    ];
    expected.sort();
    assert_eq!(got, expected, "each client's message reached the host");
    host.channel_mut(RELIABLE)
        .send(b"to a".to_vec().into(), a_id);
    assert_eq!(
        received(&mut a, RELIABLE, 1).await,
        vec![(host_id, b"to a".to_vec())]
    );
    server.shutdown().await;
}
