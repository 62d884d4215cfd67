//! STUN load: many client sockets (distinct source ports), each keeping `window` Binding
//! requests in flight; a request unanswered after `timeout` counts as lost and is replaced.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::stats::quantile;

/// Parameters of one run.
#[derive(Clone, Debug)]
pub struct StunRun {
    pub server: SocketAddr,
    pub sockets: usize,
    pub window: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
}

/// What one run measured (over the measured window only).
#[derive(Debug, Clone)]
pub struct StunResult {
    pub answered_per_sec: f64,
    pub sent: u64,
    pub lost: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

struct Outcome {
    latencies: Vec<u64>,
    sent: u64,
    lost: u64,
}

pub async fn run(cfg: StunRun) -> Result<StunResult, String> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..cfg.sockets {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind: {e}"))?;
        socket
            .connect(cfg.server)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tasks.push(tokio::spawn(client(
            socket,
            index as u32,
            cfg.clone(),
            start,
        )));
    }
    let mut latencies = Vec::new();
    let (mut sent, mut lost) = (0, 0);
    for task in tasks {
        let outcome = task.await.map_err(|e| format!("client task: {e}"))?;
        latencies.extend(outcome.latencies);
        sent += outcome.sent;
        lost += outcome.lost;
    }
    latencies.sort_unstable();
    let pct = |p: f64| quantile(&latencies, p);
    Ok(StunResult {
        answered_per_sec: latencies.len() as f64 / cfg.duration.as_secs_f64(),
        sent,
        lost,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
    })
}

fn request(index: u32, seq: u64) -> [u8; 20] {
    let mut txid = [0u8; 12];
    txid[..4].copy_from_slice(&index.to_be_bytes());
    txid[4..].copy_from_slice(&seq.to_be_bytes());
    let mut out = [0u8; 20];
    out[0..2].copy_from_slice(&0x0001u16.to_be_bytes());
    out[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
    out[8..].copy_from_slice(&txid);
    out
}

async fn client(socket: UdpSocket, index: u32, cfg: StunRun, start: Instant) -> Outcome {
    let measure_from = start + cfg.warmup;
    let measure_to = measure_from + cfg.duration;
    let mut in_flight: HashMap<u64, Instant> = HashMap::new();
    let mut outcome = Outcome {
        latencies: Vec::new(),
        sent: 0,
        lost: 0,
    };
    let mut seq = 0u64;
    let mut buf = [0u8; 512];
    loop {
        let now = Instant::now();
        if now >= measure_to {
            return outcome;
        }
        // Expire and refill the window.
        in_flight.retain(|_, sent_at| {
            let expired = now.duration_since(*sent_at) > cfg.timeout;
            if expired && *sent_at >= measure_from && *sent_at < measure_to {
                outcome.lost += 1;
            }
            !expired
        });
        while in_flight.len() < cfg.window {
            seq += 1;
            if socket.send(&request(index, seq)).await.is_err() {
                break;
            }
            let sent_at = Instant::now();
            if sent_at >= measure_from {
                outcome.sent += 1;
            }
            in_flight.insert(seq, sent_at);
        }
        let deadline = tokio::time::Instant::from_std(measure_to.min(now + cfg.timeout));
        let Ok(Ok(len)) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await else {
            continue;
        };
        if len < 20 || buf[0..2] != [0x01, 0x01] {
            continue;
        }
        let got_seq = u64::from_be_bytes([
            buf[12], buf[13], buf[14], buf[15], buf[16], buf[17], buf[18], buf[19],
        ]);
        if let Some(sent_at) = in_flight.remove(&got_seq) {
            let received = Instant::now();
            if sent_at >= measure_from && received < measure_to {
                outcome
                    .latencies
                    .push(received.duration_since(sent_at).as_micros() as u64);
            }
        }
    }
}
