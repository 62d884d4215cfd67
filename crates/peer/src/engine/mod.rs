//! The network loop: one task owns the UDP socket and every peer's `str0m::Rtc`. Datagrams are
//! routed by `demux`; plain STUN is answered with `switchboard_stun`; each `Rtc` is driven by the
//! str0m contract (one mutation, then drain `poll_output` to a timeout). Peers on the WebSocket
//! fallback are a queue of outgoing frames each (their sockets are served by `socket`).
//!
//! * `connect`: new peers (offers both ways, WebSocket attach).
//! * `deliver`: sends (reliable frames through each peer's outbox), draining an `Rtc`, its
//!   events, and closing a peer (goodbye, then the association).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::net::{Protocol, Receive};
use str0m::Input;
use switchboard_protocol::PeerId;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::addrs;
use crate::api::{Channel, ConnectError, Data, Event, EventQueue, StartError, Transport};
use crate::config::PeerConfig;
use crate::demux::{Route, Routes};
use crate::origins::Origins;
use crate::slot::Slot;
use crate::socket_queue::{FrameReceiver, FrameSender};
use crate::stats::Stats;

mod connect;
mod deliver;

/// What the handles ask of the loop.
pub(crate) enum Command {
    Connect {
        offer: String,
        ip: Option<IpAddr>,
        reply: oneshot::Sender<Result<(PeerId, String), ConnectError>>,
    },
    Send {
        peers: Option<Vec<PeerId>>,
        channel: Channel,
        data: Data,
    },
    Kick {
        peer: PeerId,
        reason: String,
    },
    /// Hub way: make an offer to this (hub) peer.
    Offer {
        peer: PeerId,
        reply: oneshot::Sender<Result<String, ConnectError>>,
    },
    /// Hub way: the peer's answer.
    Answer {
        peer: PeerId,
        sdp: String,
    },
    /// The peer is gone: it left the hub room (hub way), or its WebSocket ended (fallback).
    Drop {
        peer: PeerId,
        reason: String,
    },
    /// How many peers the loop holds (open or connecting).
    Count {
        reply: oneshot::Sender<usize>,
    },
    /// Bytes sent to a peer and not yet acknowledged (queued and in the transport).
    Buffered {
        peer: PeerId,
        reply: oneshot::Sender<Option<usize>>,
    },
    /// How a peer is connected.
    Transport {
        peer: PeerId,
        reply: oneshot::Sender<Option<Transport>>,
    },
    /// WebSocket fallback: a new peer; the loop keeps the sender of its outgoing frames.
    Attach {
        ip: Option<IpAddr>,
        reply: oneshot::Sender<Result<Attached, ConnectError>>,
    },
    /// WebSocket fallback: a whole message from a peer.
    SocketReceived {
        peer: PeerId,
        channel: Channel,
        data: Data,
    },
    /// Close every peer (with a goodbye) and stop once they are closed.
    Shutdown,
}

/// A WebSocket peer's id and the queue of frames to send it.
pub(crate) type Attached = (PeerId, FrameReceiver);

/// Most datagrams, or commands, handled in one wake-up of the loop before it looks at the rest.
const BATCH: usize = 64;
/// Longest the loop sleeps when no peer has a timeout.
const IDLE: Duration = Duration::from_secs(1);
/// Most outputs taken from a closing `Rtc` before it is dropped (its close is a few packets).
const CLOSE_OUTPUTS: usize = 64;

struct Engine {
    socket: UdpSocket,
    /// One DTLS certificate for every peer: generating one per connection costs milliseconds of
    /// CPU and kilobytes of memory each, and a server's identity is one certificate anyway.
    dtls_cert: Option<str0m::config::DtlsCert>,
    config: Arc<PeerConfig>,
    advertised: Vec<SocketAddr>,
    routes: Routes,
    peers: HashMap<PeerId, Slot>,
    /// Peers on the WebSocket fallback: the queue of frames to their socket, each a channel byte
    /// and a data channel frame. Dropping a sender ends the socket.
    sockets: HashMap<PeerId, FrameSender>,
    /// Every peer's next deadline (str0m timeout, connect timeout while half-open, close linger
    /// while closing), earliest first. Entries go stale when a peer's timeout moves; they are
    /// skipped when they surface.
    deadlines: BinaryHeap<Reverse<(Instant, PeerId)>>,
    events: Arc<EventQueue>,
    stats: Stats,
    stun_out: Vec<u8>,
    /// Shutting down: no new peers; the loop ends once every peer is closed.
    stopping: bool,
    /// Peers per address (`max_peers_per_ip`).
    origins: Origins,
}

