//! A connection to a server peer from the browser (wasm32), as the browser client's
//! `connectToServer`: our offer, with every candidate the browser gathered, by `POST` (fetch),
//! the server's answer, then the pre-negotiated channels over the browser's WebRTC; when those
//! do not open in time, the server's WebSocket fallback (`socket_link`).

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::time::Duration;

use futures_channel::{mpsc, oneshot};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use js_sys::{Promise, Reflect, Uint8Array};
use switchboard_protocol::{Data, PeerId};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, RequestInit, Response, RtcConfiguration, Url};

use super::link::{Limits, Link, LinkEvent, Outcome};
use super::ops::{run_ops, LinkOwner};
use super::socket_link::SocketLink;
use super::timer::sleep;
use crate::channels::{channel_specs, default_channels, fingerprint, ChannelSpec};
use crate::connect_options::{read_answer, ConnectOptions};
use crate::connection_event::{ConnectionEvent, Transport};
use crate::outgoing;
use crate::signal::{Role, Signal};
use crate::Error;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn fetch_with_init(input: &str, init: &RequestInit) -> Promise;
}

/// How long the browser may gather candidates before the offer goes with those it has (as
/// the browser client's `gatherTimeoutMs`).
const GATHER_TIMEOUT: Duration = Duration::from_secs(1);

/// The connection's state, reached by the browser's callbacks through a weak reference.
struct Conn {
    me: Weak<RefCell<Conn>>,
    link: Option<Link>,
    specs: Vec<ChannelSpec>,
    events: mpsc::UnboundedSender<ConnectionEvent>,
    gathered: Option<oneshot::Sender<()>>,
    opened: Option<oneshot::Sender<Result<(), Error>>>,
}

impl LinkOwner for Conn {
    type Key = ();

    fn link(&mut self, (): ()) -> Option<&mut Link> {
        self.link.as_mut()
    }

    fn outcomes(&mut self, (): ()) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        for outcome in link.take_outcomes() {
            match outcome {
                // The offer goes by POST once gathering is over, with every candidate in it.
                Outcome::Signal(Signal::Candidate(None)) => {
                    if let Some(gathered) = self.gathered.take() {
                        let _ = gathered.send(());
                    }
                }
                Outcome::Signal(_) => {}
                Outcome::Open => {
                    if let Some(opened) = self.opened.take() {
                        let _ = opened.send(Ok(()));
                    }
                }
                Outcome::Message(lane, data) => {
                    if let Some(spec) = self.specs.get(lane) {
                        let channel = spec.name.clone();
                        let _ = self
                            .events
                            .unbounded_send(ConnectionEvent::Message { channel, data });
                    }
                }
                Outcome::Problem(error) => {
                    let _ = self.events.unbounded_send(ConnectionEvent::Error(error));
                }
                Outcome::RunOps => run_ops(self.me.clone(), ()),
                Outcome::Closed(reason) => {
                    self.link = None;
                    match self.opened.take() {
                        Some(opened) => {
                            let _ = opened.send(Err(Error::new(
                                "connection_failed",
                                format!("the connection ended before it opened ({reason})"),
                            )));
                        }
                        None => {
                            let _ = self.events.unbounded_send(ConnectionEvent::Closed {
                                code: reason.clone(),
                                reason,
                            });
                        }
                    }
                    return;
                }
            }
        }
    }
}

/// A connection to one peer outside any room: a server peer ([`Connection::to_server`]) or a
/// device paired by compact codes ([`crate::PairingOffer`], [`crate::PairingAnswer`]).
pub struct Connection {
    id: Option<PeerId>,
    specs: Vec<ChannelSpec>,
    options: ConnectOptions,
    carrier: Carrier,
    events: mpsc::UnboundedReceiver<ConnectionEvent>,
}

/// What carries a connection.
enum Carrier {
    WebRtc(Rc<RefCell<Conn>>),
    WebSocket(Rc<RefCell<SocketLink>>),
}

/// A link being made, with what tells when its candidates are gathered and its channels open.
pub(crate) struct Opening {
    conn: Rc<RefCell<Conn>>,
    events: mpsc::UnboundedReceiver<ConnectionEvent>,
    gathered: Option<oneshot::Receiver<()>>,
    opened: oneshot::Receiver<Result<(), Error>>,
    specs: Vec<ChannelSpec>,
    options: ConnectOptions,
}

