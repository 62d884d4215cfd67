//! Switchboard server: the signaling hub and its HTTP front.
//!
//! * [`hub`]: the hub core, a pure state machine (rooms, names, routing, limits). No I/O.
//! * [`handshake`]: negotiation of version, encoding, room and name. No I/O.
//! * [`server`], `connection`, `relay`: the thin tokio/axum shell that moves frames between
//!   sockets and the core.
//! * `stun`: the built-in STUN server's UDP workers around the sans-IO `switchboard-stun` codec.
//! * [`config`]: every setting and limit, with defaults.
//!
//! ```no_run
//! # async fn run() -> Result<(), switchboard_server::StartError> {
//! let server = switchboard_server::Server::start(switchboard_server::Config::default()).await?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod access;
mod admin_api;
pub mod admission;
mod assets;
mod cluster;
mod compat;
pub mod config;
mod connection;
pub mod handshake;
pub mod hub;
mod metrics;
pub mod push;
mod relay;
mod send_queue;
pub mod server;
mod stun;
mod wire;

pub use config::{Config, ConfigError, Limits, StunConfig};
pub use server::{Server, StartError};
pub use switchboard_protocol::IceServer;
