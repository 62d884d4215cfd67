//! The native shell: a tokio task per room that owns the signaling WebSocket, one UDP socket
//! and every peer's str0m `Rtc`, and carries out what the pure room core decides.

mod channel_socket;
mod driver;
mod ice;
mod link;
mod room;
mod sending;

pub use channel_socket::ChannelSocket;
pub use room::Room;
