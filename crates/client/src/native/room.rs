//! The application's handle on a joined room: sends are checked and framed here (errors come
//! back at once), then handed to the room's task; events come back as a stream or by polling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::StreamExt;
use switchboard_protocol::{
    decode_server, ClientMessage, Encoding, Frame, Payload, PeerId, PeerInfo, RoomInfo, Welcome,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::channel_socket::ChannelSocket;
use super::driver::{self, Command, Setup};
use super::endpoint::Endpoint;
use super::ice;
use super::sending::Sending;
use super::tls;
use crate::channels::{channel_specs, fingerprint, ChannelSpec};
use crate::event::Event;
use crate::options::{join_url, JoinOptions};
use crate::Error;
use switchboard_protocol::Data;

/// What the handle and the task share: the room as the task last saw it.
#[derive(Debug)]
pub(crate) struct View {
    pub peers: Vec<(PeerInfo, bool)>,
    pub info: RoomInfo,
    /// Bytes accepted by `send` per peer and not yet handed to the transport.
    pub queued: HashMap<PeerId, usize>,
    /// Channels taken out of the events ([`Room::take_channel`]): their messages go here.
    pub diverted: HashMap<usize, mpsc::UnboundedSender<(PeerId, Data)>>,
    /// The latest resume token (a move to another server node hands out a new one).
    pub resume_token: Option<String>,
    pub closed: bool,
}

/// Locks the view; a panicked task cannot poison it for the application.
pub(crate) fn lock(view: &Mutex<View>) -> MutexGuard<'_, View> {
    view.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A joined room. Create it with [`Room::join`].
pub struct Room {
    id: PeerId,
    name: Option<String>,
    room: String,
    resumed: bool,
    sending: Sending,
    events: mpsc::UnboundedReceiver<Event>,
}

impl Room {
    /// Joins a room and returns once the server has accepted you. `url` is the room endpoint:
    /// `ws://host:port/ws/lobby` (or `wss://`, `http://`, `https://`), or a [`crate::Lobby`] URL for codes, sessions
    /// and matches. Events start with the peers already present.
    pub async fn join(url: &str, options: JoinOptions) -> Result<Self, Error> {
        options.validate()?;
        let specs = channel_specs(&options.channels)?;
        let (ws, welcome) = open_signaling(url, &options).await?;
        let Endpoint {
            socket,
            hosts,
            candidates,
        } = Endpoint::bind(
            &ice::stun_hosts(&welcome.ice_servers),
            options.stun_timeout,
            options.udp_buffer_bytes,
        )
        .await?;
        let view = Arc::new(Mutex::new(View {
            peers: Vec::new(),
            info: welcome.room_info.clone(),
            queued: HashMap::new(),
            diverted: HashMap::new(),
            resume_token: welcome.resume_token.clone(),
            closed: false,
        }));
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let room = Self {
            id: welcome.id,
            name: welcome.name.clone(),
            room: welcome.room.clone(),
            resumed: welcome.resumed,
            sending: Sending {
                specs: specs.clone(),
                options: options.clone(),
                view: view.clone(),
                commands,
            },
            events,
        };
        tokio::spawn(driver::run(Setup {
            url: url.to_owned(),
            ws,
            socket,
            hosts,
            candidates,
            fingerprint: fingerprint(&specs),
            specs,
            options,
            welcome,
            view,
            events: events_tx,
            commands: commands_rx,
        }));
        Ok(room)
    }

    /// Your id in the room, assigned by the server (the same after a resume).
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// Your user name, if you chose one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The room's name (or code, or session id).
    pub fn room(&self) -> &str {
        &self.room
    }

    /// Whether this join resumed an earlier one.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// The resume token (with `JoinOptions::resumable`): pass it as `JoinOptions::resume` to
    /// take this place back after a dropped connection. The latest one: when the room's server
    /// node drains and the room moves to another node by itself, the token changes.
    pub fn resume_token(&self) -> Option<String> {
        lock(&self.sending.view).resume_token.clone()
    }

    /// The declared channels, with their fixed ids.
    pub fn channels(&self) -> &[ChannelSpec] {
        &self.sending.specs
    }

    /// The other peers present, oldest first, with whether each is connected.
    pub fn peers(&self) -> Vec<(PeerInfo, bool)> {
        lock(&self.sending.view).peers.clone()
    }

    /// The room's settings and state: kind, topology, capacity, host, metadata, started.
    pub fn info(&self) -> RoomInfo {
        lock(&self.sending.view).info.clone()
    }

    /// Whether you are the host (you may `kick` and `set_meta`).
    pub fn is_host(&self) -> bool {
        lock(&self.sending.view).info.host == Some(self.id)
    }

    /// Whether the room is closed.
    pub fn is_closed(&self) -> bool {
        lock(&self.sending.view).closed
    }

    /// Sends a message to one peer on a channel. Errors: `room_closed`, `unknown_channel`,
    /// `unknown_peer`, `peer_not_connected`, `message_too_big`, `send_queue_full`.
    pub fn send(&self, peer: PeerId, channel: &str, data: impl Into<Data>) -> Result<(), Error> {
        let lane = self.sending.lane(channel)?;
        self.sending.send(peer, lane, &data.into())
    }

    /// Sends a message to every connected peer; returns how many it went to. Peers still
    /// connecting (and, in a star, the other clients) are skipped.
    pub fn broadcast(&self, channel: &str, data: impl Into<Data>) -> Result<usize, Error> {
        let lane = self.sending.lane(channel)?;
        self.sending.broadcast(lane, &data.into())
    }

    /// Takes a channel out of the room's events: from now on its messages go to the returned
    /// [`ChannelSocket`] (messages already among the events stay there), until it is dropped.
    /// Errors: `unknown_channel`, `channel_taken` (another socket has it).
    pub fn take_channel(&self, channel: &str) -> Result<ChannelSocket, Error> {
        let lane = self.sending.lane(channel)?;
        let mut view = lock(&self.sending.view);
        if view.diverted.contains_key(&lane) {
            return Err(Error::new(
                "channel_taken",
                format!("channel {channel} is already taken"),
            ));
        }
        let (sender, received) = mpsc::unbounded_channel();
        view.diverted.insert(lane, sender);
        drop(view);
        Ok(ChannelSocket::new(self.sending.clone(), lane, received))
    }

    /// Host only: removes a peer from the room (the server confirms with `PeerLeft`).
    pub fn kick(&self, peer: PeerId) -> Result<(), Error> {
        self.require_host("kick")?;
        self.hub(ClientMessage::Kick { peer })
    }

    /// Host only: replaces the room's metadata (a JSON object, as text).
    pub fn set_meta(&self, meta_json: &str) -> Result<(), Error> {
        self.require_host("set the metadata")?;
        let meta = Payload::from_json(meta_json)
            .map_err(|e| Error::new("invalid_options", format!("meta is not JSON: {e}")))?;
        self.hub(ClientMessage::SetMeta { meta })
    }

    /// Close-after-connect: the server closes the signaling socket but keeps you in the room;
    /// connections already open carry on (docs/protocol.md, "`detach` and `gone`").
    pub fn detach(&self) -> Result<(), Error> {
        self.hub(ClientMessage::Detach)
    }

    fn require_host(&self, what: &str) -> Result<(), Error> {
        if self.is_closed() {
            return Err(Error::new("room_closed", "the room is closed"));
        }
        if !self.is_host() {
            return Err(Error::new("not_host", format!("only the host may {what}")));
        }
        Ok(())
    }

    fn hub(&self, message: ClientMessage) -> Result<(), Error> {
        self.sending
            .commands
            .send(Command::Hub(message))
            .map_err(|_| Error::new("room_closed", "the room is closed"))
    }

    /// Leaves the room for good: a goodbye to every peer, then the signaling socket closes.
    /// `Event::Closed` (code `room_closed`) follows.
    pub fn close(&self) {
        let _ = self.sending.commands.send(Command::Close);
    }

    /// The next event; `None` once the room is closed and every event was taken.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Every event that has arrived, without waiting: for game loops (call it once a frame).
    pub fn poll(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.events.try_recv().ok()).collect()
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        let _ = self.sending.commands.send(Command::Close);
    }
}

