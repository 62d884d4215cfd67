//! One WebRTC connection to another peer on the browser's `RTCPeerConnection`: the negotiation
//! state machine applied to it (its promises run one at a time, in order), the pre-negotiated
//! channels, framing and reassembly, and a queue per channel that waits for the browser's send
//! buffer to drain, as the browser client does. The browser's callbacks become [`LinkEvent`]s
//! for the room's shell, which hands them back to [`Link::event`].

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use js_sys::{ArrayBuffer, Uint8Array};
use switchboard_protocol::frame::{self, Message, Reassembler};
use switchboard_protocol::Data;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{
    MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelInit, RtcDataChannelState,
    RtcDataChannelType, RtcPeerConnection, RtcPeerConnectionIceEvent, RtcPeerConnectionState,
};

use super::ops::{Done, Op};
use super::timer::Timer;
use crate::channels::ChannelSpec;
use crate::signal::{CandidateInit, Negotiation, Role, Signal, Step};
use crate::Error;

/// Limits and timeouts of a connection.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub max_message_bytes: usize,
    pub max_buffered_bytes: usize,
    pub buffered_high_bytes: usize,
    pub connect_timeout: Duration,
    pub disconnect_timeout: Duration,
    pub max_queued_candidates: usize,
}

/// What the browser reported about a connection.
pub(crate) enum LinkEvent {
    ChannelOpen(usize),
    ChannelClosed,
    ChannelMessage(usize, JsValue),
    BufferedLow(usize),
    Candidate(Option<CandidateInit>),
    StateChanged,
    ConnectTimeout,
    DisconnectTimeout,
}

/// Where a link's browser events go: the shell, with the peer and the link's serial bound in.
pub(crate) type Notify = Rc<dyn Fn(LinkEvent)>;

/// What a connection reports to the shell.
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
    /// Negotiation steps are waiting: run them ([`Link::next_op`]).
    RunOps,
    /// The connection is over, for this reason (reported once).
    Closed(String),
}

struct Lane {
    spec: ChannelSpec,
    dc: RtcDataChannel,
    open: bool,
    reassembler: Reassembler,
    queue: VecDeque<Vec<u8>>,
    queued_bytes: usize,
}

/// A connection to one peer.
pub(crate) struct Link {
    pc: RtcPeerConnection,
    lanes: Vec<Lane>,
    fingerprint: String,
    negotiation: Negotiation,
    ops: VecDeque<Op>,
    running: bool,
    open_lanes: usize,
    open: bool,
    closed: bool,
    limits: Limits,
    notify: Notify,
    connect_timer: Option<Timer>,
    disconnect_timer: Option<Timer>,
    /// The browser callbacks; detached in `shut` before they are dropped.
    handlers: Vec<Closure<dyn FnMut(JsValue)>>,
    outcomes: Vec<Outcome>,
}

fn channel_init(spec: &ChannelSpec) -> RtcDataChannelInit {
    let init = RtcDataChannelInit::new();
    init.set_negotiated(true);
    init.set_id(spec.id);
    init.set_ordered(spec.options.ordered);
    if let Some(retransmits) = spec.options.max_retransmits {
        init.set_max_retransmits(retransmits);
    }
    if let Some(lifetime) = spec.options.max_packet_lifetime_ms {
        init.set_max_packet_life_time(lifetime);
    }
    init
}

