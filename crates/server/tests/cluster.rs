//! Cluster mode: three nodes in one process sharing a real redis-server, real WebSocket
//! clients connected to different nodes. Each test has its own Redis.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use common::redis::Redis;
use common::*;
use switchboard_protocol::{
    ClientMessage, ErrorCode, LeaveReason, PeerInfo, ServerMessage, Target,
};
use switchboard_server::Server;

/// Three nodes of one cluster.
struct Cluster {
    redis: Redis,
    nodes: Vec<Server>,
}

impl Cluster {
    /// Three nodes with a message budget and send queues above the bursts the tests send.
    async fn start() -> Cluster {
        Self::start_with(roomy).await
    }

    async fn start_with(adjust: impl Fn(&mut switchboard_server::Config)) -> Cluster {
        let redis = Redis::start();
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let mut config = node_config(&redis);
            adjust(&mut config);
            nodes.push(start(config).await);
        }
        Cluster { redis, nodes }
    }

    fn addr(&self, node: usize) -> SocketAddr {
        self.nodes[node].local_addr()
    }

    async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
    }
}

/// A message budget and send queues above the bursts the tests send.
fn roomy(config: &mut switchboard_server::Config) {
    config.limits.messages_per_second = 10_000;
    config.limits.message_burst = 10_000;
    config.limits.send_queue_messages = 4096;
}

fn node_config(redis: &Redis) -> switchboard_server::Config {
    let mut config = config();
    config.cluster.redis = Some(redis.url());
    config.cluster.release_interval_ms = 200;
    config
}

/// The next message that is not a presence event.
async fn next_message(client: &mut Client) -> ServerMessage {
    loop {
        match client.recv().await {
            ServerMessage::PeerJoined(_) | ServerMessage::PeerLeft { .. } => continue,
            other => return other,
        }
    }
}

fn joined(client: &Client) -> ServerMessage {
    ServerMessage::PeerJoined(PeerInfo {
        id: client.id(),
        name: client.welcome.name.clone(),
        resumable: false,
    })
}

