//! Arena: an authoritative game server for browsers on the Switchboard server peer.
//!
//! `cargo run --release -p switchboard-arena [-- HTTP_ADDR UDP_ADDR]` (defaults 0.0.0.0:8081
//! and 0.0.0.0:3479) prints the URLs to open (this machine and the LAN). Browsers connect with
//! one `POST /connect`; inputs arrive on the unreliable channel, the world ticks at 30 Hz and is
//! broadcast unreliably; chat goes over the reliable channel.

mod game;

use std::collections::HashMap;
use std::time::Duration;

use axum::response::Html;
use axum::routing::get;
use switchboard_peer::{Channel, Data, Event, PeerConfig, PeerId, Server};

use game::{Input, World};

const TICK_HZ: u64 = 30;
const CLIENT: &str = include_str!("../../../clients/js/dist/switchboard.js");
const PAGE: &str = include_str!("../assets/index.html");
const MAX_CHAT: usize = 200;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let http = args.next().unwrap_or_else(|| "0.0.0.0:8081".into());
    let udp = args.next().unwrap_or_else(|| "0.0.0.0:3479".into());
    let config = PeerConfig {
        listen: udp.parse()?,
        ..PeerConfig::default()
    };
    let max_offer = config.max_offer_bytes;
    let (server, mut events) = Server::new(config).await?;
    let app = switchboard_peer::http::router(server.clone(), max_offer)
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/switchboard.js",
            get(|| async { ([("content-type", "text/javascript")], CLIENT) }),
        );
    let listener = tokio::net::TcpListener::bind(&http).await?;
    let port = listener.local_addr()?.port();
    println!("Arena is running. Open in two or more browsers:");
    for addr in server.advertised() {
        println!("  http://{}:{port}/", addr.ip());
    }
    println!("(WebRTC on UDP {})", server.local_addr());
    // With the client address, so per-address limits apply (`max_peers_per_ip`).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut world = World::default();
    let mut names: HashMap<PeerId, String> = HashMap::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(1000 / TICK_HZ));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        for event in events.pop_all() {
            match event {
                Event::Open(peer) => {
                    let short = peer.to_string()[..8].to_owned();
                    world.join(short.clone());
                    server.send_reliable(peer, format!(r#"{{"you":"{short}"}}"#));
                    server.broadcast_reliable(format!(r#"{{"chat":"{short} joined"}}"#));
                    names.insert(peer, short);
                }
                Event::Closed(peer, _) => {
                    if let Some(short) = names.remove(&peer) {
                        world.leave(&short);
                        server.broadcast_reliable(format!(r#"{{"chat":"{short} left"}}"#));
                    }
                }
                Event::Received(peer, Channel::Unreliable, Data::Text(text)) => {
                    if let (Some(short), Ok(input)) =
                        (names.get(&peer), serde_json::from_str::<Input>(&text))
                    {
                        world.input(short, input);
                    }
                }
                Event::Received(peer, Channel::Reliable, Data::Text(text)) => {
                    if let Some(short) = names.get(&peer) {
                        let line: String = text.chars().take(MAX_CHAT).collect();
                        let chat = serde_json::json!({ "chat": format!("{short}: {line}") });
                        server.broadcast_reliable(chat.to_string());
                    }
                }
                Event::Received(..) => {}
            }
        }
        world.tick(1.0 / TICK_HZ as f32);
        if world.players() > 0 {
            if let Ok(state) = serde_json::to_string(&world.snapshot()) {
                server.broadcast_unreliable(state);
            }
        }
    }
}
