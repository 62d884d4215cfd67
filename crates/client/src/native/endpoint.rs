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
    /// Binds a socket on every interface; asks `stun_server` (if any) for our public address.
    pub async fn bind(stun_server: Option<&str>, stun_timeout: Duration) -> Result<Self, Error> {
        let socket = UdpSocket::bind("0.0.0.0:0").await.map_err(|e| {
            Error::new(
                "connection_failed",
                format!("cannot bind a UDP socket: {e}"),
            )
        })?;
        let bound = socket
            .local_addr()
            .map_err(|e| Error::new("connection_failed", e.to_string()))?;
        let hosts = ice::host_addresses(bound);
        let servers: Vec<String> = stun_server.into_iter().map(str::to_owned).collect();
        let reflexive = ice::reflexive(&socket, &servers, stun_timeout).await;
        let candidates = ice::candidates(&hosts, reflexive);
        Ok(Self {
            socket,
            hosts,
            candidates,
        })
    }
}
