//! Which shard holds each peer, and the admission rules every shard shares: `max_peers` in all
//! and `max_peers_per_ip` per address are counted across shards, so more shards never mean more
//! peers. The handles read it to send a peer's commands to its shard. It also knows the local
//! ufrags of the peers still waiting for their browser's first datagram, and their shard: only a
//! check for one of those is passed between shards, so ICE checks with made-up ufrags cost a
//! lookup and never cross a queue. Plain bookkeeping behind one lock, touched when a peer
//! arrives, is first heard from, moves or leaves, and for datagrams no shard routes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use switchboard_protocol::PeerId;

use crate::api::ConnectError;
use crate::origins::Origins;

/// Every peer of the server (both transports, connecting or open) and its shard.
pub(crate) struct Roster {
    max_peers: usize,
    max_peers_per_ip: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    shard_of: HashMap<PeerId, usize>,
    origins: Origins,
    /// Local ufrag of each peer not heard from yet, and the shard holding it.
    unheard: HashMap<String, usize>,
}

impl Roster {
    /// Empty: at most `max_peers` in all, `max_peers_per_ip` from one address.
    pub(crate) fn new(max_peers: usize, max_peers_per_ip: usize) -> Self {
        Self {
            max_peers,
            max_peers_per_ip,
            inner: Mutex::new(Inner {
                shard_of: HashMap::new(),
                origins: Origins::new(max_peers_per_ip),
                unheard: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether one more peer from `ip` would be admitted now.
    pub(crate) fn has_room(&self, ip: Option<IpAddr>) -> Result<(), ConnectError> {
        let inner = self.lock();
        if inner.shard_of.len() >= self.max_peers {
            Err(ConnectError::Full(self.max_peers))
        } else if !inner.origins.has_room(ip) {
            Err(ConnectError::TooManyFromAddress(self.max_peers_per_ip))
        } else {
            Ok(())
        }
    }

    /// Admits `peer` from `ip` on `shard`, checking the limits and counting it in one step (two
    /// shards cannot both take the last place).
    pub(crate) fn admit(
        &self,
        peer: PeerId,
        ip: Option<IpAddr>,
        shard: usize,
    ) -> Result<(), ConnectError> {
        let mut inner = self.lock();
        if inner.shard_of.len() >= self.max_peers {
            return Err(ConnectError::Full(self.max_peers));
        }
        if !inner.origins.has_room(ip) {
            return Err(ConnectError::TooManyFromAddress(self.max_peers_per_ip));
        }
        inner.shard_of.insert(peer, shard);
        inner.origins.add(peer, ip);
        Ok(())
    }

    /// The peer now lives on `shard`.
    pub(crate) fn moved(&self, peer: PeerId, shard: usize) {
        if let Some(at) = self.lock().shard_of.get_mut(&peer) {
            *at = shard;
        }
    }

    /// The peer given `ufrag`, held by `shard`, waits for its browser's first datagram.
    pub(crate) fn awaits_check(&self, ufrag: &str, shard: usize) {
        self.lock().unheard.insert(ufrag.to_owned(), shard);
    }

    /// The shard holding the peer given `ufrag`, if that peer has not been heard from yet.
    pub(crate) fn awaited_by(&self, ufrag: &str) -> Option<usize> {
        self.lock().unheard.get(ufrag).copied()
    }

    /// The peer given `ufrag` was heard from, or is gone: its checks are no longer passed on.
    pub(crate) fn heard(&self, ufrag: &str) {
        self.lock().unheard.remove(ufrag);
    }

    /// Forgets `peer` (any number of times).
    pub(crate) fn remove(&self, peer: PeerId) {
        let mut inner = self.lock();
        inner.shard_of.remove(&peer);
        inner.origins.remove(peer);
    }

    /// The shard holding `peer`, if it is there.
    pub(crate) fn shard_of(&self, peer: PeerId) -> Option<usize> {
        self.lock().shard_of.get(&peer).copied()
    }

    /// Peers held, on every shard.
    pub(crate) fn len(&self) -> usize {
        self.lock().shard_of.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_across_shards_and_places_follow_moves() {
        let roster = Roster::new(3, 2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let (a, b, c, d) = (
            PeerId::from_u128(1),
            PeerId::from_u128(2),
            PeerId::from_u128(3),
            PeerId::from_u128(4),
        );
        roster.admit(a, Some(ip), 0).unwrap();
        roster.admit(b, Some(ip), 1).unwrap();
        assert_eq!(
            roster.admit(c, Some(ip), 1),
            Err(ConnectError::TooManyFromAddress(2)),
            "the per-address count spans shards"
        );
        roster.admit(c, None, 1).unwrap();
        assert_eq!(roster.has_room(None), Err(ConnectError::Full(3)));
        assert_eq!(roster.admit(d, None, 0), Err(ConnectError::Full(3)));
        assert_eq!(roster.shard_of(a), Some(0));
        roster.moved(a, 1);
        assert_eq!(roster.shard_of(a), Some(1));
        roster.remove(a);
        roster.remove(a);
        assert_eq!(roster.shard_of(a), None);
        assert_eq!(roster.len(), 2);
        roster.admit(d, Some(ip), 0).unwrap();
        // Only the checks of peers not heard from yet can name a shard.
        roster.awaits_check("ufA", 1);
        assert_eq!(roster.awaited_by("ufA"), Some(1));
        assert_eq!(roster.awaited_by("made-up"), None);
        roster.heard("ufA");
        roster.heard("ufA");
        assert_eq!(roster.awaited_by("ufA"), None);
    }
}
