//! An echo server peer, for trying the server peer and for the browser tests: every message comes
//! back on the channel it came on; the text `kick me` gets the sender kicked. Serves the browser
//! client at `/switchboard.js` and takes offers at `POST /connect`.
//!
//! `cargo run -p switchboard-peer --example echo -- [HTTP_ADDR] [UDP_ADDR] [PUBLIC_IP...]`
//! (defaults 127.0.0.1:8090 and 127.0.0.1:3479; public IPs: what to advertise, default the
//! bound IP). Prints one line per event on stdout (`open <peer> webrtc|websocket`). With
//! `ECHO_JWT_SECRET` set, connecting needs an HS256 token signed with it (`PeerConfig::auth`).
//!
//! `ECHO_MAX_PEERS` and `ECHO_MAX_PEERS_PER_IP` raise those limits (the load benchmark connects
//! thousands of peers from 127.0.0.1); `ECHO_SHARDS` sets `PeerConfig::shards`.
//!
//! With `ECHO_SNAPSHOT_HZ=30` it plays the game loop of the benchmark's game row instead of
//! echoing: it counts every message as an input and broadcasts, that many times per second, an
//! unreliable 255-byte snapshot: `0xEE`, the inputs received so far (u64, big endian), padding.

use std::io::Write;

use axum::routing::get;
use switchboard_peer::{Data, Event, PeerConfig, Server, Transport};

const CLIENT: &str = include_str!("../../../clients/js/dist/switchboard.js");
const WASM_GLUE: &str = include_str!("../../server/assets/demo/wasm/switchboard_wasm_chat.js");
const WASM: &[u8] = include_bytes!("../../server/assets/demo/wasm/switchboard_wasm_chat_bg.wasm");
const PAGE: &str =
    "<!doctype html><meta charset=utf-8><title>echo</title><p>Switchboard echo server peer.</p>";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let http = args.next().unwrap_or_else(|| "127.0.0.1:8090".into());
    let udp = args.next().unwrap_or_else(|| "127.0.0.1:3479".into());
    let public_ips = args.map(|ip| ip.parse()).collect::<Result<Vec<_>, _>>()?;
    // ECHO_JWT_SECRET=...: connecting needs a token signed with it (HS256), as on a hub with
    // --auth-jwt-secret.
    let auth = match std::env::var("ECHO_JWT_SECRET") {
        Ok(secret) => Some(switchboard_auth::Verifier::new(
            switchboard_auth::VerifierConfig {
                key: switchboard_auth::VerifyKey::Secret(secret.into_bytes()),
                audience: None,
                leeway_s: 30,
                max_token_bytes: 4096,
            },
        )?),
        Err(_) => None,
    };
    let defaults = PeerConfig::default();
    let limit = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let config = PeerConfig {
        listen: udp.parse()?,
        public_ips,
        auth,
        max_peers: limit("ECHO_MAX_PEERS", defaults.max_peers),
        max_peers_per_ip: limit("ECHO_MAX_PEERS_PER_IP", defaults.max_peers_per_ip),
        shards: limit("ECHO_SHARDS", defaults.shards),
        ..defaults
    };
    let max_offer = config.max_offer_bytes;
    let (server, mut events) = Server::new(config).await?;
    let app = switchboard_peer::http::router(server.clone(), max_offer)
        .route("/", get(|| async { axum::response::Html(PAGE) }))
        .route(
            "/switchboard.js",
            get(|| async { ([("content-type", "text/javascript")], CLIENT) }),
        )
        // The Rust client built for the browser, so a page here can connect with it too.
        .route(
            "/demo/wasm/switchboard_wasm_chat.js",
            get(|| async { ([("content-type", "text/javascript")], WASM_GLUE) }),
        )
        .route(
            "/demo/wasm/switchboard_wasm_chat_bg.wasm",
            get(|| async { ([("content-type", "application/wasm")], WASM) }),
        );
    let listener = tokio::net::TcpListener::bind(&http).await?;
    say(&format!(
        "echo http://{}/ udp {} advertised {:?}",
        listener.local_addr()?,
        server.local_addr(),
        server.advertised()
    ));
    // With the client address, so per-address limits apply (`max_peers_per_ip`).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    // ECHO_HUB=ws://host/ws/ROOM: also serve the browsers of that hub room (the hub way).
    let _hub = match std::env::var("ECHO_HUB") {
        Ok(url) => {
            let link = switchboard_peer::hub::join_hub(&server, &url).await?;
            say(&format!("hub {} as {}", link.room, link.id));
            Some(link)
        }
        Err(_) => None,
    };
    if let Some(hz) = std::env::var("ECHO_SNAPSHOT_HZ")
        .ok()
        .and_then(|hz| hz.parse::<u32>().ok())
    {
        game(&server, &mut events, hz).await;
    }
    loop {
        // Wait for one event, then take every other one already queued.
        let first = events.recv().await;
        for event in std::iter::once(first).chain(events.pop_all()) {
            handle(&server, event).await;
        }
    }
}

/// The benchmark's game loop: inputs counted, a snapshot broadcast `hz` times a second.
async fn game(server: &Server, events: &mut switchboard_peer::Events, hz: u32) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1) / hz.max(1));
    let mut inputs: u64 = 0;
    loop {
        tick.tick().await;
        inputs += events
            .pop_all()
            .into_iter()
            .filter(|event| matches!(event, Event::Received(..)))
            .count() as u64;
        let mut snapshot = vec![0u8; 255];
        snapshot[0] = 0xEE;
        snapshot[1..9].copy_from_slice(&inputs.to_be_bytes());
        server.broadcast_unreliable(snapshot);
    }
}

/// Echoes a message on its channel; `kick me` gets the sender kicked.
async fn handle(server: &Server, event: Event) {
    match event {
        Event::Open(peer) => {
            let transport = match server.transport(peer).await {
                Some(Transport::WebRtc) => "webrtc",
                Some(Transport::WebSocket) => "websocket",
                None => "gone",
            };
            say(&format!("open {peer} {transport}"));
        }
        Event::Closed(peer, reason) => say(&format!("closed {peer} {reason}")),
        Event::Received(peer, _, data) if data == Data::Text("kick me".into()) => {
            server.kick(peer, "you asked");
        }
        Event::Received(peer, channel, data) => server.send_to(&[peer], channel, data),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
