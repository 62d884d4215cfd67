//! The room's shell in the browser: it owns the signaling WebSocket and every peer's
//! [`Link`], turns the browser's callbacks into input for the pure room core, and carries out
//! the core's actions. Everything runs on the page's one thread; callbacks reach the shell
//! through a weak reference, so a dropped room ignores late ones.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::Duration;

use futures_channel::mpsc::UnboundedSender;
use js_sys::{ArrayBuffer, Uint8Array};
use switchboard_protocol::{
    decode_server, encode_client, ClientMessage, Data, Encoded, Encoding, Frame, PeerId,
    ProtocolError, ServerMessage, Welcome,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, RtcConfiguration, WebSocket};

use super::link::{Limits, Link, LinkEvent, Outcome};
use super::ops::{run_ops, LinkOwner};
use super::room::{open_signaling, Opened};
use super::timer::{sleep, Timer};
use crate::channels::ChannelSpec;
use crate::event::Event;
use crate::options::JoinOptions;
use crate::outgoing;
use crate::room_core::{Action, RoomCore};
use crate::signaling_move::{dropped_error, is_drain, keep_first, still_addressed, Retries};
use crate::Error;

/// A link and the serial that tells its callbacks from those of an earlier link to that peer.
struct Linked {
    serial: u64,
    link: Link,
}

/// The state of a joined room in the browser.
pub(crate) struct Shell {
    me: Weak<RefCell<Shell>>,
    core: RoomCore,
    ws: WebSocket,
    ws_handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    specs: Vec<ChannelSpec>,
    fingerprint: String,
    options: JoinOptions,
    limits: Limits,
    rtc: RtcConfiguration,
    links: HashMap<PeerId, Linked>,
    /// Channels taken out of the events ([`super::Room::take_channel`]): their messages go here.
    diverted: HashMap<usize, UnboundedSender<(PeerId, Data)>>,
    serials: u64,
    events: UnboundedSender<Event>,
    signaling_open: bool,
    /// The room's URL, to connect to again when its server node drains.
    url: String,
    resume_token: Option<String>,
    /// How long the server keeps the room's place for a resume (a move is tried that long).
    resume_grace: Duration,
    /// A new signaling socket is being opened (the node drained): messages for the hub wait.
    moving: bool,
    waiting: Vec<ClientMessage>,
    /// Messages for the hub dropped during the move (past `signaling_move::MAX_WAITING`).
    dropped: usize,
    done: bool,
    last_heard: f64,
    silence_ms: f64,
    nonce: u64,
    heartbeat: Option<Timer>,
}

/// Everything a shell starts with.
pub(crate) struct Setup {
    pub ws: WebSocket,
    pub welcome: Box<Welcome>,
    pub specs: Vec<ChannelSpec>,
    pub fingerprint: String,
    pub options: JoinOptions,
    pub rtc: RtcConfiguration,
    pub events: UnboundedSender<Event>,
    /// The room's URL as the application gave it.
    pub url: String,
}

/// Calls `f` on the shell if the room still exists.
fn with(shell: &Weak<RefCell<Shell>>, f: impl FnOnce(&mut Shell)) {
    if let Some(shell) = shell.upgrade() {
        f(&mut shell.borrow_mut());
    }
}

impl Shell {
    /// Starts the room: the peers of the welcome are admitted, the socket's callbacks and the
    /// heartbeat installed. `early` are frames that arrived after the welcome, before this.
    pub(crate) fn start(setup: Setup, early: Vec<JsValue>) -> Rc<RefCell<Self>> {
        let Setup {
            ws,
            welcome,
            specs,
            fingerprint,
            options,
            rtc,
            events,
            url,
        } = setup;
        let heartbeat_ms = welcome.heartbeat_ms.max(100);
        let silence_ms = welcome.idle_timeout_ms.max(heartbeat_ms * 2);
        let limits = Limits {
            max_message_bytes: options.max_message_bytes,
            max_buffered_bytes: options.max_buffered_bytes,
            buffered_high_bytes: options.buffered_high_bytes,
            connect_timeout: options.connect_timeout,
            disconnect_timeout: options.disconnect_timeout,
            max_queued_candidates: options.max_queued_candidates,
        };
        let shell = Rc::new_cyclic(|me| {
            RefCell::new(Self {
                me: me.clone(),
                core: RoomCore::new(&welcome),
                ws,
                ws_handlers: Vec::new(),
                specs,
                fingerprint,
                options,
                limits,
                rtc,
                links: HashMap::new(),
                diverted: HashMap::new(),
                serials: 0,
                events,
                signaling_open: true,
                url,
                resume_token: welcome.resume_token.clone(),
                resume_grace: Duration::from_millis(welcome.resume_grace_ms),
                moving: false,
                waiting: Vec::new(),
                dropped: 0,
                done: false,
                last_heard: js_sys::Date::now(),
                silence_ms: silence_ms as f64,
                nonce: 0,
                heartbeat: None,
            })
        });
        {
            let mut s = shell.borrow_mut();
            s.listen();
            let me = s.me.clone();
            s.heartbeat = Some(Timer::every(
                Duration::from_millis(heartbeat_ms),
                move || with(&me, Shell::tick),
            ));
            let actions = s.core.begin(&welcome);
            s.perform(actions);
            for frame in early {
                s.frame(&frame);
            }
        }
        shell
    }

