//! Who connects to whom and who offers, as pure functions of the room's topology and host
//! (the browser client's rules: docs/protocol.md, "Who offers").

use switchboard_protocol::{PeerId, RoomInfo, Topology};

use crate::signal::Role;

/// Whether `me` has a WebRTC connection to `peer`: everyone in a mesh; host and clients only in
/// a star.
pub fn should_link(me: PeerId, peer: PeerId, info: &RoomInfo) -> bool {
    me != peer
        && (info.topology == Topology::Mesh || info.host == Some(me) || info.host == Some(peer))
}

/// Why a connection is being made, which decides who offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The peer was listed in our `welcome`: it offers, unless we resumed (then it does not
    /// know we came back, and we offer).
    PresentAtWelcome {
        /// Our join resumed an earlier one.
        resumed: bool,
    },
    /// The peer joined after us: we offer.
    JoinedLater,
    /// We became the star's host: we offer to every client.
    NewHostMe,
}

/// Who offers on a new connection.
pub fn role_for(reason: Reason) -> Role {
    match reason {
        Reason::PresentAtWelcome { resumed: false } => Role::Answerer,
        Reason::PresentAtWelcome { resumed: true } | Reason::JoinedLater | Reason::NewHostMe => {
            Role::Offerer
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::{HostLeaves, RoomKind};

    fn info(topology: Topology, host: u128) -> RoomInfo {
        RoomInfo {
            kind: RoomKind::Named,
            topology,
            capacity: 8,
            host: Some(PeerId::from_u128(host)),
            host_leaves: HostLeaves::Migrate,
            public: false,
            meta: None,
            started: false,
        }
    }

    #[test]
    fn a_mesh_links_everyone_and_a_star_only_the_host() {
        let (a, b, host) = (PeerId::from_u128(1), PeerId::from_u128(2), 3);
        assert!(should_link(a, b, &info(Topology::Mesh, host)));
        assert!(!should_link(a, a, &info(Topology::Mesh, host)));
        assert!(!should_link(a, b, &info(Topology::Star, host)));
        assert!(should_link(
            a,
            PeerId::from_u128(host),
            &info(Topology::Star, host)
        ));
        assert!(should_link(
            PeerId::from_u128(host),
            b,
            &info(Topology::Star, host)
        ));
    }

    #[test]
    fn the_peer_already_there_offers() {
        assert_eq!(role_for(Reason::JoinedLater), Role::Offerer);
        assert_eq!(
            role_for(Reason::PresentAtWelcome { resumed: false }),
            Role::Answerer
        );
        assert_eq!(
            role_for(Reason::PresentAtWelcome { resumed: true }),
            Role::Offerer
        );
        assert_eq!(role_for(Reason::NewHostMe), Role::Offerer);
    }
}
