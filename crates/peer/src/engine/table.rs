//! The peer table: every peer of one shard and what to do with what arrives. Pure: no socket and
//! no clock inside. Its inputs are datagrams ([`PeerTable::handle_datagram`]), the handles'
//! commands ([`PeerTable::handle_command`]) and the time ([`PeerTable::handle_timeout`]), each
//! with the current instant; its outputs are the datagrams to send ([`PeerTable::take_transmits`]),
//! the application's events (pushed to the shared queue) and the next deadline
//! ([`PeerTable::poll_timeout`]). Datagrams are routed by `demux`; plain STUN is answered with
//! `switchboard_stun`; each `Rtc` is driven by the str0m contract (one mutation, then drain
//! `poll_output` to a timeout). Peers on the WebSocket fallback are a queue of outgoing frames
//! each (their sockets are served by `socket`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::net::{Protocol, Receive};
use str0m::Input;
use switchboard_protocol::PeerId;

use super::Command;
use crate::api::{Event, EventQueue, Transport};
use crate::config::PeerConfig;
use crate::demux::{Route, Routes};
use crate::roster::Roster;
use crate::slot::Slot;
use crate::socket_queue::FrameSender;
use crate::stats::Stats;

/// A datagram to send: its destination and bytes.
pub(crate) type Transmit = (SocketAddr, Vec<u8>);

/// Most outputs taken from a closing `Rtc` before it is dropped (its close is a few packets).
pub(super) const CLOSE_OUTPUTS: usize = 64;

/// Every peer of one shard, with their routes and deadlines.
pub(crate) struct PeerTable {
    /// One DTLS certificate for every peer: generating one per connection costs milliseconds of
    /// CPU and kilobytes of memory each, and a server's identity is one certificate anyway.
    pub(super) dtls_cert: Option<str0m::config::DtlsCert>,
    pub(super) config: Arc<PeerConfig>,
    pub(super) advertised: Vec<SocketAddr>,
    pub(super) routes: Routes,
    /// Boxed: a `Slot` is kilobytes (an `Rtc` inline), and a map of them inline wastes that much
    /// per empty bucket (up to half the buckets after a growth), and a move copies it whole.
    pub(super) peers: HashMap<PeerId, Box<Slot>>,
    /// Peers on the WebSocket fallback: the queue of frames to their socket, each a channel byte
    /// and a data channel frame. Dropping a sender ends the socket.
    pub(super) sockets: HashMap<PeerId, FrameSender>,
    /// Every peer's next deadline (str0m timeout, connect timeout while half-open, close linger
    /// while closing), earliest first. Entries go stale when a peer's timeout moves; they are
    /// skipped when they surface.
    pub(super) deadlines: BinaryHeap<Reverse<(Instant, PeerId)>>,
    pub(super) events: Arc<EventQueue>,
    pub(super) stats: Stats,
    stun_out: Vec<u8>,
    /// Datagrams to send, in order.
    pub(super) transmits: Vec<Transmit>,
    /// The instant of the input being handled.
    pub(super) now: Instant,
    /// Shutting down: no new peers; the loop ends once every peer is closed.
    pub(super) stopping: bool,
    /// Which shard holds each peer, and the admission counts every shard shares.
    pub(super) roster: Arc<Roster>,
    /// This table's shard, and how many there are.
    pub(super) shard: usize,
    pub(super) shards: usize,
    /// Commands for other shards (checks, peers handed over, commands passed on), in order.
    pub(super) transfers: Vec<(usize, Command)>,
}

/// Where a table sits: its shard, the number of shards, the roster they share.
pub(crate) struct Place {
    /// This shard's index.
    pub(crate) shard: usize,
    /// How many shards there are.
    pub(crate) shards: usize,
    /// The roster every shard shares.
    pub(crate) roster: Arc<Roster>,
}

