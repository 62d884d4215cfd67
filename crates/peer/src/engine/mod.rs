//! The network loop: a thin shell that moves bytes between the UDP socket and the pure peer
//! table (`table`), which owns every peer's `str0m::Rtc`. Datagrams come in batches
//! (`switchboard_udp`: `recvmmsg` on Linux) and the table's transmits of one wake-up go out
//! together (`sendmmsg`).
//!
//! * `table`: the peers, their routes and deadlines; datagrams, commands and the time in,
//!   datagrams, events and the next deadline out.
//! * `connect`: new peers (offers both ways, WebSocket attach).
//! * `deliver`: sends (reliable frames through each peer's outbox), draining an `Rtc`, its
//!   events, and closing a peer (goodbye, then the association).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_protocol::PeerId;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::addrs;
use crate::api::{Channel, ConnectError, Data, EventQueue, StartError, Transport};
use crate::config::PeerConfig;
use crate::roster::Roster;
use crate::slot::Slot;
use crate::socket_queue::FrameReceiver;
use crate::stats::Stats;
use table::{PeerTable, Place, Transmit};

mod connect;
mod deliver;
mod handoff;
mod table;
#[cfg(test)]
mod tests;

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
    /// From another shard: an ICE check for one of this shard's peers reached that shard.
    Check {
        from_shard: usize,
        source: SocketAddr,
        datagram: Vec<u8>,
    },
    /// From another shard: a peer handed over, with the check that asked for it.
    Adopt {
        peer: PeerId,
        slot: Box<Slot>,
        source: SocketAddr,
        datagram: Vec<u8>,
    },
}

/// A WebSocket peer's id and the queue of frames to send it.
pub(crate) type Attached = (PeerId, FrameReceiver);

/// Receive batches taken in one wake-up of the loop before it looks at the rest (each up to
/// `switchboard_udp::BATCH` datagrams).
const READ_ROUNDS: usize = 2;
/// Commands handled in one wake-up of the loop before it looks at the rest.
const COMMAND_BATCH: usize = 64;
/// Longest the loop sleeps when no peer has a timeout.
const IDLE: Duration = Duration::from_secs(1);
/// Most shards (a ufrag names its shard in two hex digits; more than cores gains nothing).
const MAX_SHARDS: usize = 64;

/// The handles' way to the shards: a command queue per shard and the roster of who is where.
pub(crate) struct Shards {
    queues: Vec<mpsc::Sender<Command>>,
    roster: Arc<Roster>,
    next: AtomicUsize,
}

impl Shards {
    /// The shard for a new peer: each in turn.
    pub(crate) fn any(&self) -> &mpsc::Sender<Command> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.queues.len();
        &self.queues[i]
    }

    /// The shard holding `peer`, if the server holds it.
    pub(crate) fn of(&self, peer: PeerId) -> Option<&mpsc::Sender<Command>> {
        self.queues.get(self.shard_of(peer)?)
    }

    /// The index of the shard holding `peer`.
    pub(crate) fn shard_of(&self, peer: PeerId) -> Option<usize> {
        self.roster.shard_of(peer)
    }

    /// Every shard.
    pub(crate) fn all(&self) -> &[mpsc::Sender<Command>] {
        &self.queues
    }

    /// Peers held, on every shard.
    pub(crate) fn peer_count(&self) -> usize {
        self.roster.len()
    }
}

