//! Server peer load: N native WebRTC connections (str0m; one UDP socket and one task each) to a
//! server peer through `POST /connect`, then echo traffic on the unreliable or reliable channel.
//! Reports connect times, connections per second, echoed messages and bytes per second, and the
//! server's memory and CPU (from /proc).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};

use crate::idle::rss_kib;
use crate::stats::quantile;

/// What to run.
pub struct PeerRun {
    pub http: SocketAddr,
    pub server_pid: u32,
    pub count: usize,
    pub concurrency: usize,
    pub secs: u64,
    /// Messages per second each connection sends while pumping.
    pub rate: u32,
    /// Messages per second each connection sends in the flood phase.
    pub flood_rate: u32,
    /// Game row instead of the echo phases: the server broadcasts this many snapshots a second
    /// (started with `ECHO_SNAPSHOT_HZ`); each client sends `rate` 64-byte inputs a second.
    pub snapshot_hz: u32,
}

/// The tag byte of the game's inputs, and of the server's snapshots.
const INPUT_TAG: u8 = 0xAA;
const SNAPSHOT_TAG: u8 = 0xEE;

/// Traffic phases the connections follow.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Idle,
    Pump {
        /// Marks this phase's messages (their second byte), so late echoes of an earlier phase
        /// are not counted.
        tag: u8,
        reliable: bool,
        size: usize,
        rate: u32,
    },
    Stop,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    echoed: AtomicU64,
    bytes: AtomicU64,
    /// Game snapshots received, and the most inputs any snapshot said the server had.
    snapshots: AtomicU64,
    server_inputs: AtomicU64,
}

