//! A connection to a server peer (`switchboard-peer`) without a hub: `POST /connect` with our
//! offer, WebRTC on one UDP socket, and the WebSocket fallback (`GET /connect/ws`) when WebRTC
//! does not open in time, as the browser client's `connectToServer` does.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use switchboard_protocol::{Data, PeerId};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::http_offer::post_offer;
use super::ice;
use super::link::{Limits, Link, Outcome};
use super::server_task::{self, Shared, Transport as Carrier};
use crate::channels::{channel_specs, default_channels, fingerprint, ChannelSpec};
use crate::server_options::{server_urls, ConnectOptions, ServerUrls};
use crate::signal::{Role, Signal};
use crate::Error;

/// How a [`ServerConnection`] travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebRTC data channels (UDP).
    WebRtc,
    /// The WebSocket fallback: both channels reliable and ordered over TCP.
    WebSocket,
}

/// What a server connection reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// A whole message from the server peer on a channel.
    Message {
        /// The channel's name (`reliable` or `unreliable`).
        channel: String,
        /// The message.
        data: Data,
    },
    /// A problem that does not end the connection (a bad frame).
    Error(Error),
    /// The connection is over; nothing follows. `code`: `closed` after `close()`, `goodbye`
    /// (the server closed on purpose, `reason` says why: a kick's reason), `connection_lost`,
    /// `timeout`, or the server's close reason.
    Closed {
        /// Stable code.
        code: String,
        /// For humans.
        reason: String,
    },
}

/// What the application asks of the connection's task.
#[derive(Debug)]
pub(crate) enum Order {
    /// Frames of one message on a channel (already checked and counted).
    Send { lane: usize, frames: Vec<Vec<u8>> },
    /// Close on purpose (a goodbye first).
    Close,
}

/// A connection to one server peer. Create it with [`ServerConnection::connect`].
pub struct ServerConnection {
    id: Option<PeerId>,
    transport: Transport,
    specs: Vec<ChannelSpec>,
    options: ConnectOptions,
    shared: Arc<Mutex<Shared>>,
    orders: mpsc::UnboundedSender<Order>,
    events: mpsc::UnboundedReceiver<ServerEvent>,
}

impl ServerConnection {
    /// Connects to the server peer whose `POST /connect` endpoint is `url`
    /// (`http://host:port/connect`) and returns once both channels are open, over WebRTC or,
    /// when it does not open within `webrtc_timeout`, over the WebSocket fallback. Refusals
    /// keep the server's code (`unauthorized`, `server_full`, `too_many_connections`, ...).
    pub async fn connect(url: &str, options: ConnectOptions) -> Result<Self, Error> {
        options.validate()?;
        let urls = server_urls(url, options.token.as_deref())?;
        // The server peer's channels: `reliable` (0) and `unreliable` (1).
        let specs = channel_specs(&default_channels())?;
        let (orders, orders_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (id, carrier) = match webrtc(&urls, &specs, &options).await {
            Ok((id, carrier)) => (Some(id), carrier),
            Err(error) if error.code == "webrtc_timeout" && options.websocket_fallback => {
                (None, websocket(&urls, &options).await?)
            }
            Err(error) => return Err(error),
        };
        let transport = match carrier {
            Carrier::WebRtc { .. } => Transport::WebRtc,
            Carrier::WebSocket(_) => Transport::WebSocket,
        };
        tokio::spawn(server_task::run(server_task::Setup {
            carrier,
            specs: specs.clone(),
            max_message_bytes: options.max_message_bytes,
            shared: shared.clone(),
            orders: orders_rx,
            events: events_tx,
        }));
        Ok(Self {
            id,
            transport,
            specs,
            options,
            shared,
            orders,
            events,
        })
    }

    /// Our id on the server peer (its `PeerId` for us); `None` over the WebSocket fallback,
    /// whose upgrade does not tell it.
    pub fn id(&self) -> Option<PeerId> {
        self.id
    }

    /// Which transport carries the connection.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        server_task::lock(&self.shared).closed
    }

