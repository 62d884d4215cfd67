//! The Switchboard wire protocol, version 1.
//!
//! Plain data types and pure functions: no sockets, no clocks, no threads. The server and every
//! client (native or `wasm32-unknown-unknown`) share this crate, so both ends agree on every byte.
//! The protocol is written down for humans in `docs/protocol.md`.
//!
//! * [`ClientMessage`] goes from a peer to the hub, [`ServerMessage`] from the hub to a peer.
//! * [`Encoding`] picks JSON (text frames) or MessagePack (binary frames); both carry the same
//!   messages. [`decode_client`], [`encode_server`], [`encode_client`] and [`decode_server`]
//!   convert between messages and frames.
//! * [`ErrorCode`] lists the stable error codes, and the WebSocket close code each fatal one uses.
//! * [`frame`] is the framing of messages on data channels (shared with the browser client).
//! * [`outbox`] queues reliable frames while a transport's send buffer is full (no frame lost).
//! * [`compact`] shrinks a data-channel offer or answer to a code that fits a small QR code.

mod codec;
pub mod compact;
mod data;
mod error;
pub mod frame;
mod id;
mod message;
mod names;
pub mod outbox;
mod payload;
pub mod rate;

pub use codec::{
    decode_client, decode_server, encode_client, encode_server, Encoded, Encoding, Frame,
};
pub use data::Data;
pub use error::{ErrorCode, ProtocolError};
pub use id::{ParsePeerIdError, PeerId};
pub use message::{
    ClientMessage, HostLeaves, IceServer, LeaveReason, PeerInfo, RoomInfo, RoomKind, ServerMessage,
    Target, Topology, Welcome,
};
pub use names::{validate_room_name, validate_user_name, MAX_NAME_LEN};
pub use payload::Payload;

/// The protocol version this crate speaks. Clients ask for it with `?v=1`.
pub const PROTOCOL_VERSION: u32 = 1;