pub async fn run(cfg: PeerRun) -> Result<String, String> {
    let base_rss = rss_kib(cfg.server_pid)?;
    let cpu0 = cpu_seconds(cfg.server_pid)?;
    let (phase_tx, phase_rx) = watch::channel(Phase::Idle);
    let counters = Arc::new(Counters::default());
    let limit = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let started = Instant::now();
    let mut joins = Vec::new();
    for _ in 0..cfg.count {
        let permit = limit
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (phase, counters, http) = (phase_rx.clone(), counters.clone(), cfg.http);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let result = connect(http).await;
            drop(permit);
            match result {
                Ok((client, took)) => {
                    let _ = done_tx.send(Ok(took));
                    client.serve(phase, counters).await;
                }
                Err(error) => {
                    let _ = done_tx.send(Err(error));
                }
            }
        });
        joins.push(done_rx);
    }
    let mut connect_us: Vec<u64> = Vec::new();
    let mut failures = 0;
    for join in joins {
        match join.await {
            Ok(Ok(took)) => connect_us.push(took.as_micros() as u64),
            _ => failures += 1,
        }
    }
    let connect_wall = started.elapsed().as_secs_f64();
    let cpu_connect = cpu_seconds(cfg.server_pid)? - cpu0;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = rss_kib(cfg.server_pid)?;
    let connected = connect_us.len();
    connect_us.sort_unstable();
    let ms = |p: f64| quantile(&connect_us, p) as f64 / 1000.0;
    let mut results = vec![
        format!(
            r#""connected":{connected},"failed":{failures},"connect_wall_s":{connect_wall:.2}"#
        ),
        format!(
            r#""connections_per_s":{:.1}"#,
            connected as f64 / connect_wall
        ),
        format!(
            r#""connect_p50_ms":{:.1},"connect_p99_ms":{:.1}"#,
            ms(0.5),
            ms(0.99)
        ),
        format!(r#""server_cpu_connect_s":{cpu_connect:.2}"#),
        format!(r#""base_rss_kib":{base_rss},"idle_rss_kib":{idle_rss}"#),
        format!(
            r#""idle_bytes_per_peer":{:.0}"#,
            (idle_rss.saturating_sub(base_rss) * 1024) as f64 / connected.max(1) as f64
        ),
    ];
    if cfg.snapshot_hz > 0 {
        results.push(game_phase(&cfg, &phase_tx, &counters, base_rss, connected).await?);
        let _ = phase_tx.send(Phase::Stop);
        return Ok(format!("{{{}}}", results.join(",")));
    }
    let phases = [
        ("unreliable64", false, 64usize, cfg.rate),
        ("reliable1k", true, 1024, cfg.rate),
        ("flood64", false, 64, cfg.flood_rate),
    ];
    for (tag, (name, reliable, size, rate)) in (1u8..).zip(phases) {
        counters.sent.store(0, Ordering::Relaxed);
        counters.echoed.store(0, Ordering::Relaxed);
        counters.bytes.store(0, Ordering::Relaxed);
        let cpu = cpu_seconds(cfg.server_pid)?;
        let _ = phase_tx.send(Phase::Pump {
            tag,
            reliable,
            size,
            rate,
        });
        let window = Instant::now();
        tokio::time::sleep(Duration::from_secs(cfg.secs)).await;
        let secs = window.elapsed().as_secs_f64();
        let (sent, echoed, bytes) = (
            counters.sent.load(Ordering::Relaxed),
            counters.echoed.load(Ordering::Relaxed),
            counters.bytes.load(Ordering::Relaxed),
        );
        let busy_rss = rss_kib(cfg.server_pid)?;
        let cpu = cpu_seconds(cfg.server_pid)? - cpu;
        let _ = phase_tx.send(Phase::Idle);
        results.push(format!(
            r#""{name}_offered_per_s":{:.0},"{name}_echoed_per_s":{:.0},"{name}_bytes_per_s":{:.0},"{name}_server_cpu_s":{cpu:.2},"{name}_busy_bytes_per_peer":{:.0}"#,
            sent as f64 / secs,
            echoed as f64 / secs,
            bytes as f64 / secs,
            (busy_rss.saturating_sub(base_rss) * 1024) as f64 / connected.max(1) as f64
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let _ = phase_tx.send(Phase::Stop);
    Ok(format!("{{{}}}", results.join(",")))
}

/// The game row: every client sends `rate` unreliable 64-byte inputs a second while the server
/// broadcasts `snapshot_hz` snapshots; inputs delivered (from the server's own count, carried in
/// its snapshots) and snapshots received, with their loss.
async fn game_phase(
    cfg: &PeerRun,
    phase_tx: &watch::Sender<Phase>,
    counters: &Counters,
    base_rss: u64,
    connected: usize,
) -> Result<String, String> {
    counters.sent.store(0, Ordering::Relaxed);
    counters.snapshots.store(0, Ordering::Relaxed);
    let inputs_before = counters.server_inputs.load(Ordering::Relaxed);
    let cpu = cpu_seconds(cfg.server_pid)?;
    let _ = phase_tx.send(Phase::Pump {
        tag: INPUT_TAG,
        reliable: false,
        size: 64,
        rate: cfg.rate,
    });
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(cfg.secs)).await;
    let _ = phase_tx.send(Phase::Idle);
    let secs = window.elapsed().as_secs_f64();
    let sent = counters.sent.load(Ordering::Relaxed) as f64 / secs;
    let snapshots = counters.snapshots.load(Ordering::Relaxed) as f64 / secs;
    let busy_rss = rss_kib(cfg.server_pid)?;
    let cpu = cpu_seconds(cfg.server_pid)? - cpu;
    // Inputs still in flight when the window closed are counted by the next snapshots.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = counters
        .server_inputs
        .load(Ordering::Relaxed)
        .saturating_sub(inputs_before) as f64
        / secs;
    let expected = f64::from(cfg.snapshot_hz) * connected as f64;
    let loss = |got: f64, wanted: f64| {
        if wanted > 0.0 {
            (1.0 - got / wanted).max(0.0)
        } else {
            0.0
        }
    };
    Ok(format!(
        r#""game_inputs_sent_per_s":{sent:.0},"game_inputs_delivered_per_s":{delivered:.0},"game_inputs_loss":{:.4},"game_snapshots_expected_per_s":{expected:.0},"game_snapshots_received_per_s":{snapshots:.0},"game_snapshots_loss":{:.4},"game_server_cpu_s":{cpu:.2},"game_busy_bytes_per_peer":{:.0}"#,
        loss(delivered, sent),
        loss(snapshots, expected),
        (busy_rss.saturating_sub(base_rss) * 1024) as f64 / connected.max(1) as f64
    ))
}

fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((ticks(11) + ticks(12)) / 100.0)
}

struct Client {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    reliable: ChannelId,
    unreliable: ChannelId,
}

fn channel(label: &str, id: u16, reliable: bool) -> ChannelConfig {
    ChannelConfig {
        label: label.into(),
        ordered: reliable,
        reliability: if reliable {
            Reliability::Reliable
        } else {
            Reliability::MaxRetransmits { retransmits: 0 }
        },
        negotiated: Some(id),
        protocol: String::new(),
    }
}

/// One DTLS certificate for every client connection: the load generator should not spend its
/// CPU making certificates while it measures the server.
static CLIENT_CERT: std::sync::OnceLock<Option<str0m::config::DtlsCert>> =
    std::sync::OnceLock::new();

/// Offer, `POST /connect`, answer, and run until both channels are open.
async fn connect(http: SocketAddr) -> Result<(Client, Duration), String> {
    let started = Instant::now();
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let cert = CLIENT_CERT.get_or_init(|| {
        str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
    });
    let mut config = Rtc::builder().clear_codecs().set_stats_interval(None);
    if let Some(cert) = cert {
        config = config.set_dtls_cert(cert.clone());
    }
    let mut rtc = config.build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").map_err(|e| e.to_string())?);
    let mut api = rtc.sdp_api();
    let reliable = api.add_channel_with_config(channel("reliable", 0, true));
    let unreliable = api.add_channel_with_config(channel("unreliable", 1, false));
    let (offer, pending) = api.apply().ok_or("no offer")?;
    let answer = post_offer(http, &offer.to_sdp_string()).await?;
    let answer = SdpAnswer::from_sdp_string(&answer).map_err(|e| e.to_string())?;
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .map_err(|e| e.to_string())?;
    let mut client = Client {
        rtc,
        socket,
        local,
        reliable,
        unreliable,
    };
    let mut open = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while open < 2 {
        if Instant::now() > deadline {
            return Err("channels did not open".into());
        }
        for event in client.step(deadline).await? {
            if matches!(event, Event::ChannelOpen(..)) {
                open += 1;
            }
        }
    }
    Ok((client, started.elapsed()))
}

async fn post_offer(http: SocketAddr, sdp: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(http).await.map_err(|e| e.to_string())?;
    let request = format!(
        "POST /connect HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{sdp}",
        sdp.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or("no body")?;
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
    value["sdp"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no sdp in {body}"))
}

impl Client {
    /// Drains the engine; returns its events at once if there are any, else waits for a
    /// datagram or its timeout (at most until `until`).
    async fn step(&mut self, until: Instant) -> Result<Vec<Event>, String> {
        let mut events = Vec::new();
        let timeout = loop {
            match self.rtc.poll_output().map_err(|e| e.to_string())? {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(e) => events.push(e),
            }
        };
        if !events.is_empty() {
            // Report what happened before waiting: an event held through the wait below would
            // reach the caller up to a whole timeout late (this made every connect look ~500 ms
            // long: both channels open, then a 500 ms wait for str0m's next timer).
            return Ok(events);
        }
        let mut buf = [0u8; 2048];
        tokio::select! {
            received = self.socket.recv_from(&mut buf) => {
                let (n, source) = received.map_err(|e| e.to_string())?;
                if let Ok(receive) = Receive::new(Protocol::Udp, source, self.local, &buf[..n]) {
                    self.rtc.handle_input(Input::Receive(Instant::now(), receive)).map_err(|e| e.to_string())?;
                }
            }
            () = tokio::time::sleep_until(timeout.min(until).into()) => {
                self.rtc.handle_input(Input::Timeout(Instant::now())).map_err(|e| e.to_string())?;
            }
        }
        Ok(events)
    }

    /// Keeps the connection alive; sends while pumping; counts what comes back.
    async fn serve(mut self, mut phase: watch::Receiver<Phase>, counters: Arc<Counters>) {
        let mut next_send = Instant::now();
        loop {
            let current = *phase.borrow_and_update();
            if let Phase::Stop = current {
                return;
            }
            if let Phase::Pump {
                tag,
                reliable,
                size,
                rate,
            } = current
            {
                if Instant::now() >= next_send {
                    next_send =
                        Instant::now() + Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
                    let mut frame = vec![7u8; size];
                    frame[0] = 0; // a whole binary message (docs/protocol.md, data channel framing)
                    frame[1] = tag;
                    let id = if reliable {
                        self.reliable
                    } else {
                        self.unreliable
                    };
                    if let Some(mut channel) = self.rtc.channel(id) {
                        if channel.write(true, &frame).is_ok() {
                            counters.sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            // Echoes count only if they carry the current phase's tag.
            let (until, tag) = match current {
                Phase::Pump { tag, .. } => (next_send, Some(tag)),
                _ => (Instant::now() + Duration::from_millis(500), None),
            };
            match self.step(until).await {
                Ok(events) => {
                    for event in events {
                        let Event::ChannelData(data) = event else {
                            continue;
                        };
                        if data.data.get(1) == Some(&SNAPSHOT_TAG) {
                            counters.snapshots.fetch_add(1, Ordering::Relaxed);
                            if let Some(count) = data.data.get(2..10) {
                                let mut bytes = [0u8; 8];
                                bytes.copy_from_slice(count);
                                counters
                                    .server_inputs
                                    .fetch_max(u64::from_be_bytes(bytes), Ordering::Relaxed);
                            }
                            continue;
                        }
                        if data.data.get(1).copied() == tag {
                            counters.echoed.fetch_add(1, Ordering::Relaxed);
                            counters
                                .bytes
                                .fetch_add(data.data.len() as u64, Ordering::Relaxed);
                        }
                    }
                }
                Err(_) => return,
            }
        }
    }
}