/// Why the WebSocket was refused: the server's JSON refusal when it answered with one (auth,
/// connection limits), else the transport error.
pub(crate) fn refused(error: &tokio_tungstenite::tungstenite::Error) -> Error {
    use tokio_tungstenite::tungstenite::Error as WsError;
    if let WsError::Http(response) = error {
        let status = response.status().as_u16();
        let body = response.body().as_deref().unwrap_or_default();
        return crate::connect_options::refusal(status, body)
            .unwrap_or_else(|| Error::new("connection_failed", format!("HTTP {status}")));
    }
    Error::new("connection_failed", error.to_string())
}

/// Opens the signaling socket of a join (or, with `options.resume`, of a resume) and reads its
/// welcome, each within `join_timeout`.
pub(crate) async fn open_signaling(
    url: &str,
    options: &JoinOptions,
) -> Result<(driver::Ws, Box<Welcome>), Error> {
    let target = join_url(url, options)?;
    let connector = if target.starts_with("wss://") {
        Some(tls::connector(options.tls_roots_pem.as_deref())?)
    } else {
        None
    };
    let connecting =
        tokio_tungstenite::connect_async_tls_with_config(target.as_str(), None, false, connector);
    let (mut ws, _) = tokio::time::timeout(options.join_timeout, connecting)
        .await
        .map_err(|_| {
            Error::new(
                "join_timeout",
                "the server did not accept the connection in time",
            )
        })?
        .map_err(|e| refused(&e))?;
    let welcome = tokio::time::timeout(options.join_timeout, welcome(&mut ws, options.encoding))
        .await
        .map_err(|_| {
            Error::new(
                "join_timeout",
                format!(
                    "no welcome from the server within {:?}",
                    options.join_timeout
                ),
            )
        })??;
    Ok((ws, welcome))
}

/// Reads frames until the `welcome`; an `error` first (a refused join) is returned as it is.
async fn welcome(ws: &mut driver::Ws, encoding: Encoding) -> Result<Box<Welcome>, Error> {
    while let Some(frame) = ws.next().await {
        let frame = frame.map_err(|e| Error::new("connection_failed", e.to_string()))?;
        let decoded = match &frame {
            WsMessage::Text(text) => decode_server(Frame::Text(text.as_bytes()), encoding),
            WsMessage::Binary(bytes) => decode_server(Frame::Binary(bytes), encoding),
            WsMessage::Close(close) => {
                let reason = close
                    .as_ref()
                    .map(|c| c.reason.to_string())
                    .unwrap_or_default();
                return Err(Error::new(
                    if reason.is_empty() {
                        "connection_closed"
                    } else {
                        reason.as_str()
                    },
                    "the server closed the connection before the welcome",
                ));
            }
            _ => continue,
        };
        return crate::room_core::welcome_of(decoded);
    }
    Err(Error::new(
        "connection_closed",
        "the server closed the connection before the welcome",
    ))
}
