//! The native shell: a tokio task per room that owns the signaling WebSocket, one UDP socket
//! and every peer's str0m `Rtc`, and carries out what the pure room core decides.

mod channel_socket;
mod driver;
mod http_offer;
mod ice;
mod link;
mod room;
mod sending;
mod server;
mod server_task;

pub use channel_socket::ChannelSocket;
pub use room::Room;
pub use server::{ServerConnection, ServerEvent, Transport};
