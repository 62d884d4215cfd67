//! What peers put inside the hub's `signal` messages (docs/protocol.md, "`signal` payloads"),
//! and the offer/answer negotiation of one connection as a pure state machine: it validates what
//! the other peer signals and says what to apply, in which order.

use serde_json::{json, Map, Value};
use switchboard_protocol::{ClientMessage, Payload, PeerId, Target};

use crate::Error;

/// Who sends the offer on a connection: the peer already in the room offers to the newcomer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends the offer.
    Offerer,
    /// Waits for the offer and answers it.
    Answerer,
}

/// One trickled ICE candidate, as the browser's `RTCIceCandidate.toJSON()` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateInit {
    /// The `candidate:...` line.
    pub candidate: String,
    /// The media section id.
    pub sdp_mid: Option<String>,
    /// The media section index.
    pub sdp_mline_index: Option<u64>,
}

/// A signaling payload between two peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// The offer, with the offerer's channel fingerprint.
    Offer {
        /// The SDP.
        sdp: String,
        /// `channels::fingerprint` of the offerer's declarations.
        channels: String,
    },
    /// The answer.
    Answer {
        /// The SDP.
        sdp: String,
    },
    /// A trickled candidate; `None` is the end of candidates.
    Candidate(Option<CandidateInit>),
}

/// Longest SDP accepted (as the browser client).
pub const MAX_SDP_BYTES: usize = 64 * 1024;

fn bad(message: impl Into<String>) -> Error {
    Error::new("bad_signal", message)
}

impl Signal {
    /// Validates a payload from another peer; `bad_signal` when it is not a signal.
    pub fn parse(data: &Value) -> Result<Self, Error> {
        let object = data
            .as_object()
            .ok_or_else(|| bad("signal is not an object with a type"))?;
        let sdp = |object: &Map<String, Value>, kind: &str| -> Result<String, Error> {
            match object.get("sdp").and_then(Value::as_str) {
                Some(sdp) if !sdp.is_empty() && sdp.len() <= MAX_SDP_BYTES => Ok(sdp.to_owned()),
                _ => Err(bad(format!("{kind}: missing or oversized sdp"))),
            }
        };
        match object.get("type").and_then(Value::as_str) {
            Some("offer") => Ok(Self::Offer {
                sdp: sdp(object, "offer")?,
                channels: object
                    .get("channels")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("offer: missing channels"))?
                    .to_owned(),
            }),
            Some("answer") => Ok(Self::Answer {
                sdp: sdp(object, "answer")?,
            }),
            Some("candidate") => match object.get("candidate") {
                None | Some(Value::Null) => Ok(Self::Candidate(None)),
                Some(Value::Object(c)) => {
                    let candidate = c
                        .get("candidate")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("candidate: not an ICE candidate"))?;
                    Ok(Self::Candidate(Some(CandidateInit {
                        candidate: candidate.to_owned(),
                        sdp_mid: c.get("sdpMid").and_then(Value::as_str).map(str::to_owned),
                        sdp_mline_index: c.get("sdpMLineIndex").and_then(Value::as_u64),
                    })))
                }
                Some(_) => Err(bad("candidate: not an ICE candidate")),
            },
            Some(other) => Err(bad(format!("unknown signal type {other:?}"))),
            None => Err(bad("signal is not an object with a type")),
        }
    }

    /// The payload as it goes inside `signal`.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Offer { sdp, channels } => {
                json!({"type": "offer", "sdp": sdp, "channels": channels})
            }
            Self::Answer { sdp } => json!({"type": "answer", "sdp": sdp}),
            Self::Candidate(None) => json!({"type": "candidate", "candidate": null}),
            Self::Candidate(Some(c)) => {
                let mut candidate = Map::new();
                candidate.insert("candidate".into(), c.candidate.clone().into());
                candidate.insert(
                    "sdpMid".into(),
                    c.sdp_mid.clone().unwrap_or_else(|| "0".into()).into(),
                );
                candidate.insert(
                    "sdpMLineIndex".into(),
                    c.sdp_mline_index.unwrap_or(0).into(),
                );
                json!({"type": "candidate", "candidate": candidate})
            }
        }
    }
}

impl Signal {
    /// The hub's `signal` message carrying this payload to `peer`.
    pub fn to_message(&self, peer: PeerId) -> Option<ClientMessage> {
        let data = Payload::from_json(&self.to_value().to_string()).ok()?;
        Some(ClientMessage::Signal {
            to: Target::Peer(peer),
            data,
        })
    }
}

/// What the caller must apply next, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Apply the remote offer and send an answer.
    AcceptOffer(String),
    /// Apply the remote answer.
    AcceptAnswer(String),
    /// Add a remote candidate (`None`: end of candidates).
    AddCandidate(Option<CandidateInit>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    WaitingOffer,
    CreatingOffer,
    OfferSent,
    Applying,
    Stable,
}

/// The negotiation state of one connection.
#[derive(Debug)]
pub struct Negotiation {
    role: Role,
    state: State,
    channels: String,
    queued: Vec<Option<CandidateInit>>,
    max_queued_candidates: usize,
}

