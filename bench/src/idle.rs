//! Memory per idle connection: open N connections that join rooms and then only answer pings,
//! and read the server's resident memory before and after. With `detach`, each peer detaches
//! (close-after-connect) instead: the server keeps a member without a connection.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::connect::{open, source_ip};
use crate::wire::{self, Flavor};

/// Resident set size of a process, in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".to_owned())
}

/// One measurement: connections held and the server's memory with them.
#[derive(Debug, Clone)]
pub struct IdlePoint {
    pub connections: usize,
    pub rss_kib: u64,
    pub per_connection_bytes: f64,
}

/// How the peers are spread and what they do after joining.
pub struct Shape {
    /// Peers per room.
    pub per_room: usize,
    /// Number of 127.0.0.x source addresses.
    pub sources: usize,
    /// Detach after joining instead of staying connected.
    pub detach: bool,
}

/// Opens connections in steps up to each count in `counts`, measuring after each step settles.
/// Connections stay open (answering pings) until return, or detach and close.
pub async fn run(
    server: SocketAddr,
    server_pid: u32,
    flavor: Flavor,
    counts: &[usize],
    shape: Shape,
) -> Result<(u64, Vec<IdlePoint>), String> {
    let Shape {
        per_room,
        sources,
        detach,
    } = shape;
    let settle = Duration::from_secs(3);
    tokio::time::sleep(settle).await;
    let base = rss_kib(server_pid)?;
    let mut holders = Vec::new();
    let mut points = Vec::new();
    let mut opened = 0;
    for &target in counts {
        while opened < target {
            let room = format!("idle{}", opened / per_room.max(1));
            let mut ws = open(
                server,
                source_ip(opened, sources),
                &wire::room_path(flavor, &room),
            )
            .await
            .map_err(|e| format!("connection {opened}: {e}"))?;
            // Wait for the id, so the server has fully set the peer up.
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) if wire::assigned_id(flavor, &t).is_some() => break,
                    Some(Ok(_)) => continue,
                    other => return Err(format!("connection {opened}: no id: {other:?}")),
                }
            }
            if detach {
                ws.send(Message::Text(r#"{"type":"detach"}"#.into()))
                    .await
                    .map_err(|e| format!("connection {opened}: detach: {e}"))?;
                // The server closes the socket; read to the end.
                while let Some(Ok(_)) = ws.next().await {}
            } else {
                // Keep reading, so pings are answered and presence events drained.
                holders.push(tokio::spawn(async move {
                    while let Some(Ok(_)) = ws.next().await {}
                }));
            }
            opened += 1;
        }
        tokio::time::sleep(settle).await;
        let rss = rss_kib(server_pid)?;
        points.push(IdlePoint {
            connections: opened,
            rss_kib: rss,
            per_connection_bytes: (rss.saturating_sub(base) * 1024) as f64 / opened as f64,
        });
    }
    for h in holders {
        h.abort();
    }
    Ok((base, points))
}