    fn listen(&mut self) {
        let me = self.me.clone();
        let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            if let Some(event) = event.dyn_ref::<MessageEvent>() {
                let data = event.data();
                with(&me, |s| s.frame(&data));
            }
        });
        let me = self.me.clone();
        let on_close = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let (code, reason) = event
                .dyn_ref::<CloseEvent>()
                .map_or((1006, String::new()), |e| (e.code(), e.reason()));
            with(&me, |s| s.signaling_closed(code, &reason));
        });
        self.ws
            .set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        self.ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.ws.set_onerror(None);
        self.ws_handlers = vec![on_message, on_close];
    }

    fn emit(&self, event: Event) {
        let _ = self.events.unbounded_send(event);
    }

    /// A frame of the signaling socket.
    fn frame(&mut self, data: &JsValue) {
        if self.done {
            return;
        }
        self.last_heard = js_sys::Date::now();
        let Some(decoded) = decode(data, self.options.encoding) else {
            return;
        };
        let actions = self.core.server_frame(decoded);
        self.perform(actions);
    }

    /// The server closed the signaling socket: when its node drains, a resumable room moves to
    /// another node; else it is over, or goes on over the peer connections after `detach`.
    fn signaling_closed(&mut self, code: u16, reason: &str) {
        if !self.signaling_open {
            return;
        }
        self.signaling_open = false;
        if is_drain(code, reason) && !self.done {
            if let Some(token) = self.resume_token.clone() {
                self.move_signaling(token);
                return;
            }
        }
        let actions = self.core.signaling_closed(code, reason);
        self.perform(actions);
    }

    /// Connects to the room's URL again with the resume token (a load balancer picks another
    /// node), keeping the id, the peers and their connections; an attempt that reaches a draining
    /// or gone node is tried again while the server keeps the place. The old socket's callbacks are
    /// detached, not dropped: this may run inside one of them.
    fn move_signaling(&mut self, token: String) {
        self.moving = true;
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let url = self.url.clone();
        let mut options = self.options.clone();
        options.resume = Some(token);
        let me = self.me.clone();
        let mut retries = Retries::new(self.resume_grace);
        wasm_bindgen_futures::spawn_local(async move {
            let started = js_sys::Date::now();
            let opened = loop {
                match open_signaling(&url, &options).await {
                    // The balancer sent us to a node that is draining too, or gone: again,
                    // while the server keeps the place (and the room is still there).
                    Err(error) if me.strong_count() > 0 => {
                        let elapsed = (js_sys::Date::now() - started).max(0.0) / 1000.0;
                        match retries.after_failure(&error.code, Duration::from_secs_f64(elapsed)) {
                            Some(wait) => sleep(wait).await,
                            None => break Err(error),
                        }
                    }
                    opened => break opened,
                }
            };
            match me.upgrade() {
                Some(shell) => shell.borrow_mut().moved(opened),
                None => {
                    if let Ok(opened) = opened {
                        opened.ws.set_onmessage(None);
                        opened.ws.set_onclose(None);
                        let _ = opened.ws.close_with_code_and_reason(1000, "closed");
                    }
                }
            }
        });
    }

    /// The new signaling socket is open (or could not be): the room goes on with it, caught up
    /// on what happened meanwhile, and sends what waited (not to peers that left meanwhile); or
    /// it ends.
    fn moved(&mut self, opened: Result<Opened, Error>) {
        self.moving = false;
        let opened = match opened {
            Ok(opened) if self.done => {
                opened.ws.set_onmessage(None);
                opened.ws.set_onclose(None);
                let _ = opened.ws.close_with_code_and_reason(1000, "closed");
                return;
            }
            Ok(opened) => opened,
            Err(_) if self.done => return,
            Err(error) => {
                let actions = self.core.shutdown(&error.code, &error.message);
                self.perform(actions);
                return;
            }
        };
        self.ws = opened.ws;
        self.listen();
        drop(opened.handlers);
        self.signaling_open = true;
        self.last_heard = js_sys::Date::now();
        self.resume_token = opened.welcome.resume_token.clone();
        self.resume_grace = Duration::from_millis(opened.welcome.resume_grace_ms);
        let actions = self.core.moved(&opened.welcome);
        self.perform(actions);
        if self.done {
            return;
        }
        let dropped = std::mem::take(&mut self.dropped);
        if dropped > 0 {
            self.emit(Event::Error {
                error: dropped_error(dropped),
                peer: None,
            });
        }
        for message in std::mem::take(&mut self.waiting) {
            if still_addressed(&message, |peer| self.core.member(peer).is_some()) {
                self.transmit(&message);
            }
        }
        for frame in opened.early {
            self.frame(&frame);
        }
    }

    /// The heartbeat: a ping, or the end when the server has been silent too long.
    fn tick(&mut self) {
        if !self.signaling_open || self.done {
            return;
        }
        if js_sys::Date::now() - self.last_heard > self.silence_ms {
            let reason = format!("nothing from the server for {} ms", self.silence_ms);
            let actions = self.core.shutdown("server_timeout", &reason);
            self.perform(actions);
        } else {
            self.nonce = self.nonce.wrapping_add(1);
            self.transmit(&ClientMessage::Ping {
                nonce: Some(self.nonce),
            });
        }
    }

    /// Carries out the room core's actions.
    fn perform(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Emit(event) => self.emit(event),
                Action::Link(peer, role) => self.link(peer, role),
                Action::Unlink(peer) => {
                    if let Some(mut linked) = self.links.remove(&peer) {
                        linked.link.close("closed");
                    }
                }
                Action::Signal(peer, signal) => {
                    if let Some(linked) = self.links.get_mut(&peer) {
                        linked.link.signal(signal);
                    }
                    self.handle_outcomes(peer);
                }
                Action::Transmit(message) => self.transmit(&message),
                Action::Shutdown => self.finish(),
            }
        }
    }

    fn link(&mut self, peer: PeerId, role: crate::signal::Role) {
        self.serials += 1;
        let serial = self.serials;
        let me = self.me.clone();
        let notify = Rc::new(move |event: LinkEvent| {
            with(&me, |s| s.link_event(peer, serial, event));
        });
        match Link::new(
            role,
            &self.specs,
            &self.fingerprint,
            &self.rtc,
            self.limits.clone(),
            notify,
        ) {
            Ok(link) => {
                if let Some(mut old) = self.links.insert(peer, Linked { serial, link }) {
                    old.link.close("closed");
                }
                self.handle_outcomes(peer);
            }
            Err(error) => {
                self.emit(Event::Error {
                    error,
                    peer: Some(peer),
                });
                let actions = self.core.link_closed(peer, "connection_failed".into());
                self.perform(actions);
            }
        }
    }

    fn link_mut(&mut self, peer: PeerId, serial: u64) -> Option<&mut Link> {
        self.links
            .get_mut(&peer)
            .filter(|l| l.serial == serial)
            .map(|l| &mut l.link)
    }

    fn link_event(&mut self, peer: PeerId, serial: u64, event: LinkEvent) {
        if let Some(link) = self.link_mut(peer, serial) {
            link.event(event);
            self.handle_outcomes(peer);
        }
    }

    /// Handles what a link reported.
    fn handle_outcomes(&mut self, peer: PeerId) {
        let Some(linked) = self.links.get_mut(&peer) else {
            return;
        };
        let serial = linked.serial;
        for outcome in linked.link.take_outcomes() {
            match outcome {
                Outcome::Signal(signal) => {
                    if let Some(message) = signal.to_message(peer) {
                        self.transmit(&message);
                    }
                }
                Outcome::Open => {
                    let actions = self.core.link_open(peer);
                    self.perform(actions);
                }
                Outcome::Message(lane, data) => {
                    let data = match self.diverted.get(&lane) {
                        Some(socket) => match socket.unbounded_send((peer, data)) {
                            Ok(()) => continue,
                            // The socket is being dropped: the room's events have it again.
                            Err(returned) => returned.into_inner().1,
                        },
                        None => data,
                    };
                    if let Some(spec) = self.specs.get(lane) {
                        self.emit(Event::Message {
                            peer,
                            channel: spec.name.clone(),
                            data,
                        });
                    }
                }
                Outcome::Problem(error) => self.emit(Event::Error {
                    error,
                    peer: Some(peer),
                }),
                Outcome::RunOps => run_ops(self.me.clone(), (peer, serial)),
                Outcome::Closed(reason) => {
                    self.links.remove(&peer);
                    let actions = self.core.link_closed(peer, reason);
                    self.perform(actions);
                    return;
                }
            }
        }
    }

    /// Sends a message to the hub; a socket that refuses it is closed.
    fn transmit(&mut self, message: &ClientMessage) {
        if self.moving {
            self.waiting.push(message.clone());
            self.dropped += keep_first(&mut self.waiting);
            return;
        }
        if !self.signaling_open {
            return;
        }
        let sent = match encode_client(message, self.options.encoding) {
            Ok(Encoded::Text(text)) => self.ws.send_with_str(&text),
            Ok(Encoded::Binary(bytes)) => self.ws.send_with_u8_array(&bytes),
            Err(error) => {
                self.emit(Event::Error {
                    error: Error::new("invalid_message", error.to_string()),
                    peer: None,
                });
                return;
            }
        };
        if sent.is_err() {
            self.signaling_closed(1006, "");
        }
    }

    /// The latest resume token (it changes when the room moves to another node).
    pub(crate) fn resume_token(&self) -> Option<String> {
        self.resume_token.clone()
    }

    /// Whether the room is over.
    pub(crate) fn is_closed(&self) -> bool {
        self.done
    }

    /// The room core (members, room info).
    pub(crate) fn core(&self) -> &RoomCore {
        &self.core
    }

    /// Sends `data` to `peer` on lane `lane`.
    pub(crate) fn send(&mut self, peer: PeerId, lane: usize, data: &Data) -> Result<(), Error> {
        let frames = self.frames(lane, data)?;
        self.send_frames(peer, lane, frames)
    }

    /// The frames of a message on lane `lane`; `room_closed` once the room is over.
    fn frames(&self, lane: usize, data: &Data) -> Result<Vec<Vec<u8>>, Error> {
        if self.done {
            return Err(Error::new("room_closed", "the room is closed"));
        }
        outgoing::frames(
            &self.specs[lane],
            data,
            self.options.frame_bytes,
            self.options.max_message_bytes,
        )
    }

    fn send_frames(
        &mut self,
        peer: PeerId,
        lane: usize,
        frames: Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        outgoing::recipient(peer, self.core.member(peer))?;
        let Some(linked) = self.links.get_mut(&peer) else {
            return Err(Error::new(
                "peer_not_connected",
                format!("no connection to {peer}"),
            ));
        };
        let result = linked.link.send(lane, frames);
        self.handle_outcomes(peer);
        result
    }

    /// Sends `data` to every connected peer on lane `lane`; returns how many it went to.
    pub(crate) fn broadcast(&mut self, lane: usize, data: &Data) -> Result<usize, Error> {
        let frames = self.frames(lane, data)?;
        let targets: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(_, l)| l.link.is_open())
            .map(|(peer, _)| *peer)
            .collect();
        outgoing::to_each(targets, |peer| self.send_frames(peer, lane, frames.clone()))
    }

    /// Takes lane `lane` out of the events: its messages go to `socket` from now on.
    /// `channel_taken` when another socket has it.
    pub(crate) fn divert(
        &mut self,
        lane: usize,
        socket: UnboundedSender<(PeerId, Data)>,
    ) -> Result<(), Error> {
        if self.diverted.contains_key(&lane) {
            return Err(Error::new(
                "channel_taken",
                format!("channel {} is already taken", self.specs[lane].name),
            ));
        }
        self.diverted.insert(lane, socket);
        Ok(())
    }

    /// Gives lane `lane` back to the events.
    pub(crate) fn give_back(&mut self, lane: usize) {
        self.diverted.remove(&lane);
    }

    /// Sends a message to the hub on the application's behalf.
    pub(crate) fn hub(&mut self, message: &ClientMessage) -> Result<(), Error> {
        if self.done {
            return Err(Error::new("room_closed", "the room is closed"));
        }
        self.transmit(message);
        Ok(())
    }

    /// The application leaves: goodbyes to every peer, then the socket closes.
    pub(crate) fn close(&mut self) {
        let actions = self
            .core
            .shutdown("room_closed", "closed by the application");
        self.perform(actions);
    }

    /// The end: every link closed with a goodbye, the socket closed normally, callbacks detached.
    fn finish(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        self.heartbeat = None;
        for (_, mut linked) in self.links.drain() {
            linked.link.close("closed");
        }
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        if self.signaling_open {
            self.signaling_open = false;
            let _ = self.ws.close_with_code_and_reason(1000, "closed");
        }
    }
}

/// A frame of the signaling socket decoded (`None`: neither text nor binary).
pub(crate) fn decode(
    data: &JsValue,
    encoding: Encoding,
) -> Option<Result<ServerMessage, ProtocolError>> {
    if let Some(text) = data.as_string() {
        Some(decode_server(Frame::Text(text.as_bytes()), encoding))
    } else {
        let buffer = data.dyn_ref::<ArrayBuffer>()?;
        let bytes = Uint8Array::new(buffer).to_vec();
        Some(decode_server(Frame::Binary(&bytes), encoding))
    }
}

impl LinkOwner for Shell {
    type Key = (PeerId, u64);

    fn link(&mut self, (peer, serial): Self::Key) -> Option<&mut Link> {
        self.link_mut(peer, serial)
    }

    fn outcomes(&mut self, (peer, _): Self::Key) {
        self.handle_outcomes(peer);
    }
}
