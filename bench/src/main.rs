//! `switchboard-bench`: load generator for the signaling benchmarks. It speaks Switchboard's
//! protocol and matchbox_server's, so both run the same workload in one session.
//! `bench/signaling.sh` starts the servers and calls this; see `bench/README.md`.

mod clients;
mod connect;
mod connects;
mod idle;
mod peer;
mod relay;
mod stats;
mod stun;
mod wire;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Load generator for Switchboard's signaling benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Relay throughput and latency; prints one line of JSON.
    Relay {
        /// The server, or the nodes of a cluster (comma-separated): the k-th peer of each room
        /// connects to the (k mod n)-th, so every room is split across them.
        #[arg(long, value_delimiter = ',', required = true)]
        server: Vec<SocketAddr>,
        #[arg(long, value_enum)]
        flavor: wire::Flavor,
        #[arg(long, value_enum, default_value = "direct")]
        fanout: relay::Fanout,
        #[arg(long, default_value_t = 50)]
        rooms: usize,
        #[arg(long, default_value_t = 8)]
        peers: usize,
        #[arg(long, default_value_t = 8)]
        window: usize,
        #[arg(long, default_value_t = 2)]
        warmup_secs: u64,
        #[arg(long, default_value_t = 10)]
        secs: u64,
    },
    /// STUN Binding requests answered per second; prints one line of JSON.
    Stun {
        #[arg(long)]
        server: SocketAddr,
        #[arg(long, default_value_t = 64)]
        sockets: usize,
        #[arg(long, default_value_t = 4)]
        window: usize,
        #[arg(long, default_value_t = 2)]
        warmup_secs: u64,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        #[arg(long, default_value_t = 250)]
        timeout_ms: u64,
    },
    /// Server peer load: N WebRTC connections through POST /connect, then echo traffic; prints
    /// one line of JSON.
    Peer {
        /// The server peer's HTTP address (its POST /connect).
        #[arg(long)]
        http: SocketAddr,
        #[arg(long)]
        server_pid: u32,
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Connections being set up at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds of each traffic phase.
        #[arg(long, default_value_t = 8)]
        secs: u64,
        /// Messages per second each connection sends while pumping.
        #[arg(long, default_value_t = 10)]
        rate: u32,
        /// Messages per second each connection sends in the last phase (64 B unreliable), to
        /// overload the server and see what it can echo.
        #[arg(long, default_value_t = 100)]
        flood_rate: u32,
        /// Game row instead of the echo phases: the server (started with ECHO_SNAPSHOT_HZ)
        /// broadcasts this many snapshots a second; each connection sends `rate` inputs a second.
        #[arg(long, default_value_t = 0)]
        snapshot_hz: u32,
    },
    /// Connect rate: joins welcomed per second and connect time; prints one line of JSON.
    Connects {
        /// The server, or the nodes of a cluster (comma-separated): join i goes to the
        /// (i mod n)-th.
        #[arg(long, value_delimiter = ',', required = true)]
        server: Vec<SocketAddr>,
        #[arg(long, default_value_t = 5000)]
        count: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 32)]
        sources: usize,
        /// Query appended to each join, e.g. `token=<jwt>`.
        #[arg(long, default_value = "")]
        query: String,
    },
    /// Two native clients on loopback (Switchboard's or matchbox_socket): connect time, memory
    /// per connected client, unreliable 64 B and reliable 1 KiB throughput; one line of JSON.
    Clients {
        #[arg(long, value_enum)]
        stack: clients::Stack,
        /// `ws://host:port` of `switchboard serve` or matchbox_server.
        #[arg(long)]
        server: String,
        /// `host:port` of the STUN server both stacks use.
        #[arg(long)]
        stun: String,
        #[arg(long, default_value_t = 10)]
        pairs: usize,
        #[arg(long, default_value_t = 3)]
        secs: u64,
        #[arg(long, default_value_t = 50_000)]
        rate: u32,
        #[arg(long, default_value_t = 16 * 1024 * 1024)]
        reliable_bytes: usize,
    },
    /// Memory per idle connection; prints one line of JSON per step.
    Idle {
        #[arg(long)]
        server: SocketAddr,
        #[arg(long)]
        server_pid: u32,
        #[arg(long, value_enum)]
        flavor: wire::Flavor,
        /// Connection counts to measure at, ascending, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10000")]
        counts: Vec<usize>,
        #[arg(long, default_value_t = 4)]
        per_room: usize,
        /// Number of 127.0.0.x source addresses to spread connections over.
        #[arg(long, default_value_t = 32)]
        sources: usize,
        /// Switchboard only: each peer detaches after joining (close-after-connect), so the
        /// server keeps a room member without a connection.
        #[arg(long)]
        detach: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Relay { server, flavor, fanout, rooms, peers, window, warmup_secs, secs } => {
                let cfg = relay::RelayRun {
                    servers: server,
                    flavor,
                    fanout,
                    rooms,
                    peers,
                    window,
                    warmup: Duration::from_secs(warmup_secs),
                    duration: Duration::from_secs(secs),
                };
                let r = relay::run(cfg).await?;
                println!(
                    r#"{{"delivered_per_sec":{:.0},"p50_us":{},"p99_us":{},"mean_us":{},"delivered":{}}}"#,
                    r.delivered_per_sec, r.p50_us, r.p99_us, r.mean_us, r.delivered
                );
                Ok(())
            }
            Command::Stun { server, sockets, window, warmup_secs, secs, timeout_ms } => {
                let r = stun::run(stun::StunRun {
                    server,
                    sockets,
                    window,
                    warmup: Duration::from_secs(warmup_secs),
                    duration: Duration::from_secs(secs),
                    timeout: Duration::from_millis(timeout_ms),
                })
                .await?;
                println!(
                    r#"{{"answered_per_sec":{:.0},"sent":{},"lost":{},"p50_us":{},"p99_us":{}}}"#,
                    r.answered_per_sec, r.sent, r.lost, r.p50_us, r.p99_us
                );
                Ok(())
            }
            Command::Peer { http, server_pid, count, concurrency, secs, rate, flood_rate, snapshot_hz } => {
                let line = peer::run(peer::PeerRun { http, server_pid, count, concurrency, secs, rate, flood_rate, snapshot_hz }).await?;
                println!("{line}");
                Ok(())
            }
            Command::Connects { server, count, concurrency, sources, query } => {
                let servers = server;
                let r = connects::run(connects::ConnectsRun { servers, count, concurrency, sources, query }).await?;
                println!(
                    r#"{{"connects_per_sec":{:.0},"p50_us":{},"p99_us":{},"failed":{}}}"#,
                    r.per_sec, r.p50_us, r.p99_us, r.failed
                );
                Ok(())
            }
            Command::Clients { stack, server, stun, pairs, secs, rate, reliable_bytes } => {
                let run = clients::ClientsRun { stack, server, stun, pairs, secs, rate, reliable_bytes };
                println!("{}", clients::run(run).await?);
                Ok(())
            }
            Command::Idle { server, server_pid, flavor, counts, per_room, sources, detach } => {
                let shape = idle::Shape { per_room, sources, detach };
                let (base, points) = idle::run(server, server_pid, flavor, &counts, shape).await?;
                for p in points {
                    println!(
                        r#"{{"base_kib":{base},"connections":{},"rss_kib":{},"per_connection_bytes":{:.0}}}"#,
                        p.connections, p.rss_kib, p.per_connection_bytes
                    );
                }
                Ok::<(), String>(())
            }
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
