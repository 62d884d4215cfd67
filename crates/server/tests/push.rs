//! Web Push with a local push service written independently (tests/data/push_service.py:
//! Python's http_ece decrypts, `cryptography` verifies the VAPID JWT): a rustysignal user and a
//! native user subscribe, leave, and a connection request from another user reaches them as a
//! push saying who asks and where; a 410 makes the server forget the subscription; pushes per
//! target are rate limited; push off or a bad subscription is a clear error.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use switchboard_protocol::{ClientMessage, ErrorCode, ServerMessage};
use switchboard_server::Config;

/// The push service, stopped when dropped (its stdin closes).
struct PushService {
    child: Child,
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
}

impl PushService {
    fn start() -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/push_service.py");
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the push service");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the service says where it listens");
        let port: u16 = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!("unexpected first line {line:?} (are http_ece and cryptography installed?)")
            });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// A fresh subscription whose pushes are answered with `status`: its id and its JSON.
    async fn subscription(&self, status: u16) -> (String, Value) {
        let (_, body) = http_get(self.addr, &format!("/new?status={status}")).await;
        let created: Value = serde_json::from_str(&body).expect("JSON");
        (
            created["id"].as_str().expect("id").to_owned(),
            created["subscription"].clone(),
        )
    }

    async fn received(&self, id: &str) -> Vec<Value> {
        let (_, body) = http_get(self.addr, &format!("/received/{id}")).await;
        serde_json::from_str(&body).expect("JSON")
    }

    /// Waits until `id` has had `count` pushes; returns them.
    async fn wait_for(&self, id: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let received = self.received(id).await;
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{id} had {received:?}, wanted {count}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.child.wait();
    }
}

