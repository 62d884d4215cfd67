//! The application's handle on a joined room in the browser (wasm32): the same calls as the
//! native `Room`, carried out on the page's `WebSocket` and `RTCPeerConnection`s.

use std::cell::RefCell;
use std::rc::Rc;

use futures_channel::mpsc::{self, UnboundedReceiver};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use switchboard_protocol::{ClientMessage, Data, Payload, PeerId, PeerInfo, RoomInfo, Welcome};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, RtcConfiguration, WebSocket};

use super::channel_socket::ChannelSocket;
use super::refusal::why_refused;
use super::shell::{decode, Setup, Shell};
use super::timer::sleep;
use crate::channels::{channel_specs, fingerprint, ChannelSpec};
use crate::event::Event;
use crate::options::{join_url, JoinOptions};
use crate::outgoing;
use crate::room_core::welcome_of;
use crate::Error;

/// A joined room. Create it with [`Room::join`].
pub struct Room {
    id: PeerId,
    name: Option<String>,
    room: String,
    resumed: bool,
    specs: Vec<ChannelSpec>,
    shell: Rc<RefCell<Shell>>,
    events: UnboundedReceiver<Event>,
}

/// What the socket does before the welcome.
enum Early {
    Frame(JsValue),
    Closed(u16, String),
}

impl Room {
    /// Joins a room and returns once the server has accepted you. `url` is the room endpoint:
    /// `ws://host:port/ws/lobby` (or `http://`, `wss://`, `https://`), or a [`crate::Lobby`]
    /// URL for codes, sessions and matches. Events start with the peers already present.
    pub async fn join(url: &str, options: JoinOptions) -> Result<Self, Error> {
        options.validate()?;
        let specs = channel_specs(&options.channels)?;
        let Opened {
            ws,
            welcome,
            early: frames,
            handlers,
        } = open_signaling(url, &options).await?;
        let rtc = rtc_configuration(&welcome)?;
        let (events_tx, events) = mpsc::unbounded();
        let room = Self {
            id: welcome.id,
            name: welcome.name.clone(),
            room: welcome.room.clone(),
            resumed: welcome.resumed,
            specs: specs.clone(),
            shell: Shell::start(
                Setup {
                    ws,
                    fingerprint: fingerprint(&specs),
                    specs,
                    options,
                    rtc,
                    events: events_tx,
                    welcome,
                    url: url.to_owned(),
                },
                frames,
            ),
            events,
        };
        drop(handlers);
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
        self.shell.borrow().resume_token()
    }

    /// The declared channels, with their fixed ids.
    pub fn channels(&self) -> &[ChannelSpec] {
        &self.specs
    }

    /// The other peers present, oldest first, with whether each is connected.
    pub fn peers(&self) -> Vec<(PeerInfo, bool)> {
        let shell = self.shell.borrow();
        shell.core().peers().map(|(p, c)| (p.clone(), c)).collect()
    }

    /// The room's settings and state: kind, topology, capacity, host, metadata, started.
    pub fn info(&self) -> RoomInfo {
        self.shell.borrow().core().info().clone()
    }

    /// Whether you are the host (you may `kick` and `set_meta`).
    pub fn is_host(&self) -> bool {
        self.shell.borrow().core().info().host == Some(self.id)
    }

    /// Whether the room is closed.
    pub fn is_closed(&self) -> bool {
        self.shell.borrow().is_closed()
    }

    /// Sends a message to one peer on a channel. Errors: `room_closed`, `unknown_channel`,
    /// `unknown_peer`, `peer_not_connected`, `message_too_big`, `send_queue_full`.
    pub fn send(&self, peer: PeerId, channel: &str, data: impl Into<Data>) -> Result<(), Error> {
        let lane = outgoing::lane(&self.specs, channel)?;
        self.shell.borrow_mut().send(peer, lane, &data.into())
    }

    /// Sends a message to every connected peer; returns how many it went to. Peers still
    /// connecting (and, in a star, the other clients) are skipped.
    pub fn broadcast(&self, channel: &str, data: impl Into<Data>) -> Result<usize, Error> {
        let lane = outgoing::lane(&self.specs, channel)?;
        self.shell.borrow_mut().broadcast(lane, &data.into())
    }

    /// Takes a channel out of the room's events: from now on its messages go to the returned
    /// [`ChannelSocket`] (messages already among the events stay there), until it is dropped.
    /// Errors: `unknown_channel`, `channel_taken` (another socket has it).
    pub fn take_channel(&self, channel: &str) -> Result<ChannelSocket, Error> {
        let lane = outgoing::lane(&self.specs, channel)?;
        let (sender, received) = mpsc::unbounded();
        self.shell.borrow_mut().divert(lane, sender)?;
        Ok(ChannelSocket::new(
            self.shell.clone(),
            lane,
            channel.to_owned(),
            received,
        ))
    }

    /// Host only: removes a peer from the room (the server confirms with `PeerLeft`).
    pub fn kick(&self, peer: PeerId) -> Result<(), Error> {
        self.require_host("kick")?;
        self.shell.borrow_mut().hub(&ClientMessage::Kick { peer })
    }

