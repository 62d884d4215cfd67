//! Our end of a connection outside a room: one UDP socket, its host addresses and our
//! candidates (plus a server-reflexive one when a STUN server is given).

use std::net::SocketAddr;
use std::time::Duration;

use str0m::Candidate;
use tokio::net::UdpSocket;

use super::ice;
use crate::Error;

/// A bound socket and what we offer of it.
pub(crate) struct Endpoint {
    pub socket: UdpSocket,
    pub hosts: Vec<SocketAddr>,
    pub candidates: Vec<Candidate>,
}

impl Endpoint {
    /// Binds a socket on every interface with kernel buffers of `buffer_bytes` each way (the
    /// kernel caps them at its maximum); asks the STUN servers (the first that answers within
    /// `stun_timeout`) for our public address.
    pub async fn bind(
        stun_servers: &[String],
        stun_timeout: Duration,
        buffer_bytes: usize,
    ) -> Result<Self, Error> {
        let socket = udp_socket(buffer_bytes).map_err(|e| {
            Error::new(
                "connection_failed",
                format!("cannot bind a UDP socket: {e}"),
            )
        })?;
        let bound = socket
            .local_addr()
            .map_err(|e| Error::new("connection_failed", e.to_string()))?;
        let hosts = ice::host_addresses(bound);
        let reflexive = ice::reflexive(&socket, stun_servers, stun_timeout).await;
        let candidates = ice::candidates(&hosts, reflexive);
        Ok(Self {
            socket,
            hosts,
            candidates,
        })
    }
}

/// A non-blocking UDP socket on `0.0.0.0:0` with larger kernel buffers than the default
/// (~208 KiB on Linux): a burst of SCTP packets that overflows the receive buffer costs a
/// retransmission timeout, which stalls a reliable transfer for a second.
fn udp_socket(buffer_bytes: usize) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a kernel that refuses keeps its default.
    let _ = socket.set_recv_buffer_size(buffer_bytes);
    let _ = socket.set_send_buffer_size(buffer_bytes);
    socket.bind(&SocketAddr::from(([0, 0, 0, 0], 0)).into())?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}
