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

#[tokio::test]
async fn client_server_topology_clients_meet_only_the_host() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let (mut host, host_id) = connect(addr, "arena?topology=client_server").await;
    let (mut a, a_id) = connect(addr, "arena?topology=client_server").await;
    let (mut b, b_id) = connect(addr, "arena?topology=client_server").await;
    // Only the host hears of clients (and starts their handshakes); clients hear of nobody.
    assert_eq!(event(&mut host).await, json!({ "NewPeer": a_id }));
    assert_eq!(event(&mut host).await, json!({ "NewPeer": b_id }));
    silent(&mut a, Duration::from_millis(200)).await;
    silent(&mut b, Duration::from_millis(10)).await;
    // The host signals each client; a client signals the host, and cannot reach another client.
    send_value(
        &mut host,
        json!({"Signal": {"receiver": a_id, "data": {"Offer": "a"}}}),
    )
    .await;
    assert_eq!(
        event(&mut a).await,
        json!({"Signal": {"sender": host_id, "data": {"Offer": "a"}}})
    );
    send_value(
        &mut a,
        json!({"Signal": {"receiver": host_id, "data": {"Answer": "a"}}}),
    )
    .await;
    assert_eq!(
        event(&mut host).await,
        json!({"Signal": {"sender": a_id, "data": {"Answer": "a"}}})
    );
    send_value(
        &mut a,
        json!({"Signal": {"receiver": b_id, "data": "psst"}}),
    )
    .await;
    silent(&mut b, Duration::from_millis(200)).await;
    // A full-mesh room of the same name is another room.
    let (mut mesh, _) = connect(addr, "arena").await;
    silent(&mut mesh, Duration::from_millis(100)).await;
    silent(&mut host, Duration::from_millis(10)).await;
    // A client leaving is news for the host only; the host leaving ends the room for all.
    drop(b);
    assert_eq!(event(&mut host).await, json!({ "PeerLeft": b_id }));
    silent(&mut a, Duration::from_millis(200)).await;
    drop(host);
    assert_eq!(event(&mut a).await, json!({ "PeerLeft": host_id }));
    let (_, close) = texts_until_close(&mut a).await;
    assert!(close.is_some(), "the room is closed");
    // The next peer to come is the host of a new room.
    let (mut new_host, _) = connect(addr, "arena?topology=client_server").await;
    let (_, c_id) = connect(addr, "arena?topology=client_server").await;
    assert_eq!(event(&mut new_host).await, json!({ "NewPeer": c_id }));
    // A topology that is not matchbox's, or with next, is refused before the upgrade.
    for query in ["topology=ring", "topology=client_server&next=2"] {
        let (head, body) = http_get(addr, &format!("/matchbox/arena?{query}")).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{query}: {head}");
        assert!(body.contains("invalid_options"), "{body}");
    }
    server.shutdown().await;
}
