//! Native clients in a cluster (two, then three `switchboard` nodes sharing a real redis-server)
//! behind a TCP load balancer: when the node holding a room's signaling drains (a rolling
//! restart), the room connects again through the balancer with its resume token, by itself, and
//! keeps its id, its peers and their data channels; nobody sees anybody leave.

#[path = "../../server/tests/common/redis.rs"]
mod redis;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_client::{Data, Event, JoinOptions, PeerId, Room};
use switchboard_server::{Config, Server};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(20);

async fn node(redis: &redis::Redis) -> Server {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..Config::default()
    };
    config.stun.listen = vec!["127.0.0.1:0".parse().expect("address")];
    config.stun.workers = 1;
    config.cluster.redis = Some(redis.url());
    config.cluster.release_interval_ms = 200;
    Server::start(config).await.expect("node starts")
}

/// A TCP load balancer: each connection goes to the next of its backends, in turn.
struct Balancer {
    addr: SocketAddr,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Balancer {
    async fn start(backends: Vec<SocketAddr>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("an address");
        let backends = Arc::new(Mutex::new(backends));
        let shared = backends.clone();
        tokio::spawn(async move {
            let mut turn = 0usize;
            while let Ok((mut client, _)) = listener.accept().await {
                let backend = {
                    let list = shared.lock().expect("backends");
                    turn += 1;
                    list[turn % list.len()]
                };
                tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        Balancer { addr, backends }
    }

    fn set(&self, backends: Vec<SocketAddr>) {
        *self.backends.lock().expect("backends") = backends;
    }

    fn room_url(&self, room: &str) -> String {
        format!("ws://{}/ws/{room}", self.addr)
    }
}

/// Takes `room`'s events until `pick` accepts one; any leave or close fails the test.
async fn expect<T>(room: &mut Room, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let wait = async {
        while let Some(event) = room.next_event().await {
            match &event {
                Event::PeerLeft { peer, reason } => {
                    panic!("{} left ({reason}) while waiting for {what}", peer.id)
                }
                Event::Closed { code, reason } => {
                    panic!("the room closed ({code}: {reason}) while waiting for {what}")
                }
                _ => {}
            }
            if let Some(found) = pick(&event) {
                return found;
            }
        }
        panic!("events ended before {what}");
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
}

fn connected(event: &Event) -> Option<PeerId> {
    match event {
        Event::PeerConnected(peer) => Some(peer.id),
        _ => None,
    }
}

fn text_from(from: PeerId) -> impl FnMut(&Event) -> Option<String> {
    move |event| match event {
        Event::Message {
            peer,
            data: Data::Text(text),
            ..
        } if *peer == from => Some(text.clone()),
        _ => None,
    }
}

/// Lets `room` handle what arrives for `quiet`, failing on any leave or close.
async fn settle(room: &mut Room, quiet: Duration) {
    let _ = tokio::time::timeout(quiet, expect(room, "nothing", |_| None::<()>)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_follow_their_signaling_to_another_node_when_theirs_drains() {
    let redis = redis::Redis::start();
    let first = node(&redis).await;
    let second = node(&redis).await;
    let balancer = Balancer::start(vec![first.local_addr(), second.local_addr()]).await;
    let options = JoinOptions {
        resumable: true,
        ..JoinOptions::default()
    };
    // The balancer sends one to each node.
    let url = balancer.room_url("rolling");
    let mut a = Room::join(&url, options.clone()).await.expect("a joins");
    let mut b = Room::join(&url, options.clone()).await.expect("b joins");
    let (id_a, id_b) = (a.id(), b.id());
    let tokens = (a.resume_token(), b.resume_token());
    assert!(tokens.0.is_some() && tokens.1.is_some());
    assert_eq!(expect(&mut a, "b connected", connected).await, id_b);
    assert_eq!(expect(&mut b, "a connected", connected).await, id_a);

    // Restart both nodes, one after the other, while the room lives: each drains (its rooms
    // go to the other node, its peers are told to connect again), a fresh node takes its place.
    let third = node(&redis).await;
    balancer.set(vec![second.local_addr(), third.local_addr()]);
    first.shutdown().await;
    settle(&mut a, Duration::from_millis(500)).await;
    settle(&mut b, Duration::from_millis(500)).await;
    let fourth = node(&redis).await;
    balancer.set(vec![third.local_addr(), fourth.local_addr()]);
    second.shutdown().await;
    settle(&mut a, Duration::from_millis(500)).await;
    settle(&mut b, Duration::from_millis(500)).await;

    // Both moved (each was on a node that drained): same ids, new tokens.
    assert_eq!((a.id(), b.id()), (id_a, id_b));
    assert_ne!(a.resume_token(), tokens.0, "a moved");
    assert_ne!(b.resume_token(), tokens.1, "b moved");
    // The data channels never went through a node.
    a.send(id_b, "reliable", "after the restarts")
        .expect("queued");
    assert_eq!(
        expect(&mut b, "a's message", text_from(id_a)).await,
        "after the restarts"
    );
    // Signaling works on the new nodes: a newcomer meets both, and both meet it.
    let mut late = Room::join(&url, options.clone()).await.expect("late joins");
    let mut met = vec![
        expect(&mut late, "a first peer", connected).await,
        expect(&mut late, "a second peer", connected).await,
    ];
    met.sort();
    let mut both = vec![id_a, id_b];
    both.sort();
    assert_eq!(met, both);
    assert_eq!(expect(&mut a, "late connected", connected).await, late.id());
    assert_eq!(expect(&mut b, "late connected", connected).await, late.id());
    third.shutdown().await;
    fourth.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_that_reaches_the_draining_node_and_then_a_stopped_one_tries_again() {
    let redis = redis::Redis::start();
    let first = node(&redis).await;
    let second = node(&redis).await;
    // The balancer sends everything to the first node, and goes on doing so while it drains and
    // after it stopped (no health check); only later does it send connections to the second.
    let balancer = Balancer::start(vec![first.local_addr()]).await;
    let options = JoinOptions {
        resumable: true,
        ..JoinOptions::default()
    };
    let url = balancer.room_url("retried");
    let mut a = Room::join(&url, options.clone()).await.expect("a joins");
    let mut b = Room::join(&url, options.clone()).await.expect("b joins");
    let (id_a, id_b) = (a.id(), b.id());
    let tokens = (a.resume_token(), b.resume_token());
    assert_eq!(expect(&mut a, "b connected", connected).await, id_b);
    assert_eq!(expect(&mut b, "a connected", connected).await, id_a);

    let stopping = tokio::spawn(async move { first.shutdown().await });
    settle(&mut a, Duration::from_millis(300)).await;
    settle(&mut b, Duration::from_millis(300)).await;
    stopping.await.expect("the first node stops");
    settle(&mut a, Duration::from_millis(300)).await;
    balancer.set(vec![second.local_addr()]);
    settle(&mut a, Duration::from_millis(2_500)).await;
    settle(&mut b, Duration::from_millis(100)).await;

    // Both moved after refusals: same ids, new tokens, nobody left, the channel still works and
    // the signaling too.
    assert_eq!((a.id(), b.id()), (id_a, id_b));
    assert_ne!(a.resume_token(), tokens.0, "a moved");
    assert_ne!(b.resume_token(), tokens.1, "b moved");
    b.send(id_a, "reliable", "after the retries")
        .expect("queued");
    assert_eq!(
        expect(&mut a, "b's message", text_from(id_b)).await,
        "after the retries"
    );
    let mut late = Room::join(&url, options).await.expect("late joins");
    expect(&mut late, "a peer", connected).await;
    assert_eq!(expect(&mut a, "late connected", connected).await, late.id());
    second.shutdown().await;
}
