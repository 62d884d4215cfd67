//! The browser shell (wasm32-unknown-unknown): the room's WebSocket and one
//! `RTCPeerConnection` per peer through web-sys, driven by the page's event loop, carrying out
//! what the pure room core decides (the same core, signals, channels and framing as native).

mod channel_socket;
mod connection;
mod link;
mod ops;
mod pairing;
mod refusal;
mod room;
mod shell;
mod socket_link;
mod timer;

pub use channel_socket::ChannelSocket;
pub use connection::Connection;
pub use pairing::{PairingAnswer, PairingOffer};
pub use room::Room;
