//! Peers moving between shards. Every shard has its own socket on the one port (`SO_REUSEPORT`),
//! and the kernel picks the shard by each browser's address, not by who made its peer. So when a
//! browser's first ICE check reaches a shard that does not hold its peer, that shard sends the
//! check to the shard the roster names for its ufrag (`Command::Check`; the roster names only
//! peers not heard from yet, so made-up ufrags are never passed on); that shard hands the peer
//! over with the check (`Command::Adopt`), and from then on the browser's datagrams land where
//! its `Rtc` is. Only a peer that has not heard from its browser yet moves, so it is never open while it
//! moves and nothing sent to it can be reordered. A check for a peer that has already heard from
//! its browser on another path is dropped: that candidate pair fails and ICE uses the one that
//! works. The handles' commands for a peer that moved away are passed on to its new shard.

use std::net::SocketAddr;

use switchboard_protocol::PeerId;

use super::table::PeerTable;
use super::Command;
use crate::demux::{classify, Kind};

impl PeerTable {
    /// A datagram nobody here owns: an ICE check for another shard's peer that has not heard
    /// from its browser yet is sent to that shard; anything else is dropped.
    pub(super) fn foreign(&mut self, source: SocketAddr, datagram: &[u8]) {
        let Kind::IceCheck(ufrag) = classify(datagram) else {
            return;
        };
        let Some(shard) = self.roster.awaited_by(ufrag) else {
            return;
        };
        if shard != self.shard && shard < self.shards {
            self.stats.checks_passed_on.inc();
            self.transfers.push((
                shard,
                Command::Check {
                    from_shard: self.shard,
                    source,
                    datagram: datagram.to_vec(),
                },
            ));
        }
    }

    /// Another shard got an ICE check for one of this shard's peers: hand the peer over if it has
    /// not heard from its browser yet.
    pub(super) fn check_elsewhere(
        &mut self,
        from_shard: usize,
        source: SocketAddr,
        datagram: Vec<u8>,
    ) {
        let Kind::IceCheck(ufrag) = classify(&datagram) else {
            return;
        };
        let Some(peer) = self.routes.peer_of_ufrag(ufrag) else {
            return;
        };
        let movable = self
            .peers
            .get(&peer)
            .is_some_and(|slot| !slot.heard && !slot.open && slot.closing_by.is_none());
        if !movable || from_shard >= self.shards {
            return;
        }
        let Some(slot) = self.peers.remove(&peer) else {
            return;
        };
        self.routes.remove_peer(peer);
        self.roster.moved(peer, from_shard);
        self.stats.peers_moved.inc();
        self.transfers.push((
            from_shard,
            Command::Adopt {
                peer,
                slot,
                source,
                datagram,
            },
        ));
    }

    /// A peer handed over by another shard, with the check that asked for it.
    pub(super) fn adopt(
        &mut self,
        peer: PeerId,
        slot: Box<crate::slot::Slot>,
        source: SocketAddr,
        datagram: &[u8],
    ) {
        self.admit(peer, slot);
        if self.stopping {
            // Not open, so the application never heard of it: closed without a word.
            self.finish(peer);
            return;
        }
        let now = self.now;
        self.handle_datagram(now, source, datagram);
    }

    /// A handle's command for a peer this shard does not hold: passed on to the shard the
    /// roster names (it moved), else dropped (it is gone). Returns the command when it is this
    /// shard's to handle.
    pub(super) fn pass_on(&mut self, peer: PeerId, command: Command) -> Option<Command> {
        if self.peers.contains_key(&peer) || self.sockets.contains_key(&peer) {
            return Some(command);
        }
        match self.roster.shard_of(peer) {
            Some(shard) if shard != self.shard => {
                self.transfers.push((shard, command));
                None
            }
            _ => Some(command),
        }
    }
}