    /// Sends a message on `reliable` or `unreliable`. Errors: `unknown_channel`,
    /// `message_too_big`, `send_queue_full`, `room_closed` (the connection is over).
    pub fn send(&self, channel: &str, data: impl Into<Data>) -> Result<(), Error> {
        let data = data.into();
        let lane = self
            .specs
            .iter()
            .position(|s| s.name == channel)
            .ok_or_else(|| Error::new("unknown_channel", format!("no channel named {channel}")))?;
        let chunked = self.specs[lane].options.is_chunked();
        let frames = switchboard_protocol::frame::encode(
            data.is_text(),
            data.as_bytes(),
            self.options.frame_bytes,
            chunked,
            self.options.max_message_bytes,
        )
        .ok_or_else(|| {
            Error::new(
                "message_too_big",
                format!(
                    "{} bytes: channel {channel} takes at most {}",
                    data.as_bytes().len(),
                    if chunked {
                        self.options.max_message_bytes
                    } else {
                        self.options.frame_bytes - 1
                    }
                ),
            )
        })?;
        let size: usize = frames.iter().map(Vec::len).sum();
        let mut shared = server_task::lock(&self.shared);
        if shared.closed {
            return Err(Error::new("room_closed", "the connection is closed"));
        }
        if chunked || self.transport == Transport::WebSocket {
            if shared.queued + size > self.options.max_buffered_bytes {
                return Err(Error::new(
                    "send_queue_full",
                    format!(
                        "{} bytes wait already (max_buffered_bytes {})",
                        shared.queued, self.options.max_buffered_bytes
                    ),
                ));
            }
            shared.queued += size;
        }
        drop(shared);
        self.orders
            .send(Order::Send { lane, frames })
            .map_err(|_| Error::new("room_closed", "the connection is closed"))
    }

    /// Closes the connection on purpose: a goodbye first, so the server sees `goodbye`.
    /// `ServerEvent::Closed` (code `closed`) follows.
    pub fn close(&self) {
        let _ = self.orders.send(Order::Close);
    }

    /// The next event; `None` once the connection is over and every event was taken.
    pub async fn next_event(&mut self) -> Option<ServerEvent> {
        self.events.recv().await
    }

    /// Every event that has arrived, without waiting: for game loops (call it once a frame).
    pub fn poll(&mut self) -> Vec<ServerEvent> {
        let mut events = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            events.push(event);
        }
        events
    }
}

impl Drop for ServerConnection {
    fn drop(&mut self) {
        let _ = self.orders.send(Order::Close);
    }
}

/// The WebRTC way: our offer (with our host candidates; the server is ICE-lite and learns our
/// address from our checks) by `POST`, its answer, then ICE and DTLS until the channels open.
/// `webrtc_timeout` when they do not open in time.
async fn webrtc(
    urls: &ServerUrls,
    specs: &[ChannelSpec],
    options: &ConnectOptions,
) -> Result<(PeerId, Carrier), Error> {
    let socket = UdpSocket::bind("0.0.0.0:0").await.map_err(|e| {
        Error::new(
            "connection_failed",
            format!("cannot bind a UDP socket: {e}"),
        )
    })?;
    let bound = socket
        .local_addr()
        .map_err(|e| Error::new("connection_failed", e.to_string()))?;
    let hosts = ice::host_addresses(bound);
    let candidates = ice::candidates(&hosts, None);
    let limits = Limits {
        max_message_bytes: options.max_message_bytes,
        connect_timeout: options.webrtc_timeout + options.request_timeout,
        disconnect_timeout: options.disconnect_timeout,
        max_queued_candidates: 64,
    };
    let mut link = Link::new(
        Role::Offerer,
        specs,
        &fingerprint(specs),
        &candidates,
        limits,
        Instant::now(),
    );
    let offer = link.take_outcomes().into_iter().find_map(|o| match o {
        Outcome::Signal(Signal::Offer { sdp, .. }) => Some(sdp),
        _ => None,
    });
    let offer = offer.ok_or_else(|| Error::new("webrtc_error", "no offer was made"))?;
    let posting = post_offer(urls, offer, options.token.as_deref());
    let (id, answer) = tokio::time::timeout(options.request_timeout, posting)
        .await
        .map_err(|_| {
            Error::new(
                "connection_failed",
                format!("no answer within {:?}", options.request_timeout),
            )
        })??;
    link.signal(Signal::Answer { sdp: answer });
    link.signal(Signal::Candidate(None));
    let opened = server_task::open_link(&socket, &hosts, &mut link, options.webrtc_timeout);
    let early = opened.await?;
    Ok((
        id,
        Carrier::WebRtc {
            socket,
            hosts,
            link: Box::new(link),
            early,
        },
    ))
}

/// The fallback: `GET /connect/ws` upgraded to a WebSocket.
async fn websocket(urls: &ServerUrls, options: &ConnectOptions) -> Result<Carrier, Error> {
    let connecting = tokio_tungstenite::connect_async(urls.socket.as_str());
    let (ws, _) = tokio::time::timeout(options.request_timeout, connecting)
        .await
        .map_err(|_| {
            Error::new(
                "connection_failed",
                "the WebSocket fallback was not accepted in time",
            )
        })?
        .map_err(|e| super::room::refused(&e))?;
    Ok(Carrier::WebSocket(Box::new(ws)))
}
