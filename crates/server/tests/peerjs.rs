//! The PeerJS endpoint with raw WebSocket clients speaking peerjs-server's protocol (as the
//! `peerjs` npm client 1.5 does; the real client runs in Chromium in the end-to-end tests): OPEN,
//! relay with the sender's id, ID-TAKEN, reconnect with the same token, messages held for an
//! absent id and EXPIRE, the HTTP endpoints, bad input closing only the offender.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use serde_json::{json, Value};
use switchboard_server::Config;
use tokio_tungstenite::tungstenite::Message;

fn peerjs_config() -> Config {
    let mut config = config();
    config.peerjs.expire_timeout_ms = 400;
    config
}

/// Connects as PeerJS id `id` and waits for `OPEN`.
async fn open(addr: SocketAddr, key: &str, id: &str, token: &str) -> Socket {
    let mut socket = raw(
        addr,
        &format!("/peerjs/peerjs?key={key}&id={id}&token={token}&version=1.5.5"),
    )
    .await;
    assert_eq!(event(&mut socket).await, json!({"type": "OPEN"}));
    socket
}

fn offer(dst: &str, n: u32) -> Value {
    json!({"type": "OFFER", "dst": dst, "payload": {"sdp": {"type": "offer", "sdp": format!("v=0 {n}")}, "connectionId": "dc_1", "type": "data"}})
}

