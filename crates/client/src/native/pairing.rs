//! Pairing without a server, as the browser client's `createPairingOffer` /
//! `answerPairingOffer`: one side makes an offer code (compact SDP, docs/compact-sdp.md), the
//! other answers with a code, the first accepts it. ICE is not trickled: each code carries
//! every candidate. Native and browser peers pair with each other.

use std::time::Instant;

use switchboard_protocol::compact::SdpType;
use tokio::sync::oneshot;

use super::connection::Connection;
use super::connection_task::{open_link, Transport as Carrier};
use super::endpoint::Endpoint;
use super::link::{Limits, Link, Outcome};
use crate::channels::{channel_specs, fingerprint, ChannelSpec};
use crate::connect_options::ConnectOptions;
use crate::pairing_code::{compact, read_code, PairingCode};
use crate::signal::{Role, Signal};
use crate::Error;

/// An offer waiting for the other device's answer.
pub struct PairingOffer {
    code: PairingCode,
    endpoint: Endpoint,
    link: Link,
    specs: Vec<ChannelSpec>,
    options: ConnectOptions,
}

impl PairingOffer {
    /// Makes an offer code with our candidates (and a server-reflexive one when
    /// `options.stun_server` is set).
    pub async fn create(options: ConnectOptions) -> Result<Self, Error> {
        let (endpoint, specs, mut link) = prepare(Role::Offerer, &options).await?;
        let sdp = link.take_outcomes().into_iter().find_map(|o| match o {
            Outcome::Signal(Signal::Offer { sdp, .. }) => Some(sdp),
            _ => None,
        });
        let sdp = sdp.ok_or_else(|| Error::new("webrtc_error", "no offer was made"))?;
        Ok(Self {
            code: compact(&sdp)?,
            endpoint,
            link,
            specs,
            options,
        })
    }

    /// The code to hand over.
    pub fn code(&self) -> &PairingCode {
        &self.code
    }

    /// Takes the answer code (either text form, or a link) and returns once the channels are
    /// open. Errors: `invalid_code`, `connection_failed` (not open within `connect_timeout`).
    pub async fn accept(mut self, answer: &str) -> Result<Connection, Error> {
        let sdp = read_code(answer, SdpType::Answer)?;
        self.link.signal(Signal::Answer { sdp });
        self.link.signal(Signal::Candidate(None));
        opened(self.endpoint, self.link, self.specs, &self.options).await
    }
}

/// Our answer to another device's offer; the connection opens in the background meanwhile.
pub struct PairingAnswer {
    code: PairingCode,
    opening: oneshot::Receiver<Result<Connection, Error>>,
}

impl PairingAnswer {
    /// Reads the offer code (either text form, or a link) and makes the answer code. ICE
    /// starts at once: hand the code over, then wait for [`PairingAnswer::connected`].
    pub async fn answer(offer: &str, options: ConnectOptions) -> Result<Self, Error> {
        let sdp = read_code(offer, SdpType::Offer)?;
        let (endpoint, specs, mut link) = prepare(Role::Answerer, &options).await?;
        link.signal(Signal::Offer {
            sdp,
            channels: fingerprint(&specs),
        });
        link.signal(Signal::Candidate(None));
        let mut answer = None;
        for outcome in link.take_outcomes() {
            match outcome {
                Outcome::Signal(Signal::Answer { sdp }) => answer = Some(sdp),
                Outcome::Closed(reason) => {
                    return Err(Error::new(
                        "invalid_code",
                        format!("the offer was refused ({reason})"),
                    ))
                }
                _ => {}
            }
        }
        let answer = answer.ok_or_else(|| Error::new("webrtc_error", "no answer was made"))?;
        let code = compact(&answer)?;
        let (done, opening) = oneshot::channel();
        tokio::spawn(async move {
            let _ = done.send(opened(endpoint, link, specs, &options).await);
        });
        Ok(Self { code, opening })
    }

    /// The code to hand back.
    pub fn code(&self) -> &PairingCode {
        &self.code
    }

    /// Returns once the channels are open; `connection_failed` when they do not open within
    /// `connect_timeout`.
    pub async fn connected(self) -> Result<Connection, Error> {
        self.opening
            .await
            .map_err(|_| Error::new("connection_failed", "the connection was abandoned"))?
    }
}

/// Our socket, channels and a new link in `role`.
async fn prepare(
    role: Role,
    options: &ConnectOptions,
) -> Result<(Endpoint, Vec<ChannelSpec>, Link), Error> {
    options.validate()?;
    let specs = channel_specs(&options.channels)?;
    let stun: Vec<String> = options.stun_server.iter().cloned().collect();
    let endpoint = Endpoint::bind(&stun, options.request_timeout, options.udp_buffer_bytes).await?;
    let limits = Limits {
        max_message_bytes: options.max_message_bytes,
        connect_timeout: options.connect_timeout,
        disconnect_timeout: options.disconnect_timeout,
        max_queued_candidates: 0,
    };
    let link = Link::new(
        role,
        &specs,
        &fingerprint(&specs),
        &endpoint.candidates,
        limits,
        Instant::now(),
    );
    Ok((endpoint, specs, link))
}

/// Drives the link until its channels open.
async fn opened(
    endpoint: Endpoint,
    mut link: Link,
    specs: Vec<ChannelSpec>,
    options: &ConnectOptions,
) -> Result<Connection, Error> {
    let early = open_link(&endpoint, &mut link, options.connect_timeout)
        .await
        .map_err(|e| match e.code.as_str() {
            "webrtc_timeout" => Error::new("connection_failed", e.message),
            _ => e,
        })?;
    let carrier = Carrier::WebRtc {
        endpoint,
        link: Box::new(link),
        early,
    };
    Ok(Connection::start(carrier, None, specs, options))
}