/// The next error, past the room's presence news (joins, leaves, host changes).
async fn next_error(client: &mut Client) -> ErrorCode {
    loop {
        match client.recv().await {
            ServerMessage::Error { code, .. } => return code,
            ServerMessage::PeerJoined(_)
            | ServerMessage::PeerLeft { .. }
            | ServerMessage::HostChanged { .. } => continue,
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

/// A browser's subscription keys (a P-256 point and an auth secret), for subscriptions whose
/// pushes are never decrypted.
fn browser_keys() -> Value {
    json!({
        "p256dh": "BMANk-kMXjsxdbf2HHMPZvtMPbGMepWvW5OVxZHrA8IHc-Fq2BWKVmf79yXJ2SICWcRT7QcRcnw3vczXZgjGBwk",
        "auth": "z4wKWSA9dRHE6tMpsdbD-w",
    })
}

fn push_config() -> Config {
    let mut config = config();
    config.push.vapid_key =
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vapid.pem"));
    config.push.subject = Some("mailto:tests@switchboard.invalid".into());
    config.push.allow_http_endpoints = true;
    config
}

async fn user(addr: SocketAddr, name: &str) -> Socket {
    let socket = raw(addr, &format!("/rustysignal?user={name}")).await;
    // rustysignal says nothing on connect: give the join a moment.
    tokio::time::sleep(Duration::from_millis(50)).await;
    socket
}

fn subscribe_push(subscription: &Value) -> String {
    // rustysignal's clients send the subscription as a JSON text inside a string.
    json!({"action": "subscribe-push", "subscriptionData": subscription.to_string()}).to_string()
}

fn connection_request(to: &str) -> String {
    json!({"protocol": "one-to-one", "endpoint": to, "action": "connection-request", "data": {"from": "bob"}}).to_string()
}

#[tokio::test]
async fn a_rustysignal_user_who_is_away_gets_a_push_saying_who_asks_and_where() {
    let service = PushService::start();
    let server = start(push_config()).await;
    let addr = server.local_addr();
    let (id, subscription) = service.subscription(201).await;
    let mut ann = user(addr, "ann").await;
    send_text(&mut ann, &subscribe_push(&subscription)).await;
    silent(&mut ann, Duration::from_millis(100)).await;
    // While ann is connected, a connection request is routed to her as sent; no push.
    let mut bob = user(addr, "bob").await;
    send_text(&mut bob, &connection_request("ann")).await;
    assert_eq!(next_text(&mut ann).await, connection_request("ann"));
    ann.close(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    send_text(&mut bob, &connection_request("ann")).await;
    let pushes = service.wait_for(&id, 1).await;
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    let push = &pushes[0];
    assert_eq!(push["error"], Value::Null, "{push}");
    assert_eq!(push["payload"]["sender"], "bob");
    assert_eq!(push["payload"]["body"], "bob\nwants to connect with you");
    assert_eq!(push["payload"]["room"], "rustysignal:default");
    assert_eq!(
        push["payload"]["url"],
        format!("ws://{addr}/rustysignal/default")
    );
    assert_eq!(
        push["vapid"]["claims"]["sub"],
        "mailto:tests@switchboard.invalid"
    );
    assert_eq!(push["ttl"], "3600");
    // The key in the push is the one pages subscribe with.
    let (head, key) = http_get(addr, "/push/vapid-public-key").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(push["vapid"]["key"], key.as_str());
    silent(&mut bob, Duration::from_millis(200)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_gone_subscription_is_forgotten_and_pushes_per_target_are_limited() {
    let service = PushService::start();
    let mut config = push_config();
    config.push.push_burst_per_target = 2;
    config.push.pushes_per_target_per_minute = 1;
    let server = start(config).await;
    let addr = server.local_addr();
    let (gone_id, gone) = service.subscription(410).await;
    let (live_id, live) = service.subscription(201).await;
    for (name, subscription) in [("cat", &gone), ("dan", &live)] {
        let mut socket = user(addr, name).await;
        send_text(&mut socket, &subscribe_push(subscription)).await;
        silent(&mut socket, Duration::from_millis(100)).await;
        socket.close(None).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut bob = user(addr, "bob").await;
    // cat's push service answers 410: the server forgets cat's subscription.
    send_text(&mut bob, &connection_request("cat")).await;
    service.wait_for(&gone_id, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    send_text(&mut bob, &connection_request("cat")).await;
    let answer = next_text(&mut bob).await;
    assert!(answer.contains("no push subscription"), "{answer}");
    assert_eq!(
        service.received(&gone_id).await.len(),
        1,
        "no second push to a gone endpoint"
    );
    // dan: a burst of 2, then refused until the rate (1 a minute) gives another.
    send_text(&mut bob, &connection_request("dan")).await;
    send_text(&mut bob, &connection_request("dan")).await;
    send_text(&mut bob, &connection_request("dan")).await;
    let answer = next_text(&mut bob).await;
    assert!(answer.contains("pushes enough"), "{answer}");
    service.wait_for(&live_id, 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(service.received(&live_id).await.len(), 2);
    let metrics = http_get(addr, "/metrics").await.1;
    for line in [
        "switchboard_pushes_total{outcome=\"sent\"} 2",
        "switchboard_pushes_total{outcome=\"gone\"} 1",
        "switchboard_pushes_total{outcome=\"not_subscribed\"} 1",
        "switchboard_pushes_total{outcome=\"throttled\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_native_peer_subscribes_and_is_asked_to_connect_to_its_room() {
    let service = PushService::start();
    let server = start(push_config()).await;
    let addr = server.local_addr();
    let (id, subscription) = service.subscription(201).await;
    let mut ann = Client::join(addr, "lobby", "user=ann").await;
    ann.send(ClientMessage::PushSubscribe {
        subscription: json(&subscription.to_string()),
    })
    .await;
    ann.expect_silence(Duration::from_millis(100)).await;
    let mut bob = Client::join(addr, "lobby", "user=bob").await;
    // ann is here: nothing to push.
    bob.send(ClientMessage::ConnectionRequest { name: "ann".into() })
        .await;
    assert_eq!(next_error(&mut bob).await, ErrorCode::InvalidMessage);
    drop(ann);
    tokio::time::sleep(Duration::from_millis(200)).await;
    bob.send(ClientMessage::ConnectionRequest { name: "ann".into() })
        .await;
    let pushes = service.wait_for(&id, 1).await;
    assert_eq!(pushes[0]["error"], Value::Null, "{pushes:?}");
    assert_eq!(pushes[0]["payload"]["sender"], "bob");
    assert_eq!(pushes[0]["payload"]["room"], "lobby");
    assert_eq!(pushes[0]["payload"]["url"], format!("ws://{addr}/ws/lobby"));
    // Unsubscribed users get no push.
    let mut cat = Client::join(addr, "lobby", "user=cat").await;
    cat.send(ClientMessage::PushSubscribe {
        subscription: json(&subscription.to_string()),
    })
    .await;
    cat.send(ClientMessage::PushUnsubscribe).await;
    cat.expect_silence(Duration::from_millis(100)).await;
    drop(cat);
    tokio::time::sleep(Duration::from_millis(200)).await;
    bob.send(ClientMessage::ConnectionRequest { name: "cat".into() })
        .await;
    assert_eq!(next_error(&mut bob).await, ErrorCode::UnknownName);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_subscriptions_and_push_off_are_clear_errors() {
    let server = start(push_config()).await;
    let addr = server.local_addr();
    let mut ann = Client::join(addr, "lobby", "user=ann").await;
    let bad = [
        json!({"endpoint": "https://push.example/x"}),
        json!({"endpoint": "ftp://push.example/x", "keys": {"p256dh": "a", "auth": "b"}}),
        json!({"endpoint": "https://push.example/x", "keys": {"p256dh": "AAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}),
        json!({"endpoint": "https://push.example/x", "keys": {"p256dh": "x".repeat(3000), "auth": "a"}}),
    ];
    for subscription in bad {
        ann.send(ClientMessage::PushSubscribe {
            subscription: json(&subscription.to_string()),
        })
        .await;
        assert_eq!(
            ann.recv_error().await,
            ErrorCode::InvalidMessage,
            "{subscription}"
        );
    }
    let mut nameless = Client::join(addr, "lobby", "").await;
    nameless
        .send(ClientMessage::ConnectionRequest { name: "ann".into() })
        .await;
    assert_eq!(nameless.recv_error().await, ErrorCode::InvalidMessage);
    server.shutdown().await;

    // Push off: push messages are refused with the reason; rustysignal's connection request is
    // routed as its protocol says, as rustysignal without its push feature does.
    let server = start(config()).await;
    let addr = server.local_addr();
    let (head, _) = http_get(addr, "/push/vapid-public-key").await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let mut ann = Client::join(addr, "lobby", "user=ann").await;
    ann.send(ClientMessage::PushSubscribe {
        subscription: json("{}"),
    })
    .await;
    assert_eq!(ann.recv_error().await, ErrorCode::InvalidMessage);
    let mut cat = user(addr, "cat").await;
    let mut dan = user(addr, "dan").await;
    send_text(&mut dan, &connection_request("cat")).await;
    assert_eq!(next_text(&mut cat).await, connection_request("cat"));
    send_text(&mut dan, &subscribe_push(&json!({}))).await;
    assert!(next_text(&mut dan).await.contains("push is off"));
    server.shutdown().await;
}

#[tokio::test]
async fn endpoints_must_be_push_services_on_public_addresses() {
    let mut config = push_config();
    config.push.allow_http_endpoints = false;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut ann = Client::join(addr, "lobby", "user=ann").await;
    let keys = browser_keys();
    // The server's own admin API, a private address, a push service on another port, plain http.
    for endpoint in [
        format!("http://{addr}/admin/rooms/lobby/close"),
        "https://127.0.0.1/admin/rooms/lobby/close".to_owned(),
        "https://10.0.0.1/x".to_owned(),
        "https://fcm.googleapis.com:8443/fcm/send/x".to_owned(),
        "https://push.example.net/x".to_owned(),
    ] {
        let subscription = json!({"endpoint": endpoint, "keys": keys});
        ann.send(ClientMessage::PushSubscribe {
            subscription: json(&subscription.to_string()),
        })
        .await;
        assert_eq!(
            ann.recv_error().await,
            ErrorCode::InvalidMessage,
            "{endpoint}"
        );
    }
    // A browser's push service is accepted (nothing is sent until someone asks).
    let fcm = json!({"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "keys": keys});
    ann.send(ClientMessage::PushSubscribe {
        subscription: json(&fcm.to_string()),
    })
    .await;
    ann.expect_silence(Duration::from_millis(200)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn at_max_in_flight_a_request_is_refused_until_a_push_ends() {
    // A "push service" that accepts connections and never answers: each push waits for its
    // deadline.
    let stall = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stall_addr = stall.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = stall.accept().await {
            open.push(socket);
        }
    });
    let mut config = push_config();
    config.push.max_in_flight = 1;
    config.push.timeout_ms = 1_500;
    let server = start(config).await;
    let addr = server.local_addr();
    let keys = browser_keys();
    for name in ["ann", "cat"] {
        let mut away = Client::join(addr, "lobby", &format!("user={name}")).await;
        let subscription = json!({"endpoint": format!("http://{stall_addr}/{name}"), "keys": keys});
        away.send(ClientMessage::PushSubscribe {
            subscription: json(&subscription.to_string()),
        })
        .await;
        away.expect_silence(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut bob = Client::join(addr, "lobby", "user=bob").await;
    bob.send(ClientMessage::ConnectionRequest { name: "ann".into() })
        .await;
    bob.expect_silence(Duration::from_millis(200)).await;
    bob.send(ClientMessage::ConnectionRequest { name: "cat".into() })
        .await;
    assert_eq!(next_error(&mut bob).await, ErrorCode::Throttled);
    // ann's push times out and gives its place back.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    bob.send(ClientMessage::ConnectionRequest { name: "cat".into() })
        .await;
    bob.expect_silence(Duration::from_millis(200)).await;
    let metrics = http_get(addr, "/metrics").await.1;
    for line in [
        "switchboard_pushes_total{outcome=\"busy\"} 1",
        "switchboard_pushes_total{outcome=\"failed\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    server.shutdown().await;
    held.abort();
}
