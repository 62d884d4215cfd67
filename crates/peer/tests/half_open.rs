//! Offers that never connect do not stay: the server drops half-open peers after
//! `connect_timeout`, so memory does not grow with abandoned offers. Real offers from a str0m
//! client, a real server on loopback; the client just never answers the ICE checks.

use std::time::{Duration, Instant};

use str0m::channel::{ChannelConfig, Reliability};
use switchboard_peer::{PeerConfig, Server};

fn offer() -> String {
    let mut rtc = str0m::Rtc::builder().build(Instant::now());
    let addr = "127.0.0.1:9".parse().expect("an address");
    rtc.add_local_candidate(str0m::Candidate::host(addr, "udp").expect("a candidate"));
    let mut api = rtc.sdp_api();
    for (label, id, ordered) in [("reliable", 0, true), ("unreliable", 1, false)] {
        let reliability = if ordered {
            Reliability::Reliable
        } else {
            Reliability::MaxRetransmits { retransmits: 0 }
        };
        api.add_channel_with_config(ChannelConfig {
            label: label.into(),
            ordered,
            reliability,
            negotiated: Some(id),
            protocol: String::new(),
        });
    }
    let (offer, _pending) = api.apply().expect("an offer");
    offer.to_sdp_string()
}

#[tokio::test]
async fn half_open_peers_are_dropped_after_the_connect_timeout() {
    let config = PeerConfig {
        listen: "127.0.0.1:0".parse().expect("an address"),
        connect_timeout: Duration::from_millis(300),
        ..PeerConfig::default()
    };
    let (server, _events) = Server::new(config).await.expect("the server starts");
    for _ in 0..5 {
        let (_, answer) = server
            .connect(offer())
            .await
            .expect("the offer is accepted");
        assert!(
            answer.contains("a=candidate"),
            "the answer carries the server's candidates"
        );
    }
    assert_eq!(server.peer_count().await, 5);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(server.peer_count().await, 0, "abandoned offers are gone");
    let error = server
        .connect("not an sdp".into())
        .await
        .expect_err("garbage is refused");
    assert_eq!(error.code(), "invalid_offer");
}
