//! The task of a [`super::connection::Connection`]: one loop per transport, WebRTC (one
//! link on one UDP socket) or the WebSocket fallback (a channel byte, then one data channel
//! frame per binary message: docs/protocol.md, "WebSocket fallback to a server peer").

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use switchboard_protocol::frame::{self, Message, Reassembler};
use switchboard_protocol::Data;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::connection::Order;
use super::driver::{close_handshake, Ws};
use super::endpoint::Endpoint;
use super::ice;
use super::link::{Link, Outcome};
use crate::channels::ChannelSpec;
use crate::connection_event::ConnectionEvent;
use crate::Error;

/// What the handle and the task share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Bytes accepted by `send` and not yet handed to the transport.
    pub queued: usize,
    pub closed: bool,
}

/// Locks the shared state; a panicked task cannot poison it for the application.
pub(crate) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The open transport.
pub(crate) enum Transport {
    /// An open WebRTC link and its socket.
    WebRtc {
        endpoint: Endpoint,
        link: Box<Link>,
        /// Outcomes that came with the opening (messages sent the moment the server opened).
        early: Vec<Outcome>,
    },
    /// An upgraded fallback socket.
    WebSocket(Box<Ws>),
}

/// Everything the task starts with.
pub(crate) struct Setup {
    pub carrier: Transport,
    pub specs: Vec<ChannelSpec>,
    pub max_message_bytes: usize,
    pub shared: Arc<Mutex<Shared>>,
    pub orders: mpsc::UnboundedReceiver<Order>,
    pub events: mpsc::UnboundedSender<ConnectionEvent>,
}

/// Drives ICE and DTLS until every channel is open; returns the outcomes that came after the
/// opening. `webrtc_timeout` when they do not open within `timeout`.
pub(crate) async fn open_link(
    endpoint: &Endpoint,
    link: &mut Link,
    timeout: Duration,
) -> Result<Vec<Outcome>, Error> {
    let (socket, hosts) = (&endpoint.socket, &endpoint.hosts);
    let give_up = Instant::now() + timeout;
    let mut buf = vec![0u8; 2048];
    loop {
        let now = Instant::now();
        let deadline = link.poll(now, &mut |_, to, bytes| {
            // UDP: a datagram the kernel refuses is lost like any other; ICE retransmits.
            let _ = socket.try_send_to(bytes, to);
        });
        let mut outcomes = link.take_outcomes().into_iter();
        while let Some(outcome) = outcomes.next() {
            match outcome {
                Outcome::Open => return Ok(outcomes.collect()),
                Outcome::Closed(reason) => {
                    return Err(Error::new(
                        "connection_failed",
                        format!("the WebRTC connection failed ({reason})"),
                    ))
                }
                _ => {}
            }
        }
        if now >= give_up {
            return Err(Error::new(
                "webrtc_timeout",
                format!("the WebRTC connection did not open within {timeout:?}"),
            ));
        }
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                if let Ok((n, source)) = received {
                    let destination = ice::destination_for(hosts, source);
                    link.receive(Instant::now(), source, destination, &buf[..n]);
                }
            }
            () = tokio::time::sleep_until(deadline.min(give_up).into()) => {}
        }
    }
}

/// Runs the connection until it is over, then reports `Closed`.
pub(crate) async fn run(setup: Setup) {
    let Setup {
        carrier,
        specs,
        max_message_bytes,
        shared,
        orders,
        events,
    } = setup;
    let task = Task {
        specs,
        shared,
        events,
    };
    let (code, reason) = match carrier {
        Transport::WebRtc {
            endpoint,
            mut link,
            early,
        } => {
            let ended = early.into_iter().find_map(|o| task.outcome(o));
            match ended {
                Some(ending) => ending,
                None => {
                    let (socket, hosts) = (&endpoint.socket, &endpoint.hosts);
                    task.webrtc(socket, hosts, &mut link, orders).await
                }
            }
        }
        Transport::WebSocket(ws) => task.websocket(*ws, max_message_bytes, orders).await,
    };
    lock(&task.shared).closed = true;
    let _ = task.events.send(ConnectionEvent::Closed { code, reason });
}

struct Task {
    specs: Vec<ChannelSpec>,
    shared: Arc<Mutex<Shared>>,
    events: mpsc::UnboundedSender<ConnectionEvent>,
}

impl Task {
    fn emit(&self, event: ConnectionEvent) {
        let _ = self.events.send(event);
    }

    fn message(&self, lane: usize, data: Data) {
        if let Some(spec) = self.specs.get(lane) {
            self.emit(ConnectionEvent::Message {
                channel: spec.name.clone(),
                data,
            });
        }
    }

    fn written(&self, bytes: usize) {
        let mut shared = lock(&self.shared);
        shared.queued = shared.queued.saturating_sub(bytes);
    }

