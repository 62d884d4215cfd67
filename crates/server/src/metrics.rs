//! Prometheus metrics, all named `switchboard_*`, rendered at `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use switchboard_protocol::ErrorCode;

use crate::stun::StunCounters;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// The server's metrics. One registry per server, so several servers in one process (tests)
/// do not mix their numbers.
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections that joined a room.
    pub connections: Gauge,
    /// Rooms with at least one peer.
    pub rooms: Gauge,
    /// Connections accepted since start.
    pub connections_accepted: Counter,
    /// Messages received from peers.
    pub messages_received: Counter,
    /// Messages queued for peers (one per recipient).
    pub messages_relayed: Counter,
    errors: Family<CodeLabel, Counter>,
    auth_refusals: Family<ReasonLabel, Counter>,
    joins: Family<ProtocolLabel, Counter>,
    pushes: Family<OutcomeLabel, Counter>,
    /// The STUN server's counters.
    pub stun: StunCounters,
}

impl Metrics {
    /// Fresh metrics, all zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let metrics = Self {
            connections: Gauge::default(),
            rooms: Gauge::default(),
            connections_accepted: Counter::default(),
            messages_received: Counter::default(),
            messages_relayed: Counter::default(),
            errors: Family::default(),
            auth_refusals: Family::default(),
            joins: Family::default(),
            pushes: Family::default(),
            stun: StunCounters::default(),
            registry: Registry::default(),
        };
        let gauges = [
            (
                "connections",
                "Open WebSocket connections in a room",
                &metrics.connections,
            ),
            ("rooms", "Rooms with at least one peer", &metrics.rooms),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        let stun = &metrics.stun;
        let counters = [
            (
                "connections_accepted",
                "WebSocket connections accepted",
                &metrics.connections_accepted,
            ),
            (
                "messages_received",
                "Messages received from peers",
                &metrics.messages_received,
            ),
            (
                "messages_relayed",
                "Messages queued for delivery, one per recipient",
                &metrics.messages_relayed,
            ),
            (
                "stun_answered",
                "STUN Binding success responses sent",
                &stun.answered,
            ),
            (
                "stun_errors",
                "STUN error responses sent (400, 420)",
                &stun.errors,
            ),
            (
                "stun_dropped_not_stun",
                "UDP datagrams on the STUN port that were not STUN",
                &stun.not_stun,
            ),
            (
                "stun_dropped_malformed",
                "STUN messages dropped for bad attributes or FINGERPRINT",
                &stun.malformed,
            ),
            (
                "stun_dropped_not_request",
                "STUN indications and responses dropped",
                &stun.not_request,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "errors",
            "Errors sent to peers, by code",
            metrics.errors.clone(),
        );
        registry.register(
            "joins",
            "Connections that joined or resumed, by protocol (switchboard, matchbox, peerjs, rustysignal)",
            metrics.joins.clone(),
        );
        registry.register(
            "pushes",
            "Web Push connection requests, by outcome (sent, gone, failed, not_subscribed, throttled)",
            metrics.pushes.clone(),
        );
        registry.register(
            "auth_refusals",
            "Connections refused before the upgrade by auth, by reason",
            metrics.auth_refusals.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// Counts one error of this code.
    pub fn error(&self, code: ErrorCode) {
        self.errors
            .get_or_create(&CodeLabel {
                code: code.as_str(),
            })
            .inc();
    }

    /// Counts one connection that joined (or resumed), speaking `protocol`.
    pub fn joined(&self, protocol: &'static str) {
        self.joins.get_or_create(&ProtocolLabel { protocol }).inc();
    }

    /// Counts one connection refused by auth, for this reason (`token_expired`, `forbidden`...).
    pub fn auth_refused(&self, reason: &'static str) {
        self.auth_refusals
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// The Web Push outcome counters (shared: a clone counts into these metrics).
    pub fn pushes(&self) -> PushOutcomes {
        PushOutcomes(self.pushes.clone())
    }

    /// Registers the cluster series (cluster mode only) and returns them.
    pub fn register_cluster(&mut self) -> ClusterMetrics {
        let cluster = ClusterMetrics::default();
        let registry = &mut self.registry;
        registry.register(
            "cluster_nodes",
            "Nodes of the cluster alive at the last look, this one included",
            cluster.nodes.clone(),
        );
        registry.register(
            "cluster_rooms_owned",
            "Rooms and match keys this node owns",
            cluster.owned.clone(),
        );
        registry.register(
            "cluster_records_sent",
            "Records published to other nodes",
            cluster.sent.clone(),
        );
        registry.register(
            "cluster_batches_sent",
            "Pub/sub messages published to other nodes",
            cluster.batches.clone(),
        );
        registry.register(
            "cluster_records_received",
            "Records received from other nodes",
            cluster.received.clone(),
        );
        registry.register(
            "cluster_dropped",
            "Records dropped, by reason (queue_full, publish_failed, bad_batch, forged, stale)",
            cluster.dropped.clone(),
        );
        registry.register(
            "cluster_redis_errors",
            "Redis commands that failed, by operation",
            cluster.redis_errors.clone(),
        );
        registry.register(
            "cluster_redis_latency_seconds",
            "Time of Redis round trips (heartbeats, claims, publishes)",
            cluster.redis_latency.clone(),
        );
        cluster
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Counts Web Push connection requests by outcome.
#[derive(Clone, Debug)]
pub struct PushOutcomes(Family<OutcomeLabel, Counter>);

impl PushOutcomes {
    /// Counts one request with this outcome.
    pub fn count(&self, outcome: &'static str) {
        self.0.get_or_create(&OutcomeLabel { outcome }).inc();
    }
}

/// The cluster's series (`switchboard_cluster_*`); a clone counts into the same series.
#[derive(Clone, Debug)]
pub struct ClusterMetrics {
    /// Nodes alive at the last look.
    pub nodes: Gauge,
    /// Keys this node owns.
    pub owned: Gauge,
    sent: Counter,
    batches: Counter,
    /// Records received from other nodes.
    pub received: Counter,
    dropped: Family<ReasonLabel, Counter>,
    redis_errors: Family<OperationLabel, Counter>,
    redis_latency: Histogram,
}

impl Default for ClusterMetrics {
    fn default() -> Self {
        Self {
            nodes: Gauge::default(),
            owned: Gauge::default(),
            sent: Counter::default(),
            batches: Counter::default(),
            received: Counter::default(),
            dropped: Family::default(),
            redis_errors: Family::default(),
            // 50 us to about 1.6 s.
            redis_latency: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
        }
    }
}

impl ClusterMetrics {
    /// Counts `records` records published in `batches` pub/sub messages.
    pub fn published(&self, batches: u64, records: u64) {
        self.batches.inc_by(batches);
        self.sent.inc_by(records);
    }

    /// Counts `n` records dropped for this reason.
    pub fn dropped(&self, reason: &'static str, n: u64) {
        self.dropped
            .get_or_create(&ReasonLabel { reason })
            .inc_by(n);
    }

    /// Counts one failed Redis operation.
    pub fn redis_error(&self, operation: &'static str) {
        self.redis_errors
            .get_or_create(&OperationLabel { operation })
            .inc();
    }

    /// Records one Redis round trip's time.
    pub fn latency(&self, took: std::time::Duration) {
        self.redis_latency.observe(took.as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