fn js_message(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

impl Link {
    /// A new connection with the declared channels; the offerer's offer is its first op.
    pub(crate) fn new(
        role: Role,
        specs: &[ChannelSpec],
        fingerprint: &str,
        config: &RtcConfiguration,
        limits: Limits,
        notify: Notify,
    ) -> Result<Self, Error> {
        let pc = RtcPeerConnection::new_with_configuration(config)
            .map_err(|e| Error::new("webrtc_error", js_message(&e)))?;
        let mut link = Self {
            pc,
            lanes: Vec::new(),
            fingerprint: fingerprint.to_owned(),
            negotiation: Negotiation::new(
                role,
                fingerprint.to_owned(),
                limits.max_queued_candidates,
            ),
            ops: VecDeque::new(),
            running: false,
            open_lanes: 0,
            open: false,
            closed: false,
            limits,
            notify,
            connect_timer: None,
            disconnect_timer: None,
            handlers: Vec::new(),
            outcomes: Vec::new(),
        };
        for spec in specs {
            link.add_lane(spec);
        }
        link.listen_to_connection();
        let notify = link.notify.clone();
        link.connect_timer = Some(Timer::once(link.limits.connect_timeout, move || {
            notify(LinkEvent::ConnectTimeout)
        }));
        if role == Role::Offerer {
            link.queue(Op::Offer);
        }
        Ok(link)
    }

    fn handler(&mut self, f: impl FnMut(JsValue) + 'static) -> js_sys::Function {
        let closure = Closure::<dyn FnMut(JsValue)>::new(f);
        let function = closure.as_ref().unchecked_ref::<js_sys::Function>().clone();
        self.handlers.push(closure);
        function
    }

    fn add_lane(&mut self, spec: &ChannelSpec) {
        let index = self.lanes.len();
        let dc = self
            .pc
            .create_data_channel_with_data_channel_dict(&spec.name, &channel_init(spec));
        dc.set_binary_type(RtcDataChannelType::Arraybuffer);
        let low = u32::try_from(self.limits.buffered_high_bytes / 2).unwrap_or(u32::MAX);
        dc.set_buffered_amount_low_threshold(low);
        let notify = self.notify.clone();
        dc.set_onopen(Some(
            &self.handler(move |_| notify(LinkEvent::ChannelOpen(index))),
        ));
        let notify = self.notify.clone();
        dc.set_onclose(Some(
            &self.handler(move |_| notify(LinkEvent::ChannelClosed)),
        ));
        let notify = self.notify.clone();
        let on_low = self.handler(move |_| notify(LinkEvent::BufferedLow(index)));
        dc.set_onbufferedamountlow(Some(&on_low));
        let notify = self.notify.clone();
        dc.set_onmessage(Some(&self.handler(move |event: JsValue| {
            if let Some(event) = event.dyn_ref::<MessageEvent>() {
                notify(LinkEvent::ChannelMessage(index, event.data()));
            }
        })));
        self.lanes.push(Lane {
            spec: spec.clone(),
            dc,
            open: false,
            reassembler: Reassembler::new(self.limits.max_message_bytes),
            queue: VecDeque::new(),
            queued_bytes: 0,
        });
    }

    fn listen_to_connection(&mut self) {
        let notify = self.notify.clone();
        let on_candidate = self.handler(move |event: JsValue| {
            let Some(event) = event.dyn_ref::<RtcPeerConnectionIceEvent>() else {
                return;
            };
            let candidate = event.candidate().map(|c| CandidateInit {
                candidate: c.candidate(),
                sdp_mid: c.sdp_mid(),
                sdp_mline_index: c.sdp_m_line_index().map(u64::from),
            });
            notify(LinkEvent::Candidate(candidate));
        });
        self.pc.set_onicecandidate(Some(&on_candidate));
        let notify = self.notify.clone();
        let on_state = self.handler(move |_| notify(LinkEvent::StateChanged));
        self.pc.set_onconnectionstatechange(Some(&on_state));
    }

    /// Whether every channel is open.
    pub(crate) fn is_open(&self) -> bool {
        self.open && !self.closed
    }

    /// A signal from the other peer.
    pub(crate) fn signal(&mut self, signal: Signal) {
        if self.closed {
            return;
        }
        match self.negotiation.receive(signal) {
            Ok(steps) => {
                for step in steps {
                    self.queue(Op::Apply(step));
                }
            }
            Err(error) if error.code == "channel_mismatch" => {
                self.outcomes.push(Outcome::Problem(error));
                self.end("channel_mismatch");
            }
            Err(error) => self.outcomes.push(Outcome::Problem(error)),
        }
    }

    fn queue(&mut self, op: Op) {
        // The end of candidates needs nothing from the browser (ICE goes on without it).
        if matches!(op, Op::Apply(Step::AddCandidate(None))) {
            return;
        }
        self.ops.push_back(op);
        if !self.running {
            self.running = true;
            self.outcomes.push(Outcome::RunOps);
        }
    }

    /// The next negotiation step to run, with the connection to run it on; `None` when there is
    /// none left (the runner stops; a later step starts a new one).
    pub(crate) fn next_op(&mut self) -> Option<(RtcPeerConnection, Op)> {
        let op = if self.closed {
            None
        } else {
            self.ops.pop_front()
        };
        match op {
            Some(op) => Some((self.pc.clone(), op)),
            None => {
                self.running = false;
                None
            }
        }
    }

    /// A step ended: what it means for the negotiation.
    pub(crate) fn done(&mut self, result: Result<Done, JsValue>) {
        if self.closed {
            return;
        }
        match result {
            Ok(Done::Offered(sdp)) => {
                self.negotiation.offer_sent();
                self.outcomes.push(Outcome::Signal(Signal::Offer {
                    sdp,
                    channels: self.fingerprint.clone(),
                }));
            }
            Ok(Done::Answered(sdp)) => {
                self.outcomes.push(Outcome::Signal(Signal::Answer { sdp }));
                self.remote_applied();
            }
            Ok(Done::RemoteApplied) => self.remote_applied(),
            Ok(Done::Nothing) => {}
            Err(error) => self.outcomes.push(Outcome::Problem(Error::new(
                "webrtc_error",
                js_message(&error),
            ))),
        }
    }

    fn remote_applied(&mut self) {
        for step in self.negotiation.remote_applied() {
            self.queue(Op::Apply(step));
        }
    }

    /// What the browser reported.
    pub(crate) fn event(&mut self, event: LinkEvent) {
        if self.closed {
            return;
        }
        match event {
            LinkEvent::ChannelOpen(lane) => {
                if let Some(l) = self.lanes.get_mut(lane).filter(|l| !l.open) {
                    l.open = true;
                    self.open_lanes += 1;
                }
                if self.open_lanes == self.lanes.len() && !self.open {
                    self.open = true;
                    self.connect_timer = None;
                    self.outcomes.push(Outcome::Open);
                }
            }
            LinkEvent::ChannelClosed => self.end("disconnected"),
            LinkEvent::ChannelMessage(lane, data) => self.received(lane, data),
            LinkEvent::BufferedLow(lane) => self.drain(lane),
            LinkEvent::Candidate(candidate) => self
                .outcomes
                .push(Outcome::Signal(Signal::Candidate(candidate))),
            LinkEvent::StateChanged => self.state_changed(),
            LinkEvent::ConnectTimeout => {
                if !self.open {
                    self.end("connection_failed");
                }
            }
            LinkEvent::DisconnectTimeout => self.end("connection_lost"),
        }
    }

    fn received(&mut self, lane: usize, data: JsValue) {
        let Some(l) = self.lanes.get_mut(lane) else {
            return;
        };
        if let Some(text) = data.as_string() {
            // A peer that does not frame its messages (not a Switchboard client): as text.
            self.outcomes.push(Outcome::Message(lane, Data::Text(text)));
            return;
        }
        let Some(buffer) = data.dyn_ref::<ArrayBuffer>() else {
            return;
        };
        let bytes = Uint8Array::new(buffer).to_vec();
        match l.reassembler.push(&bytes) {
            Ok(None) => {}
            Ok(Some(Message::Binary(bytes))) => self
                .outcomes
                .push(Outcome::Message(lane, Data::Binary(bytes))),
            Ok(Some(Message::Text(text))) => {
                self.outcomes.push(Outcome::Message(lane, Data::Text(text)))
            }
            Ok(Some(Message::Goodbye(_))) => self.end("goodbye"),
            Err(error) => self
                .outcomes
                .push(Outcome::Problem(Error::new("bad_frame", error.to_string()))),
        }
    }

    fn state_changed(&mut self) {
        self.disconnect_timer = None;
        match self.pc.connection_state() {
            RtcPeerConnectionState::Failed => self.end("connection_failed"),
            RtcPeerConnectionState::Closed => self.end("disconnected"),
            RtcPeerConnectionState::Disconnected => {
                let notify = self.notify.clone();
                self.disconnect_timer =
                    Some(Timer::once(self.limits.disconnect_timeout, move || {
                        notify(LinkEvent::DisconnectTimeout)
                    }));
            }
            _ => {}
        }
    }

    /// Queues a message's frames on a channel and sends what the browser's buffer takes.
    /// `send_queue_full` past `max_buffered_bytes` waiting on the channel.
    pub(crate) fn send(&mut self, lane: usize, frames: Vec<Vec<u8>>) -> Result<(), Error> {
        let Some(l) = self.lanes.get_mut(lane) else {
            return Err(Error::new("unknown_channel", "no such channel"));
        };
        if !self.open || self.closed || l.dc.ready_state() != RtcDataChannelState::Open {
            return Err(Error::new(
                "peer_not_connected",
                "the data channels to this peer are not open",
            ));
        }
        let size: usize = frames.iter().map(Vec::len).sum();
        if l.queued_bytes + size > self.limits.max_buffered_bytes {
            return Err(Error::new(
                "send_queue_full",
                format!(
                    "{} bytes wait on {} already (max_buffered_bytes {})",
                    l.queued_bytes, l.spec.name, self.limits.max_buffered_bytes
                ),
            ));
        }
        l.queued_bytes += size;
        l.queue.extend(frames);
        self.drain(lane);
        Ok(())
    }

    fn drain(&mut self, lane: usize) {
        let high = self.limits.buffered_high_bytes;
        let Some(l) = self.lanes.get_mut(lane) else {
            return;
        };
        while l.dc.ready_state() == RtcDataChannelState::Open
            && (l.dc.buffered_amount() as usize) < high
        {
            let Some(frame) = l.queue.pop_front() else {
                break;
            };
            l.queued_bytes -= frame.len();
            if let Err(error) = l.dc.send_with_u8_array(&frame) {
                l.queue.clear();
                l.queued_bytes = 0;
                self.outcomes.push(Outcome::Problem(Error::new(
                    "webrtc_error",
                    format!("send failed: {}", js_message(&error)),
                )));
                return;
            }
        }
    }

    fn end(&mut self, reason: &str) {
        if self.closed {
            return;
        }
        self.shut();
        self.outcomes.push(Outcome::Closed(reason.to_owned()));
    }

    /// Closes on purpose: a goodbye frame first on the first open ordered reliable channel (so
    /// the other side reports `goodbye` rather than a lost connection). Reports nothing.
    pub(crate) fn close(&mut self, reason: &str) {
        if self.closed {
            return;
        }
        if self.open {
            let reliable = self.lanes.iter().find(|l| {
                l.spec.options.is_chunked() && l.dc.ready_state() == RtcDataChannelState::Open
            });
            if let Some(lane) = reliable {
                // Closing anyway when the browser refuses it.
                let _ = lane.dc.send_with_u8_array(&frame::goodbye(reason));
            }
        }
        self.shut();
        self.outcomes.clear();
    }

    fn shut(&mut self) {
        self.closed = true;
        self.connect_timer = None;
        self.disconnect_timer = None;
        self.ops.clear();
        for lane in &self.lanes {
            lane.dc.set_onopen(None);
            lane.dc.set_onclose(None);
            lane.dc.set_onmessage(None);
            lane.dc.set_onbufferedamountlow(None);
            lane.dc.close();
        }
        self.pc.set_onicecandidate(None);
        self.pc.set_onconnectionstatechange(None);
        self.pc.close();
    }

    /// Our description as it is now: after gathering, with every candidate in it.
    pub(crate) fn local_sdp(&self) -> Option<String> {
        self.pc.local_description().map(|d| d.sdp())
    }

    /// The outcomes since the last call.
    pub(crate) fn take_outcomes(&mut self) -> Vec<Outcome> {
        std::mem::take(&mut self.outcomes)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if !self.closed {
            self.shut();
        }
    }
}
