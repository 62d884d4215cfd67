//! Switchboard's Rust client: a Rust program joins the same rooms as browser peers (the
//! `switchboard.js` client), over WebRTC data channels, with signaling through a Switchboard
//! server. A Rust peer and a browser peer in one room cannot tell each other apart: the same
//! signal payloads, pre-negotiated channel ids and framing (docs/protocol.md, "Peer-to-peer
//! rooms").
//!
//! ```no_run
//! use switchboard_client::{Event, JoinOptions, Room};
//!
//! # async fn demo() -> Result<(), switchboard_client::Error> {
//! let mut room = Room::join("ws://127.0.0.1:8080/ws/lobby", JoinOptions::default()).await?;
//! while let Some(event) = room.next_event().await {
//!     match event {
//!         Event::PeerConnected(peer) => room.send(peer.id, "reliable", "hello")?,
//!         Event::Message { peer, channel, data } => println!("{peer} on {channel}: {data:?}"),
//!         Event::Closed { .. } => break,
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Game loops call [`Room::poll`] once a frame instead: it returns what has arrived without
//! waiting. The decisions (membership, who offers, negotiation, channel declarations, framing)
//! are pure modules; the native shell (tokio, one UDP socket, str0m) carries them out.

pub mod channels;
pub mod connect_options;
mod connection_event;
mod error;
mod event;
#[cfg(feature = "ggrs")]
mod ggrs_socket;
mod options;
mod outgoing;
mod pairing_code;
pub mod room_core;
pub mod signal;
mod signaling_move;
pub mod topology;

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(target_arch = "wasm32")]
mod web;

pub use channels::{ChannelOptions, ChannelSpec};
pub use connect_options::ConnectOptions;
pub use connection_event::{ConnectionEvent, Transport};
pub use error::Error;
pub use event::Event;
#[cfg(not(target_arch = "wasm32"))]
pub use native::{ChannelSocket, Connection, PairingAnswer, PairingOffer, Room};
pub use options::{join_url, JoinOptions, Lobby};
pub use pairing_code::PairingCode;
pub use switchboard_protocol::{Data, Encoding, HostLeaves, PeerId, PeerInfo, RoomInfo, Topology};
#[cfg(target_arch = "wasm32")]
pub use web::{ChannelSocket, Connection, PairingAnswer, PairingOffer, Room};
