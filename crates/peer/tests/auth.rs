//! With `PeerConfig::auth`, `POST /connect` and `GET /connect/ws` need the hub's tokens: refused
//! with 401 and the reason before any peer exists, accepted with a valid token (query or Bearer).
//! Real HTTP, WebSocket and WebRTC (str0m) on loopback.

mod common;

use std::time::Duration;

use common::{post, server, Client};
use jsonwebtoken::{encode, EncodingKey, Header};
use switchboard_auth::{Verifier, VerifierConfig, VerifyKey};
use switchboard_peer::{Event, PeerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite;

const SECRET: &[u8] = b"the hub's secret";

fn guarded() -> PeerConfig {
    PeerConfig {
        auth: Some(
            Verifier::new(VerifierConfig {
                key: VerifyKey::Secret(SECRET.to_vec()),
                audience: None,
                leeway_s: 30,
                max_token_bytes: 4096,
            })
            .expect("a key"),
        ),
        ..PeerConfig::default()
    }
}

fn token(secret: &[u8], exp_from_now: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    encode(
        &Header::default(),
        &serde_json::json!({"sub": "ann", "exp": now + exp_from_now}),
        &EncodingKey::from_secret(secret),
    )
    .expect("signs")
}

/// A real offer from str0m (what a non-browser client posts).
fn offer() -> String {
    let mut rtc = str0m::Rtc::builder().build(std::time::Instant::now());
    let addr = "127.0.0.1:9".parse().expect("an address");
    rtc.add_local_candidate(str0m::Candidate::host(addr, "udp").expect("a candidate"));
    let mut api = rtc.sdp_api();
    api.add_channel("reliable".into());
    api.apply().expect("an offer").0.to_sdp_string()
}

fn reason(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(value["error"], "unauthorized", "{body}");
    value["reason"].as_str().expect("a reason").to_owned()
}

/// `POST /connect` with an `Authorization` header; returns the status line and the body.
async fn post_bearer(http: std::net::SocketAddr, bearer: &str, body: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(http)
        .await
        .expect("connects");
    let head = format!(
        "POST /connect HTTP/1.1\r\nHost: {http}\r\nAuthorization: Bearer {bearer}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("reads");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    (head.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_connect_needs_a_valid_token() {
    let (server, mut events, http) = server(guarded()).await;
    let offer = offer();
    let (status, body) = post(http, "/connect", &offer).await;
    assert_eq!((status, reason(&body).as_str()), (401, "token_missing"));
    let bad = token(b"another secret", 60);
    let (status, body) = post(http, &format!("/connect?token={bad}"), &offer).await;
    assert_eq!((status, reason(&body).as_str()), (401, "token_signature"));
    let expired = token(SECRET, -600);
    let (head, body) = post_bearer(http, &expired, &offer).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert_eq!(reason(&body), "token_expired");
    assert_eq!(server.peer_count().await, 0, "a refusal leaves no peer");
    assert!(server
        .stats()
        .render()
        .contains("switchboard_peer_auth_refused_total 3"));
    // Valid: by Bearer the offer is answered; by query a real client connects.
    let (head, body) = post_bearer(http, &token(SECRET, 60), &offer).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head} {body}");
    let _client = Client::connect_at(http, &format!("/connect?token={}", token(SECRET, 60))).await;
    let open = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event");
    assert!(matches!(open, Event::Open(_)), "{open:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_fallback_needs_a_valid_token() {
    let (_server, mut events, http) = server(guarded()).await;
    match tokio_tungstenite::connect_async(format!("ws://{http}/connect/ws")).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401);
            let body =
                String::from_utf8(response.body().clone().unwrap_or_default()).expect("UTF-8");
            assert_eq!(reason(&body), "token_missing");
        }
        other => panic!("expected 401, got {:?}", other.map(|_| "an upgrade")),
    }
    let url = format!("ws://{http}/connect/ws?token={}", token(SECRET, 60));
    let (_socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrades");
    let open = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event");
    assert!(matches!(open, Event::Open(_)), "{open:?}");
}
