//! A minimal echo server on webrtc-rs, the anchor of the server peer benchmark: the same job as
//! `crates/peer/examples/echo.rs` (POST /connect with a browser-style offer whose data channels
//! are pre-negotiated with ids 0 and 1; every message comes back on its channel).
//!
//! `webrtc-rs-echo HTTP_ADDR` prints `echo http://ADDR/`.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use webrtc::api::APIBuilder;
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
    let api = Arc::new(APIBuilder::new().build());
    let keep: Arc<tokio::sync::Mutex<Vec<Arc<RTCPeerConnection>>>> = Arc::default();
    loop {
        let (stream, _) = listener.accept().await?;
        let (api, keep) = (api.clone(), keep.clone());
        tokio::spawn(async move {
            if let Err(error) = serve(stream, &api, &keep).await {
                eprintln!("connect failed: {error}");
            }
        });
    }
}

async fn serve(
    mut stream: TcpStream,
    api: &webrtc::api::API,
    keep: &tokio::sync::Mutex<Vec<Arc<RTCPeerConnection>>>,
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
        echo(channel);
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
