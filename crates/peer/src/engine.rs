//! The network loop: one task owns the UDP socket and every peer's `str0m::Rtc`. Datagrams are
//! routed by `demux`; plain STUN is answered with `switchboard_stun`; each `Rtc` is driven by the
//! str0m contract (one mutation, then drain `poll_output` to a timeout). Peers on the WebSocket
//! fallback are a queue of outgoing frames each (their sockets are served by `socket`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event as RtcEvent, IceConnectionState, Input, Output, Rtc};
use switchboard_protocol::frame::{self, Message, Reassembler};
use switchboard_protocol::PeerId;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::addrs;
use crate::api::{Channel, ConnectError, Data, Event, EventQueue, StartError, Transport};
use crate::config::PeerConfig;
use crate::demux::{Route, Routes};

/// What the handles ask of the loop.
pub(crate) enum Command {
    Connect {
        offer: String,
        reply: oneshot::Sender<Result<(PeerId, String), ConnectError>>,
    },
    Send {
        peers: Option<Vec<PeerId>>,
        channel: Channel,
        data: Data,
    },
    Kick {
        peer: PeerId,
        reason: String,
    },
    /// Hub way: make an offer to this (hub) peer.
    Offer {
        peer: PeerId,
        reply: oneshot::Sender<Result<String, ConnectError>>,
    },
    /// Hub way: the peer's answer.
    Answer {
        peer: PeerId,
        sdp: String,
    },
    /// Hub way: the peer left the hub room.
    Drop {
        peer: PeerId,
        reason: String,
    },
    /// How many peers the loop holds (open or connecting).
    Count {
        reply: oneshot::Sender<usize>,
    },
    /// How a peer is connected.
    Transport {
        peer: PeerId,
        reply: oneshot::Sender<Option<Transport>>,
    },
    /// WebSocket fallback: a new peer; the loop keeps the sender of its outgoing frames.
    Attach {
        reply: oneshot::Sender<Result<Attached, ConnectError>>,
    },
    /// WebSocket fallback: a whole message from a peer.
    SocketReceived {
        peer: PeerId,
        channel: Channel,
        data: Data,
    },
    Shutdown,
}

/// A WebSocket peer's id and the queue of frames to send it.
pub(crate) type Attached = (PeerId, mpsc::Receiver<Vec<u8>>);

/// The browser client's channels, as its offers describe them (`channelsFingerprint`).
pub(crate) const CHANNELS_FINGERPRINT: &str = "0:reliable:o:-:-,1:unreliable:u:0:-";

/// Each channel and its label.
const CHANNELS: [(Channel, &str); 2] = [
    (Channel::Reliable, "reliable"),
    (Channel::Unreliable, "unreliable"),
];

/// A channel's pre-negotiated data channel id, also its byte on the WebSocket fallback.
pub(crate) const fn channel_id(channel: Channel) -> u8 {
    match channel {
        Channel::Reliable => 0,
        Channel::Unreliable => 1,
    }
}

/// The channel with this id.
pub(crate) fn channel_by_id(id: u8) -> Option<Channel> {
    match id {
        0 => Some(Channel::Reliable),
        1 => Some(Channel::Unreliable),
        _ => None,
    }
}

/// Most datagrams, or commands, handled in one wake-up of the loop before it looks at the rest.
const BATCH: usize = 64;
/// Longest the loop sleeps when no peer has a timeout.
const IDLE: Duration = Duration::from_secs(1);
/// A placeholder timeout for a new peer, before its first drain.
const UNSCHEDULED: Duration = Duration::from_secs(365 * 24 * 3600);

/// A pre-negotiated channel with the browser client's fixed id and properties.
fn channel_config(channel: Channel, label: &str) -> ChannelConfig {
    ChannelConfig {
        label: label.to_owned(),
        ordered: channel == Channel::Reliable,
        reliability: match channel {
            Channel::Reliable => Reliability::Reliable,
            Channel::Unreliable => Reliability::MaxRetransmits { retransmits: 0 },
        },
        negotiated: Some(u16::from(channel_id(channel))),
        protocol: String::new(),
    }
}

