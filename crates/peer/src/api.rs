//! The application's side: [`Server`] to send, kick and accept offers, [`Events`] to learn what
//! happened. Both are cheap to clone and thread-safe; nothing here waits for the network loop.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, Notify};

pub use switchboard_protocol::PeerId;

use crate::config::PeerConfig;
use crate::engine::{self, Command, Shards};
use crate::stats::Stats;

/// The two channels every connection has: `reliable` (ordered, retransmitted, large messages
/// chunked) and `unreliable` (unordered, never retransmitted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Ordered and retransmitted until delivered.
    Reliable,
    /// Unordered, `maxRetransmits: 0`: a lost or late message is simply gone.
    Unreliable,
}

/// A message: bytes or text (browsers receive `Uint8Array` or `string` accordingly).
pub use switchboard_protocol::Data;

/// How a peer is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// WebRTC data channels over the shared UDP port.
    WebRtc,
    /// The WebSocket fallback (`GET /connect/ws`): both channels over one TCP connection, so
    /// "unreliable" messages are delivered reliably and in order.
    WebSocket,
}

/// What happened to a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Both channels are open: sends reach the peer.
    Open(PeerId),
    /// The peer is gone (reported once, only after `Open`): `channel_closed`, `ice_disconnected`,
    /// `goodbye: <reason>` (the browser closed), `kicked: <reason>`, `closed`, `shutdown`,
    /// `send_queue_full` (it did not take what was sent; see `PeerConfig::send_queue_bytes`); on
    /// the WebSocket fallback also `websocket_closed`, `timeout`, `write_timeout` (its socket stopped
    /// taking data), `flooding` (pings past `socket_control_burst`), `bad_frame: ...`.
    Closed(PeerId, String),
    /// A whole message from the peer.
    Received(PeerId, Channel, Data),
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The UDP address could not be bound.
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Why an offer was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// Not a data channel offer str0m accepts.
    #[error("invalid offer: {0}")]
    InvalidOffer(String),
    /// `max_peers_per_ip` peers from this address are there.
    #[error("your address has max_peers_per_ip ({0}) peers")]
    TooManyFromAddress(usize),
    /// `max_peers` reached.
    #[error("the server has max_peers ({0}) peers")]
    Full(usize),
    /// The server is shutting down.
    #[error("the server is stopped")]
    Stopped,
}

impl ConnectError {
    /// A stable code for HTTP answers.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidOffer(_) => "invalid_offer",
            Self::Full(_) => "server_full",
            Self::TooManyFromAddress(_) => "too_many_connections",
            Self::Stopped => "shutdown",
        }
    }
}

/// The queue of events, shared by the network loop and every [`Events`] handle.
#[derive(Default)]
pub(crate) struct EventQueue {
    items: Mutex<VecDeque<Event>>,
    notify: Notify,
}

impl EventQueue {
    /// Everything queued, in order (the tests' view of what the application would see).
    #[cfg(test)]
    pub(crate) fn take_all(&self) -> Vec<Event> {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect()
    }

    pub(crate) fn push(&self, event: Event) {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(event);
        self.notify.notify_one();
    }
}

/// Receives the server's events: poll with [`Events::pop_all`] from a game loop, or await
/// [`Events::recv`].
#[derive(Clone)]
pub struct Events {
    queue: Arc<EventQueue>,
}

impl Events {
    /// Everything that happened since the last call, in order.
    pub fn pop_all(&mut self) -> Vec<Event> {
        self.queue
            .items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect()
    }

    /// The next event, waiting for one.
    pub async fn recv(&mut self) -> Event {
        loop {
            let notified = self.queue.notify.notified();
            if let Some(event) = self
                .queue
                .items
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front()
            {
                return event;
            }
            notified.await;
        }
    }
}

/// The server peer. Clone it freely; every method returns at once.
#[derive(Clone)]
pub struct Server {
    shards: Arc<Shards>,
    local_addr: SocketAddr,
    advertised: Arc<Vec<SocketAddr>>,
    config: Arc<PeerConfig>,
    stats: Stats,
}

