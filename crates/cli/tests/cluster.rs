//! Cluster mode with real processes: three `switchboard serve --redis` nodes and a real
//! redis-server; a node killed with SIGKILL loses no room.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

mod common;
#[path = "../../server/tests/common/redis.rs"]
mod redis;

use common::serve;
use redis::Redis;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A JSON protocol client.
struct Peer {
    socket: Socket,
    welcome: Value,
}

impl Peer {
    async fn join(url: String) -> Peer {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connects");
        let mut peer = Peer {
            socket,
            welcome: Value::Null,
        };
        peer.welcome = peer.next().await;
        assert_eq!(peer.welcome["type"], "welcome", "{}", peer.welcome);
        peer
    }

    fn id(&self) -> &str {
        self.welcome["id"].as_str().expect("an id")
    }

    /// The next protocol message (within 10 s).
    async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .expect("a message in time")
                .expect("open")
                .expect("no error");
            if let Message::Text(text) = frame {
                return serde_json::from_str(&text).expect("JSON");
            }
        }
    }

    async fn send(&mut self, value: Value) {
        let text = value.to_string();
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("sent");
    }
}

#[tokio::test]
async fn a_killed_node_loses_no_room_its_peers_time_out_or_resume_elsewhere() {
    let redis = Redis::start();
    let dir = std::env::temp_dir().join(format!("sb-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let config = dir.join("cluster.toml");
    let toml = "[cluster]\nheartbeat_ms = 200\nnode_ttl_ms = 1000\nsnapshot_interval_ms = 20\n\
                [limits]\nresume_grace_ms = 8000\n";
    std::fs::write(&config, toml).expect("writes the config");
    let args = [
        "--config",
        config.to_str().expect("a path"),
        "--redis",
        &redis.url(),
        "--listen",
        "127.0.0.1:0",
        "--no-stun",
    ];
    let mut nodes: Vec<_> = (0..3).map(|_| serve(&args, &[])).collect();
    let addrs: Vec<_> = nodes.iter().map(|node| node.1).collect();
    let url = |node: usize, rest: &str| format!("ws://{}/ws/{rest}", addrs[node]);

    // ann and dan on the node that owns the room; bob and cat on the others.
    let mut ann = Peer::join(url(0, "keep?user=ann")).await;
    let dan = Peer::join(url(0, "keep?user=dan&resumable=true")).await;
    let mut bob = Peer::join(url(1, "keep?user=bob")).await;
    let mut cat = Peer::join(url(2, "keep?user=cat")).await;
    assert_eq!(cat.welcome["peers"].as_array().map(Vec::len), Some(3));
    assert_eq!(bob.next().await["type"], "peer_joined"); // cat
    for _ in 0..3 {
        assert_eq!(ann.next().await["type"], "peer_joined");
    }
    let (ann_id, dan_id) = (ann.id().to_owned(), dan.id().to_owned());
    let token = dan.welcome["resume_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    // Let the owner write the room down with everyone in it.
    tokio::time::sleep(Duration::from_millis(200)).await;

    nodes[0].0.kill().expect("SIGKILL");
    nodes[0].0.wait().expect("reaped");

    // The survivors hear ann time out; dan is suspended, not gone.
    for peer in [&mut bob, &mut cat] {
        let left = peer.next().await;
        assert_eq!(
            left,
            json!({"type": "peer_left", "id": ann_id, "reason": "timeout"})
        );
    }
    // dan comes back through the third node with his token and keeps his id.
    let mut dan = Peer::join(url(2, &format!("keep?resume={token}"))).await;
    assert_eq!(dan.welcome["resumed"], true);
    assert_eq!(dan.id(), dan_id);
    // The room works across the two surviving nodes.
    bob.send(json!({"type": "message", "to": {"name": "dan"}, "data": "hello"}))
        .await;
    let heard = loop {
        let message = dan.next().await;
        if message["type"] == "message" {
            break message;
        }
    };
    assert_eq!(heard["data"], "hello");
    cat.send(json!({"type": "message", "to": "room", "data": 2}))
        .await;
    let heard = loop {
        let message = bob.next().await;
        assert_ne!(message["type"], "peer_left", "nobody else left: {message}");
        if message["type"] == "message" {
            break message;
        }
    };
    assert_eq!(heard["data"], 2);

    for (child, _, _) in &mut nodes[1..] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
