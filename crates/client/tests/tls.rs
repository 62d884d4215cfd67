//! Native clients join over `wss://`: a hub behind TLS (the server's own listener, with a
//! certificate from a private CA) is reached when the application trusts that CA, and refused
//! with a clear error when it does not.

use std::time::Duration;

use switchboard_client::{Data, Event, JoinOptions, PeerId, Room};
use switchboard_server::{Config, Server};

const WAIT: Duration = Duration::from_secs(20);
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/tests/data");

async fn tls_server() -> Server {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        tls_cert: Some(format!("{DATA}/localhost.crt").into()),
        tls_key: Some(format!("{DATA}/localhost.key").into()),
        ..Config::default()
    };
    config.stun.listen = vec!["127.0.0.1:0".parse().expect("address")];
    config.stun.workers = 1;
    Server::start(config).await.expect("server starts")
}

async fn connected(room: &mut Room) -> PeerId {
    let wait = async {
        while let Some(event) = room.next_event().await {
            if let Event::PeerConnected(peer) = event {
                return peer.id;
            }
        }
        panic!("events ended before a connect");
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .expect("connected in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_the_private_ca_trusted_joins_and_talks_and_without_it_is_refused() {
    let server = tls_server().await;
    assert!(server.is_tls());
    let url = format!("wss://localhost:{}/ws/secure", server.local_addr().port());
    let trusted = JoinOptions {
        tls_roots_pem: Some(std::fs::read_to_string(format!("{DATA}/ca.crt")).expect("ca.crt")),
        ..JoinOptions::default()
    };
    let mut a = Room::join(&url, trusted.clone())
        .await
        .expect("a joins over wss");
    // https:// means the same.
    let https = format!("https://localhost:{}/ws/secure", server.local_addr().port());
    let mut b = Room::join(&https, trusted).await.expect("b joins over wss");
    assert_eq!(connected(&mut a).await, b.id());
    assert_eq!(connected(&mut b).await, a.id());
    a.send(b.id(), "reliable", "over TLS signaling")
        .expect("sent");
    let got = tokio::time::timeout(WAIT, async {
        loop {
            match b.next_event().await {
                Some(Event::Message { data, .. }) => return data,
                Some(_) => {}
                None => panic!("b's events ended"),
            }
        }
    })
    .await
    .expect("a message");
    assert_eq!(got, Data::Text("over TLS signaling".into()));

    // Mozilla's roots alone do not know the private CA: the handshake fails, clearly.
    let refused = Room::join(&url, JoinOptions::default()).await;
    let error = refused.err().expect("refused");
    assert_eq!(error.code, "connection_failed");
    assert!(
        error.message.to_lowercase().contains("certificate"),
        "{}",
        error.message
    );
    // Roots that are not PEM certificates are the application's mistake.
    let garbage = JoinOptions {
        tls_roots_pem: Some("not a certificate".into()),
        ..JoinOptions::default()
    };
    let error = Room::join(&url, garbage).await.err().expect("refused");
    assert_eq!(error.code, "invalid_options");
    a.close();
    b.close();
    server.shutdown().await;
}
