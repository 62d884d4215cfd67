//! `POST /connect` answers every refusal in its documented JSON (`{"error", "message"}`), never in
//! the framework's text/plain, and never with internals in the message. Real HTTP on loopback.

mod common;

use common::{post, post_bytes, server};
use switchboard_peer::PeerConfig;

/// Checks a refusal: status, JSON with the code, a plain message.
fn refused(answer: (u16, String), status: u16, code: &str) -> String {
    let (got, body) = answer;
    assert_eq!(got, status, "{body}");
    let value: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
    assert_eq!(value["error"], code, "{body}");
    let message = value["message"].as_str().expect("a message").to_owned();
    for internal in ["0x", "PointerOffset", "Error(", "{ "] {
        assert!(!message.contains(internal), "internals in {message:?}");
    }
    message
}

/// A real data channel offer from str0m, with audio instead of its data channel when `audio`.
fn offer(audio: bool) -> String {
    let mut rtc = str0m::Rtc::builder().build(std::time::Instant::now());
    let addr = "127.0.0.1:9".parse().expect("an address");
    rtc.add_local_candidate(str0m::Candidate::host(addr, "udp").expect("a candidate"));
    let mut api = rtc.sdp_api();
    if audio {
        api.add_media(
            str0m::media::MediaKind::Audio,
            str0m::media::Direction::SendRecv,
            None,
            None,
            None,
        );
    } else {
        api.add_channel("reliable".into());
    }
    let (offer, _pending) = api.apply().expect("an offer");
    offer.to_sdp_string()
}

#[tokio::test]
async fn every_refusal_is_the_documented_json() {
    let config = PeerConfig {
        max_offer_bytes: 16 * 1024,
        ..PeerConfig::default()
    };
    let (server, _events, http) = server(config).await;

    // Not UTF-8.
    let answer = post_bytes(
        http,
        "/connect",
        "application/sdp",
        &[0xff, 0xfe, 0x00, 0x80],
    )
    .await;
    let message = refused(answer, 400, "invalid_offer");
    assert!(message.contains("UTF-8"), "{message}");

    // Over max_offer_bytes: just over, and 1 MB.
    for size in [16 * 1024 + 1, 1024 * 1024] {
        let answer = post_bytes(http, "/connect", "application/sdp", &vec![b'a'; size]).await;
        refused(answer, 413, "too_large");
    }
    // Exactly at the limit is read (and refused only as an offer).
    let answer = post_bytes(http, "/connect", "application/sdp", &vec![b'a'; 16 * 1024]).await;
    refused(answer, 400, "invalid_offer");

    // Garbage, and JSON without an sdp.
    refused(
        post(http, "/connect", "not an sdp").await,
        400,
        "invalid_offer",
    );
    refused(
        post(http, "/connect", "{\"nope\": 1}").await,
        400,
        "invalid_offer",
    );
    refused(
        post(http, "/connect", "{\"sdp\": ").await,
        400,
        "invalid_offer",
    );

    // An offer with no data channel: it could never open.
    let message = refused(
        post(http, "/connect", &offer(true)).await,
        400,
        "invalid_offer",
    );
    assert!(message.contains("data channel"), "{message}");

    // A data channel offer, as SDP and as JSON, is answered.
    let (status, body) = post(http, "/connect", &offer(false)).await;
    assert_eq!(status, 200, "{body}");
    let json = serde_json::json!({ "sdp": offer(false) }).to_string();
    let (status, body) = post(http, "/connect", &json).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.peer_count().await, 2);
}
