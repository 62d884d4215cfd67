//! One WebRTC connection to another peer on str0m: the negotiation state machine applied to an
//! `Rtc`, the pre-negotiated channels, framing and reassembly, and an outbox per reliable
//! channel so a full SCTP send buffer delays frames instead of losing them. Sans-IO like str0m:
//! datagrams and the time go in; datagrams, signals and outcomes come out.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event as RtcEvent, IceConnectionState, Input, Output, Rtc};
use switchboard_protocol::frame::{self, Message, Reassembler};
use switchboard_protocol::outbox::Outbox;

use crate::channels::ChannelSpec;
use crate::signal::{Negotiation, Role, Signal, Step};
use crate::Error;
use switchboard_protocol::Data;

/// Limits and timeouts of a connection.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub max_message_bytes: usize,
    pub connect_timeout: Duration,
    pub disconnect_timeout: Duration,
    pub max_queued_candidates: usize,
}

/// What a connection reports.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Send this signal to the other peer through the hub.
    Signal(Signal),
    /// Every channel is open.
    Open,
    /// A whole message on the channel with this index.
    Message(usize, Data),
    /// A problem that does not end the connection.
    Problem(Error),
    /// Bytes of queued sends handed to the transport.
    Written(usize),
    /// The connection is over, for this reason (reported once).
    Closed(String),
}

struct Lane {
    spec: ChannelSpec,
    cid: Option<ChannelId>,
    open: bool,
    outbox: Outbox,
    reassembler: Reassembler,
}

/// A connection to one peer.
pub(crate) struct Link {
    rtc: Rtc,
    negotiation: Negotiation,
    pending: Option<SdpPendingOffer>,
    lanes: Vec<Lane>,
    by_cid: HashMap<ChannelId, usize>,
    limits: Limits,
    connect_by: Instant,
    lost_since: Option<Instant>,
    open: bool,
    closed: bool,
    outcomes: Vec<Outcome>,
    /// When str0m next needs the time, as of the last poll.
    deadline: Instant,
    /// An input went in since the last poll: str0m has output to give.
    dirty: bool,
}

fn channel_config(spec: &ChannelSpec) -> ChannelConfig {
    let o = spec.options;
    ChannelConfig {
        label: spec.name.clone(),
        ordered: o.ordered,
        reliability: match (o.max_retransmits, o.max_packet_lifetime_ms) {
            (Some(retransmits), _) => Reliability::MaxRetransmits { retransmits },
            (None, Some(lifetime)) => Reliability::MaxPacketLifetime { lifetime },
            (None, None) => Reliability::Reliable,
        },
        negotiated: Some(spec.id),
        protocol: String::new(),
    }
}

impl Link {
    /// A new connection with our `candidates`; the offerer's offer is among the outcomes.
    pub(crate) fn new(
        role: Role,
        specs: &[ChannelSpec],
        fingerprint: &str,
        candidates: &[Candidate],
        limits: Limits,
        now: Instant,
    ) -> Self {
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .set_stats_interval(None)
            .build(now);
        for candidate in candidates {
            rtc.add_local_candidate(candidate.clone());
        }
        let lanes = specs
            .iter()
            .map(|spec| Lane {
                spec: spec.clone(),
                cid: None,
                open: false,
                outbox: Outbox::default(),
                reassembler: Reassembler::new(limits.max_message_bytes),
            })
            .collect();
        let mut link = Self {
            rtc,
            negotiation: Negotiation::new(
                role,
                fingerprint.to_owned(),
                limits.max_queued_candidates,
            ),
            pending: None,
            lanes,
            by_cid: HashMap::new(),
            connect_by: now + limits.connect_timeout,
            limits,
            lost_since: None,
            open: false,
            closed: false,
            outcomes: Vec::new(),
            deadline: now,
            dirty: true,
        };
        if role == Role::Offerer {
            link.offer(fingerprint);
        }
        link
    }

    fn offer(&mut self, fingerprint: &str) {
        let mut api = self.rtc.sdp_api();
        let ids: Vec<ChannelId> = self
            .lanes
            .iter()
            .map(|lane| api.add_channel_with_config(channel_config(&lane.spec)))
            .collect();
        let Some((offer, pending)) = api.apply() else {
            self.fail("connection_failed", "no offer");
            return;
        };
        for (index, cid) in ids.into_iter().enumerate() {
            self.bind(index, cid);
        }
        self.pending = Some(pending);
        self.negotiation.offer_sent();
        self.outcomes.push(Outcome::Signal(Signal::Offer {
            sdp: offer.to_sdp_string(),
            channels: fingerprint.to_owned(),
        }));
        // Our candidates are in the offer.
        self.outcomes.push(Outcome::Signal(Signal::Candidate(None)));
    }

    fn bind(&mut self, index: usize, cid: ChannelId) {
        self.lanes[index].cid = Some(cid);
        self.by_cid.insert(cid, index);
    }

    /// Whether every channel is open.
    pub(crate) fn is_open(&self) -> bool {
        self.open && !self.closed
    }

