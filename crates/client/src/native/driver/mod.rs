//! The room's task: one loop over the signaling WebSocket, the UDP socket, the application's
//! commands and the timers. It carries out the room core's actions and drives each link.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use str0m::Candidate;
use switchboard_protocol::{
    decode_server, encode_client, ClientMessage, Data, Encoded, Encoding, Frame, PeerId, Welcome,
};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod moving;

use moving::{opening, Opening};

use super::ice;
use super::link::{Limits, Link, Outcome};
use super::room::{lock, View};
use crate::channels::ChannelSpec;
use crate::event::Event;
use crate::options::JoinOptions;
use crate::room_core::{Action, RoomCore};
use crate::signaling_move::is_drain;
use crate::Error;

/// The signaling WebSocket.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Closes a WebSocket we are done with: our close frame, then whatever is still on its way until
/// the other side's close, a second at most. Dropped with unread input, the socket would be reset
/// by the kernel, and the other side could miss the close (a hub takes that for a lost
/// connection, a server peer reports `websocket_closed` instead of the goodbye).
pub(crate) async fn close_handshake(ws: &mut Ws, close: Option<CloseFrame>) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        if ws.close(close).await.is_err() {
            return;
        }
        while let Some(Ok(message)) = ws.next().await {
            if matches!(message, WsMessage::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// What the application asks of the task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Frames of one message to a peer on a channel (already checked and counted).
    Send {
        peer: PeerId,
        lane: usize,
        frames: Vec<Vec<u8>>,
    },
    /// A message to the hub.
    Hub(ClientMessage),
    /// Leave the room.
    Close,
}

/// Everything the task starts with.
pub(crate) struct Setup {
    /// The room URL the join used (a move to another node connects to it again).
    pub url: String,
    pub ws: Ws,
    pub socket: UdpSocket,
    pub hosts: Vec<SocketAddr>,
    pub candidates: Vec<Candidate>,
    pub fingerprint: String,
    pub specs: Vec<ChannelSpec>,
    pub options: JoinOptions,
    pub welcome: Box<Welcome>,
    pub view: Arc<Mutex<View>>,
    pub events: mpsc::UnboundedSender<Event>,
    pub commands: mpsc::UnboundedReceiver<Command>,
}

struct Task {
    url: String,
    options: JoinOptions,
    /// The latest resume token, if the join asked for one.
    resume_token: Option<String>,
    /// How long the server keeps the room's place for a resume (a move is tried that long).
    resume_grace: Duration,
    /// The signaling socket's replacement, while the room moves to another server node.
    moving: Option<Opening>,
    ws: Ws,
    socket: UdpSocket,
    hosts: Vec<SocketAddr>,
    candidates: Vec<Candidate>,
    fingerprint: String,
    specs: Vec<ChannelSpec>,
    encoding: Encoding,
    limits: Limits,
    core: RoomCore,
    links: HashMap<PeerId, Link>,
    view: Arc<Mutex<View>>,
    events: mpsc::UnboundedSender<Event>,
    /// Datagrams to send, gathered while driving links.
    outgoing: Vec<(SocketAddr, Vec<u8>)>,
    /// Messages for the hub, gathered while handling actions.
    to_hub: Vec<ClientMessage>,
    signaling_open: bool,
    done: bool,
}

/// Most datagrams or application commands taken in one wake-up before the links are driven:
/// a burst of sends (or of packets) is handled together, and the loop still gets back to its
/// other inputs soon.
const BATCH: usize = 256;

/// Runs the room until it is closed.
pub(crate) async fn run(setup: Setup) {
    let Setup {
        url,
        ws,
        socket,
        hosts,
        candidates,
        fingerprint,
        specs,
        options,
        welcome,
        view,
        events,
        mut commands,
    } = setup;
    let heartbeat = Duration::from_millis(welcome.heartbeat_ms.max(100));
    let silence = Duration::from_millis(welcome.idle_timeout_ms).max(heartbeat * 2);
    let mut task = Task {
        url,
        resume_token: welcome.resume_token.clone(),
        resume_grace: Duration::from_millis(welcome.resume_grace_ms),
        moving: None,
        ws,
        socket,
        hosts,
        candidates,
        fingerprint,
        specs,
        encoding: options.encoding,
        limits: Limits {
            max_message_bytes: options.max_message_bytes,
            connect_timeout: options.connect_timeout,
            disconnect_timeout: options.disconnect_timeout,
            max_queued_candidates: options.max_queued_candidates,
        },
        core: RoomCore::new(&welcome),
        options,
        links: HashMap::new(),
        view,
        events,
        outgoing: Vec::new(),
        to_hub: Vec::new(),
        signaling_open: true,
        done: false,
    };
    let actions = task.core.begin(&welcome);
    task.perform(actions);
    task.drive().await;
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(heartbeat);
    let mut nonce = 0u64;
    let mut buf = vec![0u8; 2048];
    while !task.done {
        let deadline = task.next_deadline();
        tokio::select! {
            frame = task.ws.next(), if task.signaling_open => {
                last_heard = Instant::now();
                task.frame(frame);
            }
            opened = opening(&mut task.moving), if task.moving.is_some() => {
                task.moving = None;
                last_heard = Instant::now();
                task.moved(opened).await;
            }
            received = task.socket.recv_from(&mut buf) => {
                if let Ok((n, source)) = received {
                    task.datagram(source, &buf[..n]);
                }
                // What else has arrived goes in before the links are driven once.
                for _ in 1..BATCH {
                    let Ok((n, source)) = task.socket.try_recv_from(&mut buf) else {
                        break;
                    };
                    task.datagram(source, &buf[..n]);
                }
            }
            command = commands.recv() => {
                let mut next = command;
                for taken in 1..=BATCH {
                    match next {
                        Some(Command::Send { peer, lane, frames }) => task.send(peer, lane, frames),
                        Some(Command::Hub(message)) => task.to_hub.push(message),
                        Some(Command::Close) | None => {
                            task.close().await;
                            break;
                        }
                    }
                    if taken == BATCH {
                        break;
                    }
                    match commands.try_recv() {
                        Ok(command) => next = Some(command),
                        Err(_) => break,
                    }
                }
            }
            _ = ping.tick(), if task.signaling_open => {
                if last_heard.elapsed() > silence {
                    let actions = task.core.shutdown("server_timeout", &format!("nothing from the server for {silence:?}"));
                    task.perform(actions);
                } else {
                    nonce = nonce.wrapping_add(1);
                    task.to_hub.push(ClientMessage::Ping { nonce: Some(nonce) });
                }
            }
            () = tokio::time::sleep_until(deadline.into()) => {}
        }
        task.drive().await;
    }
    task.finish().await;
}

impl Task {
    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// A frame (or the end) of the signaling socket.
    fn frame(&mut self, frame: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>) {
        let message = match frame {
            Some(Ok(WsMessage::Text(text))) => {
                decode_server(Frame::Text(text.as_bytes()), self.encoding)
            }
            Some(Ok(WsMessage::Binary(bytes))) => {
                decode_server(Frame::Binary(&bytes), self.encoding)
            }
            Some(Ok(WsMessage::Close(close))) => {
                let (code, reason) = close.map_or((1005, String::new()), |c| {
                    (u16::from(c.code), c.reason.to_string())
                });
                if is_drain(code, &reason) {
                    if let Some(token) = self.resume_token.clone() {
                        self.move_signaling(token);
                        return;
                    }
                }
                self.signaling_closed(code, &reason);
                return;
            }
            Some(Ok(_)) => return,
            Some(Err(error)) => {
                self.signaling_closed(1006, &error.to_string());
                return;
            }
            None => {
                self.signaling_closed(1006, "the connection dropped");
                return;
            }
        };
        let actions = self.core.server_frame(message);
        self.perform(actions);
    }

    /// The server closed the signaling socket: on purpose after `detach` (the room goes on over
    /// the peer connections), else the room is over.
    fn signaling_closed(&mut self, code: u16, reason: &str) {
        self.signaling_open = false;
        let actions = self.core.signaling_closed(code, reason);
        self.perform(actions);
    }

    fn datagram(&mut self, source: SocketAddr, contents: &[u8]) {
        let destination = ice::destination_for(&self.hosts, source);
        let now = Instant::now();
        if let Some(link) = self
            .links
            .values_mut()
            .find(|l| l.accepts(source, destination, contents))
        {
            link.receive(now, source, destination, contents);
            // str0m's contract: every input is followed by draining its output (before the
            // next datagram of a batch goes in).
            let outgoing = &mut self.outgoing;
            link.poll(now, &mut |_, to, bytes| outgoing.push((to, bytes.to_vec())));
        }
    }

    fn send(&mut self, peer: PeerId, lane: usize, frames: Vec<Vec<u8>>) {
        let size: usize = frames.iter().map(Vec::len).sum();
        match self.links.get_mut(&peer) {
            Some(link) if link.is_open() => {
                link.send(lane, frames);
            }
            // Gone meanwhile: what it counted is released.
            _ => self.written(peer, size),
        }
    }

    fn written(&self, peer: PeerId, bytes: usize) {
        let mut view = lock(&self.view);
        if let Some(queued) = view.queued.get_mut(&peer) {
            *queued = queued.saturating_sub(bytes);
        }
    }

    /// Carries out the room core's actions. Events go out after the view is published, so an
    /// application that reacts to `PeerConnected` can `send` at once.
    fn perform(&mut self, actions: Vec<Action>) {
        let mut events = Vec::new();
        for action in actions {
            match action {
                Action::Emit(event) => events.push(event),
                Action::Link(peer, role) => {
                    let link = Link::new(
                        role,
                        &self.specs,
                        &self.fingerprint,
                        &self.candidates,
                        self.limits.clone(),
                        Instant::now(),
                    );
                    self.links.insert(peer, link);
                }
                Action::Unlink(peer) => {
                    if let Some(mut link) = self.links.remove(&peer) {
                        let outgoing = &mut self.outgoing;
                        link.close(Instant::now(), &mut |_, to, bytes| {
                            outgoing.push((to, bytes.to_vec()))
                        });
                    }
                    lock(&self.view).queued.remove(&peer);
                }
                Action::Signal(peer, signal) => {
                    if let Some(link) = self.links.get_mut(&peer) {
                        link.signal(signal);
                    }
                }
                Action::Transmit(message) => self.to_hub.push(message),
                Action::Shutdown => self.done = true,
            }
        }
        self.publish();
        for event in events {
            self.emit(event);
        }
    }

    /// Drives every link, sends what they produced, and handles their outcomes (which may make
    /// more actions) until nothing is left to do.
    async fn drive(&mut self) {
        loop {
            let now = Instant::now();
            let mut outcomes: Vec<(PeerId, Outcome)> = Vec::new();
            for (peer, link) in &mut self.links {
                if link.next_poll(now) <= now {
                    let outgoing = &mut self.outgoing;
                    link.poll(now, &mut |_, to, bytes| outgoing.push((to, bytes.to_vec())));
                }
                outcomes.extend(link.take_outcomes().into_iter().map(|o| (*peer, o)));
            }
            for (to, bytes) in self.outgoing.drain(..) {
                // UDP: a datagram the kernel refuses is lost like any other; ICE and SCTP
                // retransmit.
                let _ = self.socket.try_send_to(&bytes, to);
            }
            let again = !outcomes.is_empty();
            for (peer, outcome) in outcomes {
                self.outcome(peer, outcome);
            }
            self.flush_hub().await;
            if !again {
                return;
            }
        }
    }

    fn outcome(&mut self, peer: PeerId, outcome: Outcome) {
        match outcome {
            Outcome::Signal(signal) => self.to_hub.extend(signal.to_message(peer)),
            Outcome::Open => {
                let actions = self.core.link_open(peer);
                self.perform(actions);
            }
            Outcome::Message(lane, data) => {
                let data = match self.divert(lane, peer, data) {
                    Some(data) => data,
                    None => return,
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
            Outcome::Written(bytes) => self.written(peer, bytes),
            Outcome::Closed(reason) => {
                self.links.remove(&peer);
                lock(&self.view).queued.remove(&peer);
                let actions = self.core.link_closed(peer, reason);
                self.perform(actions);
            }
        }
    }

    /// Hands a message to the socket that took its channel, if one did; else gives it back.
    fn divert(&self, lane: usize, peer: PeerId, data: Data) -> Option<Data> {
        let view = lock(&self.view);
        let Some(socket) = view.diverted.get(&lane) else {
            return Some(data);
        };
        match socket.send((peer, data)) {
            Ok(()) => None,
            // The socket is being dropped: the room's events have the channel again.
            Err(returned) => Some(returned.0 .1),
        }
    }

    /// Sends the messages for the hub, in order. While the signaling moves they wait (at most
    /// `signaling_move::MAX_WAITING`; later ones are dropped and reported).
    async fn flush_hub(&mut self) {
        if self.moving.is_some() {
            self.hold_for_move();
            return;
        }
        if !self.signaling_open {
            self.to_hub.clear();
            return;
        }
        for message in std::mem::take(&mut self.to_hub) {
            let frame = match encode_client(&message, self.encoding) {
                Ok(Encoded::Text(text)) => WsMessage::text(text),
                Ok(Encoded::Binary(bytes)) => WsMessage::binary(bytes),
                Err(error) => {
                    self.emit(Event::Error {
                        error: Error::new("invalid_message", error.to_string()),
                        peer: None,
                    });
                    continue;
                }
            };
            if self.ws.send(frame).await.is_err() {
                self.signaling_closed(1006, "");
                return;
            }
        }
    }

    /// The view the handle reads: members, connection states, room info.
    fn publish(&self) {
        let mut view = lock(&self.view);
        view.peers = self.core.peers().map(|(p, c)| (p.clone(), c)).collect();
        view.info = self.core.info().clone();
        view.closed = self.done;
    }

    /// When the loop must wake up for the links, at the latest in a second.
    fn next_deadline(&self) -> Instant {
        let now = Instant::now();
        self.links
            .values()
            .map(|link| link.next_poll(now))
            .fold(now + Duration::from_secs(1), Instant::min)
    }

    /// The application leaves: goodbyes to every peer, then the room core's end.
    async fn close(&mut self) {
        let actions = self
            .core
            .shutdown("room_closed", "closed by the application");
        self.perform(actions);
    }

    /// The end: every link closed (goodbyes sent), the signaling socket closed normally.
    async fn finish(&mut self) {
        let now = Instant::now();
        for (_, mut link) in self.links.drain() {
            let outgoing = &mut self.outgoing;
            link.close(now, &mut |_, to, bytes| outgoing.push((to, bytes.to_vec())));
        }
        for (to, bytes) in self.outgoing.drain(..) {
            let _ = self.socket.try_send_to(&bytes, to);
        }
        if self.signaling_open {
            let close = CloseFrame {
                code: 1000.into(),
                reason: "closed".into(),
            };
            close_handshake(&mut self.ws, Some(close)).await;
        }
        lock(&self.view).closed = true;
    }
}