struct Slot {
    rtc: Rtc,
    channels: HashMap<ChannelId, Channel>,
    ids: HashMap<Channel, ChannelId>,
    reliable: Reassembler,
    unreliable: Reassembler,
    /// Channels whose `ChannelOpen` came.
    opened: Vec<ChannelId>,
    open: bool,
    /// Hub way: our offer, waiting for the answer.
    pending: Option<SdpPendingOffer>,
    timeout: Instant,
    connect_by: Instant,
}

impl Slot {
    /// Whether `at` is still one of this peer's deadlines (not a stale heap entry).
    fn is_due_at(&self, at: Instant) -> bool {
        at == self.timeout || (!self.open && at == self.connect_by)
    }
}

struct Engine {
    socket: UdpSocket,
    /// One DTLS certificate for every peer: generating one per connection costs milliseconds of
    /// CPU and kilobytes of memory each, and a server's identity is one certificate anyway.
    dtls_cert: Option<str0m::config::DtlsCert>,
    config: PeerConfig,
    advertised: Vec<SocketAddr>,
    routes: Routes,
    peers: HashMap<PeerId, Slot>,
    /// Peers on the WebSocket fallback: the queue of frames to their socket, each a channel byte
    /// and a data channel frame. Dropping a sender ends the socket.
    sockets: HashMap<PeerId, mpsc::Sender<Vec<u8>>>,
    /// Every peer's next deadline (str0m timeout, or connect timeout while half-open), earliest
    /// first. Entries go stale when a peer's timeout moves; they are skipped when they surface.
    deadlines: BinaryHeap<Reverse<(Instant, PeerId)>>,
    events: Arc<EventQueue>,
    stun_out: Vec<u8>,
}

/// Binds the socket and spawns the loop; returns the command sender, bound and advertised addresses.
pub(crate) async fn start(
    config: PeerConfig,
    events: Arc<EventQueue>,
) -> Result<(mpsc::Sender<Command>, SocketAddr, Vec<SocketAddr>), StartError> {
    let socket = UdpSocket::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let local = socket.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let advertised = addrs::advertised(local, &config.public_ips);
    let (commands, inbox) = mpsc::channel(config.command_queue.max(1));
    let dtls_cert = str0m::crypto::from_feature_flags()
        .dtls_provider
        .generate_certificate();
    let engine = Engine {
        socket,
        dtls_cert,
        config,
        advertised: advertised.clone(),
        routes: Routes::default(),
        peers: HashMap::new(),
        sockets: HashMap::new(),
        deadlines: BinaryHeap::new(),
        events,
        stun_out: vec![0; switchboard_stun::MAX_RESPONSE_LEN],
    };
    tokio::spawn(engine.run(inbox));
    Ok((commands, local, advertised))
}