    /// Whether this datagram belongs to this connection.
    pub(crate) fn accepts(
        &self,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> bool {
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, contents) else {
            return false;
        };
        self.rtc.accepts(&Input::Receive(Instant::now(), receive))
    }

    /// A datagram for this connection.
    pub(crate) fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, contents) else {
            return;
        };
        self.dirty = true;
        if let Err(error) = self.rtc.handle_input(Input::Receive(now, receive)) {
            self.fail("connection_failed", &error.to_string());
        }
    }

    /// A signal from the other peer.
    pub(crate) fn signal(&mut self, signal: Signal) {
        if self.closed {
            return;
        }
        self.dirty = true;
        match self.negotiation.receive(signal) {
            Ok(steps) => {
                for step in steps {
                    self.apply(step);
                }
            }
            Err(error) if error.code == "channel_mismatch" => {
                self.outcomes.push(Outcome::Problem(error));
                self.close_as("channel_mismatch");
            }
            Err(error) => self.outcomes.push(Outcome::Problem(error)),
        }
    }

    fn apply(&mut self, step: Step) {
        match step {
            Step::AcceptOffer(sdp) => {
                let answer = SdpOffer::from_sdp_string(&sdp)
                    .map_err(|e| e.to_string())
                    .and_then(|offer| {
                        self.rtc
                            .sdp_api()
                            .accept_offer(offer)
                            .map_err(|e| e.to_string())
                    });
                match answer {
                    Ok(answer) => {
                        for index in 0..self.lanes.len() {
                            let config = channel_config(&self.lanes[index].spec);
                            let cid = self.rtc.direct_api().create_data_channel(config);
                            self.bind(index, cid);
                        }
                        self.outcomes.push(Outcome::Signal(Signal::Answer {
                            sdp: answer.to_sdp_string(),
                        }));
                        self.outcomes.push(Outcome::Signal(Signal::Candidate(None)));
                        self.remote_applied();
                    }
                    Err(error) => {
                        self.fail("connection_failed", &format!("offer refused: {error}"))
                    }
                }
            }
            Step::AcceptAnswer(sdp) => {
                let result = match (self.pending.take(), SdpAnswer::from_sdp_string(&sdp)) {
                    (Some(pending), Ok(answer)) => self
                        .rtc
                        .sdp_api()
                        .accept_answer(pending, answer)
                        .map_err(|e| e.to_string()),
                    (_, Err(error)) => Err(error.to_string()),
                    (None, _) => Err("no offer pending".into()),
                };
                match result {
                    Ok(()) => self.remote_applied(),
                    Err(error) => {
                        self.fail("connection_failed", &format!("answer refused: {error}"))
                    }
                }
            }
            Step::AddCandidate(None) => {}
            Step::AddCandidate(Some(init)) => match Candidate::from_sdp_string(&init.candidate) {
                Ok(candidate) => self.rtc.add_remote_candidate(candidate),
                // mDNS-hidden host candidates (`….local`) cannot be used here; the browser's
                // checks still reach us and reveal its address (peer reflexive).
                Err(error) => tracing::debug!(%error, "remote candidate skipped"),
            },
        }
    }

    fn remote_applied(&mut self) {
        for step in self.negotiation.remote_applied() {
            self.apply(step);
        }
    }

    /// Queues a message's frames on a channel: reliable (chunked) channels through the outbox,
    /// others written now or dropped when the transport has no room (as unreliable delivery
    /// allows). Returns the bytes queued on an outbox (reported back as `Written`).
    pub(crate) fn send(&mut self, lane: usize, frames: Vec<Vec<u8>>) -> usize {
        self.dirty = true;
        let Some(l) = self.lanes.get_mut(lane) else {
            return 0;
        };
        if l.spec.options.is_chunked() {
            let size = frames.iter().map(Vec::len).sum();
            // The caller bounds what it queues (max_buffered_bytes), so no limit here.
            let _ = l.outbox.push(frames, usize::MAX);
            self.flush();
            size
        } else {
            if let (true, Some(cid)) = (l.open, l.cid) {
                if let Some(mut channel) = self.rtc.channel(cid) {
                    for frame in frames {
                        // Unreliable: a frame the transport has no room for is dropped.
                        let _ = channel.write(true, &frame);
                    }
                }
            }
            0
        }
    }

    fn flush(&mut self) {
        let mut written = 0;
        for lane in &mut self.lanes {
            let (true, Some(cid)) = (lane.open, lane.cid) else {
                continue;
            };
            let before = lane.outbox.bytes();
            let rtc = &mut self.rtc;
            let result = lane.outbox.flush(|frame| match rtc.channel(cid) {
                Some(mut channel) => channel.write(true, frame),
                None => Ok(false),
            });
            written += before - lane.outbox.bytes();
            if let Err(error) = result {
                tracing::debug!(%error, "data channel write failed");
            }
        }
        if written > 0 {
            self.outcomes.push(Outcome::Written(written));
        }
    }

    /// Drives str0m: its datagrams go to `transmit`, its events become outcomes. Returns when
    /// str0m next needs the time.
    pub(crate) fn poll(
        &mut self,
        now: Instant,
        transmit: &mut impl FnMut(SocketAddr, SocketAddr, &[u8]),
    ) -> Instant {
        if !self.closed {
            if let Err(error) = self.rtc.handle_input(Input::Timeout(now)) {
                self.fail("connection_failed", &error.to_string());
            }
        }
        if !self.closed && !self.open && now >= self.connect_by {
            self.close_as("connection_failed");
        }
        if let Some(since) = self.lost_since {
            if !self.closed && now >= since + self.limits.disconnect_timeout {
                self.close_as("connection_lost");
            }
        }
        let mut deadline = now + Duration::from_secs(1);
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    deadline = deadline.min(at);
                    break;
                }
                Ok(Output::Transmit(t)) => transmit(t.source, t.destination, &t.contents),
                Ok(Output::Event(event)) => self.event(event),
                Err(error) => {
                    self.fail("connection_failed", &error.to_string());
                    break;
                }
            }
        }
        self.flush();
        if !self.open {
            deadline = deadline.min(self.connect_by);
        }
        if let Some(since) = self.lost_since {
            deadline = deadline.min(since + self.limits.disconnect_timeout);
        }
        self.deadline = deadline.max(now);
        self.dirty = false;
        self.deadline
    }

    /// When this link next needs a poll: now after an input, else when str0m asked for the
    /// time. Polling only then keeps sctp-proto's per-poll scan of every chunk in flight to
    /// one per input.
    pub(crate) fn next_poll(&self, now: Instant) -> Instant {
        if self.dirty {
            now
        } else {
            self.deadline
        }
    }

    fn event(&mut self, event: RtcEvent) {
        match event {
            RtcEvent::ChannelOpen(cid, _) => {
                if let Some(&index) = self.by_cid.get(&cid) {
                    self.lanes[index].open = true;
                    if let Some(mut channel) = self.rtc.channel(cid) {
                        channel.set_buffered_amount_low_threshold(64 * 1024);
                    }
                }
                if !self.open && !self.closed && self.lanes.iter().all(|l| l.open) {
                    self.open = true;
                    self.outcomes.push(Outcome::Open);
                }
            }
            RtcEvent::ChannelData(data) => {
                let Some(&index) = self.by_cid.get(&data.id) else {
                    return;
                };
                if !data.binary {
                    // A peer that sends plain strings (not framed): delivered as text as is.
                    match String::from_utf8(data.data) {
                        Ok(text) => self
                            .outcomes
                            .push(Outcome::Message(index, Data::Text(text))),
                        Err(_) => self.outcomes.push(Outcome::Problem(Error::new(
                            "bad_frame",
                            "text that is not UTF-8",
                        ))),
                    }
                    return;
                }
                match self.lanes[index].reassembler.push(&data.data) {
                    Ok(None) => {}
                    Ok(Some(Message::Binary(bytes))) => {
                        self.outcomes
                            .push(Outcome::Message(index, Data::Binary(bytes)));
                    }
                    Ok(Some(Message::Text(text))) => {
                        self.outcomes
                            .push(Outcome::Message(index, Data::Text(text)));
                    }
                    Ok(Some(Message::Goodbye(_))) => self.close_as("goodbye"),
                    Err(error) => self
                        .outcomes
                        .push(Outcome::Problem(Error::new("bad_frame", error.to_string()))),
                }
            }
            RtcEvent::ChannelClose(_) => self.close_as("disconnected"),
            RtcEvent::IceConnectionStateChange(state) => match state {
                IceConnectionState::Disconnected => {
                    self.lost_since.get_or_insert_with(Instant::now);
                }
                IceConnectionState::Connected | IceConnectionState::Completed => {
                    self.lost_since = None;
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn fail(&mut self, reason: &str, detail: &str) {
        tracing::debug!(reason, detail, "connection failed");
        self.close_as(reason);
    }

    fn close_as(&mut self, reason: &str) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.rtc.disconnect();
        self.outcomes.push(Outcome::Closed(reason.to_owned()));
    }

    /// Closes on purpose: a goodbye frame first (so the other side reports `goodbye` rather than
    /// a lost connection), then the association. Reports nothing.
    pub(crate) fn close(
        &mut self,
        now: Instant,
        transmit: &mut impl FnMut(SocketAddr, SocketAddr, &[u8]),
    ) {
        if self.closed {
            return;
        }
        if let Some(cid) = self.lanes.iter().find(|l| l.open).and_then(|l| l.cid) {
            if let Some(mut channel) = self.rtc.channel(cid) {
                let _ = channel.write(true, &frame::goodbye("closed"));
            }
            self.poll(now, transmit);
        }
        self.closed = true;
        self.rtc.disconnect();
        self.poll(now, transmit);
        self.outcomes.clear();
    }

    /// The outcomes since the last call.
    pub(crate) fn take_outcomes(&mut self) -> Vec<Outcome> {
        std::mem::take(&mut self.outcomes)
    }
}
