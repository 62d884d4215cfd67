//! Which addresses to advertise to browsers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// The IPs to advertise: the configured ones; else the bound IP; else (wildcard) the LAN address
/// with the default route, and loopback.
pub fn advertised(bound: SocketAddr, configured: &[IpAddr]) -> Vec<SocketAddr> {
    if !configured.is_empty() {
        return configured
            .iter()
            .map(|ip| SocketAddr::new(*ip, bound.port()))
            .collect();
    }
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let mut found = Vec::new();
    if let Some(lan) = default_route_ip() {
        found.push(SocketAddr::new(lan, bound.port()));
    }
    found.push(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        bound.port(),
    ));
    found
}

/// The local IP the kernel would use to reach the internet; connecting a UDP socket sends nothing.
fn default_route_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.255:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}
