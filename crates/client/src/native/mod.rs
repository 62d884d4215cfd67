//! The native shell: a tokio task per room that owns the signaling WebSocket, one UDP socket
//! and every peer's str0m `Rtc`, and carries out what the pure room core decides.

mod channel_socket;
mod connection;
mod connection_task;
mod driver;
mod endpoint;
mod http_offer;
mod ice;
mod link;
mod pairing;
mod room;
mod sending;
mod server_connect;
mod tls;

pub use channel_socket::ChannelSocket;
pub use connection::Connection;
pub use pairing::{PairingAnswer, PairingOffer};
pub use room::Room;
