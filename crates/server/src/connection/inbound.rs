//! The frames that reach a connection: the data frames one read brought, admitted against the
//! byte budget and decoded outside any lock, then given to the hub together under one lock of
//! the relay. Methods of the connection's pump.

use std::time::Instant;

use axum::extract::ws::Message;
use futures_util::FutureExt;
use switchboard_protocol::{ErrorCode, Frame, LeaveReason, ProtocolError};

use super::{Ending, Pump};
use crate::cluster::envelope::{Record, WireFrame};
use crate::hub::CloseReason;
use crate::relay::{lock, wire_frame};
use crate::wire::{decode, Inbound};
use switchboard_ws as ws;

/// Most data frames taken from the socket per wake-up and given to the hub under one lock.
const READ_BATCH: usize = 32;

impl Pump {
    /// Takes `first` and the data frames after it that are already read (up to `READ_BATCH`),
    /// each admitted and decoded into `steps`. Returns the item that ended the run, if any: a
    /// control frame, an error or the end of the stream.
    pub(super) fn gather(
        &mut self,
        first: Option<Result<Message, ws::Error>>,
        steps: &mut Vec<Step>,
        now: Instant,
    ) -> Option<Option<Result<Message, ws::Error>>> {
        let mut next = first;
        loop {
            let step = match &next {
                Some(Ok(Message::Text(text))) => {
                    self.admit(Frame::Text(text.as_bytes()), now, || {
                        wire_frame(Message::Text(text.clone()))
                    })
                }
                Some(Ok(Message::Binary(bytes))) => self.admit(Frame::Binary(bytes), now, || {
                    wire_frame(Message::Binary(bytes.clone()))
                }),
                _ => return Some(next),
            };
            steps.push(step);
            if steps.len() == READ_BATCH {
                return None;
            }
            next = self.socket.next().now_or_never()?;
        }
    }

    /// One data frame within the connection's byte budget, decoded (or, when another node owns
    /// the room, as it came, for that node to decode); a frame over the budget is dropped, the
    /// first of a run answered with `rate_limited`.
    fn admit(
        &mut self,
        frame: Frame<'_>,
        now: Instant,
        forward: impl FnOnce() -> WireFrame,
    ) -> Step {
        let limits = &self.shared.config.limits;
        let size = match frame {
            Frame::Text(bytes) | Frame::Binary(bytes) => bytes.len(),
        };
        let budget = limits.byte_burst.max(limits.max_message_bytes);
        let budget = u32::try_from(budget).unwrap_or(u32::MAX);
        if !self
            .bytes
            .try_take_amount(limits.bytes_per_second as f64, budget, size as f64, now)
        {
            let first_dropped = !self.bytes_throttled;
            self.bytes_throttled = true;
            return Step::Dropped(first_dropped.then(|| {
                ProtocolError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "over bytes_per_second ({}): message dropped",
                        limits.bytes_per_second
                    ),
                )
            }));
        }
        self.bytes_throttled = false;
        if self.owner.is_some() {
            return Step::Forward(forward());
        }
        Step::Decoded(decode(frame, self.speaker.wire, &self.speaker.name))
    }

    /// Lets the hub act on the admitted frames, in order, under one lock of the relay. Returns
    /// an ending when a frame closes the connection (bad input on a wire that closes for it);
    /// the frames after it are not acted on.
    pub(super) fn receive(&mut self, steps: Vec<Step>, now: Instant) -> Option<Ending> {
        if steps.is_empty() {
            return None;
        }
        let metrics = &self.shared.metrics;
        metrics.messages_received.inc_by(steps.len() as u64);
        let mut relay = lock(&self.shared.relay);
        // A takeover may have moved the room since the frames were read: here (decode what was
        // read for forwarding) or to another node.
        let owner = match relay.cluster {
            Some(_) => relay.owner_of(self.speaker.id, self.speaker.conn),
            None => None,
        };
        self.owner = owner;
        let mut forwarded = Vec::new();
        for step in steps {
            let step = match step {
                Step::Forward(frame) if owner.is_none() => {
                    let frame_ref = if frame.text {
                        Frame::Text(&frame.bytes)
                    } else {
                        Frame::Binary(&frame.bytes)
                    };
                    Step::Decoded(decode(frame_ref, self.speaker.wire, &self.speaker.name))
                }
                other => other,
            };
            match step {
                Step::Forward(frame) => forwarded.push(frame),
                Step::Dropped(None) => {}
                Step::Dropped(Some(error)) => relay.send_error(self.speaker.id, error, metrics),
                Step::Decoded(Ok(inbound)) => {
                    self.speaker
                        .dispatch(&self.shared, &mut relay, inbound, now)
                }
                Step::Decoded(Err(error)) if self.speaker.wire.closes_on_bad_input() => {
                    metrics.error(error.code);
                    return Some(Ending {
                        reason: LeaveReason::Closed,
                        may_suspend: false,
                        close: Some(CloseReason::Error(error)),
                    });
                }
                Step::Decoded(Err(error)) => relay.send_error(self.speaker.id, error, metrics),
            }
        }
        if let (Some(owner), Some(out), false) = (owner, relay.outgoing(), forwarded.is_empty()) {
            let (peer, conn) = (self.speaker.id, self.speaker.conn);
            let frames = forwarded;
            out.push(owner, Record::Frames { peer, conn, frames });
        }
        None
    }
}

/// A data frame, admitted and decoded before the relay is locked.
pub(super) enum Step {
    /// Over the byte budget: dropped, with the error to answer if it is the first of a run.
    Dropped(Option<ProtocolError>),
    /// Within the budget: what it decoded to.
    Decoded(Result<Inbound, ProtocolError>),
    /// Within the budget, for the node that owns the room.
    Forward(WireFrame),
}