    /// Host only: replaces the room's metadata (a JSON object, as text).
    pub fn set_meta(&self, meta_json: &str) -> Result<(), Error> {
        self.require_host("set the metadata")?;
        let meta = Payload::from_json(meta_json)
            .map_err(|e| Error::new("invalid_options", format!("meta is not JSON: {e}")))?;
        self.shell
            .borrow_mut()
            .hub(&ClientMessage::SetMeta { meta })
    }

    /// Close-after-connect: the server closes the signaling socket but keeps you in the room;
    /// connections already open carry on (docs/protocol.md, "`detach` and `gone`").
    pub fn detach(&self) -> Result<(), Error> {
        self.shell.borrow_mut().hub(&ClientMessage::Detach)
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

    /// Leaves the room for good: a goodbye to every peer, then the signaling socket closes.
    /// `Event::Closed` (code `room_closed`) follows.
    pub fn close(&self) {
        self.shell.borrow_mut().close();
    }

    /// The next event; `None` once the room is closed and every event was taken.
    pub async fn next_event(&mut self) -> Option<Event> {
        if self.is_closed() {
            return self.events.try_recv().ok();
        }
        self.events.next().await
    }

    /// Every event that has arrived, without waiting: for game loops (call it once a frame).
    pub fn poll(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.events.try_recv().ok()).collect()
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        self.shell.borrow_mut().close();
    }
}

/// A signaling socket opened and welcomed, not yet listened to by a shell.
pub(crate) struct Opened {
    /// The socket.
    pub ws: WebSocket,
    /// The server's welcome.
    pub welcome: Box<Welcome>,
    /// Frames after the welcome that arrived before a shell took over.
    pub early: Vec<JsValue>,
    /// The socket's callbacks until then: drop them once the shell has put its own.
    pub handlers: [Closure<dyn FnMut(JsValue)>; 2],
}

/// Opens the signaling socket of a join (or of a room moving to another node, with
/// `options.resume` set) and waits for the welcome, within `options.join_timeout`.
pub(crate) async fn open_signaling(url: &str, options: &JoinOptions) -> Result<Opened, Error> {
    let target = join_url(url, options)?;
    let ws =
        WebSocket::new(&target).map_err(|e| Error::new("connection_failed", format!("{e:?}")))?;
    ws.set_binary_type(BinaryType::Arraybuffer);
    let (early_tx, mut early) = mpsc::unbounded();
    let tx = early_tx.clone();
    let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        if let Some(event) = event.dyn_ref::<MessageEvent>() {
            let _ = tx.unbounded_send(Early::Frame(event.data()));
        }
    });
    let on_close = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let (code, reason) = event
            .dyn_ref::<CloseEvent>()
            .map_or((1006, String::new()), |e| (e.code(), e.reason()));
        let _ = early_tx.unbounded_send(Early::Closed(code, reason));
    });
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    let waiting = Box::pin(welcome(&target, &mut early, options.encoding));
    let timeout = Box::pin(sleep(options.join_timeout));
    let outcome = match select(waiting, timeout).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(_) => Err(Error::new(
            "join_timeout",
            format!(
                "no welcome from the server within {:?}",
                options.join_timeout
            ),
        )),
    };
    let welcome = match outcome {
        Ok(welcome) => welcome,
        Err(error) => {
            ws.set_onmessage(None);
            ws.set_onclose(None);
            let _ = ws.close();
            return Err(error);
        }
    };
    let mut frames = Vec::new();
    while let Ok(Early::Frame(frame)) = early.try_recv() {
        frames.push(frame);
    }
    Ok(Opened {
        ws,
        welcome,
        early: frames,
        handlers: [on_message, on_close],
    })
}

/// The ICE servers of the welcome (the hub's STUN server, TURN credentials) for every
/// connection of the room.
fn rtc_configuration(welcome: &Welcome) -> Result<RtcConfiguration, Error> {
    let config = RtcConfiguration::new();
    let servers = serde_json::to_string(&welcome.ice_servers)
        .map_err(|e| Error::new("bad_server_message", e.to_string()))?;
    let servers = js_sys::JSON::parse(&servers)
        .map_err(|e| Error::new("bad_server_message", format!("{e:?}")))?;
    config.set_ice_servers(&servers);
    Ok(config)
}

/// Reads frames until the `welcome`; an `error` first (a refused join) is returned as it is,
/// and so is the server's refusal of the upgrade itself.
async fn welcome(
    url: &str,
    early: &mut UnboundedReceiver<Early>,
    encoding: switchboard_protocol::Encoding,
) -> Result<Box<Welcome>, Error> {
    while let Some(input) = early.next().await {
        let data = match input {
            Early::Frame(data) => data,
            Early::Closed(code, reason) => {
                // A refused upgrade closes with 1006: the server says why to a plain GET.
                if code == 1006 {
                    if let Some(refusal) = why_refused(url).await {
                        return Err(refusal);
                    }
                }
                let code = if reason.is_empty() {
                    "connection_closed"
                } else {
                    reason.as_str()
                };
                return Err(Error::new(
                    code,
                    "the server closed the connection before the welcome",
                ));
            }
        };
        if let Some(decoded) = decode(&data, encoding) {
            return welcome_of(decoded);
        }
    }
    Err(Error::new(
        "connection_closed",
        "the server closed the connection before the welcome",
    ))
}
