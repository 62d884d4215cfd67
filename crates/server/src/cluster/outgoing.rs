//! Records waiting for other nodes: queued without blocking (under the relay lock), published
//! by one task in batches, one pub/sub message per node and batch, in the order queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::config::ClusterConfig;
use super::envelope::{Batch, NodeId, Record};
use super::store::Broker;
use crate::metrics::ClusterMetrics;

/// The records queued for each node.
pub struct Outgoing {
    node: NodeId,
    queued: Mutex<Queued>,
    wake: Notify,
    max_pending: usize,
    max_pending_bytes: usize,
    max_batch: usize,
    metrics: ClusterMetrics,
}

#[derive(Default)]
struct Queued {
    by_node: HashMap<NodeId, Vec<Record>>,
    count: usize,
    /// About how many bytes the queued records hold (`Record::weight`).
    bytes: usize,
    /// A publish of what was taken is under way.
    publishing: bool,
}

impl Outgoing {
    /// An empty queue for records from `node`, bounded as `config` says.
    pub fn new(node: NodeId, config: &ClusterConfig, metrics: ClusterMetrics) -> Self {
        Self {
            node,
            queued: Mutex::new(Queued::default()),
            wake: Notify::new(),
            max_pending: config.max_pending_records,
            max_pending_bytes: config.max_pending_bytes,
            max_batch: config.max_batch_records,
            metrics,
        }
    }

    /// Queues a record for `to`. Past `max_pending_records` or `max_pending_bytes` it is
    /// dropped and counted.
    pub fn push(&self, to: NodeId, record: Record) {
        let weight = record.weight();
        let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        if queued.count >= self.max_pending || queued.bytes + weight > self.max_pending_bytes {
            drop(queued);
            self.metrics.dropped("queue_full", 1);
            return;
        }
        queued.count += 1;
        queued.bytes += weight;
        let was_empty = queued.count == 1;
        queued.by_node.entry(to).or_default().push(record);
        drop(queued);
        if was_empty {
            self.wake.notify_one();
        }
    }

    /// Waits until every queued record has been published (or `at_most` has passed).
    pub async fn flushed(&self, at_most: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + at_most;
        loop {
            let idle = {
                let queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
                queued.count == 0 && !queued.publishing
            };
            if idle || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    fn take(&self) -> HashMap<NodeId, Vec<Record>> {
        let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        queued.count = 0;
        queued.bytes = 0;
        queued.publishing = true;
        std::mem::take(&mut queued.by_node)
    }

    fn published_all(&self) {
        self.queued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .publishing = false;
    }

    /// Publishes what is queued until shutdown: whatever queued up while one publish was under
    /// way goes out together in the next.
    pub async fn run(self: Arc<Self>, broker: Arc<dyn Broker>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                () = shutdown.cancelled() => return,
            }
            let queued = self.take();
            let mut messages = Vec::new();
            let mut records = 0;
            for (to, list) in queued {
                records += list.len();
                let mut list = list.into_iter().peekable();
                while list.peek().is_some() {
                    let batch = Batch {
                        from: self.node,
                        records: list.by_ref().take(self.max_batch).collect(),
                    };
                    messages.push((to, batch.encode()));
                }
            }
            if messages.is_empty() {
                self.published_all();
                continue;
            }
            let batches = messages.len() as u64;
            let started = std::time::Instant::now();
            match broker.publish(messages).await {
                Ok(()) => {
                    self.metrics.published(batches, records as u64);
                    self.metrics.latency(started.elapsed());
                }
                Err(error) => {
                    tracing::warn!(%error, records, "cluster: records to other nodes are lost");
                    self.metrics.redis_error("publish");
                    self.metrics.dropped("publish_failed", records as u64);
                }
            }
            self.published_all();
        }
    }
}
