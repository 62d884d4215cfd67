//! Where the server may send a push: a push service's `https:` endpoint on port 443, whose host
//! is on `push.allowed_hosts` and resolves only to public addresses. The endpoint comes from a
//! client, so without these checks the server could be made to POST to its own admin listener or
//! to services on a private network. `push.allow_http_endpoints` (a local push service) lifts
//! them. Pure checks; the DNS lookup is the sender's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The push services of the browsers: Chrome (FCM), Firefox (Mozilla autopush), Edge (WNS) and
/// Safari (Apple). An entry matches its host and, starting with `.`, every host under it.
pub const DEFAULT_ALLOWED_HOSTS: [&str; 4] = [
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    ".notify.windows.com",
    "web.push.apple.com",
];

/// Whether `host` is on `allowed` (`*` allows every host; `.example.com` every host under it).
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    allowed.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        entry == "*"
            || entry == host
            || entry
                .strip_prefix('.')
                .is_some_and(|parent| host.ends_with(&format!(".{parent}")))
    })
}

/// Why an endpoint is refused, if it is. `local` lifts every check (a local push service).
pub fn check_url(uri: &http::Uri, allowed: &[String], local: bool) -> Result<(), String> {
    if local {
        return match uri.scheme_str() {
            Some("https" | "http") => Ok(()),
            _ => Err("the endpoint must be an http: or https: URL".into()),
        };
    }
    if uri.scheme_str() != Some("https") {
        return Err("the endpoint must be an https: URL".into());
    }
    if uri.port_u16().is_some_and(|port| port != 443) {
        return Err("the endpoint must be on port 443".into());
    }
    let host = uri.host().unwrap_or_default();
    if !host_allowed(host, allowed) {
        return Err(format!(
            "{host} is not a push service on push.allowed_hosts"
        ));
    }
    Ok(())
}

/// Whether `ip` is a public unicast address: not loopback, private, shared (CGNAT), link-local,
/// unique-local, documentation, benchmarking, reserved, multicast, broadcast or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (18..20).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xffc0) == 0xfe80
        || (first & 0xfe00) == 0xfc00
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        || (first == 0x0064 && ip.segments()[1] == 0xff9b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        DEFAULT_ALLOWED_HOSTS
            .iter()
            .map(|h| h.to_string())
            .collect()
    }

    #[test]
    fn only_push_services_on_https_port_443() {
        let ok = |url: &str| check_url(&url.parse().unwrap(), &allowed(), false);
        assert!(ok("https://fcm.googleapis.com/fcm/send/abc").is_ok());
        assert!(ok("https://FCM.googleapis.com.:443/fcm/send/abc").is_ok());
        assert!(ok("https://wns2-par02p.notify.windows.com/w/?token=x").is_ok());
        assert!(ok("https://notify.windows.com.evil.example/x").is_err());
        assert!(ok("https://evil-fcm.googleapis.com/x").is_err());
        assert!(ok("http://fcm.googleapis.com/x").is_err(), "plain http");
        assert!(
            ok("https://fcm.googleapis.com:8443/x").is_err(),
            "another port"
        );
        assert!(ok("https://127.0.0.1/admin/rooms/x/close").is_err());
        assert!(ok("https://localhost/x").is_err());
        let any = vec!["*".to_string()];
        assert!(check_url(&"https://push.example/x".parse().unwrap(), &any, false).is_ok());
        // A local push service (tests): http and any host and port.
        let local = check_url(&"http://127.0.0.1:9/x".parse().unwrap(), &[], true);
        assert!(local.is_ok());
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.0.8",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "142.250.74.106",
            "172.32.0.1",
            "100.128.0.1",
            "2a00:1450:4007:80c::200a",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