impl Opening {
    /// A new link in `role` with the declared channels; `open_within` bounds how long its
    /// channels may take to open.
    pub(crate) fn new(
        role: Role,
        options: &ConnectOptions,
        config: &RtcConfiguration,
        open_within: Duration,
    ) -> Result<Self, Error> {
        options.validate()?;
        let specs = channel_specs(&options.channels)?;
        let (events_tx, events) = mpsc::unbounded();
        let (gathered_tx, gathered) = oneshot::channel();
        let (opened_tx, opened) = oneshot::channel();
        let conn = Rc::new_cyclic(|me| {
            RefCell::new(Conn {
                me: me.clone(),
                link: None,
                specs: specs.clone(),
                events: events_tx,
                gathered: Some(gathered_tx),
                opened: Some(opened_tx),
            })
        });
        let limits = Limits {
            max_message_bytes: options.max_message_bytes,
            max_buffered_bytes: options.max_buffered_bytes,
            buffered_high_bytes: options.buffered_high_bytes,
            connect_timeout: open_within,
            disconnect_timeout: options.disconnect_timeout,
            max_queued_candidates: 0,
        };
        let me = Rc::downgrade(&conn);
        let notify = Rc::new(move |event: LinkEvent| {
            if let Some(conn) = me.upgrade() {
                let mut conn = conn.borrow_mut();
                if let Some(link) = conn.link.as_mut() {
                    link.event(event);
                    conn.outcomes(());
                }
            }
        });
        let link = Link::new(role, &specs, &fingerprint(&specs), config, limits, notify)?;
        {
            let mut c = conn.borrow_mut();
            c.link = Some(link);
            c.outcomes(());
        }
        Ok(Self {
            conn,
            events,
            gathered: Some(gathered),
            opened,
            specs,
            options: options.clone(),
        })
    }

    /// Gives the link a signal from the other side.
    pub(crate) fn signal(&self, signal: Signal) {
        let mut c = self.conn.borrow_mut();
        if let Some(link) = c.link.as_mut() {
            link.signal(signal);
        }
        c.outcomes(());
    }

    /// Our description once the browser gathered every candidate (or after `GATHER_TIMEOUT`,
    /// with those it has).
    pub(crate) async fn local_sdp(&mut self) -> Result<String, Error> {
        if let Some(gathered) = self.gathered.take() {
            let _ = select(gathered, Box::pin(sleep(GATHER_TIMEOUT))).await;
        }
        let sdp = self.conn.borrow().link.as_ref().and_then(Link::local_sdp);
        sdp.filter(|sdp| !sdp.is_empty())
            .ok_or_else(|| Error::new("webrtc_error", "the browser made no description"))
    }

    /// The connection, once its channels are open; `timeout_code` when they do not open
    /// within `within`.
    pub(crate) async fn opened(
        self,
        id: Option<PeerId>,
        within: Duration,
        timeout_code: &str,
    ) -> Result<Connection, Error> {
        match select(self.opened, Box::pin(sleep(within))).await {
            Either::Left((Ok(Ok(())), _)) => Ok(Connection {
                id,
                specs: self.specs,
                options: self.options,
                carrier: Carrier::WebRtc(self.conn),
                events: self.events,
            }),
            Either::Left((Ok(Err(error)), _)) => Err(error),
            Either::Left((Err(_), _)) => {
                Err(Error::new("connection_failed", "the connection ended"))
            }
            Either::Right(_) => Err(Error::new(
                timeout_code,
                format!("the channels did not open within {within:?}"),
            )),
        }
    }
}

fn js_text(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

/// `POST url` with the offer; the server's id for us and its answer, or its refusal.
async fn post_offer(
    url: &str,
    offer: &str,
    token: Option<&str>,
) -> Result<(PeerId, String), Error> {
    let failed = |e: JsValue| {
        Error::new(
            "connection_failed",
            format!("cannot reach {url}: {}", js_text(&e)),
        )
    };
    let headers = Headers::new().map_err(failed)?;
    headers
        .set("content-type", "application/sdp")
        .map_err(failed)?;
    if let Some(token) = token {
        headers
            .set("authorization", &format!("Bearer {token}"))
            .map_err(failed)?;
    }
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(offer));
    let response: Response = JsFuture::from(fetch_with_init(url, &init))
        .await
        .map_err(failed)?
        .dyn_into()
        .map_err(failed)?;
    let body = JsFuture::from(response.array_buffer().map_err(failed)?)
        .await
        .map_err(failed)?;
    read_answer(response.status(), &Uint8Array::new(&body).to_vec())
}

impl Connection {
    /// Connects to the server peer whose `POST /connect` endpoint is `url` (absolute, or
    /// relative to the page) and returns once both channels are open. Refusals keep the
    /// server's code (`unauthorized`, `server_full`, ...). When the channels do not open within
    /// `webrtc_timeout`, the server's WebSocket fallback (`<url>/ws`), or `webrtc_timeout`
    /// without `websocket_fallback`.
    pub async fn to_server(url: &str, options: ConnectOptions) -> Result<Self, Error> {
        if options.channels != default_channels() {
            return Err(Error::new(
                "invalid_options",
                "a server peer has exactly the default channels, reliable and unreliable",
            ));
        }
        // The server peer's answer carries its addresses: no ICE servers needed.
        let open_within = options.webrtc_timeout + options.request_timeout;
        let mut opening = Opening::new(
            Role::Offerer,
            &options,
            &RtcConfiguration::new(),
            open_within,
        )?;
        let offer = opening.local_sdp().await?;
        let posting = Box::pin(post_offer(url, &offer, options.token.as_deref()));
        let (id, answer) = match select(posting, Box::pin(sleep(options.request_timeout))).await {
            Either::Left((answer, _)) => answer?,
            Either::Right(_) => {
                return Err(Error::new(
                    "connection_failed",
                    format!("no answer within {:?}", options.request_timeout),
                ))
            }
        };
        opening.signal(Signal::Answer { sdp: answer });
        let opened = opening
            .opened(Some(id), options.webrtc_timeout, "webrtc_timeout")
            .await;
        match opened {
            Err(error) if error.code == "webrtc_timeout" && options.websocket_fallback => {
                Self::fallback(url, options).await
            }
            other => other,
        }
    }

