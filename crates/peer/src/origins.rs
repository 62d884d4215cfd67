//! Where each peer came from, so one address cannot take every place (pure bookkeeping).

use std::collections::HashMap;
use std::net::IpAddr;

use switchboard_protocol::PeerId;

/// Peers per IP address (peers whose address is unknown are not counted).
#[derive(Debug)]
pub(crate) struct Origins {
    max_per_ip: usize,
    of_peer: HashMap<PeerId, IpAddr>,
    per_ip: HashMap<IpAddr, usize>,
}

impl Origins {
    /// Empty, allowing `max_per_ip` peers from one address.
    pub(crate) fn new(max_per_ip: usize) -> Self {
        Self {
            max_per_ip,
            of_peer: HashMap::new(),
            per_ip: HashMap::new(),
        }
    }

    /// Whether one more peer from `ip` fits.
    pub(crate) fn has_room(&self, ip: Option<IpAddr>) -> bool {
        ip.is_none_or(|ip| self.per_ip.get(&ip).copied().unwrap_or(0) < self.max_per_ip)
    }

    /// Counts `peer` against `ip` (call after `has_room`).
    pub(crate) fn add(&mut self, peer: PeerId, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        if self.of_peer.insert(peer, ip).is_none() {
            *self.per_ip.entry(ip).or_insert(0) += 1;
        }
    }

    /// Forgets `peer` (any number of times).
    pub(crate) fn remove(&mut self, peer: PeerId) {
        let Some(ip) = self.of_peer.remove(&peer) else {
            return;
        };
        if let Some(count) = self.per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_address_and_forgets() {
        let mut origins = Origins::new(2);
        let ip: IpAddr = "10.0.0.1".parse().expect("an IP");
        let other: IpAddr = "10.0.0.2".parse().expect("an IP");
        let (a, b, c) = (
            PeerId::from_u128(1),
            PeerId::from_u128(2),
            PeerId::from_u128(3),
        );
        assert!(origins.has_room(Some(ip)));
        origins.add(a, Some(ip));
        origins.add(b, Some(ip));
        assert!(!origins.has_room(Some(ip)), "two from one address");
        assert!(origins.has_room(Some(other)));
        assert!(origins.has_room(None), "unknown addresses are not counted");
        origins.add(c, None);
        origins.remove(a);
        origins.remove(a);
        origins.remove(c);
        assert!(origins.has_room(Some(ip)));
        origins.add(a, Some(ip));
        assert!(!origins.has_room(Some(ip)));
        assert_eq!(origins.per_ip.len(), 1);
    }
}
