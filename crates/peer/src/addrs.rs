//! Which addresses to advertise to browsers. The choice is a pure function over the machine's
//! interface list ([`choose`]); [`advertised`] feeds it what `if-addrs` enumerates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Most interface addresses advertised (each one is a candidate browsers may try).
const MAX_ADVERTISED: usize = 8;

/// The addresses to advertise: the configured IPs; else the bound IP; else (bound to a
/// wildcard) this machine's usable interface addresses (see [`choose`]).
pub fn advertised(bound: SocketAddr, configured: &[IpAddr]) -> Vec<SocketAddr> {
    let interfaces: Vec<IpAddr> = match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces.iter().map(if_addrs::Interface::ip).collect(),
        Err(error) => {
            tracing::warn!(%error, "cannot list network interfaces: advertising loopback only");
            Vec::new()
        }
    };
    choose(bound, configured, &interfaces)
        .into_iter()
        .map(|ip| SocketAddr::new(ip, bound.port()))
        .collect()
}

/// The IPs to advertise for a socket bound to `bound`: `configured` if any; the bound IP if it is
/// not a wildcard; else the interface addresses of the bound family (both for `[::]`) that a
/// browser elsewhere can reach (not loopback, link-local, unspecified or multicast), in interface
/// order and at most [`MAX_ADVERTISED`], then loopback (for browsers on this machine). Loopback
/// and link-local addresses are used only when nothing else exists.
pub fn choose(bound: SocketAddr, configured: &[IpAddr], interfaces: &[IpAddr]) -> Vec<IpAddr> {
    if !configured.is_empty() {
        return configured.to_vec();
    }
    if !bound.ip().is_unspecified() {
        return vec![bound.ip()];
    }
    let v6 = bound.is_ipv6();
    let family = |ip: &IpAddr| ip.is_ipv4() || v6;
    let mut chosen: Vec<IpAddr> = Vec::new();
    for ip in interfaces.iter().filter(|ip| family(ip) && reachable(ip)) {
        if !chosen.contains(ip) && chosen.len() < MAX_ADVERTISED {
            chosen.push(*ip);
        }
    }
    if chosen.is_empty() {
        // Nothing better: a link-local address still serves a direct cable or an ad-hoc network.
        chosen.extend(
            interfaces
                .iter()
                .filter(|ip| family(ip) && is_link_local(ip))
                .take(MAX_ADVERTISED),
        );
    }
    chosen.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    if v6 {
        chosen.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
    }
    chosen
}

/// An address another machine may reach this one on.
fn reachable(ip: &IpAddr) -> bool {
    !(ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || is_link_local(ip))
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().expect("an IP")).collect()
    }

    fn any4() -> SocketAddr {
        "0.0.0.0:3478".parse().expect("an address")
    }

    #[test]
    fn configured_and_bound_addresses_win() {
        let lan = ips(&["192.168.1.20"]);
        assert_eq!(
            choose(any4(), &ips(&["203.0.113.7"]), &lan),
            ips(&["203.0.113.7"])
        );
        let bound = "10.0.0.5:3478".parse().expect("an address");
        assert_eq!(choose(bound, &[], &lan), ips(&["10.0.0.5"]));
    }

    #[test]
    fn a_lan_in_the_documentation_range_is_advertised() {
        // The old default-route trick connected to 192.0.2.255, the broadcast address of this
        // very LAN, failed, and advertised loopback only.
        let interfaces = ips(&["127.0.0.1", "192.0.2.17", "::1", "fe80::1"]);
        assert_eq!(
            choose(any4(), &[], &interfaces),
            ips(&["192.0.2.17", "127.0.0.1"])
        );
    }

    #[test]
    fn loopback_and_link_local_only_when_nothing_else_exists() {
        let interfaces = ips(&["127.0.0.1", "169.254.3.4", "10.1.2.3", "172.17.0.1"]);
        assert_eq!(
            choose(any4(), &[], &interfaces),
            ips(&["10.1.2.3", "172.17.0.1", "127.0.0.1"])
        );
        let cable_only = ips(&["127.0.0.1", "169.254.3.4"]);
        assert_eq!(
            choose(any4(), &[], &cable_only),
            ips(&["169.254.3.4", "127.0.0.1"])
        );
        assert_eq!(choose(any4(), &[], &[]), ips(&["127.0.0.1"]));
    }

    #[test]
    fn families_follow_the_bound_socket() {
        let interfaces = ips(&["192.168.0.2", "2001:db8::2", "fe80::2", "0.0.0.0"]);
        assert_eq!(
            choose(any4(), &[], &interfaces),
            ips(&["192.168.0.2", "127.0.0.1"])
        );
        let any6 = "[::]:3478".parse().expect("an address");
        assert_eq!(
            choose(any6, &[], &interfaces),
            ips(&["192.168.0.2", "2001:db8::2", "127.0.0.1", "::1"])
        );
    }

    #[test]
    fn duplicates_are_dropped_and_the_list_is_bounded() {
        let mut interfaces = ips(&["10.0.0.1", "10.0.0.1"]);
        interfaces.extend((2..40).map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))));
        let chosen = choose(any4(), &[], &interfaces);
        assert_eq!(chosen.len(), MAX_ADVERTISED + 1);
        assert_eq!(chosen[0], ips(&["10.0.0.1"])[0]);
        assert_eq!(chosen[1], ips(&["10.0.0.2"])[0]);
    }
}
