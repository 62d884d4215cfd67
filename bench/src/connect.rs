//! Opening WebSockets from chosen loopback source addresses (to spread ephemeral ports).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;

/// A client WebSocket over plain TCP.
pub type Ws = WebSocketStream<TcpStream>;

/// The `i`-th source address: 127.0.0.2, 127.0.0.3, ... cycling through `sources` of them.
pub fn source_ip(i: usize, sources: usize) -> IpAddr {
    let k = (i % sources.max(1)) as u32 + 2;
    IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 0)) + k))
}

/// Connects to `server` from `source` and performs the WebSocket handshake for `path`.
pub async fn open(server: SocketAddr, source: IpAddr, path: &str) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let stream = socket
        .connect(server)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    let url = format!("ws://{server}{path}");
    let (ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}
