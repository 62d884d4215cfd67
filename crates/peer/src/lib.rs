//! Switchboard server peer: a Rust game server that is itself a WebRTC peer for many browsers,
//! on one UDP port for all of them.
//!
//! ```no_run
//! # async fn run() -> Result<(), switchboard_peer::StartError> {
//! use switchboard_peer::{Channel, Event, PeerConfig, Server};
//! let (server, mut events) = Server::new(PeerConfig::default()).await?;
//! // Browsers connect with `POST /connect` (see `switchboard_peer::http::router`).
//! loop {
//!     for event in events.pop_all() {
//!         match event {
//!             Event::Open(peer) => server.send_reliable(peer, "welcome"),
//!             Event::Received(peer, Channel::Unreliable, input) => { /* game input */ }
//!             Event::Received(peer, Channel::Reliable, chat) => server.broadcast_reliable(chat),
//!             Event::Closed(peer, reason) => { /* gone */ }
//!         }
//!     }
//!     # break;
//! }
//! # Ok(()) }
//! ```
//!
//! * [`demux`]: which peer a datagram belongs to (pure).
//! * [`Server`] / [`Events`]: the application's handles; they never block the network loop.
//! * `engine`: the network loop, a shard per core: each a pure peer table (`engine::table`, every
//!   `str0m::Rtc` it holds) and a thin shell with its own socket on the one port.
//! * `slot`: one WebRTC peer of that loop; `outbox`: its reliable frames waiting for room in
//!   the transport (pure), so a full SCTP buffer delays a reliable message and never loses it.
//! * `channels`: the two pre-negotiated data channels. [`Stats`]: counters for `/metrics`.
//! * [`http`]: `POST /connect`, the one-request signaling (browser offers, server answers), and
//!   `GET /connect/ws`, the WebSocket fallback when UDP is blocked.
//! * `socket`: the WebSocket fallback's framing (pure) and socket task.
//! * [`hub`]: the other way: the server peer hosts a hub room and offers to every browser in it.

mod addrs;
mod api;
mod channels;
mod config;
pub mod demux;
mod engine;
pub mod http;
pub mod hub;
mod origins;
mod roster;
mod slot;
mod socket;
mod socket_queue;
mod stats;

pub use api::{Channel, Data, Event, Events, PeerId, Server, StartError, Transport};
pub use config::PeerConfig;
pub use stats::Stats;
