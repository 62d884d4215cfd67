//! Frames that reach the server together: a connection gives the data frames one read brought
//! to the hub in runs of up to 32 under one lock (`READ_BATCH` in connection/mod.rs). Order, the
//! byte budget and a closing bad frame must hold inside a run and across runs, and frames larger
//! than the read buffer (2 KiB) arrive split across reads.

mod common;

use common::*;
use futures_util::SinkExt;
use serde_json::{json, Value};
use switchboard_protocol::{ErrorCode, Payload, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

/// A native `message` to the peer named `to`, with `data` as given.
fn to_name(to: &str, data: &str) -> Message {
    Message::Text(format!(r#"{{"type":"message","to":{{"name":"{to}"}},"data":{data}}}"#).into())
}

#[tokio::test]
async fn a_thousand_frames_written_at_once_arrive_whole_and_in_order() {
    let mut config = config();
    config.limits.messages_per_second = 100_000;
    config.limits.message_burst = 100_000;
    // Bob reads only once all are written: his queue holds them all meanwhile.
    config.limits.send_queue_messages = 2_048;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut ann = Client::join(addr, "batch", "user=ann").await;
    let mut bob = Client::join(addr, "batch", "user=bob").await;
    let _ = ann.recv().await; // bob joined
                              // Every 97th message is 10,000 bytes: past the 2 KiB read buffer, so split across reads
                              // and runs of every length around the batch of 32.
    let data = |n: usize| {
        let pad = if n.is_multiple_of(97) { 10_000 } else { 8 };
        json!({"n": n, "pad": "x".repeat(pad)})
    };
    for n in 0..1_000 {
        // `feed` does not flush: the frames leave in a few large writes.
        let frame = to_name("bob", &data(n).to_string());
        ann.socket.feed(frame).await.expect("queued");
    }
    ann.socket.flush().await.expect("written");
    for n in 0..1_000 {
        match bob.recv().await {
            ServerMessage::Message { from, data: got } => {
                assert_eq!(from, ann.id());
                let got: Value = serde_json::from_str(&got.to_json_string().unwrap()).unwrap();
                assert_eq!(got, data(n), "message {n} arrives in its place");
            }
            other => panic!("expected message {n}, got {other:?}"),
        }
    }
    bob.expect_silence(std::time::Duration::from_millis(200))
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_byte_budget_holds_inside_a_run_of_frames() {
    let mut config = config();
    config.limits.max_message_bytes = 1_000;
    config.limits.byte_burst = 2_000;
    // Next to nothing comes back within the test: the burst is all there is.
    config.limits.bytes_per_second = 1;
    config.limits.messages_per_second = 100_000;
    config.limits.message_burst = 100_000;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut ann = Client::join(addr, "budget", "user=ann").await;
    let mut bob = Client::join(addr, "budget", "user=bob").await;
    let _ = ann.recv().await; // bob joined
                              // Frames of exactly 100 bytes (n has two digits): 20 fit the burst of 2,000; the 30 after
                              // are dropped, and only the first of them is answered.
    let frame = |n: usize| {
        let head = format!(r#"{{"type":"message","to":{{"name":"bob"}},"data":{{"n":{n:02},"p":""#);
        let text = format!("{head}{}\"}}}}", "x".repeat(100 - head.len() - 3));
        assert_eq!(text.len(), 100);
        Message::Text(text.into())
    };
    for n in 10..60 {
        ann.socket.feed(frame(n)).await.expect("queued");
    }
    ann.socket.flush().await.expect("written");
    for n in 10..30 {
        match bob.recv().await {
            ServerMessage::Message { data, .. } => {
                let got: Value = serde_json::from_str(&data.to_json_string().unwrap()).unwrap();
                assert_eq!(got["n"], n);
            }
            other => panic!("expected message {n}, got {other:?}"),
        }
    }
    bob.expect_silence(std::time::Duration::from_millis(300))
        .await;
    assert_eq!(ann.recv_error().await, ErrorCode::RateLimited);
    ann.expect_silence(std::time::Duration::from_millis(200))
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_bad_frame_that_closes_ends_its_run_and_nothing_after_it_is_relayed() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut bob = raw(
        addr,
        "/peerjs/peerjs?key=peerjs&id=bob&token=b&version=1.5.5",
    )
    .await;
    assert_eq!(event(&mut bob).await, json!({"type": "OPEN"}));
    let mut ann = raw(
        addr,
        "/peerjs/peerjs?key=peerjs&id=ann&token=a&version=1.5.5",
    )
    .await;
    assert_eq!(event(&mut ann).await, json!({"type": "OPEN"}));
    let candidate = |n: u32| {
        json!({"type": "CANDIDATE", "dst": "bob", "payload": {"candidate": n}}).to_string()
    };
    // Ten good frames, a bad one (PeerJS closes for it), ten more: all in one write.
    for n in 0..10 {
        ann.feed(Message::Text(candidate(n).into())).await.unwrap();
    }
    ann.feed(Message::Text("{not json".into())).await.unwrap();
    for n in 10..20 {
        ann.feed(Message::Text(candidate(n).into())).await.unwrap();
    }
    ann.flush().await.unwrap();
    for n in 0..10 {
        let got = event(&mut bob).await;
        assert_eq!(got["src"], "ann");
        assert_eq!(got["payload"]["candidate"], n);
    }
    let (texts, close) = texts_until_close(&mut ann).await;
    let error: Value = serde_json::from_str(&texts[0]).unwrap();
    assert_eq!(error["type"], "ERROR", "{texts:?}");
    assert!(close.is_some(), "ann is closed");
    silent(&mut bob, std::time::Duration::from_millis(300)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_binary_msgpack_run_keeps_its_order_too() {
    let mut config = config();
    config.limits.messages_per_second = 100_000;
    config.limits.message_burst = 100_000;
    let server = start(config).await;
    let addr = server.local_addr();
    let mut ann = Client::join(addr, "packed", "user=ann&enc=msgpack").await;
    let mut bob = Client::join(addr, "packed", "user=bob").await;
    let _ = ann.recv().await; // bob joined
    for n in 0..200u32 {
        let message = rmp_serde::to_vec_named(
            &json!({"type": "message", "to": {"name": "bob"}, "data": {"n": n}}),
        )
        .unwrap();
        ann.socket
            .feed(Message::Binary(message.into()))
            .await
            .unwrap();
    }
    ann.socket.flush().await.unwrap();
    for n in 0..200u32 {
        match bob.recv().await {
            // Bob speaks JSON: the server re-encodes for him.
            ServerMessage::Message { data, .. } => {
                assert_eq!(
                    data,
                    Payload::from_json(&format!(r#"{{"n":{n}}}"#)).unwrap()
                );
            }
            other => panic!("expected message {n}, got {other:?}"),
        }
    }
    server.shutdown().await;
}
