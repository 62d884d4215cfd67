//! A minimal echo server on webrtc-rs, the anchor of the server peer benchmark: the same job as
//! `crates/peer/examples/echo.rs` (POST /connect with a browser-style offer whose data channels
//! are pre-negotiated with ids 0 and 1; every message comes back on its channel), every peer on
//! one UDP port (its UDP mux).
//!
//! `webrtc-rs-echo HTTP_ADDR` prints `echo http://ADDR/`. With `ECHO_SNAPSHOT_HZ=30` it plays the
//! benchmark's game loop instead, as the Switchboard echo does: every message counted as an
//! input, and that many times a second a 256-byte unreliable snapshot to every peer (the data
//! channel framing's whole-message byte 0, `0xEE`, the inputs so far as a big-endian u64,
//! padding).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::APIBuilder;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice::udp_mux::{UDPMuxDefault, UDPMuxParams};
use webrtc::ice::udp_network::UDPNetwork;
use webrtc::data_channel::data_channel_init::RTCDataChannelInit;
use webrtc::data_channel::data_channel_message::DataChannelMessage;
use webrtc::data_channel::RTCDataChannel;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("echo http://{}/", listener.local_addr()?);
    // Every peer on one UDP port (webrtc-rs's UDP mux), as the server peer does: with its default
    // of a socket per peer, 10,000 peers need more files than this machine allows one process.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let mux = UDPMuxDefault::new(UDPMuxParams::new(udp));
    let mut settings = SettingEngine::default();
    settings.set_udp_network(UDPNetwork::Muxed(mux));
    settings.set_network_types(vec![NetworkType::Udp4]);
    // No mDNS: it opens a multicast socket per peer.
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    let api = Arc::new(APIBuilder::new().with_setting_engine(settings).build());
    let keep: Arc<tokio::sync::Mutex<Vec<Arc<RTCPeerConnection>>>> = Arc::default();
    let game = std::env::var("ECHO_SNAPSHOT_HZ").ok().and_then(|hz| hz.parse::<u32>().ok()).map(|hz| {
        let game = Arc::new(Game { inputs: AtomicU64::new(0), unreliable: std::sync::Mutex::new(Vec::new()) });
        tokio::spawn(game.clone().run(hz));
        game
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let (api, keep, game) = (api.clone(), keep.clone(), game.clone());
        tokio::spawn(async move {
            if let Err(error) = serve(stream, &api, &keep, game).await {
                eprintln!("connect failed: {error}");
            }
        });
    }
}

/// The game loop: inputs counted, snapshots to every peer's unreliable channel.
struct Game {
    inputs: AtomicU64,
    unreliable: std::sync::Mutex<Vec<Arc<RTCDataChannel>>>,
}

impl Game {
    async fn run(self: Arc<Self>, hz: u32) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1) / hz.max(1));
        loop {
            tick.tick().await;
            let mut snapshot = vec![0u8; 256];
            snapshot[1] = 0xEE;
            snapshot[2..10].copy_from_slice(&self.inputs.load(Ordering::Relaxed).to_be_bytes());
            let snapshot = bytes::Bytes::from(snapshot);
            let channels = self.unreliable.lock().unwrap_or_else(|p| p.into_inner()).clone();
            // One task per send, so its sends spread over every core (sent one after another
            // they fell behind the 30 Hz tick at 1,000 peers).
            for channel in channels {
                let snapshot = snapshot.clone();
                tokio::spawn(async move {
                    let _ = channel.send(&snapshot).await;
                });
            }
        }
    }
}

async fn serve(
    mut stream: TcpStream,
    api: &webrtc::api::API,
    keep: &tokio::sync::Mutex<Vec<Arc<RTCPeerConnection>>>,
    game: Option<Arc<Game>>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut request = Vec::new();
    let mut buf = [0u8; 8192];
    let body = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err("closed".into());
        }
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                .unwrap_or(0);
            if body.len() >= length {
                break body.to_owned();
            }
        }
    };
    let pc = Arc::new(api.new_peer_connection(RTCConfiguration::default()).await?);
    for (label, id, ordered, retransmits) in [("reliable", 0u16, true, None), ("unreliable", 1, false, Some(0u16))] {
        let init = RTCDataChannelInit { ordered: Some(ordered), max_retransmits: retransmits, negotiated: Some(id), ..Default::default() };
        let channel = pc.create_data_channel(label, Some(init)).await?;
        match &game {
            Some(game) => {
                let counter = game.clone();
                channel.on_message(Box::new(move |_| {
                    counter.inputs.fetch_add(1, Ordering::Relaxed);
                    Box::pin(async {})
                }));
                if retransmits.is_some() {
                    game.unreliable.lock().unwrap_or_else(|p| p.into_inner()).push(channel);
                }
            }
            None => echo(channel),
        }
    }
    pc.set_remote_description(RTCSessionDescription::offer(body)?).await?;
    let answer = pc.create_answer(None).await?;
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(answer).await?;
    let _ = gathered.recv().await;
    let sdp = pc.local_description().await.ok_or("no local description")?.sdp;
    let json = format!("{{\"sdp\":{}}}", json_string(&sdp));
    let response = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}", json.len());
    stream.write_all(response.as_bytes()).await?;
    keep.lock().await.push(pc);
    Ok(())
}

fn echo(channel: Arc<RTCDataChannel>) {
    let sender = channel.clone();
    channel.on_message(Box::new(move |message: DataChannelMessage| {
        let sender = sender.clone();
        Box::pin(async move {
            let _ = sender.send(&message.data).await;
        })
    }));
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
