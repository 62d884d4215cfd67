//! The server peer's counters, rendered in the Prometheus text format by [`Stats::render`]
//! (an application serves them at its `/metrics`; the echo example does).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counters of one server peer, all named `switchboard_peer_*`. Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Unreliable frames dropped because the peer's transport had no room for them.
    pub unreliable_dropped: Counter,
    /// Peers closed because their reliable send queue overflowed (`send_queue_full`).
    pub send_queue_full: Counter,
    /// Reliable bytes queued behind full transports, over every peer.
    pub queued_bytes: Gauge,
    /// `POST /connect` and `/connect/ws` requests refused for a missing or bad token.
    pub auth_refused: Counter,
    /// ICE checks that reached a shard other than their peer's and were sent on to it.
    pub checks_passed_on: Counter,
    /// Peers handed from the shard that made them to the shard their browser's datagrams reach.
    pub peers_moved: Counter,
    /// Datagrams the kernel did not take (a full socket buffer): dropped, as UDP would.
    pub send_dropped: Counter,
}

impl Stats {
    /// Every counter, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("switchboard_peer");
        registry.register(
            "unreliable_dropped",
            "Unreliable frames dropped because the peer's transport was full",
            self.unreliable_dropped.clone(),
        );
        registry.register(
            "send_queue_full",
            "Peers closed because their reliable send queue overflowed",
            self.send_queue_full.clone(),
        );
        registry.register(
            "checks_passed_on",
            "ICE checks that reached another shard than their peer's and were passed on",
            self.checks_passed_on.clone(),
        );
        registry.register(
            "peers_moved",
            "Peers handed to the shard their browser's datagrams reach",
            self.peers_moved.clone(),
        );
        registry.register(
            "send_dropped",
            "Datagrams the kernel did not take (full socket buffer)",
            self.send_dropped.clone(),
        );
        registry.register(
            "queued_bytes",
            "Reliable bytes waiting for room in the peers' transports",
            self.queued_bytes.clone(),
        );
        registry.register(
            "auth_refused",
            "Connect requests refused for a missing or bad token",
            self.auth_refused.clone(),
        );
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_counter() {
        let stats = Stats::default();
        stats.unreliable_dropped.inc_by(3);
        stats.queued_bytes.set(42);
        let text = stats.render();
        assert!(
            text.contains("switchboard_peer_unreliable_dropped_total 3"),
            "{text}"
        );
        assert!(
            text.contains("switchboard_peer_send_queue_full_total 0"),
            "{text}"
        );
        assert!(text.contains("switchboard_peer_queued_bytes 42"), "{text}");
    }
}
