//! The node's background tasks: the heartbeat (and the watch on the nodes it depends on), the
//! subscriber of its channel, the release of emptied rooms, and saying again what it owns when
//! the store forgot.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::owned::Key;
use super::{incoming, Cluster, Subscription};
use crate::relay::lock;
use crate::server::Shared;

impl Cluster {
    /// Renews this node's heartbeat; now and then counts the nodes alive.
    pub(super) async fn heartbeats(self: Arc<Self>, shared: Arc<Shared>) {
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
    pub(super) fn new_epoch(&self, epoch: u64) -> bool {
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
    pub(super) async fn republish(&self, shared: &Shared) {
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
    pub(super) async fn subscriber(self: Arc<Self>, shared: Arc<Shared>, first: Subscription) {
        let mut subscription = Some(first);
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
    pub(super) async fn releases(self: Arc<Self>, shared: Arc<Shared>) {
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