#[tokio::test]
async fn peers_on_three_nodes_share_a_room_presence_and_every_route() {
    // Batches of at most 7 records: the burst below spans hundreds of them.
    let cluster = Cluster::start_with(|config| {
        roomy(config);
        config.cluster.max_batch_records = 7;
    })
    .await;
    let mut ann = Client::join(cluster.addr(0), "lobby", "user=ann").await;
    let mut bob = Client::join(cluster.addr(1), "lobby", "user=bob&enc=msgpack").await;
    assert_eq!(bob.welcome.peers.len(), 1, "bob meets ann across nodes");
    assert_eq!(bob.welcome.peers[0].id, ann.id());
    assert_eq!(ann.recv().await, joined(&bob));
    let mut cat = Client::join(cluster.addr(2), "lobby", "user=cat").await;
    let met: Vec<_> = cat.welcome.peers.iter().map(|p| p.id).collect();
    assert_eq!(met, vec![ann.id(), bob.id()]);
    assert_eq!(ann.recv().await, joined(&cat));
    assert_eq!(bob.recv().await, joined(&cat));

    // To the room, from a node that does not own it, in both encodings.
    bob.send_json(Target::Room, r#"{"n":1}"#).await;
    for client in [&mut ann, &mut cat] {
        assert_eq!(
            client.recv().await,
            ServerMessage::Message {
                from: bob.id(),
                data: json(r#"{"n":1}"#)
            }
        );
    }
    // By id, by name and to self, each from another node.
    cat.send_json(Target::Peer(bob.id()), r#"{"to":"bob"}"#)
        .await;
    assert_eq!(
        bob.recv().await,
        ServerMessage::Message {
            from: cat.id(),
            data: json(r#"{"to":"bob"}"#)
        }
    );
    ann.send_json(Target::Name("cat".into()), r#""hi cat""#)
        .await;
    assert_eq!(
        cat.recv().await,
        ServerMessage::Message {
            from: ann.id(),
            data: json(r#""hi cat""#)
        }
    );
    bob.send(ClientMessage::Signal {
        to: Target::Myself,
        data: json(r#"{"me":true}"#),
    })
    .await;
    assert_eq!(
        bob.recv().await,
        ServerMessage::Signal {
            from: bob.id(),
            data: json(r#"{"me":true}"#)
        }
    );
    // Errors come back to the sender from the owner.
    cat.send_json(Target::Name("nobody".into()), "1").await;
    assert_eq!(cat.recv_error().await, ErrorCode::UnknownName);
    cat.send(ClientMessage::Ping { nonce: Some(7) }).await;
    assert_eq!(
        next_message(&mut cat).await,
        ServerMessage::Pong { nonce: Some(7) }
    );

    // A burst in order, across nodes.
    for n in 0..3000 {
        bob.send_json(Target::Peer(cat.id()), &n.to_string()).await;
    }
    for n in 0..3000 {
        assert_eq!(
            cat.recv().await,
            ServerMessage::Message {
                from: bob.id(),
                data: json(&n.to_string())
            }
        );
    }

    // Leaves are heard on every node.
    let bob_id = bob.id();
    drop(bob);
    for client in [&mut ann, &mut cat] {
        assert_eq!(
            client.recv().await,
            ServerMessage::PeerLeft {
                id: bob_id,
                reason: LeaveReason::Closed
            }
        );
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn the_rate_limit_holds_for_a_peer_on_another_node_than_its_room() {
    let cluster = Cluster::start_with(|_| {}).await;
    let mut ann = Client::join(cluster.addr(0), "busy", "").await;
    let mut bob = Client::join(cluster.addr(1), "busy", "").await;
    ann.recv().await; // bob joined
    let burst = switchboard_server::Config::default().limits.message_burst;
    for n in 0..burst + 50 {
        bob.send_json(Target::Peer(ann.id()), &n.to_string()).await;
    }
    assert_eq!(bob.recv_error().await, ErrorCode::RateLimited);
    for n in 0..burst {
        assert_eq!(
            ann.recv().await,
            ServerMessage::Message {
                from: bob.id(),
                data: json(&n.to_string())
            }
        );
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn user_names_are_unique_per_room_across_nodes() {
    let cluster = Cluster::start().await;
    let _ann = Client::join(cluster.addr(0), "names", "user=ann").await;
    let mut again = raw(cluster.addr(1), "/ws/names?user=ann").await;
    let (code, close, _) = expect_refusal(&mut again, switchboard_protocol::Encoding::Json).await;
    assert_eq!((code, close), (ErrorCode::NameTaken, 4004));
    // The same name in another room is fine.
    Client::join(cluster.addr(2), "other", "user=ann").await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn two_joiners_racing_on_two_nodes_for_the_last_seat_of_a_match() {
    let cluster = Cluster::start().await;
    for round in 0..5 {
        let key = format!("duel{round}");
        let mut first = Client::at(cluster.addr(0), &format!("/ws?match=2&key={key}")).await;
        let path = format!("/ws?match=2&key={key}");
        let (a, b) = tokio::join!(
            Client::at(cluster.addr(1), &path),
            Client::at(cluster.addr(2), &path)
        );
        let winners: Vec<&Client> = [&a, &b]
            .into_iter()
            .filter(|c| c.welcome.room == first.welcome.room)
            .collect();
        assert_eq!(winners.len(), 1, "exactly one takes the last seat");
        let loser = if winners[0].id() == a.id() { &b } else { &a };
        assert!(
            loser.welcome.peers.is_empty(),
            "the other opens a new match"
        );
        assert_eq!(first.recv().await, joined(winners[0]));
        assert_eq!(next_message(&mut first).await, ServerMessage::RoomStarted);
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_code_room_made_on_one_node_is_joined_from_another() {
    let cluster = Cluster::start().await;
    let mut host = Client::at(cluster.addr(0), "/ws?create=code").await;
    let code = host.welcome.room.clone();
    let mut guest = Client::at(cluster.addr(1), &format!("/ws?code={code}")).await;
    assert_eq!(guest.welcome.room, code);
    assert_eq!(guest.welcome.peers[0].id, host.id());
    assert_eq!(host.recv().await, joined(&guest));
    guest.send_json(Target::Room, "42").await;
    assert_eq!(
        host.recv().await,
        ServerMessage::Message {
            from: guest.id(),
            data: json("42")
        }
    );
    // A code nobody made is refused from any node.
    let mut lost = raw(cluster.addr(2), "/ws?code=ZZZZZZ").await;
    let (code, _, _) = expect_refusal(&mut lost, switchboard_protocol::Encoding::Json).await;
    assert_eq!(code, ErrorCode::NoSuchRoom);
    cluster.shutdown().await;
}

#[tokio::test]
async fn the_host_moves_to_another_node_and_kicks_across_nodes() {
    let cluster = Cluster::start().await;
    let ann = Client::join(cluster.addr(0), "hosted", "user=ann").await;
    let mut bob = Client::join(cluster.addr(1), "hosted", "user=bob").await;
    let mut cat = Client::join(cluster.addr(2), "hosted", "user=cat").await;
    bob.recv().await; // cat joined
                      // Bob is not the host yet.
    bob.send(ClientMessage::Kick { peer: cat.id() }).await;
    assert_eq!(bob.recv_error().await, ErrorCode::NotHost);
    let ann_id = ann.id();
    drop(ann);
    assert_eq!(
        bob.recv().await,
        ServerMessage::PeerLeft {
            id: ann_id,
            reason: LeaveReason::Closed
        }
    );
    assert!(
        matches!(next_message(&mut bob).await, ServerMessage::HostChanged { host } if host == bob.id())
    );
    bob.send(ClientMessage::Kick { peer: cat.id() }).await;
    let (close, reason) = cat.closed().await;
    assert_eq!((close, reason.as_str()), (4011, "kicked"));
    assert_eq!(
        bob.recv().await,
        ServerMessage::PeerLeft {
            id: cat.id(),
            reason: LeaveReason::Kicked
        }
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn an_emptied_room_is_given_up_and_taken_by_the_next_node() {
    let cluster = Cluster::start().await;
    let mut redis = ::redis::Client::open(cluster.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ann = Client::join(cluster.addr(0), "passing", "").await;
    let owner: Option<String> = ::redis::cmd("GET")
        .arg("switchboard:room:passing")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(owner.is_some(), "the room has an owner in Redis");
    drop(ann);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let owner: Option<String> = ::redis::cmd("GET")
            .arg("switchboard:room:passing")
            .query_async(&mut redis)
            .await
            .unwrap();
        if owner.is_none() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the room is released"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Taken again from another node, which now owns it.
    let mut bob = Client::join(cluster.addr(1), "passing", "").await;
    let cat = Client::join(cluster.addr(2), "passing", "").await;
    assert_eq!(bob.recv().await, joined(&cat));
    cluster.shutdown().await;
}

#[tokio::test]
async fn garbage_and_forged_records_on_a_nodes_channel_are_dropped_and_counted() {
    let cluster = Cluster::start().await;
    let mut ann = Client::join(cluster.addr(0), "guarded", "").await;
    let mut bob = Client::join(cluster.addr(1), "guarded", "").await;
    ann.recv().await; // bob joined
    let mut redis = ::redis::Client::open(cluster.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let channels: Vec<String> = ::redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("switchboard:to:*")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(channels.len(), 3, "one channel per node");
    // A delivery to bob "from" a node that does not own his room, and plain garbage.
    let map = |pairs: Vec<(&str, rmpv::Value)>| {
        rmpv::Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    };
    let frame = map(vec![
        ("text", true.into()),
        (
            "bytes",
            rmpv::Value::Binary(br#"{"type":"message","from":"x","data":1}"#.to_vec()),
        ),
    ]);
    let deliver = map(vec![
        ("to", rmpv::Value::Array(vec![bob.id().to_string().into()])),
        ("frame", frame),
    ]);
    let forged = map(vec![
        ("from", 12345u64.into()),
        (
            "records",
            rmpv::Value::Array(vec![map(vec![("Deliver", deliver)])]),
        ),
    ]);
    let mut forged_bytes = Vec::new();
    rmpv::encode::write_value(&mut forged_bytes, &forged).unwrap();
    // Frames "from bob" sent by a node that is not his: his room's owner must not act on them.
    let text = br#"{"type":"message","to":"room","data":"forged"}"#.to_vec();
    let frames = map(vec![
        ("peer", bob.id().to_string().into()),
        ("conn", 0u64.into()),
        (
            "frames",
            rmpv::Value::Array(vec![map(vec![
                ("text", true.into()),
                ("bytes", rmpv::Value::Binary(text)),
            ])]),
        ),
    ]);
    let forged_frames = map(vec![
        ("from", 54321u64.into()),
        (
            "records",
            rmpv::Value::Array(vec![map(vec![("Frames", frames)])]),
        ),
    ]);
    let mut frames_bytes = Vec::new();
    rmpv::encode::write_value(&mut frames_bytes, &forged_frames).unwrap();
    for channel in &channels {
        for message in [
            forged_bytes.clone(),
            frames_bytes.clone(),
            b"\xc1garbage".to_vec(),
            Vec::new(),
        ] {
            let _: i64 = ::redis::cmd("PUBLISH")
                .arg(channel)
                .arg(message)
                .query_async(&mut redis)
                .await
                .unwrap();
        }
    }
    // Nothing reached bob or ann; the room still works both ways.
    bob.expect_silence(Duration::from_millis(300)).await;
    ann.expect_silence(Duration::from_millis(100)).await;
    ann.send_json(Target::Room, "1").await;
    assert_eq!(
        bob.recv().await,
        ServerMessage::Message {
            from: ann.id(),
            data: json("1")
        }
    );
    let mut dropped = 0;
    for node in 0..3 {
        let (_, metrics) = http_get(cluster.addr(node), "/metrics").await;
        for line in metrics.lines() {
            if line.starts_with("switchboard_cluster_dropped_total") {
                dropped += line.rsplit(' ').next().unwrap().parse::<u64>().unwrap();
            }
        }
        assert!(metrics.contains("switchboard_cluster_nodes"));
    }
    // Per node: two bad batches, the forged delivery refused (bob is on one node only; on the
    // others the record finds nobody) and the forged frames refused.
    assert_eq!(dropped, 3 * 2 + 3 + 3);
    let (status, _) = http_get(cluster.addr(0), "/healthz").await;
    assert!(status.contains("200"), "{status}");
    cluster.shutdown().await;
}

#[tokio::test]
async fn an_admin_drain_sends_the_peers_elsewhere_and_healthz_tells_balancers_to_follow() {
    let cluster = Cluster::start_with(|config| {
        roomy(config);
        config.admin_token = Some("an admin token long enough".into());
    })
    .await;
    let mut ann = Client::join(cluster.addr(1), "drained", "user=ann").await;
    let mut bob = Client::join(cluster.addr(0), "drained", "user=bob&resumable=true").await;
    ann.recv().await;
    let (bob_id, token) = (bob.id(), bob.welcome.resume_token.clone().unwrap());
    let (status, _) = http_get(cluster.addr(0), "/healthz").await;
    assert!(status.contains("200"), "{status}");
    let (status, body) = request(
        cluster.addr(0),
        "POST",
        "/admin/drain",
        Some("an admin token long enough"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(bob.closed().await, (1012, "draining".into()));
    // The drained node stays up but says so to health checks, and refuses new peers; the others
    // are healthy.
    let (status, body) = http_get(cluster.addr(0), "/healthz").await;
    assert!(status.contains("503"), "{status}");
    assert_eq!(body, "draining\n");
    let (status, _) = http_get(cluster.addr(1), "/healthz").await;
    assert!(status.contains("200"), "{status}");
    let mut refused = raw(cluster.addr(0), "/ws/drained").await;
    let (code, close, _) = expect_refusal(&mut refused, switchboard_protocol::Encoding::Json).await;
    assert_eq!((code, close), (ErrorCode::Draining, 1012));
    // Bob comes back through another node with his token; ann sees nothing.
    let back = Client::at(cluster.addr(2), &format!("/ws/drained?resume={token}")).await;
    assert!(back.welcome.resumed);
    assert_eq!(back.id(), bob_id);
    ann.expect_silence(Duration::from_millis(300)).await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_peer_resumes_on_another_node_keeps_its_id_and_the_room_sees_nothing() {
    let cluster = Cluster::start().await;
    let mut ann = Client::join(cluster.addr(0), "resumes", "user=ann").await;
    let bob = Client::join(cluster.addr(1), "resumes", "user=bob&resumable=true").await;
    assert_eq!(
        ann.recv().await,
        ServerMessage::PeerJoined(PeerInfo {
            id: bob.id(),
            name: Some("bob".into()),
            resumable: true,
        })
    );
    let (bob_id, token) = (bob.id(), bob.welcome.resume_token.clone().unwrap());
    // Bob's node loses him; he comes back through the third node.
    bob.vanish(Vanish::Reset).await;
    let mut back = Client::at(cluster.addr(2), &format!("/ws/resumes?resume={token}")).await;
    assert!(back.welcome.resumed);
    assert_eq!(back.id(), bob_id);
    assert_eq!(back.welcome.peers.len(), 1);
    ann.send_json(Target::Name("bob".into()), "1").await;
    assert_eq!(
        back.recv().await,
        ServerMessage::Message {
            from: ann.id(),
            data: json("1")
        }
    );
    // While connected, he resumes on the first node: the third node's connection is replaced.
    let next = back.welcome.resume_token.clone().unwrap();
    let mut again = Client::at(cluster.addr(0), &format!("/ws/resumes?resume={next}")).await;
    assert_eq!(again.id(), bob_id);
    assert_eq!(back.closed().await, (4014, "replaced".into()));
    again.send_json(Target::Name("ann".into()), "2").await;
    assert_eq!(
        next_message(&mut ann).await,
        ServerMessage::Message {
            from: bob_id,
            data: json("2")
        }
    );
    ann.expect_silence(Duration::from_millis(300)).await;
    // A used token is refused from every node.
    let mut spent = raw(cluster.addr(1), &format!("/ws/resumes?resume={token}")).await;
    let (code, _, _) = expect_refusal(&mut spent, switchboard_protocol::Encoding::Json).await;
    assert_eq!(code, ErrorCode::ResumeFailed);
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_match_room_member_resumes_on_another_node_after_the_match_started() {
    let cluster = Cluster::start().await;
    let mut one = Client::at(cluster.addr(0), "/ws?match=2&key=r&resumable=true").await;
    let two = Client::at(cluster.addr(1), "/ws?match=2&key=r&resumable=true").await;
    one.recv().await; // two joined
    assert_eq!(next_message(&mut one).await, ServerMessage::RoomStarted);
    let (id, token) = (two.id(), two.welcome.resume_token.clone().unwrap());
    two.vanish(Vanish::Fin).await;
    let back = Client::at(cluster.addr(2), &format!("/ws?resume={token}")).await;
    assert_eq!((back.id(), back.welcome.resumed), (id, true));
    cluster.shutdown().await;
}

#[tokio::test]
async fn redis_restarting_empty_disconnects_nobody_and_the_nodes_say_again_what_they_own() {
    let cluster = Cluster::start_with(|config| {
        config.cluster.heartbeat_ms = 100;
        config.cluster.node_ttl_ms = 1000;
    })
    .await;
    let mut ann = Client::join(cluster.addr(0), "steady", "user=ann").await;
    let mut bob = Client::join(cluster.addr(0), "steady", "user=bob").await;
    let mut cat = Client::join(cluster.addr(1), "steady", "user=cat").await;
    ann.recv().await; // bob
    ann.recv().await; // cat
    bob.recv().await; // cat
    let port = cluster.redis.addr.port();
    let Cluster { redis, nodes } = cluster;
    redis.kill();
    // Peers of one node keep talking while Redis is gone; the node says it is not healthy.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _) = http_get(nodes[0].local_addr(), "/healthz").await;
        if status.contains("503") {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let (_, metrics) = http_get(nodes[0].local_addr(), "/metrics").await;
            panic!("healthz turns 503: {metrics}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for n in 0..20 {
        ann.send_json(Target::Name("bob".into()), &n.to_string())
            .await;
        assert_eq!(
            bob.recv().await,
            ServerMessage::Message {
                from: ann.id(),
                data: json(&n.to_string())
            }
        );
    }
    // Redis comes back empty on the same port.
    let redis = Redis::start_on(port);
    let mut store = ::redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let owner: Option<String> = ::redis::cmd("GET")
            .arg("switchboard:room:steady")
            .query_async(&mut store)
            .await
            .unwrap();
        let (status, _) = http_get(nodes[1].local_addr(), "/healthz").await;
        if owner.is_some() && status.contains("200") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the owner says again it owns the room"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Across nodes again, once the subscriptions are back; nobody was disconnected or left.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut n = 0;
    loop {
        n += 1;
        cat.send_json(Target::Name("ann".into()), &n.to_string())
            .await;
        // A message published while the subscription was down is lost; the next one arrives.
        tokio::select! {
            message = ann.recv() => match message {
                ServerMessage::Message { from, .. } if from == cat.id() => break,
                other => panic!("only cat's messages: {other:?}"),
            },
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "cross-node messages flow again"
        );
    }
    bob.expect_silence(Duration::from_millis(200)).await;
    drop(redis);
    for node in nodes {
        node.shutdown().await;
    }
}

/// A peer of the rolling-restart test: reads everything, counts room messages, notes every
/// `peer_left` and anything else that goes wrong, and resumes on another node when its node
/// drains (close 1012), as the browser client does.
async fn rolling_peer(
    mut socket: Socket,
    welcome: Value,
    room: String,
    book: Arc<Mutex<Vec<SocketAddr>>>,
    mut say: tokio::sync::mpsc::UnboundedReceiver<u32>,
    heard: Arc<AtomicUsize>,
    wrong: Arc<Mutex<Vec<String>>>,
) {
    let id = welcome["id"].as_str().unwrap().to_owned();
    let mut token = welcome["resume_token"].as_str().unwrap().to_owned();
    let mut at = socket.get_ref().get_ref().peer_addr().ok();
    loop {
        tokio::select! {
            n = say.recv() => {
                let Some(n) = n else { return };
                let text = serde_json::json!({"type": "message", "to": "room", "data": n}).to_string();
                if socket.send(Message::Text(text.into())).await.is_err() {
                    wrong.lock().unwrap().push(format!("{id}: cannot send"));
                }
            }
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(&text).unwrap();
                    match message["type"].as_str() {
                        Some("message") => {
                            heard.fetch_add(1, Ordering::Relaxed);
                        }
                        Some("peer_left") => wrong.lock().unwrap().push(format!("{id} saw {message}")),
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(Some(close)))) if u16::from(close.code) == 1012 => {
                    let others: Vec<SocketAddr> =
                        book.lock().unwrap().iter().copied().filter(|a| Some(*a) != at).collect();
                    let addr = others[rand_index(others.len())];
                    let mut back = raw(addr, &format!("/ws/{room}?resume={token}")).await;
                    let welcome: Value = serde_json::from_str(&next_text(&mut back).await).unwrap();
                    if welcome["resumed"] != true || welcome["id"] != id.as_str() {
                        wrong.lock().unwrap().push(format!("{id}: resume answered {welcome}"));
                        return;
                    }
                    token = welcome["resume_token"].as_str().unwrap().to_owned();
                    at = Some(addr);
                    heard.fetch_add(RESUMED, Ordering::Relaxed);
                    socket = back;
                }
                Some(Ok(Message::Close(close))) => {
                    wrong.lock().unwrap().push(format!("{id}: closed {close:?}"));
                    return;
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => {
                    wrong.lock().unwrap().push(format!("{id}: connection lost"));
                    return;
                }
            }
        }
    }
}

/// Counted in the same counter as heard messages, in its high bits.
const RESUMED: usize = 1 << 32;

fn rand_index(len: usize) -> usize {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize)
        % len
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_node_shows_no_peer_left_to_anyone() {
    const ROOMS: usize = 30;
    const PER_ROOM: usize = 10;
    let redis = Redis::start();
    let node_config = || {
        let mut config = node_config(&redis);
        config.cluster.heartbeat_ms = 200;
        config.cluster.node_ttl_ms = 1000;
        config.limits.max_connections_per_ip = 1000;
        config.limits.joins_per_ip_per_second = 10_000;
        config.limits.join_burst_per_ip = 10_000;
        config
    };
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(start(node_config()).await);
    }
    let book = Arc::new(Mutex::new(
        nodes.iter().map(Server::local_addr).collect::<Vec<_>>(),
    ));
    let heard = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(Mutex::new(Vec::new()));
    let mut mouths = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..ROOMS * PER_ROOM {
        let (room, node) = (format!("roll{}", i % ROOMS), (i / ROOMS) % 3);
        let mut socket = raw(
            nodes[node].local_addr(),
            &format!("/ws/{room}?resumable=true"),
        )
        .await;
        let welcome: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
        assert_eq!(welcome["type"], "welcome");
        let (say, said) = tokio::sync::mpsc::unbounded_channel();
        mouths.push(say);
        let peer = rolling_peer(
            socket,
            welcome,
            room,
            book.clone(),
            said,
            heard.clone(),
            wrong.clone(),
        );
        tasks.push(tokio::spawn(peer));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Restart every node in turn: drain it (its rooms go to the others, its peers resume
    // elsewhere), start a new one in its place.
    for _ in 0..3 {
        let old = nodes.remove(0);
        book.lock().unwrap().retain(|a| *a != old.local_addr());
        old.shutdown().await;
        let new = start(node_config()).await;
        book.lock().unwrap().push(new.local_addr());
        nodes.push(new);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert!(
        wrong.lock().unwrap().is_empty(),
        "{:#?}",
        wrong.lock().unwrap()
    );
    // Everyone is still in a room of ten: one message each reaches the nine others.
    for (n, say) in mouths.iter().enumerate() {
        say.send(n as u32).unwrap();
    }
    // Every peer was on a node that drained at least once, and resumed elsewhere.
    let resumed = heard.load(Ordering::Relaxed) / RESUMED;
    assert!(resumed >= ROOMS * PER_ROOM, "{resumed} resumes");
    let expected = ROOMS * PER_ROOM * (PER_ROOM - 1);
    let deadline = tokio::time::Instant::now() + WAIT;
    let messages = || heard.load(Ordering::Relaxed) % RESUMED;
    while messages() < expected && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(messages(), expected);
    assert!(
        wrong.lock().unwrap().is_empty(),
        "{:#?}",
        wrong.lock().unwrap()
    );
    drop(mouths);
    for task in tasks {
        task.abort();
    }
    for node in nodes {
        node.shutdown().await;
    }
}

/// `GET /rooms` on a node: the room names listed, in order, and the next cursor.
async fn listed(addr: SocketAddr, query: &str) -> (Vec<String>, Option<u64>) {
    let (_, body) = http_get(addr, &format!("/rooms{query}")).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    let rooms = body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room"].as_str().unwrap().to_owned())
        .collect();
    (rooms, body["next"].as_u64())
}

#[tokio::test]
async fn every_node_lists_the_public_rooms_of_the_whole_cluster() {
    let cluster = Cluster::start().await;
    let a = Client::join(cluster.addr(0), "pub-a", "public=true").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _b = Client::join(cluster.addr(1), "pub-b", "public=true&capacity=2").await;
    let _b2 = Client::join(cluster.addr(2), "pub-b", "").await;
    let _private = Client::join(cluster.addr(0), "hidden", "").await;
    let expect = |want: Vec<&str>| want.into_iter().map(String::from).collect::<Vec<_>>();
    // Written down within the snapshot interval; the same answer from every node.
    let deadline = tokio::time::Instant::now() + WAIT;
    while listed(cluster.addr(2), "").await.0.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rooms are listed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for node in 0..3 {
        assert_eq!(
            listed(cluster.addr(node), "").await.0,
            expect(vec!["pub-b", "pub-a"])
        );
    }
    // A full room is not open; pages follow the cursor.
    assert_eq!(
        listed(cluster.addr(1), "?open=true").await.0,
        expect(vec!["pub-a"])
    );
    let (first, next) = listed(cluster.addr(0), "?limit=1").await;
    assert_eq!(first, expect(vec!["pub-b"]));
    let next = next.expect("a next page");
    let (second, after) = listed(cluster.addr(0), &format!("?limit=1&before={next}")).await;
    assert_eq!(second, expect(vec!["pub-a"]));
    if let Some(after) = after {
        let (third, _) = listed(cluster.addr(0), &format!("?limit=1&before={after}")).await;
        assert!(third.is_empty(), "{third:?}");
    }
    // A room that empties leaves the listing.
    drop(a);
    let deadline = tokio::time::Instant::now() + WAIT;
    while listed(cluster.addr(1), "").await.0 != expect(vec!["pub-b"]) {
        assert!(tokio::time::Instant::now() < deadline, "pub-a is unlisted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn matchbox_peerjs_and_rustysignal_clients_meet_across_nodes() {
    let cluster = Cluster::start_with(|config| config.peerjs.allow_discovery = true).await;
    // matchbox: ids, NewPeer and stamped signals between two nodes.
    let mut ann = raw(cluster.addr(0), "/matchbox/mb-room").await;
    let ann_id = event(&mut ann).await["IdAssigned"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bob = raw(cluster.addr(1), "/matchbox/mb-room").await;
    let bob_id = event(&mut bob).await["IdAssigned"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        event(&mut ann).await,
        serde_json::json!({ "NewPeer": bob_id })
    );
    let signal = serde_json::json!({"Signal": {"receiver": ann_id, "data": {"Offer": "v=0"}}});
    send_value(&mut bob, signal).await;
    assert_eq!(
        event(&mut ann).await,
        serde_json::json!({"Signal": {"sender": bob_id, "data": {"Offer": "v=0"}}})
    );
    // PeerJS: an offer to an id that is not connected yet is held on the key's owner and
    // delivered when that id connects, through another node.
    let path = |id: &str| format!("/peerjs/peerjs?key=pk&id={id}&token=t-{id}&version=1.5.5");
    let mut cat = raw(cluster.addr(0), &path("cat")).await;
    assert_eq!(event(&mut cat).await["type"], "OPEN");
    let offer = serde_json::json!({"type": "OFFER", "dst": "dan", "payload": {"sdp": "v=0"}});
    send_value(&mut cat, offer).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut dan = raw(cluster.addr(2), &path("dan")).await;
    assert_eq!(event(&mut dan).await["type"], "OPEN");
    let held = event(&mut dan).await;
    assert_eq!(
        (held["type"].as_str(), held["src"].as_str()),
        (Some("OFFER"), Some("cat"))
    );
    // Discovery on a node that does not hold the key lists its ids (from the owner's snapshot).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = http_get(cluster.addr(1), "/peerjs/pk/peers").await;
        let mut ids: Vec<String> = serde_json::from_str(&body).unwrap();
        ids.sort();
        if ids == ["cat", "dan"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "listed: {ids:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // rustysignal: one-to-one by user name across nodes.
    let mut eve = raw(cluster.addr(1), "/rustysignal?user=eve").await;
    let mut fay = raw(cluster.addr(2), "/rustysignal?user=fay").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let to_fay = r#"{"protocol":"one-to-one","to":"fay","action":"offer","data":1}"#;
    send_text(&mut eve, to_fay).await;
    assert_eq!(next_text(&mut fay).await, to_fay);
    cluster.shutdown().await;
}

#[tokio::test]
async fn the_admin_api_of_any_node_sees_and_acts_on_every_node() {
    const TOKEN: &str = "an admin token long enough";
    let cluster = Cluster::start_with(|config| config.admin_token = Some(TOKEN.into())).await;
    let mut ann = Client::join(cluster.addr(0), "admin-a", "user=ann").await;
    let mut bob = Client::join(cluster.addr(1), "admin-a", "user=bob").await;
    ann.recv().await; // bob
    let mut cat = Client::join(cluster.addr(1), "admin-b", "user=cat").await;
    // Node 2 owns nothing and lists both rooms, with their peers.
    let (status, body) = request(cluster.addr(2), "GET", "/admin/rooms", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    let mut rooms: Vec<(String, usize)> = body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["room"].as_str().unwrap().to_owned(),
                r["peers"].as_array().unwrap().len(),
            )
        })
        .collect();
    rooms.sort();
    assert_eq!(rooms, vec![("admin-a".into(), 2), ("admin-b".into(), 1)]);
    // A kick from node 2 reaches bob (on node 1, in a room owned by node 0).
    let path = format!("/admin/peers/{}/kick?reason=spam", bob.id());
    assert_eq!(
        request(cluster.addr(2), "POST", &path, Some(TOKEN)).await.0,
        200
    );
    assert_eq!(bob.closed().await.0, 4011);
    assert_eq!(
        ann.recv().await,
        ServerMessage::PeerLeft {
            id: bob.id(),
            reason: LeaveReason::Kicked
        }
    );
    // A room closed from node 0, owned by node 1.
    assert_eq!(
        request(
            cluster.addr(0),
            "POST",
            "/admin/rooms/admin-b/close",
            Some(TOKEN)
        )
        .await
        .0,
        200
    );
    assert_eq!(cat.closed().await.0, 4012);
    // Unknown everywhere: 404.
    let nobody = format!("/admin/peers/{}/kick", "0".repeat(32));
    assert_eq!(
        request(cluster.addr(1), "POST", &nobody, Some(TOKEN))
            .await
            .0,
        404
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_session_made_on_one_node_is_joined_from_another_and_a_peer_detaches_across_nodes() {
    let cluster = Cluster::start().await;
    let mut host = Client::at(cluster.addr(0), "/ws?create=session").await;
    let session = host.welcome.room.clone();
    let mut guest = Client::at(cluster.addr(1), &format!("/ws?session={session}")).await;
    assert_eq!(guest.welcome.peers[0].id, host.id());
    assert_eq!(host.recv().await, joined(&guest));
    // A third is refused from any node: a session has two peers.
    let mut third = raw(cluster.addr(2), &format!("/ws?session={session}")).await;
    let (code, _, _) = expect_refusal(&mut third, switchboard_protocol::Encoding::Json).await;
    assert_eq!(code, ErrorCode::RoomFull);
    // Close-after-connect from the node that does not own the session: the guest's socket
    // closes as detached, the host hears nothing, then says the guest is gone.
    guest.send(ClientMessage::Detach).await;
    assert_eq!(guest.closed().await, (1000, "detached".into()));
    host.expect_silence(Duration::from_millis(300)).await;
    host.send(ClientMessage::Gone { peer: guest.id() }).await;
    assert_eq!(
        host.recv().await,
        ServerMessage::PeerLeft {
            id: guest.id(),
            reason: LeaveReason::Gone
        }
    );
    cluster.shutdown().await;
}

/// `switchboard_cluster_dropped_total{reason}` of a node.
async fn dropped(addr: SocketAddr, reason: &str) -> u64 {
    let (_, metrics) = http_get(addr, "/metrics").await;
    let series = format!("switchboard_cluster_dropped_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn records_past_the_pending_bounds_are_dropped_and_counted_while_redis_hangs() {
    let cluster = Cluster::start_with(|config| {
        roomy(config);
        config.cluster.max_pending_records = 20;
        config.cluster.max_pending_bytes = 64 * 1024;
        config.cluster.redis_timeout_ms = 3000;
    })
    .await;
    let mut ann = Client::join(cluster.addr(0), "hang", "user=ann").await;
    let mut bob = Client::join(cluster.addr(1), "hang", "user=bob").await;
    ann.recv().await; // bob
                      // Under the bounds nothing is dropped.
    for n in 0..10 {
        bob.send_json(Target::Room, &n.to_string()).await;
        assert!(matches!(ann.recv().await, ServerMessage::Message { .. }));
    }
    assert_eq!(dropped(cluster.addr(1), "queue_full").await, 0);
    // Redis hangs: bob's frames (one record per read) pile up on his node past 20 records.
    cluster.redis.pause();
    for n in 0..60 {
        bob.send_json(Target::Room, &n.to_string()).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while dropped(cluster.addr(1), "queue_full").await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "records past 20 are dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.redis.resume();
    // Let the stuck publish end and the queue drain, then hang again: six frames of 20 KiB
    // (six records, under 20) are past 64 KiB.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let by_count = dropped(cluster.addr(1), "queue_full").await;
    cluster.redis.pause();
    let big = format!("\"{}\"", "x".repeat(20 * 1024));
    for _ in 0..6 {
        bob.send_json(Target::Room, &big).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while dropped(cluster.addr(1), "queue_full").await == by_count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "records past 64 KiB are dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.redis.resume();
    // The room works again across the nodes; nobody was disconnected.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        bob.send_json(Target::Name("ann".into()), r#""again""#)
            .await;
        let heard = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                if let ServerMessage::Message { data, .. } = ann.recv().await {
                    if data == json(r#""again""#) {
                        return;
                    }
                }
            }
        })
        .await;
        if heard.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "messages flow again"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_join_forwarded_to_a_node_that_never_answers_is_refused_with_unavailable() {
    let cluster = Cluster::start_with(|config| config.cluster.forward_timeout_ms = 300).await;
    // A node that looks alive in Redis and owns the room, but reads nothing.
    let mut store = ::redis::Client::open(cluster.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ghost = "00000000000000ff";
    let _: () = ::redis::cmd("SET")
        .arg(format!("switchboard:node:{ghost}"))
        .arg(1)
        .arg("PX")
        .arg(60_000)
        .query_async(&mut store)
        .await
        .unwrap();
    let _: () = ::redis::cmd("SET")
        .arg("switchboard:room:ghosted")
        .arg(ghost)
        .query_async(&mut store)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (code, close, _) = refused(
        cluster.addr(1),
        "/ws/ghosted",
        switchboard_protocol::Encoding::Json,
    )
    .await;
    assert_eq!((code, close), (ErrorCode::Unavailable, 1013));
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Other rooms are not held up.
    Client::join(cluster.addr(1), "elsewhere", "").await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_node_holds_max_connections_per_ip_sockets_whatever_nodes_own_their_rooms() {
    let cluster = Cluster::start_with(|config| config.limits.max_connections_per_ip = 2).await;
    // Rooms owned by nodes 0 and 2 (their first peers, from another address).
    let owner = |node: usize, room: &'static str| {
        let addr = cluster.addr(node);
        async move {
            let socket = raw_from("127.0.0.5", addr, &format!("/ws/{room}")).await;
            Client::from_socket(socket, switchboard_protocol::Encoding::Json).await
        }
    };
    let _r1 = owner(0, "cap1").await;
    let _r2 = owner(2, "cap2").await;
    let _r3 = owner(0, "cap3").await;
    // From 127.0.0.9, all through node 1: each owner counts one or two, node 1 holds them all.
    let through = |room: &'static str| {
        let addr = cluster.addr(1);
        async move {
            let socket = raw_from("127.0.0.9", addr, &format!("/ws/{room}")).await;
            Client::from_socket(socket, switchboard_protocol::Encoding::Json).await
        }
    };
    let first = through("cap1").await;
    let _second = through("cap2").await;
    let refused_third = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut third = tcp_from("127.0.0.9", cluster.addr(1)).await;
        let request = "GET /ws/cap3 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        third.write_all(request.as_bytes()).await.unwrap();
        let mut response = vec![0u8; 4096];
        let n = tokio::time::timeout(WAIT, third.read(&mut response))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&response[..n]).into_owned()
    };
    assert!(refused_third.starts_with("HTTP/1.1 429"), "{refused_third}");
    assert!(
        refused_third.contains("too_many_connections"),
        "{refused_third}"
    );
    // A socket given back makes room for the next.
    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stream = tcp_from("127.0.0.9", cluster.addr(1)).await;
        let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
        let ws = tokio_tungstenite::client_async(url(cluster.addr(1), "/ws/cap3"), stream).await;
        if let Ok((socket, _)) = ws {
            Client::from_socket(socket, switchboard_protocol::Encoding::Json).await;
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the freed seat is taken"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.shutdown().await;
}
