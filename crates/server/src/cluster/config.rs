//! Cluster mode's settings (`[cluster]` in TOML; docs/configuration.md).

use std::time::Duration;

use serde::Deserialize;

/// Cluster mode: several nodes sharing one Redis. Off unless `redis` is set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT/DB`: join the cluster of the nodes that share this Redis.
    pub redis: Option<String>,
    /// Every Redis key and channel of this cluster starts with it (several clusters can share
    /// one Redis).
    pub key_prefix: String,
    /// How long one Redis command (or connecting to Redis) may take, in ms; then it fails and
    /// counts as an error (`/healthz` turns 503 when heartbeats fail).
    pub redis_timeout_ms: u64,
    /// How often a node renews its heartbeat, in ms.
    pub heartbeat_ms: u64,
    /// A node whose heartbeat is this old is dead: its rooms may be taken, in ms.
    pub node_ttl_ms: u64,
    /// How long a join waits for the answer of the node that owns the room, in ms; then the
    /// client is refused with `unavailable`.
    pub forward_timeout_ms: u64,
    /// Most records in one pub/sub message.
    pub max_batch_records: usize,
    /// Most records waiting to be published to other nodes; past it, records are dropped and
    /// counted (`switchboard_cluster_dropped_total`).
    pub max_pending_records: usize,
    /// Most bytes (frames, about) in the records waiting to be published; past it, records are
    /// dropped and counted like past `max_pending_records`.
    pub max_pending_bytes: usize,
    /// How often the owner writes down the rooms whose members changed (for a takeover), in ms.
    pub snapshot_interval_ms: u64,
    /// How often a node gives up the rooms it owns that have emptied, in ms.
    pub release_interval_ms: u64,
    /// How long Redis remembers the room of a resume token (for a resume on another node), in
    /// ms. A peer may resume on another node within this long of its join or last resume.
    pub token_ttl_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            redis: None,
            key_prefix: "switchboard".into(),
            redis_timeout_ms: 1_000,
            heartbeat_ms: 1_000,
            node_ttl_ms: 5_000,
            forward_timeout_ms: 5_000,
            max_batch_records: 512,
            max_pending_records: 200_000,
            max_pending_bytes: 64 * 1024 * 1024,
            release_interval_ms: 1_000,
            snapshot_interval_ms: 100,
            token_ttl_ms: 86_400_000,
        }
    }
}

impl ClusterConfig {
    /// Whether this node joins a cluster.
    pub fn enabled(&self) -> bool {
        self.redis.is_some()
    }

    /// Checks the settings; the error says which one is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.redis {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(format!(
                    "cluster.redis: {url:?} is not a redis:// or rediss:// URL"
                ));
            }
        }
        let prefix_ok = !self.key_prefix.is_empty()
            && self
                .key_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !prefix_ok {
            return Err("cluster.key_prefix must be letters, digits, - _ or .".into());
        }
        if self.heartbeat_ms == 0 || self.node_ttl_ms < 2 * self.heartbeat_ms {
            return Err(
                "cluster.heartbeat_ms must be above 0 and cluster.node_ttl_ms at least twice it"
                    .into(),
            );
        }
        if self.forward_timeout_ms == 0
            || self.redis_timeout_ms == 0
            || self.max_batch_records == 0
            || self.max_pending_records == 0
            || self.max_pending_bytes == 0
            || self.release_interval_ms == 0
            || self.token_ttl_ms == 0
            || self.snapshot_interval_ms == 0
        {
            return Err("cluster.forward_timeout_ms, redis_timeout_ms, max_batch_records, max_pending_records, max_pending_bytes, release_interval_ms, snapshot_interval_ms and token_ttl_ms must be greater than 0".into());
        }
        Ok(())
    }

    /// `redis_timeout_ms` as a duration.
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    /// `heartbeat_ms` as a duration.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    /// `node_ttl_ms` as a duration.
    pub fn node_ttl(&self) -> Duration {
        Duration::from_millis(self.node_ttl_ms)
    }

    /// `forward_timeout_ms` as a duration.
    pub fn forward_timeout(&self) -> Duration {
        Duration::from_millis(self.forward_timeout_ms)
    }

    /// `token_ttl_ms` as a duration.
    pub fn token_ttl(&self) -> Duration {
        Duration::from_millis(self.token_ttl_ms)
    }

    /// `snapshot_interval_ms` as a duration.
    pub fn snapshot_interval(&self) -> Duration {
        Duration::from_millis(self.snapshot_interval_ms)
    }

    /// `release_interval_ms` as a duration.
    pub fn release_interval(&self) -> Duration {
        Duration::from_millis(self.release_interval_ms)
    }
}
