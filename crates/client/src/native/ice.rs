//! Our ICE candidates: host addresses of the client's UDP socket, and a server-reflexive one
//! learned from the hub's STUN server (its `welcome.ice_servers`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use str0m::Candidate;
use switchboard_protocol::IceServer;
use tokio::net::UdpSocket;

/// Most interface addresses offered as host candidates.
const MAX_HOST_ADDRESSES: usize = 8;

/// The socket's host addresses: its bound IP, or (bound to `0.0.0.0`) this machine's IPv4
/// interface addresses other than link-local, loopback last (for peers on this machine).
pub(crate) fn host_addresses(bound: SocketAddr) -> Vec<SocketAddr> {
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let interfaces = if_addrs::get_if_addrs().unwrap_or_default();
    let mut ips: Vec<IpAddr> = interfaces
        .iter()
        .map(if_addrs::Interface::ip)
        .filter(|ip| matches!(ip, IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified()))
        .take(MAX_HOST_ADDRESSES)
        .collect();
    ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    ips.into_iter()
        .map(|ip| SocketAddr::new(ip, bound.port()))
        .collect()
}

/// The local address a datagram from `source` arrived at, as str0m needs it (the socket may be
/// bound to a wildcard): loopback for loopback sources, else the first other host address.
pub(crate) fn destination_for(hosts: &[SocketAddr], source: SocketAddr) -> SocketAddr {
    hosts
        .iter()
        .find(|a| a.ip().is_loopback() == source.ip().is_loopback())
        .or(hosts.first())
        .copied()
        .unwrap_or(source)
}

/// The `host:port` of every `stun:` URL (the scheme's default port 3478 when none).
pub(crate) fn stun_hosts(servers: &[IceServer]) -> Vec<String> {
    servers
        .iter()
        .flat_map(|s| s.urls.iter())
        .filter_map(|url| url.strip_prefix("stun:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .map(|host| {
            if host
                .rsplit_once(':')
                .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
            {
                host.to_owned()
            } else {
                format!("{host}:3478")
            }
        })
        .collect()
}

/// Asks the first STUN server that answers within `timeout` for our address as it sees it.
/// Datagrams that are not its answer are dropped (nothing else uses the socket yet).
pub(crate) async fn reflexive(
    socket: &UdpSocket,
    servers: &[String],
    timeout: Duration,
) -> Option<SocketAddr> {
    let mut server = None;
    for host in servers {
        if let Ok(mut addrs) = tokio::net::lookup_host(host.as_str()).await {
            if let Some(addr) = addrs.find(SocketAddr::is_ipv4) {
                server = Some(addr);
                break;
            }
        }
    }
    let server = server?;
    let transaction: [u8; 12] = rand::random();
    let mut request = [0u8; 64];
    let len = switchboard_stun::binding_request(transaction, true, &mut request);
    socket.send_to(&request[..len], server).await.ok()?;
    let mut buf = [0u8; 1500];
    let answer = async {
        loop {
            let (n, from) = socket.recv_from(&mut buf).await.ok()?;
            if from != server {
                continue;
            }
            let Ok(parsed) = switchboard_stun::parse(&buf[..n]) else {
                continue;
            };
            if parsed.header.transaction_id != transaction {
                continue;
            }
            let value = parsed.attribute(switchboard_stun::XOR_MAPPED_ADDRESS)?;
            return switchboard_stun::decode_xor_mapped_address(value, &transaction);
        }
    };
    tokio::time::timeout(timeout, answer).await.ok().flatten()
}

/// The candidates of every connection: one per host address, and the reflexive one when it
/// differs from them all.
pub(crate) fn candidates(hosts: &[SocketAddr], reflexive: Option<SocketAddr>) -> Vec<Candidate> {
    let mut candidates: Vec<Candidate> = hosts
        .iter()
        .filter_map(|addr| Candidate::host(*addr, "udp").ok())
        .collect();
    if let (Some(addr), Some(base)) = (reflexive, hosts.first()) {
        if !hosts.contains(&addr) {
            if let Ok(candidate) = Candidate::server_reflexive(addr, *base, "udp") {
                candidates.push(candidate);
            }
        }
    }
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_urls_give_host_and_port() {
        let servers = vec![IceServer {
            urls: vec![
                "stun:127.0.0.1:3478".into(),
                "stun:stun.example.net".into(),
                "turn:turn.example.net:3478?transport=udp".into(),
            ],
            username: None,
            credential: None,
        }];
        assert_eq!(
            stun_hosts(&servers),
            vec![
                "127.0.0.1:3478".to_owned(),
                "stun.example.net:3478".to_owned()
            ]
        );
    }

    #[test]
    fn datagrams_from_loopback_arrived_at_loopback() {
        let hosts: Vec<SocketAddr> = vec![
            "10.1.2.3:5000".parse().unwrap(),
            "127.0.0.1:5000".parse().unwrap(),
        ];
        assert_eq!(
            destination_for(&hosts, "127.0.0.1:9".parse().unwrap()),
            hosts[1]
        );
        assert_eq!(
            destination_for(&hosts, "10.9.9.9:9".parse().unwrap()),
            hosts[0]
        );
    }
}
