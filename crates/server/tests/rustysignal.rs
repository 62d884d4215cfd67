//! The rustysignal endpoint with a client written from rustysignal's README: `?user=NAME`, then
//! `{protocol: "one-to-one" | "one-to-all" | "one-to-self", to, action, data}`, delivered as
//! sent; errors as plain text; networks apart from each other and from native rooms.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

async fn user(addr: SocketAddr, path: &str, name: &str) -> Socket {
    raw(addr, &format!("{path}?user={name}")).await
}

#[tokio::test]
async fn one_to_one_all_and_self_deliver_the_text_as_sent() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut ann = user(addr, "/rustysignal", "ann").await;
    let mut bob = user(addr, "/rustysignal", "bob").await;
    let mut cat = user(addr, "/rustysignal", "cat").await;
    // Give the joins a moment: rustysignal says nothing on connect, so there is nothing to await.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let to_bob = r#"{"protocol":"one-to-one","to":"bob","action":"offer","data":{"sdp":"v=0","from":"ann"}}"#;
    send_text(&mut ann, to_bob).await;
    assert_eq!(next_text(&mut bob).await, to_bob, "verbatim");
    // rustysignal's code reads `endpoint`; both work.
    let to_cat = r#"{"protocol":"one-to-one","endpoint":"cat","action":"answer","data":1}"#;
    send_text(&mut bob, to_cat).await;
    assert_eq!(next_text(&mut cat).await, to_cat);
    // one-to-all: everyone, the sender too (rustysignal broadcasts to every socket).
    let hello = r#"{"protocol":"one-to-all","action":"hello","data":{"name":"ann"}}"#;
    send_text(&mut ann, hello).await;
    for socket in [&mut ann, &mut bob, &mut cat] {
        assert_eq!(next_text(socket).await, hello);
    }
    let me = r#"{"protocol":"one-to-self","action":"echo","data":[1,2,3]}"#;
    send_text(&mut cat, me).await;
    assert_eq!(next_text(&mut cat).await, me);
    silent(&mut ann, Duration::from_millis(200)).await;
    silent(&mut bob, Duration::from_millis(200)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn errors_are_plain_text_and_the_connection_stays() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut ann = user(addr, "/rustysignal", "ann").await;
    let mut bob = user(addr, "/rustysignal", "bob").await;
    let cases = [
        (
            r#"{"protocol":"one-to-one","to":"nobody","data":1}"#,
            "nobody",
        ),
        (
            r#"{"protocol":"one-to-one","data":1}"#,
            "No field 'to' provided",
        ),
        (r#"{"protocol":"one-to-many"}"#, "Invalid protocol"),
        (r#"{"data":1}"#, "Invalid protocol"),
        ("not json", "not JSON"),
        (
            r#"{"protocol":"one-to-one","to":"a b"}"#,
            "may only contain",
        ),
    ];
    for (request, why) in cases {
        send_text(&mut ann, request).await;
        let answer = next_text(&mut ann).await;
        assert!(answer.contains(why), "{request}: {answer:?}");
        assert!(
            serde_json::from_str::<Value>(&answer).is_err(),
            "plain text: {answer}"
        );
    }
    ann.send(Message::Binary(vec![1, 2].into())).await.unwrap();
    assert!(next_text(&mut ann).await.contains("text frames"));
    // Still connected, and bob heard none of it.
    let ping = json!({"protocol": "one-to-one", "to": "bob", "data": "still here"}).to_string();
    send_text(&mut ann, &ping).await;
    assert_eq!(next_text(&mut bob).await, ping);
    server.shutdown().await;
}

#[tokio::test]
async fn a_taken_or_missing_user_name_is_told_and_closed() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut ann = user(addr, "/rustysignal", "ann").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = user(addr, "/rustysignal", "ann").await;
    let (texts, close) = texts_until_close(&mut again).await;
    assert_eq!(texts, ["The username is taken"]);
    assert!(close.is_some());
    for path in [
        "/rustysignal",
        "/rustysignal?user=",
        "/rustysignal?user=a%20b",
    ] {
        let mut socket = raw(addr, path).await;
        let (texts, close) = texts_until_close(&mut socket).await;
        assert!(texts[0].contains("user name"), "{path}: {texts:?}");
        assert!(close.is_some());
    }
    // The name is free again once its owner leaves.
    ann.close(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ann = user(addr, "/rustysignal", "ann").await;
    let me = r#"{"protocol":"one-to-self"}"#;
    send_text(&mut ann, me).await;
    assert_eq!(next_text(&mut ann).await, me);
    server.shutdown().await;
}

#[tokio::test]
async fn networks_are_apart_from_each_other_and_from_native_rooms() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut ann = user(addr, "/rustysignal", "ann").await;
    let mut other = user(addr, "/rustysignal/other", "bob").await;
    let mut native = Client::join(addr, "default", "user=bob").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    send_text(&mut ann, r#"{"protocol":"one-to-one","to":"bob"}"#).await;
    assert!(
        next_text(&mut ann).await.contains("bob"),
        "no bob on ann's network"
    );
    send_text(&mut ann, r#"{"protocol":"one-to-all","data":1}"#).await;
    assert_eq!(
        next_text(&mut ann).await,
        r#"{"protocol":"one-to-all","data":1}"#
    );
    silent(&mut other, Duration::from_millis(200)).await;
    native.expect_silence(Duration::from_millis(200)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_flood_is_cut_to_the_rate_limit_and_told_once() {
    let mut config = config();
    config.limits.messages_per_second = 10;
    config.limits.message_burst = 20;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut mallory = user(addr, "/rustysignal", "mallory").await;
    let mut bob = user(addr, "/rustysignal", "bob").await;
    let mut ann = user(addr, "/rustysignal", "ann").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let flood = r#"{"protocol":"one-to-one","to":"bob","data":"spam"}"#;
    for _ in 0..1_000 {
        send_text(&mut mallory, flood).await;
    }
    let mut got = 0;
    while tokio::time::timeout(Duration::from_millis(300), next_text(&mut bob))
        .await
        .is_ok()
    {
        got += 1;
    }
    assert!(
        (20..=40).contains(&got),
        "the burst of 20 and the refill, not {got} of 1000"
    );
    let told = next_text(&mut mallory).await;
    assert!(told.contains("messages/s"), "{told}");
    silent(&mut mallory, Duration::from_millis(200)).await;
    let hello = r#"{"protocol":"one-to-one","to":"bob","data":"from ann"}"#;
    send_text(&mut ann, hello).await;
    assert_eq!(next_text(&mut bob).await, hello);
    server.shutdown().await;
}

#[tokio::test]
async fn messages_to_everyone_share_the_networks_budget() {
    let mut config = config();
    config.limits.directory_broadcasts_per_second = 1;
    config.limits.directory_broadcast_burst = 2;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut ann = user(addr, "/rustysignal", "ann").await;
    let mut bob = user(addr, "/rustysignal", "bob").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let hello = r#"{"protocol":"one-to-all","data":"hi"}"#;
    send_text(&mut ann, hello).await;
    send_text(&mut bob, hello).await;
    for socket in [&mut ann, &mut bob] {
        assert_eq!(next_text(socket).await, hello);
        assert_eq!(next_text(socket).await, hello);
    }
    // The network's burst of 2 is spent, by two users together: the third is refused.
    send_text(&mut ann, hello).await;
    let refused = next_text(&mut ann).await;
    assert!(
        refused.contains("directory_broadcasts_per_second"),
        "{refused}"
    );
    silent(&mut bob, Duration::from_millis(200)).await;
    // One-to-one still flows.
    let direct = r#"{"protocol":"one-to-one","to":"bob","data":"direct"}"#;
    send_text(&mut ann, direct).await;
    assert_eq!(next_text(&mut bob).await, direct);
    server.shutdown().await;
}