/// Binds the socket and spawns the loop; returns the command sender, bound and advertised addresses.
pub(crate) async fn start(
    config: Arc<PeerConfig>,
    events: Arc<EventQueue>,
    stats: Stats,
) -> Result<(mpsc::Sender<Command>, SocketAddr, Vec<SocketAddr>), StartError> {
    let socket = UdpSocket::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let local = socket.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let advertised = addrs::advertised(local, &config.public_ips);
    let (commands, inbox) = mpsc::channel(config.command_queue.max(1));
    let dtls_cert = str0m::crypto::from_feature_flags()
        .dtls_provider
        .generate_certificate();
    let engine = Engine {
        socket,
        dtls_cert,
        advertised: advertised.clone(),
        routes: Routes::default(),
        peers: HashMap::new(),
        sockets: HashMap::new(),
        deadlines: BinaryHeap::new(),
        events,
        stats,
        stun_out: vec![0; switchboard_stun::MAX_RESPONSE_LEN],
        stopping: false,
        origins: Origins::new(config.max_peers_per_ip),
        config,
    };
    tokio::spawn(engine.run(inbox));
    Ok((commands, local, advertised))
}

impl Engine {
    async fn run(mut self, mut inbox: mpsc::Receiver<Command>) {
        let mut buf = vec![0u8; 2048];
        let mut handles_gone = false;
        while !(self.stopping && self.peers.is_empty()) {
            let wake = self.next_deadline().min(Instant::now() + IDLE);
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    match received {
                        Ok((n, source)) => self.datagram(&buf[..n], source),
                        Err(error) => tracing::debug!(%error, "udp receive error"),
                    }
                    // Datagrams already waiting are handled in the same wake-up: under load this
                    // saves a trip through the scheduler and epoll per datagram.
                    for _ in 1..BATCH {
                        let Ok((n, source)) = self.socket.try_recv_from(&mut buf) else {
                            break;
                        };
                        self.datagram(&buf[..n], source);
                    }
                }
                command = inbox.recv(), if !handles_gone => {
                    let mut next = command;
                    let mut handled = 0;
                    while let Some(command) = next.take() {
                        self.command(command);
                        handled += 1;
                        if handled < BATCH {
                            next = inbox.try_recv().ok();
                        }
                    }
                    if handled == 0 {
                        // Every handle is gone: close everyone, as on shutdown.
                        handles_gone = true;
                        self.stop();
                    }
                }
                () = tokio::time::sleep_until(wake.into()) => self.timeouts(),
            }
        }
    }

    /// Starts the shutdown: every peer is told (`shutdown`) and closed; new peers are refused.
    fn stop(&mut self) {
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

    fn datagram(&mut self, datagram: &[u8], source: SocketAddr) {
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
                    let _ = self.socket.try_send_to(&self.stun_out[..n], source);
                }
            }
            Route::Drop => {}
            Route::Peer(peer) => {
                let destination = self.destination_for(source);
                let Some(slot) = self.peers.get_mut(&peer) else {
                    return;
                };
                let Ok(receive) = Receive::new(Protocol::Udp, source, destination, datagram) else {
                    return;
                };
                let result = slot
                    .rtc
                    .handle_input(Input::Receive(Instant::now(), receive));
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

    fn command(&mut self, command: Command) {
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
                for peer in targets {
                    self.send(peer, channel, &data);
                }
            }
            Command::Kick { peer, reason } => {
                self.close(peer, format!("kicked: {reason}"), Some(&reason));
            }
            Command::Offer { peer, reply } => {
                let _ = reply.send(self.offer(peer));
            }
            Command::Answer { peer, sdp } => self.answer(peer, &sdp),
            Command::Drop { peer, reason } => self.close(peer, reason.clone(), Some(&reason)),
            Command::Count { reply } => {
                let _ = reply.send(self.peer_count());
            }
            Command::Buffered { peer, reply } => {
                let buffered = match self.sockets.get(&peer) {
                    Some(socket) => Some(socket.bytes()),
                    None => self
                        .peers
                        .get_mut(&peer)
                        .filter(|slot| slot.takes_sends())
                        .map(Slot::buffered),
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
            Command::Shutdown => self.stop(),
        }
    }

    /// Peers on both transports, open or connecting.
    fn peer_count(&self) -> usize {
        self.peers.len() + self.sockets.len()
    }

    /// The earliest deadline still current, dropping stale heap entries on the way.
    fn next_deadline(&mut self) -> Instant {
        while let Some(Reverse((at, peer))) = self.deadlines.peek().copied() {
            if self.peers.get(&peer).is_some_and(|s| s.is_due_at(at)) {
                return at;
            }
            self.deadlines.pop();
        }
        Instant::now() + IDLE
    }

    /// Handles every peer whose deadline has come: drives its timers, drops it half-open, or
    /// ends its close.
    fn timeouts(&mut self) {
        let now = Instant::now();
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
