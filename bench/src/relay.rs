//! Relay throughput: R rooms of K peers; every peer sends to the rest of its room with at most
//! `window` messages in flight, for a fixed time. Counts deliveries and their latency.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::connect::{open, source_ip};
use crate::stats::quantile;
use crate::wire::{self, Flavor, Probe};

/// How peers address the rest of the room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Fanout {
    /// One message per recipient, by id (the only way matchbox_server offers).
    Direct,
    /// One message to the room; the server fans out (Switchboard only).
    Room,
}

/// Parameters of one run.
#[derive(Clone, Debug)]
pub struct RelayRun {
    /// The server, or the nodes of a cluster: the k-th peer of a room connects to the
    /// (k mod n)-th.
    pub servers: Vec<SocketAddr>,
    pub flavor: Flavor,
    pub fanout: Fanout,
    pub rooms: usize,
    pub peers: usize,
    pub window: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct RelayResult {
    pub delivered_per_sec: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    /// The mean latency: with a fixed number of messages in flight, it is that number over the
    /// throughput (Little's law), whatever the shape of the distribution.
    pub mean_us: u64,
    pub delivered: u64,
}

/// Per sender: permits for messages in flight, and how many recipients got each one.
struct Sender {
    permits: Semaphore,
    receipts: Vec<AtomicU32>,
}

pub async fn run(cfg: RelayRun) -> Result<RelayResult, String> {
    let peers = cfg.rooms * cfg.peers;
    let mut sockets = Vec::with_capacity(peers);
    let mut ids = Vec::with_capacity(peers);
    for i in 0..peers {
        let room = format!("bench{}", i / cfg.peers);
        let mut ws = open(
            cfg.servers[(i % cfg.peers) % cfg.servers.len()],
            source_ip(i, 8),
            &wire::room_path(cfg.flavor, &room),
        )
        .await?;
        let id = loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if let Some(id) = wire::assigned_id(cfg.flavor, &t) {
                        break id;
                    }
                }
                Some(Ok(_)) => continue,
                other => return Err(format!("no id assigned: {other:?}")),
            }
        };
        sockets.push(ws);
        ids.push(id);
    }
    let senders: Arc<Vec<Sender>> = Arc::new(
        (0..peers)
            .map(|_| Sender {
                permits: Semaphore::new(cfg.window),
                receipts: (0..cfg.window).map(|_| AtomicU32::new(0)).collect(),
            })
            .collect(),
    );
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let measure_from = cfg.warmup;
    let measure_to = cfg.warmup + cfg.duration;
    let mut tasks = Vec::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        let room_base = i / cfg.peers * cfg.peers;
        let others: Vec<String> = (room_base..room_base + cfg.peers)
            .filter(|j| *j != i)
            .map(|j| ids[j].clone())
            .collect();
        let (mut sink, mut stream) = ws.split();
        let senders_for_send = senders.clone();
        let stop_send = stop.clone();
        let cfg2 = cfg.clone();
        let send_task = tokio::spawn(async move {
            let me = &senders_for_send[i];
            let mut n: u64 = 0;
            while !stop_send.load(Ordering::Relaxed) {
                let Ok(permit) = me.permits.acquire().await else {
                    break;
                };
                permit.forget();
                me.receipts[(n % cfg2.window as u64) as usize].store(0, Ordering::Relaxed);
                let probe = Probe {
                    s: i as u32,
                    n,
                    t: start.elapsed().as_micros() as u64,
                };
                let result = match cfg2.fanout {
                    Fanout::Room => sink.send(Message::Text(wire::to_room(probe).into())).await,
                    Fanout::Direct => {
                        let mut r = Ok(());
                        for peer in &others {
                            r = sink
                                .feed(Message::Text(
                                    wire::to_peer(cfg2.flavor, peer, probe).into(),
                                ))
                                .await;
                            if r.is_err() {
                                break;
                            }
                        }
                        if r.is_ok() {
                            sink.flush().await
                        } else {
                            r
                        }
                    }
                };
                if result.is_err() {
                    break;
                }
                n += 1;
            }
        });
        let senders_for_recv = senders.clone();
        let recipients = (cfg.peers - 1) as u32;
        let flavor = cfg.flavor;
        let recv_task = tokio::spawn(async move {
            let mut latencies = Vec::new();
            let deadline = tokio::time::Instant::from_std(start + measure_to);
            while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, stream.next()).await
            {
                let Message::Text(text) = message else {
                    continue;
                };
                let Some(probe) = wire::probe(flavor, &text) else {
                    continue;
                };
                let now = start.elapsed();
                if now >= measure_from && now < measure_to {
                    latencies.push((now.as_micros() as u64).saturating_sub(probe.t));
                }
                let sender = &senders_for_recv[probe.s as usize];
                let slot = &sender.receipts[(probe.n % sender.receipts.len() as u64) as usize];
                if slot.fetch_add(1, Ordering::Relaxed) + 1 == recipients {
                    sender.permits.add_permits(1);
                }
                if now >= measure_to {
                    break;
                }
            }
            latencies
        });
        tasks.push((send_task, recv_task));
    }
    let mut latencies = Vec::new();
    let mut senders_done = Vec::new();
    for (send_task, recv_task) in tasks {
        if let Ok(mut l) = recv_task.await {
            latencies.append(&mut l);
        }
        senders_done.push(send_task);
    }
    stop.store(true, Ordering::Relaxed);
    for sender in senders.iter() {
        sender.permits.close();
    }
    for send_task in senders_done {
        send_task.abort();
    }
    latencies.sort_unstable();
    let delivered = latencies.len() as u64;
    let pct = |p: f64| quantile(&latencies, p);
    let mean_us = latencies.iter().sum::<u64>() / delivered.max(1);
    Ok(RelayResult {
        delivered_per_sec: delivered as f64 / cfg.duration.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        mean_us,
        delivered,
    })
}