impl Engine {
    async fn run(mut self, mut inbox: mpsc::Receiver<Command>) {
        let mut buf = vec![0u8; 2048];
        'serve: loop {
            let wake = self.next_deadline().min(Instant::now() + IDLE);
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    match received {
                        Ok((n, source)) => self.datagram(&buf[..n], source),
                        Err(error) => tracing::debug!(%error, "udp receive error"),
                    }
                    // Datagrams already waiting are handled in the same wake-up: under load this
                    // saves a trip through the scheduler and epoll per datagram.
                    for _ in 1..BATCH {
                        let Ok((n, source)) = self.socket.try_recv_from(&mut buf) else {
                            break;
                        };
                        self.datagram(&buf[..n], source);
                    }
                }
                command = inbox.recv() => {
                    let mut next = command;
                    let mut handled = 0;
                    while let Some(command) = next.take() {
                        if matches!(command, Command::Shutdown) {
                            break 'serve;
                        }
                        self.command(command);
                        handled += 1;
                        if handled < BATCH {
                            next = inbox.try_recv().ok();
                        }
                    }
                    if handled == 0 {
                        // Every handle is gone.
                        break 'serve;
                    }
                }
                () = tokio::time::sleep_until(wake.into()) => self.timeouts(),
            }
        }
        let peers: Vec<PeerId> = self
            .peers
            .keys()
            .chain(self.sockets.keys())
            .copied()
            .collect();
        for peer in peers {
            self.close(peer, "shutdown".into());
        }
    }

    fn datagram(&mut self, datagram: &[u8], source: SocketAddr) {
        match self.routes.route(datagram, source) {
            Route::Stun => {
                let action = switchboard_stun::respond(
                    datagram,
                    source,
                    switchboard_stun::SOFTWARE,
                    &mut self.stun_out,
                );
                if let switchboard_stun::Action::Reply(n)
                | switchboard_stun::Action::ReplyError(n) = action
                {
                    let _ = self.socket.try_send_to(&self.stun_out[..n], source);
                }
            }
            Route::Drop => {}
            Route::Peer(peer) => {
                let destination = self.destination_for(source);
                let Some(slot) = self.peers.get_mut(&peer) else {
                    return;
                };
                let Ok(receive) = Receive::new(Protocol::Udp, source, destination, datagram) else {
                    return;
                };
                let result = slot
                    .rtc
                    .handle_input(Input::Receive(Instant::now(), receive));
                self.after(peer, result.map_err(|e| e.to_string()));
            }
        }
    }

    /// The local address a datagram was sent to, as str0m needs it: the advertised address of the
    /// source's kind (loopback for loopback sources), since the socket may be bound to a wildcard.
    fn destination_for(&self, source: SocketAddr) -> SocketAddr {
        let same_family = |a: &&SocketAddr| a.is_ipv4() == source.is_ipv4();
        self.advertised
            .iter()
            .filter(same_family)
            .find(|a| a.ip().is_loopback() == source.ip().is_loopback())
            .or_else(|| self.advertised.iter().find(same_family))
            .or(self.advertised.first())
            .copied()
            .unwrap_or(source)
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Connect { offer, reply } => {
                let _ = reply.send(self.connect(&offer));
            }
            Command::Send {
                peers,
                channel,
                data,
            } => {
                let targets: Vec<PeerId> = match peers {
                    Some(peers) => peers,
                    None => self
                        .peers
                        .iter()
                        .filter(|(_, s)| s.open)
                        .map(|(p, _)| *p)
                        .chain(self.sockets.keys().copied())
                        .collect(),
                };
                for peer in targets {
                    self.send(peer, channel, &data);
                }
            }
            Command::Kick { peer, reason } => {
                if self.peers.contains_key(&peer) || self.sockets.contains_key(&peer) {
                    self.write(peer, Channel::Reliable, &frame::goodbye(&reason));
                    self.close(peer, format!("kicked: {reason}"));
                }
            }
            Command::Offer { peer, reply } => {
                let _ = reply.send(self.offer(peer));
            }
            Command::Answer { peer, sdp } => {
                let Some(slot) = self.peers.get_mut(&peer) else {
                    return;
                };
                let (Some(pending), Ok(answer)) =
                    (slot.pending.take(), SdpAnswer::from_sdp_string(&sdp))
                else {
                    tracing::debug!(%peer, "unexpected or invalid answer: dropped");
                    return;
                };
                let result = slot
                    .rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .map_err(|e| e.to_string());
                self.after(peer, result);
            }
            Command::Drop { peer, reason } => self.close(peer, reason),
            Command::Count { reply } => {
                let _ = reply.send(self.peer_count());
            }
            Command::Transport { peer, reply } => {
                let transport = if self.sockets.contains_key(&peer) {
                    Some(Transport::WebSocket)
                } else {
                    self.peers
                        .get(&peer)
                        .filter(|slot| slot.open)
                        .map(|_| Transport::WebRtc)
                };
                let _ = reply.send(transport);
            }
            Command::Attach { reply } => {
                let _ = reply.send(self.attach());
            }
            Command::SocketReceived {
                peer,
                channel,
                data,
            } => {
                // Not after `Closed`: a kicked peer's last messages are dropped.
                if self.sockets.contains_key(&peer) {
                    self.events.push(Event::Received(peer, channel, data));
                }
            }
            Command::Shutdown => {}
        }
    }

    /// A new `Rtc` for a peer, ice-lite, with this server's candidates.
    fn new_rtc(&self, now: Instant) -> Rtc {
        // Data channels only: no codecs, no periodic stats.
        let mut config = Rtc::builder()
            .set_ice_lite(true)
            .clear_codecs()
            .set_stats_interval(None);
        if let Some(cert) = &self.dtls_cert {
            config = config.set_dtls_cert(cert.clone());
        }
        let mut rtc = config.build(now);
        for addr in &self.advertised {
            if let Ok(candidate) = Candidate::host(*addr, "udp") {
                rtc.add_local_candidate(candidate);
            }
        }
        rtc
    }

    fn new_slot(&self, rtc: Rtc, now: Instant) -> Slot {
        let max = self.config.max_message_bytes;
        Slot {
            rtc,
            channels: HashMap::new(),
            ids: HashMap::new(),
            reliable: Reassembler::new(max),
            unreliable: Reassembler::new(max),
            opened: Vec::new(),
            open: false,
            pending: None,
            // Not a real deadline: the first drain replaces it and schedules the real one.
            timeout: now + UNSCHEDULED,
            connect_by: now + self.config.connect_timeout,
        }
    }

    /// Hub way: the server offers (its candidates in the offer; an ice-lite server needs none of
    /// the browser's, it answers the browser's checks).
    fn offer(&mut self, peer: PeerId) -> Result<String, ConnectError> {
        if self.peers.contains_key(&peer) {
            return Err(ConnectError::InvalidOffer(
                "already connecting to this peer".into(),
            ));
        }
        if self.peer_count() >= self.config.max_peers {
            return Err(ConnectError::Full(self.config.max_peers));
        }
        let now = Instant::now();
        let mut rtc = self.new_rtc(now);
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        let mut api = rtc.sdp_api();
        let ids: Vec<(Channel, ChannelId)> = CHANNELS
            .iter()
            .map(|&(channel, label)| {
                (
                    channel,
                    api.add_channel_with_config(channel_config(channel, label)),
                )
            })
            .collect();
        let Some((offer, pending)) = api.apply() else {
            return Err(ConnectError::InvalidOffer("no offer".into()));
        };
        let mut slot = self.new_slot(rtc, now);
        for (channel, cid) in ids {
            slot.channels.insert(cid, channel);
            slot.ids.insert(channel, cid);
        }
        slot.pending = Some(pending);
        self.deadlines.push(Reverse((slot.connect_by, peer)));
        self.peers.insert(peer, slot);
        self.routes.add_peer(peer, ufrag);
        self.drain(peer).map_err(ConnectError::InvalidOffer)?;
        Ok(offer.to_sdp_string())
    }

    /// Peers on both transports, open or connecting.
    fn peer_count(&self) -> usize {
        self.peers.len() + self.sockets.len()
    }

    /// WebSocket fallback: a new peer, open at once.
    fn attach(&mut self) -> Result<Attached, ConnectError> {
        if self.peer_count() >= self.config.max_peers {
            return Err(ConnectError::Full(self.config.max_peers));
        }
        let peer = PeerId::from_u128(rand::random());
        let (frames, outgoing) = mpsc::channel(self.config.socket_queue.max(1));
        self.sockets.insert(peer, frames);
        self.events.push(Event::Open(peer));
        Ok((peer, outgoing))
    }

    fn connect(&mut self, offer: &str) -> Result<(PeerId, String), ConnectError> {
        if self.peer_count() >= self.config.max_peers {
            return Err(ConnectError::Full(self.config.max_peers));
        }
        let offer = SdpOffer::from_sdp_string(offer)
            .map_err(|e| ConnectError::InvalidOffer(e.to_string()))?;
        let now = Instant::now();
        let mut rtc = self.new_rtc(now);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| ConnectError::InvalidOffer(e.to_string()))?;
        let peer = PeerId::from_u128(rand::random());
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        let slot = self.new_slot(rtc, now);
        self.deadlines.push(Reverse((slot.connect_by, peer)));
        self.peers.insert(peer, slot);
        self.routes.add_peer(peer, ufrag);
        self.drain(peer).map_err(ConnectError::InvalidOffer)?;
        // The browser client's channels are pre-negotiated with fixed ids: create the same.
        for (channel, label) in CHANNELS {
            if let Some(slot) = self.peers.get_mut(&peer) {
                let cid = slot
                    .rtc
                    .direct_api()
                    .create_data_channel(channel_config(channel, label));
                slot.channels.insert(cid, channel);
                slot.ids.insert(channel, cid);
            }
            self.drain(peer).map_err(ConnectError::InvalidOffer)?;
        }
        Ok((peer, answer.to_sdp_string()))
    }

    fn send(&mut self, peer: PeerId, channel: Channel, data: &Data) {
        let text = matches!(data, Data::Text(_));
        let chunked = channel == Channel::Reliable;
        let Some(frames) = frame::encode(
            text,
            data.as_bytes(),
            self.config.frame_bytes,
            chunked,
            self.config.max_message_bytes,
        ) else {
            tracing::debug!(%peer, "message too big for its channel: dropped");
            return;
        };
        for frame in frames {
            self.write(peer, channel, &frame);
        }
    }

    fn write(&mut self, peer: PeerId, channel: Channel, frame: &[u8]) {
        if let Some(socket) = self.sockets.get(&peer) {
            let mut message = Vec::with_capacity(frame.len() + 1);
            message.push(channel_id(channel));
            message.extend_from_slice(frame);
            match socket.try_send(message) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) if channel == Channel::Unreliable => {
                    tracing::debug!(%peer, "websocket peer's queue is full: unreliable frame dropped");
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.close(peer, "send_queue_full".into());
                }
                // The socket task is ending; its `Drop` comes next.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
            return;
        }
        let Some(slot) = self.peers.get_mut(&peer) else {
            return;
        };
        if !slot.open {
            return;
        }
        let Some(&cid) = slot.ids.get(&channel) else {
            return;
        };
        let result = match slot.rtc.channel(cid) {
            Some(mut writer) => writer
                .write(true, frame)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Ok(()),
        };
        self.after(peer, result);
    }

    /// The earliest deadline still current, dropping stale heap entries on the way.
    fn next_deadline(&mut self) -> Instant {
        while let Some(Reverse((at, peer))) = self.deadlines.peek().copied() {
            if self.peers.get(&peer).is_some_and(|s| s.is_due_at(at)) {
                return at;
            }
            self.deadlines.pop();
        }
        Instant::now() + IDLE
    }

    /// Handles every peer whose deadline has come: drives its timers, or drops it half-open.
    fn timeouts(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(Reverse((at, peer))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.peers.get(&peer).is_some_and(|s| s.is_due_at(at)) && !due.contains(&peer) {
                due.push(peer);
            }
        }
        for peer in due {
            let Some(slot) = self.peers.get_mut(&peer) else {
                continue;
            };
            if !slot.open && slot.connect_by <= now {
                tracing::debug!(%peer, "half-open peer dropped after connect_timeout");
                self.close(peer, "connect_timeout".into());
                continue;
            }
            let result = slot
                .rtc
                .handle_input(Input::Timeout(now))
                .map_err(|e| e.to_string());
            self.after(peer, result);
        }
    }

    /// After a mutation: drain, or close the peer if the mutation failed.
    fn after(&mut self, peer: PeerId, result: Result<(), String>) {
        let outcome = result.and_then(|()| self.drain(peer));
        if let Err(reason) = outcome {
            self.close(peer, reason);
        }
    }

    /// Drains `poll_output` to the next timeout: sends, events. Returns why to close, if so.
    fn drain(&mut self, peer: PeerId) -> Result<(), String> {
        loop {
            let Some(slot) = self.peers.get_mut(&peer) else {
                return Ok(());
            };
            if !slot.rtc.is_alive() {
                return Err("closed".into());
            }
            match slot.rtc.poll_output().map_err(|e| e.to_string())? {
                Output::Timeout(at) => {
                    if at != slot.timeout {
                        slot.timeout = at;
                        self.deadlines.push(Reverse((at, peer)));
                    }
                    return Ok(());
                }
                Output::Transmit(transmit) => {
                    let _ = self
                        .socket
                        .try_send_to(&transmit.contents, transmit.destination);
                }
                Output::Event(event) => self.event(peer, event)?,
            }
        }
    }

    fn event(&mut self, peer: PeerId, event: RtcEvent) -> Result<(), String> {
        let Some(slot) = self.peers.get_mut(&peer) else {
            return Ok(());
        };
        match event {
            RtcEvent::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                return Err("ice_disconnected".into())
            }
            RtcEvent::ChannelOpen(cid, _) if slot.channels.contains_key(&cid) => {
                if !slot.opened.contains(&cid) {
                    slot.opened.push(cid);
                }
                if !slot.open && slot.opened.len() == slot.channels.len() {
                    slot.open = true;
                    self.events.push(Event::Open(peer));
                }
            }
            RtcEvent::ChannelClose(_) | RtcEvent::Closed => return Err("channel_closed".into()),
            RtcEvent::ChannelData(data) => {
                let Some(&channel) = slot.channels.get(&data.id) else {
                    return Ok(());
                };
                let reassembler = match channel {
                    Channel::Reliable => &mut slot.reliable,
                    Channel::Unreliable => &mut slot.unreliable,
                };
                let message = if data.binary {
                    reassembler.push(&data.data)
                } else {
                    // An unframed string from a non-Switchboard peer: deliver as text.
                    Ok(Some(Message::Text(
                        String::from_utf8_lossy(&data.data).into_owned(),
                    )))
                };
                match message {
                    Ok(Some(Message::Binary(bytes))) => {
                        self.events
                            .push(Event::Received(peer, channel, Data::Binary(bytes)))
                    }
                    Ok(Some(Message::Text(text))) => {
                        self.events
                            .push(Event::Received(peer, channel, Data::Text(text)))
                    }
                    Ok(Some(Message::Goodbye(reason))) => return Err(format!("goodbye: {reason}")),
                    Ok(None) => {}
                    Err(error) => tracing::debug!(%peer, %error, "bad frame from a peer: dropped"),
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Removes a peer; tells the application if it had seen it open.
    fn close(&mut self, peer: PeerId, reason: String) {
        if self.sockets.remove(&peer).is_some() {
            // Dropping the sender ends the socket once it has sent what is queued.
            self.events.push(Event::Closed(peer, reason));
            return;
        }
        let Some(mut slot) = self.peers.remove(&peer) else {
            return;
        };
        self.routes.remove_peer(peer);
        slot.rtc.disconnect();
        while let Ok(Output::Transmit(transmit)) = slot.rtc.poll_output() {
            let _ = self
                .socket
                .try_send_to(&transmit.contents, transmit.destination);
        }
        if slot.open {
            self.events.push(Event::Closed(peer, reason));
        }
    }
}
