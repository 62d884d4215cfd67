//! The matchbox endpoint with a raw WebSocket client speaking matchbox_server's protocol (as
//! matchbox_protocol 0.15 defines it): ids, NewPeer / PeerLeft, signals stamped with the sender,
//! keep-alives, `?next=N` groups, bad input dropped without disturbing anyone.

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Connects to `/matchbox/<path>` and returns the socket and the id it was assigned.
async fn connect(addr: std::net::SocketAddr, path: &str) -> (Socket, String) {
    let mut socket = raw(addr, &format!("/matchbox/{path}")).await;
    let assigned = event(&mut socket).await;
    let id = assigned["IdAssigned"]
        .as_str()
        .expect("IdAssigned first")
        .to_owned();
    assert_eq!(id.len(), 36, "a hyphenated UUID: {id}");
    (socket, id)
}

#[tokio::test]
async fn matchbox_peers_meet_signal_and_leave() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let (mut ann, ann_id) = connect(addr, "game").await;
    let (mut bob, bob_id) = connect(addr, "game").await;
    // The peer already there hears of the newcomer (and starts the handshake); the newcomer
    // hears of nobody.
    assert_eq!(event(&mut ann).await, json!({ "NewPeer": bob_id }));
    silent(&mut bob, Duration::from_millis(200)).await;
    send_value(
        &mut bob,
        json!({"Signal": {"receiver": ann_id, "data": {"Offer": "v=0"}}}),
    )
    .await;
    assert_eq!(
        event(&mut ann).await,
        json!({"Signal": {"sender": bob_id, "data": {"Offer": "v=0"}}})
    );
    // Keep-alives are accepted silently; a sender field cannot be forged (it is not a field of
    // a request, so the request is refused, and nothing is relayed).
    send_value(&mut ann, json!("KeepAlive")).await;
    send_value(
        &mut ann,
        json!({"Signal": {"receiver": bob_id, "sender": bob_id, "data": 1}}),
    )
    .await;
    for bad in [
        "{",
        "{\"Unknown\":1}",
        "{\"Signal\":{\"receiver\":\"nope\",\"data\":1}}",
    ] {
        ann.send(Message::Text(bad.into())).await.expect("sent");
    }
    ann.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .expect("sent");
    // Bob got exactly the one valid signal: the forged field is ignored as matchbox does
    // (serde ignores unknown fields), the sender is stamped by the server.
    assert_eq!(
        event(&mut bob).await,
        json!({"Signal": {"sender": ann_id, "data": 1}})
    );
    silent(&mut bob, Duration::from_millis(200)).await;
    send_value(
        &mut ann,
        json!({"Signal": {"receiver": bob_id, "data": "still here"}}),
    )
    .await;
    assert_eq!(
        event(&mut bob).await,
        json!({"Signal": {"sender": ann_id, "data": "still here"}})
    );
    // A native room of the same name is another room.
    let native = Client::join(addr, "game", "").await;
    assert!(native.welcome.peers.is_empty());
    silent(&mut ann, Duration::from_millis(100)).await;
    drop(bob);
    assert_eq!(event(&mut ann).await, json!({ "PeerLeft": bob_id }));
    // Joins are counted per protocol.
    let (_, metrics) = http_get(addr, "/metrics").await;
    assert!(
        metrics.contains("switchboard_joins_total{protocol=\"matchbox\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchboard_joins_total{protocol=\"switchboard\"} 1"),
        "{metrics}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn next_groups_peers_by_the_number_asked() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let (mut first, _) = connect(addr, "lobby?next=2").await;
    let (mut second, second_id) = connect(addr, "lobby?next=2").await;
    assert_eq!(event(&mut first).await, json!({ "NewPeer": second_id }));
    // The group of two is full: a third starts a new group and nobody hears of it.
    let (mut third, _) = connect(addr, "lobby?next=2").await;
    let (_, fourth_id) = connect(addr, "lobby?next=2").await;
    assert_eq!(event(&mut third).await, json!({ "NewPeer": fourth_id }));
    silent(&mut first, Duration::from_millis(200)).await;
    silent(&mut second, Duration::from_millis(10)).await;
    // A bad `next` or room name is refused before the upgrade, in JSON.
    let (head, body) = http_get(addr, "/matchbox/lobby?next=many").await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(body.contains("invalid_options"), "{body}");
    server.shutdown().await;
}
