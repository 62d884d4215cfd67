//! The hub way to connect: the server peer joins a Switchboard hub room as its host (a star room)
//! and offers a WebRTC connection to every browser in it; browsers answer and trickle over the
//! hub, as with any room peer. The browser's hub id is its id on the server peer too, and leaving
//! the room closes the connection.

use futures_util::{SinkExt, StreamExt};
use switchboard_protocol::{
    decode_server, encode_client, ClientMessage, Encoded, Encoding, Frame, Payload, PeerId,
    ServerMessage, Target,
};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::channels::CHANNELS_FINGERPRINT;
use crate::Server;

/// Why joining the hub failed.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The WebSocket could not be opened.
    #[error("cannot reach the hub: {0}")]
    Connect(String),
    /// The hub refused or closed before `welcome`.
    #[error("the hub did not welcome us: {0}")]
    Refused(String),
    /// Someone else hosts the room: the server peer must create it.
    #[error("the room {0} already has another host; the server peer must create its room")]
    NotHost(String),
}

/// The server peer's membership in a hub room. Dropping it leaves the room.
pub struct HubLink {
    /// The room name.
    pub room: String,
    /// The server peer's id in the hub.
    pub id: PeerId,
    task: JoinHandle<()>,
}

impl Drop for HubLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Joins (creates) the hub room at `url` (`ws://host/ws/ROOM`; `topology=star` is added) and
/// serves it: every browser that is or comes in the room is offered a connection.
pub async fn join_hub(server: &Server, url: &str) -> Result<HubLink, HubError> {
    let separator = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{separator}topology=star");
    let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| HubError::Connect(e.to_string()))?;
    let (mut sink, mut stream) = socket.split();
    let welcome = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => {
                match decode_server(Frame::Text(text.as_bytes()), Encoding::Json) {
                    Ok(ServerMessage::Welcome(welcome)) => break welcome,
                    Ok(ServerMessage::Error { code, message }) => {
                        return Err(HubError::Refused(format!("{code}: {message}")))
                    }
                    other => {
                        return Err(HubError::Refused(format!(
                            "expected welcome, got {other:?}"
                        )))
                    }
                }
            }
            Some(Ok(_)) => continue,
            other => return Err(HubError::Refused(format!("{other:?}"))),
        }
    };
    if welcome.room_info.host != Some(welcome.id) {
        return Err(HubError::NotHost(welcome.room.clone()));
    }
    let (room, id) = (welcome.room.clone(), welcome.id);
    let server = server.clone();
    let task = tokio::spawn(async move {
        for peer in &welcome.peers {
            offer(&server, &mut sink, peer.id).await;
        }
        while let Some(Ok(frame)) = stream.next().await {
            let Message::Text(text) = frame else { continue };
            match decode_server(Frame::Text(text.as_bytes()), Encoding::Json) {
                Ok(ServerMessage::PeerJoined(peer)) => offer(&server, &mut sink, peer.id).await,
                Ok(ServerMessage::Signal { from, data }) => {
                    if let Some(sdp) = answer_sdp(&data) {
                        server.answer(from, sdp);
                    }
                }
                Ok(ServerMessage::PeerLeft { id, reason }) => {
                    server.drop_peer(id, format!("left the hub room ({reason:?})"))
                }
                _ => {}
            }
        }
        tracing::warn!("the hub connection closed; hub peers keep their WebRTC connections");
    });
    Ok(HubLink { room, id, task })
}

async fn offer<S>(server: &Server, sink: &mut S, peer: PeerId)
where
    S: SinkExt<Message> + Unpin,
{
    let sdp = match server.offer(peer).await {
        Ok(sdp) => sdp,
        Err(error) => {
            tracing::warn!(%peer, %error, "cannot offer to a hub peer");
            return;
        }
    };
    let offer =
        serde_json::json!({ "type": "offer", "sdp": sdp, "channels": CHANNELS_FINGERPRINT });
    signal(sink, peer, &offer).await;
    // Every candidate is in the offer (ice-lite, host candidates only): say so at once, so a
    // client that waits for the end of candidates need not time out.
    signal(
        sink,
        peer,
        &serde_json::json!({ "type": "candidate", "candidate": null }),
    )
    .await;
}

/// Sends one signal payload to a hub peer.
async fn signal<S>(sink: &mut S, peer: PeerId, payload: &serde_json::Value)
where
    S: SinkExt<Message> + Unpin,
{
    let Ok(data) = Payload::from_json(&payload.to_string()) else {
        return;
    };
    let message = ClientMessage::Signal {
        to: Target::Peer(peer),
        data,
    };
    if let Ok(Encoded::Text(text)) = encode_client(&message, Encoding::Json) {
        let _ = sink.send(Message::Text(text.into())).await;
    }
}

/// The SDP of an `{"type": "answer", "sdp": ...}` signal; candidates and the rest are ignored
/// (an ice-lite server learns addresses from the browser's checks).
fn answer_sdp(data: &Payload) -> Option<String> {
    let value: serde_json::Value = serde_json::to_value(data).ok()?;
    (value.get("type")?.as_str()? == "answer")
        .then(|| value.get("sdp")?.as_str().map(str::to_owned))
        .flatten()
}
