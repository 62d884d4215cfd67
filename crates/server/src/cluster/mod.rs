//! Cluster mode: several nodes sharing one Redis, one set of rooms (docs/cluster.md).
//!
//! A shell around the hub core, which stays as it is: each room (or match key) has one owner
//! node, whose hub holds it, so ordering and the lobby's atomic rules stay where they are on one
//! node. A peer connects to any node; when another node owns its room, its connection's node
//! forwards its join and its frames (undecoded) to the owner, and the owner sends each delivery
//! (encoded once per wire) to the nodes of its recipients, batched on one pub/sub channel per
//! node. Redis is behind two small traits (`store`); the records are `envelope`'s.

pub mod capacity;
pub mod config;
pub mod drain;
pub mod entry;
pub mod envelope;
mod incoming;
pub mod outgoing;
pub mod owned;
mod queries;
pub mod redis_store;
pub mod store;
mod takeover;
mod tasks;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::stream::BoxStream;
use switchboard_protocol::{ErrorCode, IceServer, ProtocolError};
use tokio::sync::oneshot;

use crate::connection::entry::Place;
use crate::metrics::ClusterMetrics;
use crate::relay::{lock, Outbox};
use crate::server::Shared;
use config::ClusterConfig;
use envelope::{AdminAnswer, Entering, Member, NodeId, Record};
use outgoing::Outgoing;
use owned::Key;
use redis_store::RedisStore;
use store::{Broker, Directory, StoreError};

/// This node's part in a cluster.
pub struct Cluster {
    /// This node's id.
    pub node: NodeId,
    /// The settings.
    pub config: ClusterConfig,
    directory: Arc<dyn Directory>,
    broker: Arc<dyn Broker>,
    /// Records for other nodes.
    pub out: Arc<Outgoing>,
    asks: Mutex<HashMap<u64, Ask>>,
    /// Admin calls waiting for the other nodes' answers.
    admin_asks: Mutex<HashMap<u64, tokio::sync::mpsc::UnboundedSender<AdminAnswer>>>,
    next_ask: AtomicU64,
    reachable: AtomicBool,
    draining: AtomicBool,
    /// The store's epoch at the last heartbeat, and until when no node is judged gone (the
    /// store came back empty: every node must have renewed its heartbeat first).
    epoch: Mutex<(Option<u64>, Instant)>,
    /// This node's sockets (rooms owned elsewhere included), under the connection limits.
    pub sockets: Arc<capacity::Sockets>,
    /// The cluster's series.
    pub metrics: ClusterMetrics,
}

/// The messages of this node's channel, until the store's connection is lost.
pub type Subscription = BoxStream<'static, Vec<u8>>;

/// A join forwarded to a room's owner, waiting for its answer.
struct Ask {
    owner: NodeId,
    outbox: Outbox,
    ice_servers: Vec<IceServer>,
    reply: oneshot::Sender<Answer>,
}

/// The owner's answer to a forwarded join.
pub(crate) enum Answer {
    /// Seated there; the connection here has its welcome and outbox.
    Seated(Place),
    /// That node does not own the room: ask the store again (the outbox comes back).
    NotOwner(Outbox, Vec<IceServer>),
    /// Refused, with the error for the client.
    Refused(ProtocolError),
}

/// The error for a client whose room's node cannot be reached.
pub(crate) fn unavailable(why: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::Unavailable, why)
}

impl Cluster {
    /// Connects to the store, says this node is alive and subscribes to its channel.
    /// Returns the node and its channel's first subscription (for [`Cluster::start`]).
    /// `sockets` bounds the sockets this node holds (`max_connections`, per address).
    pub async fn connect(
        config: &ClusterConfig,
        sockets: capacity::Sockets,
        metrics: ClusterMetrics,
    ) -> Result<(Arc<Self>, Subscription), StoreError> {
        let url = config.redis.as_deref().unwrap_or_default();
        let timeout = config.redis_timeout();
        let store = Arc::new(RedisStore::connect(url, &config.key_prefix, timeout).await?);
        let node: NodeId = rand::random();
        let epoch = store.heartbeat(node, config.node_ttl()).await?;
        let subscription = store.subscribe(node).await?;
        let out = Arc::new(Outgoing::new(node, config, metrics.clone()));
        tracing::info!(node = format!("{node:016x}"), "joined the cluster");
        let cluster = Arc::new(Self {
            node,
            config: config.clone(),
            directory: store.clone(),
            broker: store,
            out,
            asks: Mutex::new(HashMap::new()),
            admin_asks: Mutex::new(HashMap::new()),
            next_ask: AtomicU64::new(0),
            reachable: AtomicBool::new(true),
            draining: AtomicBool::new(false),
            epoch: Mutex::new((Some(epoch), Instant::now())),
            sockets: Arc::new(sockets),
            metrics,
        });
        Ok((cluster, subscription))
    }