impl PeerTable {
    /// An empty table whose peers are reached at `advertised`; their events go to `events`.
    pub(crate) fn new(
        config: Arc<PeerConfig>,
        place: Place,
        advertised: Vec<SocketAddr>,
        dtls_cert: Option<str0m::config::DtlsCert>,
        events: Arc<EventQueue>,
        stats: Stats,
        now: Instant,
    ) -> Self {
        Self {
            dtls_cert,
            advertised,
            routes: Routes::default(),
            peers: HashMap::new(),
            sockets: HashMap::new(),
            deadlines: BinaryHeap::new(),
            events,
            stats,
            stun_out: vec![0; switchboard_stun::MAX_RESPONSE_LEN],
            transmits: Vec::new(),
            now,
            stopping: false,
            roster: place.roster,
            shard: place.shard,
            shards: place.shards.max(1),
            transfers: Vec::new(),
            config,
        }
    }

    /// Shut down and every peer closed: the shell may stop.
    pub(crate) fn is_done(&self) -> bool {
        self.stopping && self.peers.is_empty() && self.sockets.is_empty()
    }

    /// The datagrams to send now, in order (the table keeps none).
    pub(crate) fn take_transmits(&mut self) -> Vec<Transmit> {
        std::mem::take(&mut self.transmits)
    }

    /// The commands for other shards, each with its shard, in order.
    pub(crate) fn take_transfers(&mut self) -> Vec<(usize, Command)> {
        std::mem::take(&mut self.transfers)
    }

    /// Starts the shutdown: every peer is told (`shutdown`) and closed; new peers are refused.
    pub(crate) fn stop(&mut self, now: Instant) {
        self.now = now;
        self.stopping = true;
        let peers: Vec<PeerId> = self
            .peers
            .keys()
            .chain(self.sockets.keys())
            .copied()
            .collect();
        for peer in peers {
            self.close(peer, "shutdown".into(), Some("shutdown"));
        }
    }

    /// A datagram that arrived on the port from `source`.
    pub(crate) fn handle_datagram(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        self.now = now;
        match self.routes.route(datagram, source) {
            Route::Stun => {
                let action = switchboard_stun::respond(
                    datagram,
                    source,
                    // No SOFTWARE attribute: smaller answers for reflection.
                    "",
                    &mut self.stun_out,
                );
                if let switchboard_stun::Action::Reply(n)
                | switchboard_stun::Action::ReplyError(n) = action
                {
                    self.transmits.push((source, self.stun_out[..n].to_vec()));
                }
            }
            Route::Drop => self.foreign(source, datagram),
            Route::Peer(peer) => {
                let destination = self.destination_for(source);
                let Some(slot) = self.peers.get_mut(&peer) else {
                    return;
                };
                let Ok(receive) = Receive::new(Protocol::Udp, source, destination, datagram) else {
                    return;
                };
                if !slot.heard {
                    slot.heard = true;
                    if let Some(ufrag) = self.routes.ufrag_of(peer) {
                        self.roster.heard(ufrag);
                    }
                }
                let result = slot.rtc.handle_input(Input::Receive(now, receive));
                self.after(peer, result.map_err(|e| e.to_string()));
            }
        }
    }

    /// The local address a datagram was sent to, as str0m needs it: the advertised address of the
    /// source's kind (loopback for loopback sources), since the socket may be bound to a wildcard.
    fn destination_for(&self, source: SocketAddr) -> SocketAddr {
        let same_family = |a: &&SocketAddr| a.is_ipv4() == source.is_ipv4();
        self.advertised
            .iter()
            .filter(same_family)
            .find(|a| a.ip().is_loopback() == source.ip().is_loopback())
            .or_else(|| self.advertised.iter().find(same_family))
            .or(self.advertised.first())
            .copied()
            .unwrap_or(source)
    }

