//! Connect rate: many joins (TCP, WebSocket upgrade, `welcome`), `concurrency` at a time, each
//! closed once welcomed; with a query (an auth token) or without, so the two are compared.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::Semaphore;

use crate::connect::{open, source_ip};
use crate::stats::quantile;

/// One connect-rate run.
pub struct ConnectsRun {
    /// The hub, or the nodes of a cluster (join i goes to the (i mod n)-th).
    pub servers: Vec<SocketAddr>,
    /// Joins in all.
    pub count: usize,
    /// Joins in flight at once.
    pub concurrency: usize,
    /// 127.0.0.x source addresses to spread them over.
    pub sources: usize,
    /// Appended to `/ws/<room>?`, e.g. `token=...`.
    pub query: String,
}

/// What a run measured.
pub struct ConnectsResult {
    /// Joins welcomed per second over the run.
    pub per_sec: f64,
    /// Time from the TCP connect to `welcome`.
    pub p50_us: u64,
    /// Its 99th percentile.
    pub p99_us: u64,
    /// Joins that did not get a welcome.
    pub failed: usize,
}

/// Runs the joins and measures them.
pub async fn run(cfg: ConnectsRun) -> Result<ConnectsResult, String> {
    let gate = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(cfg.count);
    for i in 0..cfg.count {
        let permit = gate
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let path = format!("/ws/connects-{}?{}", i % 64, cfg.query);
        let server = cfg.servers[i % cfg.servers.len()];
        let source = source_ip(i, cfg.sources);
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let begun = Instant::now();
            let mut ws = open(server, source, &path).await.ok()?;
            // The first frame is the welcome (or an error, which counts as a failure).
            let first = ws.next().await?.ok()?;
            let welcomed = first.to_text().ok()?.contains("\"welcome\"");
            let elapsed = begun.elapsed().as_micros() as u64;
            let _ = ws.close(None).await;
            let _ = ws.flush().await;
            welcomed.then_some(elapsed)
        }));
    }
    let mut times = Vec::with_capacity(cfg.count);
    let mut failed = 0;
    for task in tasks {
        match task.await.map_err(|e| e.to_string())? {
            Some(us) => times.push(us),
            None => failed += 1,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    times.sort_unstable();
    Ok(ConnectsResult {
        per_sec: times.len() as f64 / secs,
        p50_us: quantile(&times, 0.50),
        p99_us: quantile(&times, 0.99),
        failed,
    })
}