#[tokio::test]
async fn messages_reach_their_id_stamped_with_the_senders_id() {
    let server = start(peerjs_config()).await;
    let addr = server.local_addr();
    let mut ann = open(addr, "peerjs", "ann", "t1").await;
    let mut bob = open(addr, "peerjs", "bob", "t2").await;
    let mut spoofed = offer("bob", 1);
    spoofed["src"] = json!("mallory");
    send_value(&mut ann, spoofed).await;
    let got = event(&mut bob).await;
    assert_eq!(got["type"], "OFFER");
    assert_eq!(got["src"], "ann", "the server sets src: {got}");
    assert_eq!(got["dst"], "bob");
    assert_eq!(got["payload"], offer("bob", 1)["payload"]);
    send_value(
        &mut bob,
        json!({"type": "ANSWER", "dst": "ann", "payload": {"sdp": "a"}}),
    )
    .await;
    send_value(
        &mut bob,
        json!({"type": "CANDIDATE", "dst": "ann", "payload": {"candidate": "c"}}),
    )
    .await;
    send_value(&mut ann, json!({"type": "HEARTBEAT"})).await;
    assert_eq!(event(&mut ann).await["type"], "ANSWER");
    assert_eq!(event(&mut ann).await["type"], "CANDIDATE");
    // Nobody hears of joins or heartbeats.
    silent(&mut bob, Duration::from_millis(200)).await;
    // Another key is another namespace: the same id is free there and unreachable from here.
    let mut other = open(addr, "other", "bob", "t3").await;
    send_value(&mut ann, offer("bob", 2)).await;
    assert_eq!(event(&mut bob).await["payload"], offer("bob", 2)["payload"]);
    silent(&mut other, Duration::from_millis(200)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_taken_id_gets_id_taken_and_the_same_token_takes_it_back() {
    let server = start(peerjs_config()).await;
    let addr = server.local_addr();
    let mut first = open(addr, "peerjs", "ann", "secret").await;
    let mut intruder = raw(addr, "/peerjs/peerjs?key=peerjs&id=ann&token=guess").await;
    let (texts, close) = texts_until_close(&mut intruder).await;
    let taken: Value = serde_json::from_str(&texts[0]).unwrap();
    assert_eq!(
        taken,
        json!({"type": "ID-TAKEN", "payload": {"msg": "ID is taken"}})
    );
    assert!(close.is_some(), "closed after ID-TAKEN");
    // PeerJS's reconnect: the same id and token while the old socket is still open replaces it.
    let mut again = open(addr, "peerjs", "ann", "secret").await;
    let (_, close) = texts_until_close(&mut first).await;
    assert!(close.is_some(), "the old socket is closed");
    let mut bob = open(addr, "peerjs", "bob", "b").await;
    send_value(&mut bob, offer("ann", 1)).await;
    assert_eq!(event(&mut again).await["src"], "bob");
    // A goodbye (close frame) frees the id at once, as peerjs-server does.
    again.close(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut new_owner = open(addr, "peerjs", "ann", "another").await;
    send_value(&mut bob, offer("ann", 2)).await;
    assert_eq!(event(&mut new_owner).await["src"], "bob");
    server.shutdown().await;
}

#[tokio::test]
async fn a_lost_connection_comes_back_with_its_token_and_gets_what_was_sent_meanwhile() {
    let server = start(peerjs_config()).await;
    let addr = server.local_addr();
    let ann = open(addr, "peerjs", "ann", "secret").await;
    let mut bob = open(addr, "peerjs", "bob", "b").await;
    vanish(ann, Vanish::Reset).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Suspended, not gone: the id is still ann's, and what bob sends now is held for her.
    send_value(&mut bob, offer("ann", 7)).await;
    let mut intruder = raw(addr, "/peerjs/peerjs?key=peerjs&id=ann&token=guess").await;
    let (texts, _) = texts_until_close(&mut intruder).await;
    assert!(texts[0].contains("ID-TAKEN"), "{texts:?}");
    let mut ann = open(addr, "peerjs", "ann", "secret").await;
    let held = event(&mut ann).await;
    assert_eq!(
        (held["type"].as_str(), held["src"].as_str()),
        (Some("OFFER"), Some("bob"))
    );
    assert_eq!(held["payload"], offer("ann", 7)["payload"]);
    silent(&mut bob, Duration::from_millis(600)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn messages_for_an_absent_id_are_held_then_expire() {
    let server = start(peerjs_config()).await;
    let addr = server.local_addr();
    let mut ann = open(addr, "peerjs", "ann", "a").await;
    // bob comes within expire_timeout: he gets what was held for him, in order, after OPEN.
    for n in 0..3 {
        send_value(&mut ann, offer("bob", n)).await;
    }
    // LEAVE and EXPIRE for an absent id are dropped, not held.
    send_value(&mut ann, json!({"type": "LEAVE", "dst": "bob"})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut bob = open(addr, "peerjs", "bob", "b").await;
    for n in 0..3 {
        assert_eq!(event(&mut bob).await["payload"], offer("bob", n)["payload"]);
    }
    silent(&mut bob, Duration::from_millis(200)).await;
    // cat never comes: ann gets one EXPIRE for her two messages once the time is up.
    let sent = std::time::Instant::now();
    send_value(&mut ann, offer("cat", 1)).await;
    send_value(&mut ann, offer("cat", 2)).await;
    assert_eq!(
        event(&mut ann).await,
        json!({"type": "EXPIRE", "src": "cat", "dst": "ann"})
    );
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(380),
        "expired after {waited:?}"
    );
    silent(&mut ann, Duration::from_millis(600)).await;
    // Expired messages are gone: cat arriving now gets nothing.
    let mut cat = open(addr, "peerjs", "cat", "c").await;
    silent(&mut cat, Duration::from_millis(200)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn past_max_held_per_address_a_message_expires_at_once() {
    let mut config = peerjs_config();
    config.peerjs.max_held_per_address = 2;
    config.peerjs.expire_timeout_ms = 5_000;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut ann = open(addr, "peerjs", "ann", "a").await;
    send_value(&mut ann, offer("x1", 0)).await;
    send_value(&mut ann, offer("x2", 0)).await;
    silent(&mut ann, Duration::from_millis(200)).await;
    send_value(&mut ann, offer("x3", 0)).await;
    assert_eq!(
        event(&mut ann).await,
        json!({"type": "EXPIRE", "src": "x3", "dst": "ann"})
    );
    // Another connection from the same address shares its share; another address has its own.
    let mut twin = open(addr, "peerjs", "twin", "t").await;
    send_value(&mut twin, offer("x4", 0)).await;
    assert_eq!(
        event(&mut twin).await,
        json!({"type": "EXPIRE", "src": "x4", "dst": "twin"})
    );
    let mut bob = raw_from(
        "127.0.0.2",
        addr,
        "/peerjs/peerjs?key=peerjs&id=bob&token=b",
    )
    .await;
    assert_eq!(event(&mut bob).await, json!({"type": "OPEN"}));
    send_value(&mut bob, offer("x3", 0)).await;
    silent(&mut bob, Duration::from_millis(200)).await;
    let mut x3 = open(addr, "peerjs", "x3", "x").await;
    assert_eq!(event(&mut x3).await["src"], "bob");
    server.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_error_and_a_close_and_nobody_else_notices() {
    let server = start(peerjs_config()).await;
    let addr = server.local_addr();
    let mut bob = open(addr, "peerjs", "bob", "b").await;
    let bad: [(Message, &str); 6] = [
        (Message::Text("{not json".into()), "not a PeerJS message"),
        (
            Message::Text(r#"{"type":"OPEN","dst":"bob"}"#.into()),
            "unknown PeerJS message type",
        ),
        (Message::Text(r#"{"type":"OFFER"}"#.into()), "without dst"),
        (
            Message::Text(r#"{"type":"OFFER","dst":"b o b"}"#.into()),
            "dst may only",
        ),
        (Message::Text("[1,2]".into()), "not a PeerJS message"),
        (Message::Binary(vec![1, 2, 3].into()), "text frames"),
    ];
    for (n, (frame, why)) in bad.into_iter().enumerate() {
        let mut mallory = open(addr, "peerjs", &format!("m{n}"), "m").await;
        mallory.send(frame).await.unwrap();
        let (texts, close) = texts_until_close(&mut mallory).await;
        let error: Value = serde_json::from_str(&texts[0]).unwrap();
        assert_eq!(error["type"], "ERROR", "{texts:?}");
        let msg = error["payload"]["msg"].as_str().unwrap_or_default();
        assert!(msg.contains(why), "{msg:?} should say {why:?}");
        assert!(close.is_some());
    }
    for query in [
        "",
        "?key=peerjs&id=x",
        "?key=peerjs&token=t",
        "?id=x&token=t",
    ] {
        let mut socket = raw(addr, &format!("/peerjs/peerjs{query}")).await;
        let (texts, close) = texts_until_close(&mut socket).await;
        let error: Value = serde_json::from_str(&texts[0]).unwrap();
        assert_eq!(
            error,
            json!({"type": "ERROR", "payload": {"msg": "No id, token, or key supplied to websocket server"}}),
            "{query}"
        );
        assert!(close.is_some());
    }
    let mut ann = open(addr, "peerjs", "ann", "a").await;
    send_value(&mut ann, offer("bob", 1)).await;
    assert_eq!(event(&mut bob).await["src"], "ann", "bob was not disturbed");
    server.shutdown().await;
}

#[tokio::test]
async fn ids_come_from_get_id_and_discovery_is_off_unless_allowed() {
    let server = start(peerjs_config()).await;
    let addr = server.local_addr();
    let (head, id) = http_get(addr, "/peerjs/peerjs/id?ts=123").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains("access-control-allow-origin: *"));
    assert_eq!(id.len(), 36, "{id}");
    let (_, other) = http_get(addr, "/peerjs/peerjs/id").await;
    assert_ne!(id, other);
    let _socket = open(addr, "peerjs", &id, "t").await;
    let (head, _) = http_get(addr, "/peerjs/peerjs/peers").await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    server.shutdown().await;

    let mut config = peerjs_config();
    config.peerjs.allow_discovery = true;
    let server = start(config).await;
    let addr = server.local_addr();
    let _ann = open(addr, "peerjs", "ann", "a").await;
    let _bob = open(addr, "peerjs", "bob", "b").await;
    let _elsewhere = open(addr, "other", "cat", "c").await;
    let (head, body) = http_get(addr, "/peerjs/peerjs/peers").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!(["ann", "bob"])
    );
    let (_, info) = http_get(addr, "/peerjs").await;
    assert!(info.contains("PeerJS Server"), "{info}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_key_holds_more_than_max_peers_per_room_and_up_to_max_peers_per_directory() {
    let mut config = peerjs_config();
    config.limits.max_peers_per_room = 2;
    config.limits.max_peers_per_directory = 4;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut peers = Vec::new();
    for n in 0..4 {
        peers.push(open(addr, "peerjs", &format!("p{n}"), "t").await);
    }
    let mut fifth = raw(addr, "/peerjs/peerjs?key=peerjs&id=p4&token=t").await;
    let (texts, close) = texts_until_close(&mut fifth).await;
    let error: Value = serde_json::from_str(&texts[0]).unwrap();
    assert_eq!(error["type"], "ERROR");
    assert!(
        error["payload"]["msg"].as_str().unwrap().contains("full"),
        "{error}"
    );
    assert!(close.is_some());
    server.shutdown().await;
}

#[tokio::test]
async fn a_flood_is_cut_to_the_rate_limit_and_neighbours_are_undisturbed() {
    let mut config = peerjs_config();
    config.limits.messages_per_second = 10;
    config.limits.message_burst = 20;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut mallory = open(addr, "peerjs", "mallory", "m").await;
    let mut bob = open(addr, "peerjs", "bob", "b").await;
    let mut ann = open(addr, "peerjs", "ann", "a").await;
    let mut cat = open(addr, "peerjs", "cat", "c").await;
    for n in 0..1_000 {
        send_value(&mut mallory, offer("bob", n)).await;
    }
    // The burst gets through, the rest is dropped (PeerJS has no error a client survives).
    let mut from_mallory = 0;
    while let Ok(got) = tokio::time::timeout(Duration::from_millis(300), event(&mut bob)).await {
        assert_eq!(got["src"], "mallory");
        from_mallory += 1;
    }
    assert!(
        (20..=40).contains(&from_mallory),
        "the burst of 20 (and what 10/s refills while it runs) got through, not {from_mallory} of 1000"
    );
    send_value(&mut ann, offer("cat", 1)).await;
    assert_eq!(
        event(&mut cat).await["src"],
        "ann",
        "others are not held up"
    );
    // mallory is still connected (a flood is dropped, not an error) and can send again later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    send_value(&mut mallory, offer("bob", 9_999)).await;
    assert_eq!(
        event(&mut bob).await["payload"],
        offer("bob", 9_999)["payload"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn taking_an_id_back_is_not_held_to_the_connection_limits() {
    let mut config = peerjs_config();
    config.limits.max_connections_per_ip = 2;
    let server = start(config).await;
    let addr = server.local_addr();
    let ann = open(addr, "peerjs", "ann", "secret").await;
    let _bob = open(addr, "peerjs", "bob", "b").await;
    vanish(ann, Vanish::Reset).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The address is at its limit (ann is suspended, still counted): a new id is refused...
    let (head, _) = http_get(addr, "/peerjs/peerjs?key=peerjs&id=cat&token=c").await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    // ...but ann takes hers back.
    let _ann = open(addr, "peerjs", "ann", "secret").await;
    server.shutdown().await;
}