    /// What a handle asks.
    pub(crate) fn handle_command(&mut self, now: Instant, command: Command) {
        self.now = now;
        let command = match &command {
            Command::Kick { peer, .. }
            | Command::Answer { peer, .. }
            | Command::Drop { peer, .. } => {
                let peer = *peer;
                match self.pass_on(peer, command) {
                    Some(command) => command,
                    None => return,
                }
            }
            _ => command,
        };
        match command {
            Command::Connect { offer, ip, reply } => {
                let _ = reply.send(self.connect(&offer, ip));
            }
            Command::Send {
                peers,
                channel,
                data,
            } => {
                let targets: Vec<PeerId> = match peers {
                    Some(peers) => peers,
                    None => self
                        .peers
                        .iter()
                        .filter(|(_, s)| s.takes_sends())
                        .map(|(p, _)| *p)
                        .chain(self.sockets.keys().copied())
                        .collect(),
                };
                self.send(&targets, channel, &data);
            }
            Command::Kick { peer, reason } => {
                self.close(peer, format!("kicked: {reason}"), Some(&reason));
            }
            Command::Offer { peer, reply } => {
                let _ = reply.send(self.offer(peer));
            }
            Command::Answer { peer, sdp } => self.answer(peer, &sdp),
            Command::Drop { peer, reason } => self.close(peer, reason.clone(), Some(&reason)),
            Command::Buffered { peer, reply } => {
                let buffered = match self.sockets.get(&peer) {
                    Some(socket) => Some(socket.bytes()),
                    None => self
                        .peers
                        .get_mut(&peer)
                        .filter(|slot| slot.takes_sends())
                        .map(|slot| slot.buffered()),
                };
                let _ = reply.send(buffered);
            }
            Command::Transport { peer, reply } => {
                let transport = if self.sockets.contains_key(&peer) {
                    Some(Transport::WebSocket)
                } else {
                    self.peers
                        .get(&peer)
                        .filter(|slot| slot.takes_sends())
                        .map(|_| Transport::WebRtc)
                };
                let _ = reply.send(transport);
            }
            Command::Attach { ip, reply } => {
                let _ = reply.send(self.attach(ip));
            }
            Command::SocketReceived {
                peer,
                channel,
                data,
            } => {
                // Not after `Closed`: a kicked peer's last messages are dropped.
                if self.sockets.contains_key(&peer) {
                    self.events.push(Event::Received(peer, channel, data));
                }
            }
            Command::Shutdown => self.stop(now),
            Command::Check {
                from_shard,
                source,
                datagram,
            } => self.check_elsewhere(from_shard, source, datagram),
            Command::Adopt {
                peer,
                slot,
                source,
                datagram,
            } => self.adopt(peer, slot, source, &datagram),
        }
    }

    /// Peers on both transports, open or connecting.
    #[cfg(test)]
    pub(crate) fn peer_count(&self) -> usize {
        self.peers.len() + self.sockets.len()
    }

    /// The earliest deadline still current (`None`: no peer has one), dropping stale heap entries
    /// on the way.
    pub(crate) fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, peer))) = self.deadlines.peek().copied() {
            if self.peers.get(&peer).is_some_and(|s| s.is_due_at(at)) {
                return Some(at);
            }
            self.deadlines.pop();
        }
        None
    }

    /// Handles every peer whose deadline has come by `now`: drives its timers, drops it
    /// half-open, or ends its close.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        let mut due = Vec::new();
        while let Some(Reverse((at, peer))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.peers.get(&peer).is_some_and(|s| s.is_due_at(at)) && !due.contains(&peer) {
                due.push(peer);
            }
        }
        for peer in due {
            let Some(slot) = self.peers.get_mut(&peer) else {
                continue;
            };
            if slot.closing_by.is_some_and(|by| by <= now) {
                tracing::debug!(%peer, "close linger over: the association is closed");
                self.finish(peer);
                continue;
            }
            if !slot.open && slot.connect_by <= now {
                tracing::debug!(%peer, "half-open peer dropped after connect_timeout");
                self.close(peer, "connect_timeout".into(), None);
                continue;
            }
            let result = slot
                .rtc
                .handle_input(Input::Timeout(now))
                .map_err(|e| e.to_string());
            self.after(peer, result);
        }
    }
}