/// How many shards to run: `config.shards`, or one per core when it is 0 (at most 64).
fn shard_count(config: &PeerConfig) -> usize {
    let wanted = match config.shards {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    wanted.clamp(1, MAX_SHARDS)
}

/// Binds the port (one socket per shard, sharing it with `SO_REUSEPORT` when there are several)
/// and spawns a loop per shard; returns the handles' way to them, the bound and advertised
/// addresses.
pub(crate) async fn start(
    config: Arc<PeerConfig>,
    events: Arc<EventQueue>,
    stats: Stats,
) -> Result<(Shards, SocketAddr, Vec<SocketAddr>), StartError> {
    let bind_error = |source| StartError::Bind {
        addr: config.listen,
        source,
    };
    let shards = shard_count(&config);
    let sockets = bind(config.listen, shards, config.udp_buffer_bytes).map_err(bind_error)?;
    let local = sockets[0].local_addr().map_err(bind_error)?;
    let advertised = addrs::advertised(local, &config.public_ips);
    let dtls_cert = str0m::crypto::from_feature_flags()
        .dtls_provider
        .generate_certificate();
    let roster = Arc::new(Roster::new(config.max_peers, config.max_peers_per_ip));
    let (queues, inboxes): (Vec<_>, Vec<_>) = (0..shards)
        .map(|_| mpsc::channel(config.command_queue.max(1)))
        .unzip();
    for (shard, (socket, inbox)) in sockets.into_iter().zip(inboxes).enumerate() {
        let place = Place {
            shard,
            shards,
            roster: roster.clone(),
        };
        let table = PeerTable::new(
            config.clone(),
            place,
            advertised.clone(),
            dtls_cert.clone(),
            events.clone(),
            stats.clone(),
            Instant::now(),
        );
        let shell = Shell {
            table,
            socket,
            others: queues.iter().map(mpsc::Sender::downgrade).collect(),
        };
        tokio::spawn(shell.run(inbox));
    }
    let shards = Shards {
        queues,
        roster,
        next: AtomicUsize::new(0),
    };
    Ok((shards, local, advertised))
}

/// One socket per shard on `listen`. One shard binds plainly; several first claim the port
/// without `SO_REUSEPORT` (a port in use is an error, never silently shared), then share it.
fn bind(listen: SocketAddr, shards: usize, buffer_bytes: usize) -> std::io::Result<Vec<UdpSocket>> {
    let buffers = switchboard_udp::Buffers {
        receive: Some(buffer_bytes),
        send: Some(buffer_bytes),
    };
    let sockets = if shards == 1 {
        vec![switchboard_udp::bind(listen, buffers, false)?]
    } else {
        let port = switchboard_udp::claim_port(listen)?;
        (0..shards)
            .map(|_| switchboard_udp::bind(port, buffers, true))
            .collect::<std::io::Result<Vec<_>>>()?
    };
    sockets
        .into_iter()
        .map(|socket| {
            socket.set_nonblocking(true)?;
            UdpSocket::from_std(socket)
        })
        .collect()
}

/// One shard's loop: its table, its socket, and the queues of every shard (for transfers; weak,
/// so that when every handle is gone the queues close and the shards stop).
struct Shell {
    table: PeerTable,
    socket: UdpSocket,
    others: Vec<mpsc::WeakSender<Command>>,
}

impl Shell {
    /// The loop: datagrams, commands and deadlines into the table, its transmits out to the
    /// socket and its transfers to the other shards, until the table has shut down.
    async fn run(mut self, mut inbox: mpsc::Receiver<Command>) {
        let mut datagrams = switchboard_udp::Inbox::new();
        let mut handles_gone = false;
        while !self.table.is_done() {
            let idle = Instant::now() + IDLE;
            let wake = self.table.poll_timeout().map_or(idle, |at| at.min(idle));
            tokio::select! {
                ready = self.socket.readable() => {
                    if let Err(error) = ready {
                        tracing::debug!(%error, "udp socket error");
                    }
                    // Datagrams already waiting are handled in the same wake-up: under load
                    // this saves a trip through the scheduler and epoll per datagram.
                    for _ in 0..READ_ROUNDS {
                        let socket = &self.socket;
                        let received =
                            socket.try_io(Interest::READABLE, || datagrams.receive(socket));
                        let Ok(count) = received else {
                            break;
                        };
                        let now = Instant::now();
                        for i in 0..count {
                            if let Some((datagram, source)) = datagrams.get(i) {
                                self.table.handle_datagram(now, source, datagram);
                            }
                        }
                    }
                }
                command = inbox.recv(), if !handles_gone => {
                    let mut next = command;
                    let mut handled = 0;
                    while let Some(command) = next.take() {
                        self.table.handle_command(Instant::now(), command);
                        handled += 1;
                        if handled < COMMAND_BATCH {
                            next = inbox.try_recv().ok();
                        }
                    }
                    if handled == 0 {
                        // Every handle is gone: close everyone, as on shutdown.
                        handles_gone = true;
                        self.table.stop(Instant::now());
                    }
                }
                () = tokio::time::sleep_until(wake.into()) => {
                    self.table.handle_timeout(Instant::now());
                }
            }
            let transmits = self.table.take_transmits();
            let dropped = send(&self.socket, &transmits);
            if dropped > 0 {
                self.table.stats.send_dropped.inc_by(dropped as u64);
            }
            self.pass_transfers();
        }
    }

    /// Gives other shards what the table has for them. A full queue drops a check (ICE sends
    /// it again) or a peer handed over (it never opened: its browser times out).
    fn pass_transfers(&mut self) {
        for (shard, command) in self.table.take_transfers() {
            let Some(queue) = self.others.get(shard).and_then(mpsc::WeakSender::upgrade) else {
                continue;
            };
            if let Err(refused) = queue.try_send(command) {
                if let Command::Adopt { peer, .. } = refused.into_inner() {
                    tracing::warn!(%peer, shard, "shard queue full: a peer moving to it is lost");
                    self.table.roster.remove(peer);
                }
            }
        }
    }
}

/// Sends a wake-up's datagrams, a batch per system call; returns how many the kernel did not
/// take. A full socket buffer drops them, as UDP would (DTLS and SCTP retransmit; unreliable
/// messages were unreliable).
fn send(socket: &UdpSocket, transmits: &[Transmit]) -> usize {
    let mut dropped = 0;
    for chunk in transmits.chunks(switchboard_udp::BATCH) {
        let datagrams: Vec<(&[u8], SocketAddr)> = chunk
            .iter()
            .map(|(to, bytes)| (bytes.as_slice(), *to))
            .collect();
        dropped += datagrams.len() - switchboard_udp::send_all(socket, &datagrams);
    }
    dropped
}