    /// Starts the node's tasks (heartbeat, publisher, subscriber, releases), until shutdown.
    pub fn start(self: &Arc<Self>, shared: &Arc<Shared>, subscription: Subscription) {
        let shutdown = shared.shutdown.clone();
        tokio::spawn(self.out.clone().run(self.broker.clone(), shutdown));
        tokio::spawn(self.clone().heartbeats(shared.clone()));
        tokio::spawn(self.clone().subscriber(shared.clone(), subscription));
        tokio::spawn(self.clone().releases(shared.clone()));
        tokio::spawn(self.clone().snapshots(shared.clone()));
    }

    /// Whether the store answered the last heartbeat.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// The owner of `key`, this node if it was free (then it is recorded as owned here).
    pub(crate) async fn claim(&self, key: &Key, shared: &Shared) -> Result<NodeId, ProtocolError> {
        let started = Instant::now();
        let owner = self
            .directory
            .claim(&key.store_key(), self.node)
            .await
            .map_err(|error| {
                self.metrics.redis_error("claim");
                tracing::warn!(%error, "cluster: cannot claim a room");
                unavailable("the cluster's store does not answer: connect again")
            })?;
        self.metrics.latency(started.elapsed());
        if owner == self.node {
            if let Some(cluster) = lock(&shared.relay).cluster.as_mut() {
                if !cluster.owned.contains(key) {
                    cluster.owned.insert(key.clone());
                }
            }
        }
        Ok(owner)
    }

    /// Records that this node holds the room `name` (a match room its hub just made): its name
    /// is claimed in the store in the background, so a resume from another node finds it.
    pub(crate) fn hold_room(self: &Arc<Self>, relay: &mut crate::relay::Relay, name: &str) {
        let key = Key::Room(name.to_owned());
        let Some(owner) = relay.cluster.as_mut() else {
            return;
        };
        if owner.owned.contains(&key) {
            return;
        }
        owner.owned.insert(key.clone());
        let cluster = self.clone();
        tokio::spawn(async move {
            match cluster
                .directory
                .claim(&key.store_key(), cluster.node)
                .await
            {
                Ok(owner) if owner == cluster.node => {}
                Ok(_) => tracing::warn!(?key, "cluster: another node holds a room of that name"),
                Err(_) => cluster.metrics.redis_error("claim"),
            }
        });
    }

    /// Remembers the room of a resumable peer in the store; forgets the token it used up.
    pub(crate) async fn remember_token(&self, place: &Place, used: Option<u128>) {
        if let Some(token) = place.token {
            let ttl = self.config.token_ttl();
            let remembered = self
                .directory
                .remember_token(token, place.room.clone(), ttl)
                .await;
            if remembered.is_err() {
                self.metrics.redis_error("token");
            }
        }
        if let Some(used) = used.filter(|used| Some(*used) != place.token) {
            if self.directory.forget_token(used).await.is_err() {
                self.metrics.redis_error("token");
            }
        }
    }

    /// The room a resume token's peer is in, if the store remembers it.
    pub(crate) async fn token_room(&self, token: u128) -> Option<String> {
        match self.directory.token_room(token).await {
            Ok(room) => room,
            Err(_) => {
                self.metrics.redis_error("token");
                None
            }
        }
    }

    /// Forwards a join to `owner` and waits for its answer (`forward_timeout_ms` at most).
    pub(crate) async fn ask(
        &self,
        owner: NodeId,
        member: Member,
        entry: Entering,
        outbox: Outbox,
        ice_servers: Vec<IceServer>,
    ) -> Answer {
        let ask = self.next_ask.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let pending = Ask {
            owner,
            outbox,
            ice_servers,
            reply,
        };
        self.asks_lock().insert(ask, pending);
        self.out.push(owner, Record::Join { ask, member, entry });
        match tokio::time::timeout(self.config.forward_timeout(), answer).await {
            Ok(Ok(answer)) => answer,
            _ => {
                self.asks_lock().remove(&ask);
                Answer::Refused(unavailable(
                    "the node that holds your room did not answer: connect again",
                ))
            }
        }
    }

    fn asks_lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Ask>> {
        self.asks.lock().unwrap_or_else(|p| p.into_inner())
    }
}
