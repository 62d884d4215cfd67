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
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_protocol::PeerId;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::addrs;
use crate::api::{Channel, ConnectError, Data, EventQueue, StartError, Transport};
use crate::config::PeerConfig;
use crate::socket_queue::FrameReceiver;
use crate::stats::Stats;
use table::{PeerTable, Transmit};

mod connect;
mod deliver;
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

/// Receive batches taken in one wake-up of the loop before it looks at the rest (each up to
/// `switchboard_udp::BATCH` datagrams).
const READ_ROUNDS: usize = 2;
/// Commands handled in one wake-up of the loop before it looks at the rest.
const COMMAND_BATCH: usize = 64;
/// Longest the loop sleeps when no peer has a timeout.
const IDLE: Duration = Duration::from_secs(1);

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
    let table = PeerTable::new(
        config,
        advertised.clone(),
        dtls_cert,
        events,
        stats,
        Instant::now(),
    );
    tokio::spawn(run(table, socket, inbox));
    Ok((commands, local, advertised))
}

/// The loop: datagrams, commands and deadlines into the table, its transmits out to the socket,
/// until the table has shut down.
async fn run(mut table: PeerTable, socket: UdpSocket, mut inbox: mpsc::Receiver<Command>) {
    let mut datagrams = switchboard_udp::Inbox::new();
    let mut handles_gone = false;
    while !table.is_done() {
        let idle = Instant::now() + IDLE;
        let wake = table.poll_timeout().map_or(idle, |at| at.min(idle));
        tokio::select! {
            ready = socket.readable() => {
                if let Err(error) = ready {
                    tracing::debug!(%error, "udp socket error");
                }
                // Datagrams already waiting are handled in the same wake-up: under load this
                // saves a trip through the scheduler and epoll per datagram.
                for _ in 0..READ_ROUNDS {
                    let received =
                        socket.try_io(Interest::READABLE, || datagrams.receive(&socket));
                    let Ok(count) = received else {
                        break;
                    };
                    let now = Instant::now();
                    for i in 0..count {
                        if let Some((datagram, source)) = datagrams.get(i) {
                            table.handle_datagram(now, source, datagram);
                        }
                    }
                }
            }
            command = inbox.recv(), if !handles_gone => {
                let mut next = command;
                let mut handled = 0;
                while let Some(command) = next.take() {
                    table.handle_command(Instant::now(), command);
                    handled += 1;
                    if handled < COMMAND_BATCH {
                        next = inbox.try_recv().ok();
                    }
                }
                if handled == 0 {
                    // Every handle is gone: close everyone, as on shutdown.
                    handles_gone = true;
                    table.stop(Instant::now());
                }
            }
            () = tokio::time::sleep_until(wake.into()) => table.handle_timeout(Instant::now()),
        }
        send(&socket, table.take_transmits());
    }
}

/// Sends a wake-up's datagrams, a batch per system call. A full socket buffer drops the rest, as
/// UDP would (DTLS and SCTP retransmit; unreliable messages were unreliable).
fn send(socket: &UdpSocket, transmits: Vec<Transmit>) {
    for chunk in transmits.chunks(switchboard_udp::BATCH) {
        let datagrams: Vec<(&[u8], SocketAddr)> = chunk
            .iter()
            .map(|(to, bytes)| (bytes.as_slice(), *to))
            .collect();
        switchboard_udp::send_all(socket, &datagrams);
    }
}