    /// Handles one outcome of the link; the ending when it closed.
    fn outcome(&self, outcome: Outcome) -> Option<(String, String)> {
        match outcome {
            Outcome::Message(lane, data) => self.message(lane, data),
            Outcome::Problem(error) => self.emit(ConnectionEvent::Error(error)),
            Outcome::Written(bytes) => self.written(bytes),
            Outcome::Closed(reason) => {
                let text = match reason.as_str() {
                    "goodbye" => "the server peer closed the connection",
                    "connection_lost" => "no traffic from the server peer",
                    _ => "the connection closed",
                };
                return Some((reason, text.to_owned()));
            }
            Outcome::Open | Outcome::Signal(_) => {}
        }
        None
    }

    async fn webrtc(
        &self,
        socket: &UdpSocket,
        hosts: &[SocketAddr],
        link: &mut Link,
        mut orders: mpsc::UnboundedReceiver<Order>,
    ) -> (String, String) {
        let mut buf = vec![0u8; 2048];
        let transmit = &mut |_: SocketAddr, to: SocketAddr, bytes: &[u8]| {
            let _ = socket.try_send_to(bytes, to);
        };
        loop {
            let deadline = link.poll(Instant::now(), transmit);
            if let Some(ending) = link
                .take_outcomes()
                .into_iter()
                .find_map(|o| self.outcome(o))
            {
                return ending;
            }
            tokio::select! {
                received = socket.recv_from(&mut buf) => {
                    if let Ok((n, source)) = received {
                        let destination = ice::destination_for(hosts, source);
                        link.receive(Instant::now(), source, destination, &buf[..n]);
                    }
                }
                order = orders.recv() => match order {
                    Some(Order::Send { lane, frames }) => {
                        link.send(lane, frames);
                    }
                    Some(Order::Close) | None => {
                        link.close(Instant::now(), transmit);
                        return ("closed".into(), "closed by the application".into());
                    }
                },
                () = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    async fn websocket(
        &self,
        mut ws: Ws,
        max_message_bytes: usize,
        mut orders: mpsc::UnboundedReceiver<Order>,
    ) -> (String, String) {
        let mut reassemblers: Vec<Reassembler> = self
            .specs
            .iter()
            .map(|_| Reassembler::new(max_message_bytes))
            .collect();
        loop {
            tokio::select! {
                message = ws.next() => match message {
                    Some(Ok(WsMessage::Binary(bytes))) => {
                        if let Some(ending) = self.socket_frame(&mut reassemblers, &bytes) {
                            return ending;
                        }
                    }
                    Some(Ok(WsMessage::Close(close))) => {
                        let reason = close.map(|c| c.reason.to_string()).unwrap_or_default();
                        let code = if reason.is_empty() { "closed".to_owned() } else { reason };
                        return (code, "the server peer closed the WebSocket".into());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return ("connection_lost".into(), error.to_string()),
                    None => return ("connection_lost".into(), "the WebSocket dropped".into()),
                },
                order = orders.recv() => match order {
                    Some(Order::Send { lane, frames }) => {
                        let size = frames.iter().map(Vec::len).sum();
                        for frame in frames {
                            if let Err(error) = ws.send(channel_message(lane, &frame)).await {
                                return ("connection_lost".into(), error.to_string());
                            }
                        }
                        self.written(size);
                    }
                    Some(Order::Close) | None => {
                        let _ = ws.send(channel_message(0, &frame::goodbye("closed"))).await;
                        close_handshake(&mut ws, None).await;
                        return ("closed".into(), "closed by the application".into());
                    }
                },
            }
        }
    }

    /// One binary WebSocket message: a channel byte and a frame. The ending on a goodbye.
    fn socket_frame(
        &self,
        reassemblers: &mut [Reassembler],
        bytes: &[u8],
    ) -> Option<(String, String)> {
        let bad = |message: &str| ConnectionEvent::Error(Error::new("bad_frame", message));
        let Some((&lane, frame)) = bytes.split_first() else {
            self.emit(bad("an empty WebSocket message"));
            return None;
        };
        let Some(reassembler) = reassemblers.get_mut(usize::from(lane)) else {
            self.emit(bad(&format!("unknown channel byte {lane}")));
            return None;
        };
        match reassembler.push(frame) {
            Ok(None) => {}
            Ok(Some(Message::Binary(bytes))) => self.message(lane.into(), Data::Binary(bytes)),
            Ok(Some(Message::Text(text))) => self.message(lane.into(), Data::Text(text)),
            Ok(Some(Message::Goodbye(reason))) => return Some(("goodbye".into(), reason)),
            Err(error) => self.emit(bad(&error.to_string())),
        }
        None
    }
}

/// A fallback message: the channel byte, then the frame.
fn channel_message(lane: usize, frame: &[u8]) -> WsMessage {
    let mut bytes = Vec::with_capacity(frame.len() + 1);
    bytes.push(u8::try_from(lane).unwrap_or(u8::MAX));
    bytes.extend_from_slice(frame);
    WsMessage::binary(bytes)
}