impl Server {
    /// Binds the UDP port and starts the network loop (on the current tokio runtime).
    pub async fn new(config: PeerConfig) -> Result<(Server, Events), StartError> {
        let queue = Arc::new(EventQueue::default());
        let config = Arc::new(config);
        let stats = Stats::default();
        let (shards, local_addr, advertised) =
            engine::start(config.clone(), queue.clone(), stats.clone()).await?;
        let server = Server {
            shards: Arc::new(shards),
            local_addr,
            advertised: Arc::new(advertised),
            config,
            stats,
        };
        Ok((server, Events { queue }))
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The settings it was started with.
    pub fn config(&self) -> &PeerConfig {
        &self.config
    }

    /// The server's counters (render them at `/metrics` with [`Stats::render`]).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The addresses given to browsers as the server's candidates.
    pub fn advertised(&self) -> &[SocketAddr] {
        &self.advertised
    }

    /// Accepts a browser's offer (an SDP with data channels); returns the peer's id and the
    /// answer, which carries the server's candidates (no trickling needed).
    pub async fn connect(&self, offer: String) -> Result<(PeerId, String), ConnectError> {
        self.connect_from(offer, None).await
    }

    /// Like [`Server::connect`], counting the peer against `max_peers_per_ip` for `ip` (what
    /// `POST /connect` does when it knows the client's address).
    pub async fn connect_from(
        &self,
        offer: String,
        ip: Option<IpAddr>,
    ) -> Result<(PeerId, String), ConnectError> {
        let (reply, answer) = oneshot::channel();
        self.shards
            .any()
            .send(Command::Connect { offer, ip, reply })
            .await
            .map_err(|_| ConnectError::Stopped)?;
        answer.await.map_err(|_| ConnectError::Stopped)?
    }

    /// Sends on the reliable channel (ordered, retransmitted; large messages are chunked).
    pub fn send_reliable(&self, peer: PeerId, data: impl Into<Data>) {
        self.to_peer(
            peer,
            Command::Send {
                peers: Some(vec![peer]),
                channel: Channel::Reliable,
                data: data.into(),
            },
        );
    }

    /// Sends on the unreliable channel (unordered, never retransmitted; one frame at most).
    pub fn send_unreliable(&self, peer: PeerId, data: impl Into<Data>) {
        self.to_peer(
            peer,
            Command::Send {
                peers: Some(vec![peer]),
                channel: Channel::Unreliable,
                data: data.into(),
            },
        );
    }

    /// Sends to every open peer, reliably.
    pub fn broadcast_reliable(&self, data: impl Into<Data>) {
        let data = data.into();
        self.to_all(|| Command::Send {
            peers: None,
            channel: Channel::Reliable,
            data: data.clone(),
        });
    }

    /// Sends to every open peer, unreliably.
    pub fn broadcast_unreliable(&self, data: impl Into<Data>) {
        let data = data.into();
        self.to_all(|| Command::Send {
            peers: None,
            channel: Channel::Unreliable,
            data: data.clone(),
        });
    }

    /// Sends to a set of peers.
    pub fn send_to(&self, peers: &[PeerId], channel: Channel, data: impl Into<Data>) {
        let data = data.into();
        let mut by_shard: Vec<(usize, Vec<PeerId>)> = Vec::new();
        for &peer in peers {
            let Some(shard) = self.shards.shard_of(peer) else {
                continue;
            };
            match by_shard.iter_mut().find(|(s, _)| *s == shard) {
                Some((_, list)) => list.push(peer),
                None => by_shard.push((shard, vec![peer])),
            }
        }
        for (shard, peers) in by_shard {
            let command = Command::Send {
                peers: Some(peers),
                channel,
                data: data.clone(),
            };
            Self::queue(&self.shards.all()[shard], command);
        }
    }

    /// Bytes sent to a peer and not yet taken by it: reliable frames waiting for room, plus what
    /// its transport holds unacknowledged (on the WebSocket fallback, what waits for the socket).
    /// `None` when the peer is not connected. A game can skip a snapshot for a peer that is
    /// behind; past `send_queue_bytes` a reliable send closes the peer.
    pub async fn buffered(&self, peer: PeerId) -> Option<usize> {
        let (reply, buffered) = oneshot::channel();
        self.shards
            .of(peer)?
            .send(Command::Buffered { peer, reply })
            .await
            .ok()?;
        buffered.await.ok().flatten()
    }

    /// Closes a peer's connection: the browser gets a `close` event with this reason (a goodbye
    /// after everything already sent), then its data channels and association are closed.
    pub fn kick(&self, peer: PeerId, reason: &str) {
        self.to_peer(
            peer,
            Command::Kick {
                peer,
                reason: reason.to_owned(),
            },
        );
    }

    /// Hub way: an offer for a peer of the hub room (its hub id becomes its id here).
    pub(crate) async fn offer(&self, peer: PeerId) -> Result<String, ConnectError> {
        let (reply, offer) = oneshot::channel();
        self.shards
            .any()
            .send(Command::Offer { peer, reply })
            .await
            .map_err(|_| ConnectError::Stopped)?;
        offer.await.map_err(|_| ConnectError::Stopped)?
    }

    /// Hub way: a peer's answer to our offer.
    pub(crate) fn answer(&self, peer: PeerId, sdp: String) {
        self.to_peer(peer, Command::Answer { peer, sdp });
    }

    /// Hub way: the peer left the hub room.
    pub(crate) fn drop_peer(&self, peer: PeerId, reason: String) {
        self.to_peer(peer, Command::Drop { peer, reason });
    }

    /// How the peer is connected, or `None` if it is not (or no longer) connected.
    pub async fn transport(&self, peer: PeerId) -> Option<Transport> {
        let (reply, transport) = oneshot::channel();
        self.shards
            .of(peer)?
            .send(Command::Transport { peer, reply })
            .await
            .ok()?;
        transport.await.ok().flatten()
    }

    /// WebSocket fallback: a new peer on a WebSocket; returns its id and the frames to send it
    /// (each a channel byte and a data channel frame). `Open` is reported at once.
    pub(crate) async fn attach_socket(
        &self,
        ip: Option<IpAddr>,
    ) -> Result<engine::Attached, ConnectError> {
        let (reply, attached) = oneshot::channel();
        self.shards
            .any()
            .send(Command::Attach { ip, reply })
            .await
            .map_err(|_| ConnectError::Stopped)?;
        attached.await.map_err(|_| ConnectError::Stopped)?
    }

    /// WebSocket fallback: a whole message from a WebSocket peer. Waits for room in the command
    /// queue (backpressure on the socket) rather than dropping it.
    pub(crate) async fn socket_received(&self, peer: PeerId, channel: Channel, data: Data) {
        let Some(shard) = self.shards.of(peer) else {
            return;
        };
        let _ = shard
            .send(Command::SocketReceived {
                peer,
                channel,
                data,
            })
            .await;
    }

    /// WebSocket fallback: the socket ended.
    pub(crate) async fn detach_socket(&self, peer: PeerId, reason: String) {
        if let Some(shard) = self.shards.of(peer) {
            let _ = shard.send(Command::Drop { peer, reason }).await;
        }
    }

    /// How many peers the server holds, connected or still connecting, on either transport
    /// (half-open ones are dropped after `connect_timeout`).
    pub async fn peer_count(&self) -> usize {
        self.shards.peer_count()
    }

    /// Stops the network loop: every peer gets a goodbye (`shutdown`) and is closed (within
    /// `close_linger`); new peers are refused.
    pub fn shutdown(&self) {
        self.to_all(|| Command::Shutdown);
    }

    /// A command for one peer, to its shard (none: the peer is gone, nothing to do).
    fn to_peer(&self, peer: PeerId, command: Command) {
        if let Some(shard) = self.shards.of(peer) {
            Self::queue(shard, command);
        }
    }

    /// A command for every shard, made once per shard.
    fn to_all(&self, make: impl Fn() -> Command) {
        for shard in self.shards.all() {
            Self::queue(shard, make());
        }
    }

    fn queue(shard: &mpsc::Sender<Command>, command: Command) {
        if shard.try_send(command).is_err() {
            tracing::warn!("server peer command queue full or closed: a command was dropped");
        }
    }
}
