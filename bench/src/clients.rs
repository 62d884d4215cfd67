//! Native client benchmark: two Rust clients on loopback, on Switchboard's client
//! (`switchboard-client`, str0m) or on `matchbox_socket` 0.15 (webrtc-rs) through
//! matchbox_server, with the same workload in one process: connect time (join to channels open),
//! memory per connected client, unreliable 64 B messages delivered per second at a fixed offered
//! rate, and reliable 1 KiB goodput. Prints one line of JSON.

use std::time::{Duration, Instant};

use crate::stats::quantile;

/// Which client library.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Stack {
    /// `switchboard-client` against `switchboard serve`.
    Switchboard,
    /// `matchbox_socket` 0.15 against matchbox_server.
    Matchbox,
}

/// What to run.
pub struct ClientsRun {
    pub stack: Stack,
    /// `ws://host:port` of the signaling server.
    pub server: String,
    /// The STUN server both stacks use (`switchboard serve`'s).
    pub stun: String,
    /// Pairs connected (and kept) for the connect and memory rows.
    pub pairs: usize,
    /// Seconds of the unreliable phase.
    pub secs: u64,
    /// Unreliable messages offered per second.
    pub rate: u32,
    /// Bytes sent as 1 KiB reliable messages in the goodput phase.
    pub reliable_bytes: usize,
}

const PAYLOAD: usize = 64;
const CHUNK: usize = 1024;
const WAIT: Duration = Duration::from_secs(60);

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The measurements of one run.
#[derive(Default)]
struct Report {
    connect_ms: Vec<u64>,
    rss_per_client_kib: f64,
    unreliable_sent: u64,
    unreliable_received: u64,
    unreliable_secs: f64,
    reliable_secs: f64,
}

impl Report {
    fn json(mut self, reliable_bytes: usize) -> String {
        self.connect_ms.sort_unstable();
        format!(
            r#"{{"connect_p50_ms":{},"connect_p99_ms":{},"connects":{},"rss_per_client_kib":{:.1},"unreliable_sent":{},"unreliable_delivered_per_s":{:.0},"unreliable_loss":{:.4},"reliable_mib_per_s":{:.2}}}"#,
            quantile(&self.connect_ms, 0.5),
            quantile(&self.connect_ms, 0.99),
            self.connect_ms.len(),
            self.rss_per_client_kib,
            self.unreliable_sent,
            self.unreliable_received as f64 / self.unreliable_secs,
            1.0 - self.unreliable_received as f64 / self.unreliable_sent.max(1) as f64,
            reliable_bytes as f64 / (1024.0 * 1024.0) / self.reliable_secs,
        )
    }
}

/// Runs the workload on `run.stack`.
pub async fn run(run: ClientsRun) -> Result<String, String> {
    let bytes = run.reliable_bytes;
    let report = match run.stack {
        Stack::Switchboard => switchboard::run(&run).await?,
        Stack::Matchbox => matchbox::run(&run).await?,
    };
    Ok(report.json(bytes))
}

/// A room name no other run uses.
fn room_name(n: usize) -> String {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("bench-{nonce}-{n}")
}

/// When each of the unreliable phase's batches is due: `rate` a second in 1 ms batches.
fn batches(rate: u32, secs: u64) -> (u64, u64) {
    let per_ms = u64::from(rate).div_ceil(1000).max(1);
    (per_ms, secs * 1000)
}

mod switchboard {
    use super::*;
    use switchboard_client::{Event, JoinOptions, PeerId, Room};

