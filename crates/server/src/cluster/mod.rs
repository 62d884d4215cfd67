//! Cluster mode: several nodes sharing one Redis, one set of rooms (docs/cluster.md).
//!
//! A shell around the hub core, which stays as it is: each room (or match key) has one owner
//! node, whose hub holds it, so ordering and the lobby's atomic rules stay where they are on one
//! node. A peer connects to any node; when another node owns its room, its connection's node
//! forwards its join and its frames (undecoded) to the owner, and the owner sends each delivery
//! (encoded once per wire) to the nodes of its recipients, batched on one pub/sub channel per
//! node. Redis is behind two small traits (`store`); the records are `envelope`'s.

pub mod config;
pub mod drain;
pub mod entry;
pub mod envelope;
mod incoming;
pub mod outgoing;
pub mod owned;
pub mod redis_store;
pub mod store;
mod takeover;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use switchboard_protocol::{ErrorCode, IceServer, ProtocolError};
use tokio::sync::oneshot;

use crate::connection::entry::Place;
use crate::metrics::ClusterMetrics;
use crate::relay::{lock, Outbox};
use crate::server::Shared;
use config::ClusterConfig;
use envelope::{AdminAction, AdminAnswer, Entering, Member, NodeId, Record};
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
    /// The cluster's series.
    pub metrics: ClusterMetrics,
    /// The subscription made at connect, taken by the subscriber task.
    first_subscription: Mutex<Option<BoxStream<'static, Vec<u8>>>>,
}

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
    pub async fn connect(
        config: &ClusterConfig,
        metrics: ClusterMetrics,
    ) -> Result<Arc<Self>, StoreError> {
        let url = config.redis.as_deref().unwrap_or_default();
        let timeout = config.redis_timeout();
        let store = Arc::new(RedisStore::connect(url, &config.key_prefix, timeout).await?);
        let node: NodeId = rand::random();
        let epoch = store.heartbeat(node, config.node_ttl()).await?;
        let subscription = store.subscribe(node).await?;
        let out = Arc::new(Outgoing::new(
            node,
            config.max_pending_records,
            config.max_batch_records,
            metrics.clone(),
        ));
        tracing::info!(node = format!("{node:016x}"), "joined the cluster");
        Ok(Arc::new(Self {
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
            metrics,
            first_subscription: Mutex::new(Some(subscription)),
        }))
    }

    /// Starts the node's tasks (heartbeat, publisher, subscriber, releases), until shutdown.
    pub fn start(self: &Arc<Self>, shared: &Arc<Shared>) {
        let shutdown = shared.shutdown.clone();
        tokio::spawn(self.out.clone().run(self.broker.clone(), shutdown));
        tokio::spawn(self.clone().heartbeats(shared.clone()));
        tokio::spawn(self.clone().subscriber(shared.clone()));
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

    /// The cluster's public rooms, newest first (`open_only`: not full, not started), at most
    /// `limit`, listed before the cursor `before`; and the cursor of the next page. Entries of
    /// rooms whose owner is gone are dropped from the listing as they are met.
    pub(crate) async fn public_rooms(
        &self,
        open_only: bool,
        limit: usize,
        before: Option<u64>,
    ) -> Result<(Vec<serde_json::Value>, Option<u64>), StoreError> {
        const MOST_PAGES: usize = 8;
        let mut rooms = Vec::new();
        let mut cursor = before;
        let mut last = None;
        for _ in 0..MOST_PAGES {
            let page = self.directory.public_rooms(cursor, limit + 1).await?;
            let exhausted = page.len() <= limit;
            let entries: Vec<(String, u64, serde_json::Value)> = page
                .into_iter()
                .filter_map(|(room, place, json)| {
                    serde_json::from_str(&json).ok().map(|v| (room, place, v))
                })
                .collect();
            let nodes: Vec<NodeId> = entries
                .iter()
                .filter_map(|(_, _, v)| v["node"].as_str())
                .filter_map(|hex| u64::from_str_radix(hex, 16).ok())
                .collect::<std::collections::HashSet<_>>()
                .into_iter()
                .collect();
            let (alive, _) = self.directory.alive(nodes.clone()).await?;
            let dead: std::collections::HashSet<String> = nodes
                .iter()
                .zip(alive)
                .filter(|(_, alive)| !alive)
                .map(|(node, _)| format!("{node:016x}"))
                .collect();
            let mut gone = Vec::new();
            for (room, place, entry) in entries {
                cursor = Some(place);
                if entry["node"].as_str().is_some_and(|n| dead.contains(n)) {
                    gone.push(room);
                    continue;
                }
                let info = &entry["info"];
                let players = entry["players"].as_u64().unwrap_or(0);
                let full = info["capacity"].as_u64().is_some_and(|c| players >= c);
                let started = info["started"].as_bool().unwrap_or(false);
                if open_only && (full || started) {
                    continue;
                }
                if rooms.len() == limit {
                    break;
                }
                rooms.push(serde_json::json!({ "room": room, "players": players, "info": info }));
                last = Some(place);
            }
            if !gone.is_empty() && self.directory.unlist(gone).await.is_err() {
                self.metrics.redis_error("unlist");
            }
            if rooms.len() == limit || exhausted {
                break;
            }
        }
        let next = if rooms.len() == limit { last } else { None };
        Ok((rooms, next))
    }

    /// The user names in `room` as its owner last wrote it down (a PeerJS key's ids).
    pub(crate) async fn names_in(&self, room: &str) -> Vec<String> {
        let stored = match self.directory.load_room(room.to_owned()).await {
            Ok(Some(bytes)) => rmp_serde::from_slice::<envelope::StoredRoom>(&bytes).ok(),
            Ok(None) => None,
            Err(_) => {
                self.metrics.redis_error("load");
                None
            }
        };
        stored
            .map(|stored| {
                stored
                    .room
                    .members
                    .into_iter()
                    .filter_map(|m| m.name)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Carries an admin call to every other node; their answers (those that came within
    /// `forward_timeout_ms`).
    pub(crate) async fn admin(&self, action: AdminAction) -> Vec<AdminAnswer> {
        let others: Vec<NodeId> = match self.directory.nodes().await {
            Ok(nodes) => nodes.into_iter().filter(|n| *n != self.node).collect(),
            Err(_) => return Vec::new(),
        };
        if others.is_empty() {
            return Vec::new();
        }
        let ask = self.next_ask.fetch_add(1, Ordering::Relaxed);
        let (tell, mut told) = tokio::sync::mpsc::unbounded_channel();
        self.admin_asks_lock().insert(ask, tell);
        for node in &others {
            let action = action.clone();
            self.out.push(*node, Record::Admin { ask, action });
        }
        let mut answers = Vec::new();
        let deadline = tokio::time::Instant::now() + self.config.forward_timeout();
        while answers.len() < others.len() {
            match tokio::time::timeout_at(deadline, told.recv()).await {
                Ok(Some(answer)) => {
                    // A peer or room is on one node: the first that has it is the answer.
                    let done = answer == AdminAnswer::Done(true);
                    answers.push(answer);
                    if done {
                        break;
                    }
                }
                _ => break,
            }
        }
        self.admin_asks_lock().remove(&ask);
        answers
    }

    /// Another node answered an admin call.
    pub(crate) fn admin_answered(&self, ask: u64, answer: AdminAnswer) {
        if let Some(tell) = self.admin_asks_lock().get(&ask) {
            let _ = tell.send(answer);
        }
    }

    fn admin_asks_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, tokio::sync::mpsc::UnboundedSender<AdminAnswer>>>
    {
        self.admin_asks.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Renews this node's heartbeat; now and then counts the nodes alive.
    async fn heartbeats(self: Arc<Self>, shared: Arc<Shared>) {
        let mut tick = tokio::time::interval(self.config.heartbeat());
        let mut beats = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shared.shutdown.cancelled() => return,
            }
            if self.is_draining() {
                // A drained node has said it is gone; it must not look alive again.
                continue;
            }
            let started = Instant::now();
            let beat = self
                .directory
                .heartbeat(self.node, self.config.node_ttl())
                .await;
            let beat_ok = beat.is_ok();
            match beat {
                Ok(epoch) => {
                    self.metrics.latency(started.elapsed());
                    let forgot = self.new_epoch(epoch);
                    if forgot {
                        tracing::warn!("cluster: the store lost its memory (a restart)");
                    }
                    if !self.reachable.swap(true, Ordering::Relaxed) || forgot {
                        tracing::info!("cluster: the store answers again");
                        self.republish(&shared).await;
                    }
                }
                Err(error) => {
                    if self.reachable.swap(false, Ordering::Relaxed) {
                        tracing::warn!(%error, "cluster: the store does not answer");
                    }
                    self.metrics.redis_error("heartbeat");
                }
            }
            if beat_ok {
                self.watch_owners(&shared).await;
            }
            if beats.is_multiple_of(5) {
                match self.directory.nodes().await {
                    Ok(nodes) => {
                        self.metrics.nodes.set(nodes.len() as i64);
                    }
                    Err(_) => self.metrics.redis_error("nodes"),
                }
            }
            beats += 1;
        }
    }

    /// Notes the store's epoch; true when it changed (the store forgot everything): then no
    /// node is judged gone until every node has had the time to renew its heartbeat.
    fn new_epoch(&self, epoch: u64) -> bool {
        let mut known = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        if known.0 == Some(epoch) {
            return false;
        }
        *known = (
            Some(epoch),
            Instant::now() + self.config.node_ttl() + self.config.heartbeat(),
        );
        true
    }

    /// Whether `epoch` is the one this node's last heartbeat saw.
    pub(super) fn same_epoch(&self, epoch: Option<u64>) -> bool {
        epoch.is_some() && self.epoch.lock().unwrap_or_else(|p| p.into_inner()).0 == epoch
    }

    /// Whether heartbeats can be trusted now to say a node is gone.
    pub(super) fn may_judge(&self) -> bool {
        Instant::now() >= self.epoch.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    /// Says again in the store what this node owns (its heartbeat, its rooms and match keys,
    /// each room written down anew), after the store was lost: it may have restarted empty.
    async fn republish(&self, shared: &Shared) {
        let keys: Vec<Key> = {
            let relay = lock(&shared.relay);
            let Some(owner) = relay.cluster.as_ref() else {
                return;
            };
            let keys = owner.owned.keys();
            owner.mark(keys.iter().filter_map(|key| match key {
                Key::Room(name) => Some(name.clone()),
                Key::Match(..) => None,
            }));
            keys
        };
        match self
            .directory
            .heartbeat(self.node, self.config.node_ttl())
            .await
        {
            Ok(epoch) => {
                self.new_epoch(epoch);
            }
            Err(_) => {
                self.metrics.redis_error("heartbeat");
                return;
            }
        }
        for key in keys {
            match self.directory.claim(&key.store_key(), self.node).await {
                Ok(owner) if owner == self.node => {}
                Ok(_) => tracing::warn!(?key, "cluster: another node took a room of ours"),
                Err(_) => {
                    self.metrics.redis_error("claim");
                    return;
                }
            }
        }
    }

    /// Reads this node's channel; subscribes again whenever the store's connection is lost.
    async fn subscriber(self: Arc<Self>, shared: Arc<Shared>) {
        let first = self
            .first_subscription
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let mut subscription = first;
        let mut backoff = Duration::from_millis(50);
        loop {
            if let Some(mut messages) = subscription.take() {
                backoff = Duration::from_millis(50);
                loop {
                    tokio::select! {
                        message = messages.next() => match message {
                            Some(bytes) => incoming::handle(&self, &shared, &bytes),
                            None => break,
                        },
                        () = shared.shutdown.cancelled() => return,
                    }
                }
                tracing::warn!("cluster: lost the subscription; subscribing again");
                self.metrics.redis_error("subscribe");
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shared.shutdown.cancelled() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
            match self.broker.subscribe(self.node).await {
                Ok(messages) => {
                    subscription = Some(messages);
                    // The store may have come back empty (a restart): say again what is ours.
                    self.republish(&shared).await;
                }
                Err(_) => self.metrics.redis_error("subscribe"),
            }
        }
    }

    /// Gives up, now and then, the keys whose rooms have emptied.
    async fn releases(self: Arc<Self>, shared: Arc<Shared>) {
        let mut tick = tokio::time::interval(self.config.release_interval());
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shared.shutdown.cancelled() => return,
            }
            let released = {
                let mut relay = lock(&shared.relay);
                let relay = &mut *relay;
                match relay.cluster.as_mut() {
                    Some(cluster) => {
                        let released = cluster.owned.sweep(&relay.hub);
                        self.metrics.owned.set(cluster.owned.len() as i64);
                        released
                    }
                    None => Vec::new(),
                }
            };
            if released.is_empty() {
                continue;
            }
            let keys = released.iter().map(Key::store_key).collect();
            if self.directory.release(keys, self.node).await.is_err() {
                self.metrics.redis_error("release");
            }
            // A join may have claimed one of them again while the release was under way (the
            // store still named this node): such a key is taken back.
            let reclaimed: Vec<Key> = {
                let relay = lock(&shared.relay);
                let owned = relay.cluster.as_ref().map(|c| &c.owned);
                released
                    .into_iter()
                    .filter(|key| owned.is_some_and(|o| o.contains(key)))
                    .collect()
            };
            for key in reclaimed {
                match self.directory.claim(&key.store_key(), self.node).await {
                    Ok(owner) if owner == self.node => {}
                    Ok(_) => tracing::warn!(?key, "cluster: a room was taken while released"),
                    Err(_) => self.metrics.redis_error("claim"),
                }
            }
        }
    }
}