impl Negotiation {
    /// `channels`: this peer's fingerprint (an offer with another one is refused);
    /// `max_queued_candidates` bounds what an early or hostile peer can make us keep.
    pub fn new(role: Role, channels: String, max_queued_candidates: usize) -> Self {
        let state = match role {
            Role::Offerer => State::CreatingOffer,
            Role::Answerer => State::WaitingOffer,
        };
        Self {
            role,
            state,
            channels,
            queued: Vec::new(),
            max_queued_candidates,
        }
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The offer went out: the answer may come.
    pub fn offer_sent(&mut self) {
        if self.state == State::CreatingOffer {
            self.state = State::OfferSent;
        }
    }

    /// Takes a signal from the other peer; `bad_signal` or `channel_mismatch` when refused.
    pub fn receive(&mut self, signal: Signal) -> Result<Vec<Step>, Error> {
        match signal {
            Signal::Offer { sdp, channels } => {
                if self.role != Role::Answerer || self.state != State::WaitingOffer {
                    return Err(bad("unexpected offer"));
                }
                if channels != self.channels {
                    return Err(Error::new(
                        "channel_mismatch",
                        format!(
                            "the peer declared channels [{channels}], we declared [{}]",
                            self.channels
                        ),
                    ));
                }
                self.state = State::Applying;
                Ok(vec![Step::AcceptOffer(sdp)])
            }
            Signal::Answer { sdp } => {
                if self.role != Role::Offerer || self.state != State::OfferSent {
                    return Err(bad("unexpected answer"));
                }
                self.state = State::Applying;
                Ok(vec![Step::AcceptAnswer(sdp)])
            }
            Signal::Candidate(candidate) => {
                if self.state == State::Stable {
                    return Ok(vec![Step::AddCandidate(candidate)]);
                }
                if self.queued.len() >= self.max_queued_candidates {
                    return Err(bad(format!(
                        "more than {} candidates before the description",
                        self.max_queued_candidates
                    )));
                }
                self.queued.push(candidate);
                Ok(Vec::new())
            }
        }
    }

    /// The remote description is applied: the candidates that waited for it.
    pub fn remote_applied(&mut self) -> Vec<Step> {
        self.state = State::Stable;
        self.queued.drain(..).map(Step::AddCandidate).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "0:reliable:o:-:-,1:unreliable:u:0:-";

    fn candidate(n: u8) -> Signal {
        Signal::Candidate(Some(CandidateInit {
            candidate: format!("candidate:{n} 1 udp 1 127.0.0.1 {n} typ host"),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
        }))
    }

    #[test]
    fn payloads_round_trip_through_their_json_form() {
        for signal in [
            Signal::Offer {
                sdp: "v=0".into(),
                channels: FP.into(),
            },
            Signal::Answer { sdp: "v=0".into() },
            candidate(1),
            Signal::Candidate(None),
        ] {
            assert_eq!(Signal::parse(&signal.to_value()), Ok(signal));
        }
        // As the browser sends them.
        let browser = json!({"type": "candidate", "candidate": {"candidate": "candidate:1 1 udp 2 10.0.0.1 5 typ host", "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "ab"}});
        assert!(matches!(
            Signal::parse(&browser),
            Ok(Signal::Candidate(Some(_)))
        ));
    }

    #[test]
    fn malformed_payloads_are_bad_signals() {
        for bad in [
            json!(null),
            json!([]),
            json!({"type": 3}),
            json!({"type": "offer", "sdp": "v=0"}),
            json!({"type": "offer", "sdp": "", "channels": FP}),
            json!({"type": "answer", "sdp": "x".repeat(MAX_SDP_BYTES + 1)}),
            json!({"type": "candidate", "candidate": {"sdpMid": "0"}}),
            json!({"type": "candidate", "candidate": 7}),
            json!({"type": "renegotiate"}),
        ] {
            assert_eq!(Signal::parse(&bad).unwrap_err().code, "bad_signal", "{bad}");
        }
        let at_limit = json!({"type": "answer", "sdp": "x".repeat(MAX_SDP_BYTES)});
        assert!(Signal::parse(&at_limit).is_ok());
    }

    #[test]
    fn the_answerer_keeps_early_candidates_until_the_offer_is_applied() {
        let mut n = Negotiation::new(Role::Answerer, FP.into(), 2);
        assert_eq!(n.receive(candidate(1)), Ok(vec![]));
        let offer = Signal::Offer {
            sdp: "v=0".into(),
            channels: FP.into(),
        };
        assert_eq!(
            n.receive(offer.clone()),
            Ok(vec![Step::AcceptOffer("v=0".into())])
        );
        assert_eq!(n.receive(candidate(2)), Ok(vec![]));
        // A third early candidate is one too many.
        assert_eq!(n.receive(candidate(3)).unwrap_err().code, "bad_signal");
        let released = n.remote_applied();
        assert_eq!(released.len(), 2);
        assert!(matches!(
            n.receive(candidate(4)).as_deref(),
            Ok([Step::AddCandidate(Some(_))])
        ));
        // A second offer is refused.
        assert_eq!(n.receive(offer).unwrap_err().code, "bad_signal");
    }

    #[test]
    fn offers_with_other_channels_and_answers_out_of_turn_are_refused() {
        let mut answerer = Negotiation::new(Role::Answerer, FP.into(), 64);
        let other = Signal::Offer {
            sdp: "v=0".into(),
            channels: "0:reliable:o:-:-".into(),
        };
        assert_eq!(
            answerer.receive(other).unwrap_err().code,
            "channel_mismatch"
        );
        let answer = Signal::Answer { sdp: "v=0".into() };
        assert_eq!(
            answerer.receive(answer.clone()).unwrap_err().code,
            "bad_signal"
        );
        let mut offerer = Negotiation::new(Role::Offerer, FP.into(), 64);
        // Before the offer went out, an answer is out of turn.
        assert_eq!(
            offerer.receive(answer.clone()).unwrap_err().code,
            "bad_signal"
        );
        offerer.offer_sent();
        assert_eq!(
            offerer.receive(answer.clone()),
            Ok(vec![Step::AcceptAnswer("v=0".into())])
        );
        assert_eq!(offerer.receive(answer).unwrap_err().code, "bad_signal");
    }
}