    async fn connected(room: &mut Room) -> Result<PeerId, String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, room.next_event()).await {
                Ok(Some(Event::PeerConnected(peer))) => return Ok(peer.id),
                Ok(Some(Event::Closed { code, reason })) => {
                    return Err(format!("{code}: {reason}"))
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err("room ended".into()),
                Err(_) => return Err("no connection in time".into()),
            }
        }
    }

    async fn one(url: String) -> Result<(Room, PeerId, u64), String> {
        let start = Instant::now();
        let mut room = Room::join(&url, JoinOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let peer = connected(&mut room).await?;
        Ok((room, peer, start.elapsed().as_millis() as u64))
    }

    type Side = (Room, PeerId, u64);

    async fn pair(server: &str, n: usize) -> Result<(Side, Side), String> {
        let url = format!("{server}/ws/{}", room_name(n));
        let (a, b) = tokio::join!(one(url.clone()), one(url));
        Ok((a?, b?))
    }

    /// Takes every message event until `count` arrived on `channel` or `wait` passed.
    async fn count(room: &mut Room, channel: &str, count: u64, wait: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + wait;
        let mut got = 0;
        while got < count {
            match tokio::time::timeout_at(deadline, room.next_event()).await {
                Ok(Some(Event::Message { channel: c, .. })) if c == channel => got += 1,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        got
    }

    pub(super) async fn run(run: &ClientsRun) -> Result<Report, String> {
        let mut report = Report::default();
        drop(pair(&run.server, usize::MAX).await?);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = rss_kib();
        let mut pairs = Vec::new();
        for n in 0..run.pairs {
            let ((a, a_peer, a_ms), (b, b_peer, b_ms)) = pair(&run.server, n).await?;
            report.connect_ms.extend([a_ms, b_ms]);
            pairs.push(((a, a_peer), (b, b_peer)));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        report.rss_per_client_kib =
            (rss_kib().saturating_sub(before)) as f64 / (2 * run.pairs) as f64;
        let ((sender, to), (mut receiver, _)) = pairs.swap_remove(0);
        drop(pairs);

        // Unreliable: `rate` a second in 1 ms batches; the receiver counts what arrives.
        let (per_ms, ticks) = batches(run.rate, run.secs);
        let expected = per_ms * ticks;
        let bound = Duration::from_secs(ticks / 1000 + 1);
        let counting = tokio::spawn(async move {
            let got = count(&mut receiver, "unreliable", expected, bound).await;
            (receiver, got)
        });
        let start = Instant::now();
        let mut interval = tokio::time::interval(Duration::from_millis(1));
        let payload = vec![7u8; PAYLOAD];
        for _ in 0..ticks {
            interval.tick().await;
            for _ in 0..per_ms {
                if sender.send(to, "unreliable", payload.clone()).is_ok() {
                    report.unreliable_sent += 1;
                }
            }
        }
        report.unreliable_secs = start.elapsed().as_secs_f64();
        let (mut receiver, got) = counting.await.map_err(|e| e.to_string())?;
        report.unreliable_received = got;

        // Reliable: `reliable_bytes` in 1 KiB messages, all offered at once; time to the last.
        let messages = (run.reliable_bytes / CHUNK) as u64;
        let start = Instant::now();
        let counting =
            tokio::spawn(async move { count(&mut receiver, "reliable", messages, WAIT).await });
        let chunk = vec![9u8; CHUNK];
        for n in 0..messages {
            sender
                .send(to, "reliable", chunk.clone())
                .map_err(|e| e.to_string())?;
            if n % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let got = counting.await.map_err(|e| e.to_string())?;
        if got < messages {
            return Err(format!("reliable: {got} of {messages} arrived"));
        }
        report.reliable_secs = start.elapsed().as_secs_f64();
        Ok(report)
    }
}

mod matchbox {
    use super::*;
    use matchbox_socket::{Packet, PeerId, PeerState, RtcIceServerConfig, WebRtcSocket};

    const RELIABLE: usize = 0;
    const UNRELIABLE: usize = 1;

    fn socket(server: &str, stun: &str, room: &str) -> WebRtcSocket {
        let (socket, message_loop) = WebRtcSocket::builder(format!("{server}/{room}"))
            .ice_server(RtcIceServerConfig {
                urls: vec![format!("stun:{stun}")],
                username: None,
                credential: None,
            })
            .add_reliable_channel()
            .add_unreliable_channel()
            .build();
        tokio::spawn(message_loop);
        socket
    }

    /// Polls as a game loop would (every millisecond) until the first peer is connected.
    async fn one(
        server: String,
        stun: String,
        room: String,
    ) -> Result<(WebRtcSocket, PeerId, u64), String> {
        let start = Instant::now();
        let mut socket = socket(&server, &stun, &room);
        loop {
            let connected = socket
                .update_peers()
                .into_iter()
                .find(|(_, state)| *state == PeerState::Connected);
            if let Some((peer, _)) = connected {
                return Ok((socket, peer, start.elapsed().as_millis() as u64));
            }
            if start.elapsed() > WAIT {
                return Err("no connection in time".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    type Side = (WebRtcSocket, PeerId, u64);

    async fn pair(run: &ClientsRun, n: usize) -> Result<(Side, Side), String> {
        let room = room_name(n);
        let (a, b) = tokio::join!(
            one(run.server.clone(), run.stun.clone(), room.clone()),
            one(run.server.clone(), run.stun.clone(), room)
        );
        Ok((a?, b?))
    }

    /// Drains `channel` every millisecond until `count` arrived or `wait` passed.
    async fn count(socket: &mut WebRtcSocket, channel: usize, count: u64, wait: Duration) -> u64 {
        let deadline = Instant::now() + wait;
        let mut got = 0;
        while got < count && Instant::now() < deadline {
            got += socket.channel_mut(channel).receive().len() as u64;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        got
    }

    pub(super) async fn run(run: &ClientsRun) -> Result<Report, String> {
        let mut report = Report::default();
        drop(pair(run, usize::MAX).await?);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = rss_kib();
        let mut pairs = Vec::new();
        for n in 0..run.pairs {
            let ((a, a_peer, a_ms), (b, b_peer, b_ms)) = pair(run, n).await?;
            report.connect_ms.extend([a_ms, b_ms]);
            pairs.push(((a, a_peer), (b, b_peer)));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        report.rss_per_client_kib =
            (rss_kib().saturating_sub(before)) as f64 / (2 * run.pairs) as f64;
        let ((mut sender, to), (mut receiver, _)) = pairs.swap_remove(0);
        drop(pairs);

        let (per_ms, ticks) = batches(run.rate, run.secs);
        let expected = per_ms * ticks;
        let bound = Duration::from_secs(ticks / 1000 + 1);
        let counting = tokio::spawn(async move {
            let got = count(&mut receiver, UNRELIABLE, expected, bound).await;
            (receiver, got)
        });
        let start = Instant::now();
        let mut interval = tokio::time::interval(Duration::from_millis(1));
        let payload: Packet = vec![7u8; PAYLOAD].into();
        for _ in 0..ticks {
            interval.tick().await;
            for _ in 0..per_ms {
                sender.channel_mut(UNRELIABLE).send(payload.clone(), to);
                report.unreliable_sent += 1;
            }
            // The socket's own bookkeeping, as a game loop calls it each frame.
            sender.update_peers();
        }
        report.unreliable_secs = start.elapsed().as_secs_f64();
        let (mut receiver, got) = counting.await.map_err(|e| e.to_string())?;
        report.unreliable_received = got;

        let messages = (run.reliable_bytes / CHUNK) as u64;
        let start = Instant::now();
        let counting = tokio::spawn(async move {
            let got = count(&mut receiver, RELIABLE, messages, WAIT).await;
            (receiver, got)
        });
        let chunk: Packet = vec![9u8; CHUNK].into();
        for n in 0..messages {
            sender.channel_mut(RELIABLE).send(chunk.clone(), to);
            if n % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let (_receiver, got) = counting.await.map_err(|e| e.to_string())?;
        if got < messages {
            return Err(format!("reliable: {got} of {messages} arrived"));
        }
        report.reliable_secs = start.elapsed().as_secs_f64();
        drop(sender);
        Ok(report)
    }
}
