//! Which peer a datagram on the shared UDP port belongs to. Pure.
//!
//! RFC 7983 sorts by the first byte: 0-3 STUN, 20-63 DTLS. A STUN Binding request without
//! USERNAME is a plain STUN client (answered as such); with USERNAME `server-ufrag:peer-ufrag` it
//! is an ICE check for the peer that was given `server-ufrag`. Everything else (DTLS, SCTP inside
//! it) belongs to whichever peer the source address was learned for.

use std::collections::HashMap;
use std::net::SocketAddr;

use switchboard_protocol::PeerId;

const USERNAME: u16 = 0x0006;

/// What a datagram is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    /// STUN with no USERNAME: a plain STUN client.
    PlainStun,
    /// An ICE connectivity check for the local ufrag named.
    IceCheck(&'a str),
    /// Not STUN (DTLS and what it carries), or a STUN response.
    Other,
}

/// Classifies a datagram by its first byte and, for STUN, its USERNAME.
pub fn classify(datagram: &[u8]) -> Kind<'_> {
    if !matches!(datagram.first(), Some(0..=3)) {
        return Kind::Other;
    }
    let Ok(message) = switchboard_stun::parse(datagram) else {
        return Kind::Other;
    };
    match message
        .attribute(USERNAME)
        .and_then(|u| std::str::from_utf8(u).ok())
    {
        Some(username) => Kind::IceCheck(username.split(':').next().unwrap_or_default()),
        None => Kind::PlainStun,
    }
}

/// Hash maps from local ufrag and from remote address to peers (no linear scans).
#[derive(Debug, Default)]
pub struct Routes {
    by_ufrag: HashMap<String, PeerId>,
    ufrag_of: HashMap<PeerId, String>,
    by_addr: HashMap<SocketAddr, PeerId>,
    addrs_of: HashMap<PeerId, Vec<SocketAddr>>,
}

/// Where a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Answer it as a STUN server.
    Stun,
    /// Hand it to this peer.
    Peer(PeerId),
    /// Nobody's: drop it.
    Drop,
}

impl Routes {
    /// A peer was given this local ufrag.
    pub fn add_peer(&mut self, peer: PeerId, local_ufrag: String) {
        self.by_ufrag.insert(local_ufrag.clone(), peer);
        self.ufrag_of.insert(peer, local_ufrag);
    }

    /// Forgets a peer, its ufrag and its addresses.
    pub fn remove_peer(&mut self, peer: PeerId) {
        if let Some(ufrag) = self.ufrag_of.remove(&peer) {
            self.by_ufrag.remove(&ufrag);
        }
        for addr in self.addrs_of.remove(&peer).unwrap_or_default() {
            self.by_addr.remove(&addr);
        }
    }

    /// The peer given this local ufrag.
    pub fn peer_of_ufrag(&self, local_ufrag: &str) -> Option<PeerId> {
        self.by_ufrag.get(local_ufrag).copied()
    }

    /// The local ufrag the peer was given.
    pub fn ufrag_of(&self, peer: PeerId) -> Option<&str> {
        self.ufrag_of.get(&peer).map(String::as_str)
    }

    /// Routes a datagram from `source`. A valid ICE check teaches the source address.
    pub fn route(&mut self, datagram: &[u8], source: SocketAddr) -> Route {
        match classify(datagram) {
            Kind::PlainStun => Route::Stun,
            Kind::IceCheck(ufrag) => match self.by_ufrag.get(ufrag) {
                Some(&peer) => {
                    if self.by_addr.insert(source, peer) != Some(peer) {
                        self.addrs_of.entry(peer).or_default().push(source);
                    }
                    Route::Peer(peer)
                }
                None => Route::Drop,
            },
            Kind::Other => self
                .by_addr
                .get(&source)
                .map_or(Route::Drop, |&peer| Route::Peer(peer)),
        }
    }

    /// Number of peers routed.
    pub fn len(&self) -> usize {
        self.by_ufrag.len()
    }

    /// Whether no peer is routed.
    pub fn is_empty(&self) -> bool {
        self.by_ufrag.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A STUN Binding request, with USERNAME when given (an ICE check).
    pub(crate) fn binding(username: Option<&str>) -> Vec<u8> {
        let mut out = vec![0u8; 512];
        let n = switchboard_stun::binding_request([7; 12], false, &mut out);
        out.truncate(n);
        if let Some(name) = username {
            let mut attr = vec![0x00, 0x06];
            attr.extend((name.len() as u16).to_be_bytes());
            attr.extend(name.as_bytes());
            while attr.len() % 4 != 0 {
                attr.push(0);
            }
            let len = u16::from_be_bytes([out[2], out[3]]) as usize + attr.len();
            out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            out.extend(attr);
        }
        out
    }

    #[test]
    fn plain_stun_ice_checks_and_dtls_go_where_they_belong() {
        let (a, b) = (PeerId::from_u128(1), PeerId::from_u128(2));
        let mut routes = Routes::default();
        routes.add_peer(a, "srvA".into());
        routes.add_peer(b, "srvB".into());
        let (from_a, from_b, stranger): (SocketAddr, SocketAddr, SocketAddr) = (
            "10.0.0.1:5000".parse().unwrap(),
            "10.0.0.2:5000".parse().unwrap(),
            "10.0.0.9:1".parse().unwrap(),
        );
        assert_eq!(routes.route(&binding(None), stranger), Route::Stun);
        let dtls = [22u8, 254, 253, 0, 0];
        assert_eq!(
            routes.route(&dtls, from_a),
            Route::Drop,
            "DTLS from an unknown address"
        );
        assert_eq!(
            routes.route(&binding(Some("srvA:brw1")), from_a),
            Route::Peer(a)
        );
        assert_eq!(
            routes.route(&binding(Some("srvB:brw2")), from_b),
            Route::Peer(b)
        );
        assert_eq!(routes.route(&dtls, from_a), Route::Peer(a));
        assert_eq!(routes.route(&dtls, from_b), Route::Peer(b));
        assert_eq!(
            routes.route(&binding(Some("nobody:x")), stranger),
            Route::Drop
        );
        routes.remove_peer(a);
        assert_eq!(routes.route(&dtls, from_a), Route::Drop);
        assert_eq!(
            routes.route(&binding(Some("srvA:brw1")), from_a),
            Route::Drop
        );
        assert_eq!(routes.len(), 1);
        assert_eq!(routes.peer_of_ufrag("srvB"), Some(b));
        assert_eq!(routes.ufrag_of(b), Some("srvB"));
    }

    #[test]
    fn garbage_is_never_a_peer_and_never_panics() {
        let mut routes = Routes::default();
        routes.add_peer(PeerId::from_u128(1), "u".into());
        let source: SocketAddr = "10.0.0.1:1".parse().unwrap();
        for datagram in [
            &[][..],
            &[0],
            &[1, 2, 3],
            &[0xff; 40],
            &[0, 1, 0, 4, 0x21, 0x12, 0xa4, 0x42],
        ] {
            assert_eq!(routes.route(datagram, source), Route::Drop);
        }
    }
}
