//! Settings of the server peer, every limit with a default.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Settings of a [`crate::Server`].
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The one UDP address every browser connects to (and plain STUN is answered on).
    pub listen: SocketAddr,
    /// Addresses advertised to browsers as the server's candidates. Empty: the bound IP, or,
    /// bound to a wildcard, this machine's interface addresses that another machine can reach
    /// (not loopback or link-local, at most 8), then loopback.
    pub public_ips: Vec<IpAddr>,
    /// A peer that has not opened its channels this long after its offer is dropped.
    pub connect_timeout: Duration,
    /// Most peers at once (connected or connecting); more offers are refused.
    pub max_peers: usize,
    /// Largest data channel frame sent; larger reliable messages are chunked.
    pub frame_bytes: usize,
    /// Largest reliable message reassembled from a peer.
    pub max_message_bytes: usize,
    /// Largest SDP offer accepted by `POST /connect`.
    pub max_offer_bytes: usize,
    /// Messages queued from the application to the network loop before sends are dropped.
    pub command_queue: usize,
    /// Whether `http::router` serves `GET /connect/ws`, the WebSocket fallback for browsers
    /// whose UDP is blocked.
    pub websocket_fallback: bool,
    /// Bytes of reliable frames queued for one peer (either transport) beyond what its transport
    /// takes at once (str0m's SCTP buffer takes 128 KiB): a reliable send that would go over it
    /// closes the peer (`send_queue_full`), an unreliable one is dropped (and counted). Must be at
    /// least `max_message_bytes` plus its framing (one byte per `frame_bytes`), or the largest
    /// messages can never be sent.
    pub send_queue_bytes: usize,
    /// How long a closing peer (kicked, left, shutdown) is given to take its goodbye and what was
    /// queued before it, before its data channels and association are closed anyway.
    pub close_linger: Duration,
    /// How often the server pings a WebSocket peer.
    pub socket_ping_interval: Duration,
    /// A WebSocket peer silent this long (not even a pong) is closed (`timeout`).
    pub socket_idle_timeout: Duration,
    /// Largest WebSocket message taken from a browser: one frame and its channel byte (the
    /// browser client's largest `frameBytes` is 256 KiB).
    pub socket_max_frame_bytes: usize,
    /// A write to a WebSocket peer (a frame, a ping) that does not finish this soon closes it
    /// (`write_timeout`): its socket stopped taking data.
    pub socket_write_timeout: Duration,
    /// Most unsent bytes one WebSocket may hold (frames, and pongs owed to the client) before it
    /// is closed (`write_timeout`).
    pub socket_max_write_buffer_bytes: usize,
    /// Sustained WebSocket control frames (pings, pongs) a peer may send per second.
    pub socket_control_per_second: u32,
    /// Burst of control frames above that rate; past it the socket is closed (`flooding`).
    pub socket_control_burst: u32,
    /// Most peers (either transport, connecting or open) from one IP address, when the
    /// application serves `http::router` with `into_make_service_with_connect_info::<SocketAddr>`
    /// (without the peer's address there is no per-address count). More are refused with 429.
    pub max_peers_per_ip: usize,
    /// Shards of the network loop: each owns the peers it holds and its own socket on the one
    /// UDP port (`SO_REUSEPORT`), so the peers' work spreads over cores. 0: one per core.
    pub shards: usize,
    /// Kernel receive and send buffer asked for each UDP socket, bytes (the kernel caps it at
    /// `net.core.rmem_max` / `wmem_max`): bursts from thousands of peers queue instead of
    /// being dropped.
    pub udp_buffer_bytes: usize,
    /// When set, `POST /connect` and `GET /connect/ws` need a valid token (the hub's JWTs:
    /// `?token=` or `Authorization: Bearer`); others get 401 with the reason. `None`: open.
    pub auth: Option<switchboard_auth::Verifier>,
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 3478),
            public_ips: Vec::new(),
            connect_timeout: Duration::from_secs(15),
            max_peers: 10_000,
            frame_bytes: 16 * 1024,
            max_message_bytes: 16 * 1024 * 1024,
            max_offer_bytes: 16 * 1024,
            command_queue: 65_536,
            websocket_fallback: true,
            send_queue_bytes: 32 * 1024 * 1024,
            close_linger: Duration::from_secs(1),
            socket_ping_interval: Duration::from_secs(5),
            socket_idle_timeout: Duration::from_secs(15),
            socket_max_frame_bytes: 256 * 1024 + 1,
            socket_write_timeout: Duration::from_secs(5),
            socket_max_write_buffer_bytes: 256 * 1024,
            socket_control_per_second: 10,
            socket_control_burst: 50,
            max_peers_per_ip: 64,
            shards: 0,
            udp_buffer_bytes: 4 << 20,
            auth: None,
        }
    }
}