    /// The server peer's WebSocket fallback, beside its `POST` URL (`<url>/ws`).
    async fn fallback(url: &str, options: ConnectOptions) -> Result<Self, Error> {
        let socket = fallback_url(url, options.token.as_deref())?;
        let specs = channel_specs(&options.channels)?;
        let (events_tx, events) = mpsc::unbounded();
        let link = SocketLink::open(
            &socket,
            specs.clone(),
            options.max_message_bytes,
            options.max_buffered_bytes,
            options.request_timeout,
            events_tx,
        )
        .await?;
        Ok(Self {
            id: None,
            specs,
            options,
            carrier: Carrier::WebSocket(link),
            events,
        })
    }
    /// Our id on the server peer; `None` for a paired connection.
    pub fn id(&self) -> Option<PeerId> {
        self.id
    }

    /// Which transport carries the connection.
    pub fn transport(&self) -> Transport {
        match self.carrier {
            Carrier::WebRtc(_) => Transport::WebRtc,
            Carrier::WebSocket(_) => Transport::WebSocket,
        }
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        match &self.carrier {
            // The link is gone once the connection is over.
            Carrier::WebRtc(conn) => conn.borrow().link.is_none(),
            Carrier::WebSocket(link) => link.borrow().is_closed(),
        }
    }

    /// Sends a message on a channel. Errors: `unknown_channel`, `message_too_big`,
    /// `send_queue_full`, `room_closed` (the connection is over).
    pub fn send(&self, channel: &str, data: impl Into<Data>) -> Result<(), Error> {
        let lane = outgoing::lane(&self.specs, channel)?;
        let frames = outgoing::frames(
            &self.specs[lane],
            &data.into(),
            self.options.frame_bytes,
            self.options.max_message_bytes,
        )?;
        match &self.carrier {
            Carrier::WebRtc(conn) => {
                let mut conn = conn.borrow_mut();
                let Some(link) = conn.link.as_mut() else {
                    return Err(Error::new("room_closed", "the connection is closed"));
                };
                let result = link.send(lane, frames);
                conn.outcomes(());
                result
            }
            Carrier::WebSocket(link) => link.borrow_mut().send(lane, frames),
        }
    }

    /// Closes the connection on purpose: a goodbye first, so the server sees `goodbye`.
    /// `ConnectionEvent::Closed` (code `closed`) follows.
    pub fn close(&self) {
        let closed = match &self.carrier {
            Carrier::WebRtc(conn) => {
                let mut conn = conn.borrow_mut();
                let link = conn.link.take();
                link.map(|mut link| link.close("closed")).is_some()
            }
            Carrier::WebSocket(link) => {
                let mut link = link.borrow_mut();
                let open = !link.is_closed();
                link.close("closed");
                open
            }
        };
        if closed {
            self.closed_event();
        }
    }

    fn closed_event(&self) {
        let events = match &self.carrier {
            Carrier::WebRtc(conn) => conn.borrow().events.clone(),
            Carrier::WebSocket(link) => link.borrow().events(),
        };
        let _ = events.unbounded_send(ConnectionEvent::Closed {
            code: "closed".into(),
            reason: "closed by the application".into(),
        });
    }

    /// The next event; `None` once the connection is over and every event was taken.
    pub async fn next_event(&mut self) -> Option<ConnectionEvent> {
        if self.is_closed() {
            return self.events.try_recv().ok();
        }
        self.events.next().await
    }

    /// Every event that has arrived, without waiting: for game loops (call it once a frame).
    pub fn poll(&mut self) -> Vec<ConnectionEvent> {
        std::iter::from_fn(|| self.events.try_recv().ok()).collect()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}

/// The fallback's WebSocket URL: `url` (resolved against the page) + `/ws`, as `ws:` or
/// `wss:`, with the token as `?token=`.
fn fallback_url(url: &str, token: Option<&str>) -> Result<String, Error> {
    let bad = |e: JsValue| Error::new("invalid_options", format!("{url}: {}", js_text(&e)));
    let base = Reflect::get(&js_sys::global(), &JsValue::from_str("location"))
        .ok()
        .filter(|l| !l.is_undefined())
        .and_then(|l| Reflect::get(&l, &JsValue::from_str("href")).ok())
        .and_then(|h| h.as_string());
    let parsed = match base {
        Some(base) => Url::new_with_base(url, &base),
        None => Url::new(url),
    }
    .map_err(bad)?;
    parsed.set_pathname(&format!("{}/ws", parsed.pathname().trim_end_matches('/')));
    if let Some(token) = token {
        parsed.search_params().set("token", token);
    }
    match parsed.protocol().as_str() {
        "http:" => parsed.set_protocol("ws:"),
        "https:" => parsed.set_protocol("wss:"),
        _ => {}
    }
    Ok(parsed.href())
}
