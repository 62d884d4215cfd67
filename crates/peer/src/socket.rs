//! The WebSocket fallback, `GET /connect/ws`: for browsers whose UDP is blocked, both channels
//! travel over one WebSocket and the application sees the same events as for a WebRTC peer.
//!
//! Every WebSocket message is binary: one channel byte (the data channel id: 0 `reliable`,
//! 1 `unreliable`) and a data channel frame (docs/protocol.md, "Data channel framing"). The
//! [`Inbox`] turns received messages into whole messages (pure); [`serve`] is the thin shell
//! that moves bytes between the socket and the network loop, pings, and times out.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use switchboard_protocol::frame::{Message, Reassembler};
use switchboard_protocol::rate::TokenBucket;
use switchboard_protocol::PeerId;
use tokio::time::Instant;

use crate::api::{Channel, ConnectError, Data};
use crate::channels::channel_by_id;
use crate::http::PeerIp;
use crate::socket_queue::FrameReceiver;
use crate::Server;

/// A WebSocket's read buffer: idle fallback peers should be cheap (axum's default is 128 KiB).
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// A WebSocket's write buffer.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// Close codes (RFC 6455): normal, going away, unsupported data, policy violation.
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_UNSUPPORTED: u16 = 1003;
const CLOSE_POLICY: u16 = 1008;

/// Why a message from a browser was refused (the socket is closed with this reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboxError {
    /// An empty message, or a channel byte that names no channel.
    #[error("unknown channel")]
    UnknownChannel,
    /// A frame that breaks the data channel framing.
    #[error("{0}")]
    Frame(#[from] switchboard_protocol::frame::FrameError),
}

/// What a received WebSocket message completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A whole message on a channel.
    Message(Channel, Data),
    /// The browser closes, for this reason.
    Goodbye(String),
}

/// Reassembles the messages of one WebSocket peer, one reassembler per channel (pure).
pub struct Inbox {
    reliable: Reassembler,
    unreliable: Reassembler,
}

impl Inbox {
    /// `max_message_bytes` bounds what a browser can make the server buffer.
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            reliable: Reassembler::new(max_message_bytes),
            unreliable: Reassembler::new(max_message_bytes),
        }
    }

    /// Feeds one WebSocket message; returns what it completes, if anything.
    pub fn push(&mut self, message: &[u8]) -> Result<Option<Delivery>, InboxError> {
        let Some((&id, frame)) = message.split_first() else {
            return Err(InboxError::UnknownChannel);
        };
        let channel = channel_by_id(id).ok_or(InboxError::UnknownChannel)?;
        let reassembler = match channel {
            Channel::Reliable => &mut self.reliable,
            Channel::Unreliable => &mut self.unreliable,
        };
        Ok(match reassembler.push(frame)? {
            Some(Message::Binary(bytes)) => Some(Delivery::Message(channel, Data::Binary(bytes))),
            Some(Message::Text(text)) => Some(Delivery::Message(channel, Data::Text(text))),
            Some(Message::Goodbye(reason)) => Some(Delivery::Goodbye(reason)),
            None => None,
        })
    }
}

/// The `GET /connect/ws` handler: takes the peer's place first (a full or stopped server answers
/// 503 with a JSON error, as `POST /connect` does, without upgrading), then upgrades with small
/// buffers and serves the socket.
pub(crate) async fn upgrade(
    State(server): State<Server>,
    _: crate::http::Authorized,
    PeerIp(ip): PeerIp,
    upgrade: WebSocketUpgrade,
) -> Response {
    let (peer, outgoing) = match server.attach_socket(ip).await {
        Ok(attached) => attached,
        Err(error) => {
            let status = match error {
                ConnectError::TooManyFromAddress(_) => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            return crate::http::refuse(status, error.code(), &error.to_string());
        }
    };
    let max_frame = server.config().socket_max_frame_bytes;
    let failed = server.clone();
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(
            server
                .config()
                .socket_max_write_buffer_bytes
                .max(WRITE_BUFFER_BYTES + 1),
        )
        .max_message_size(max_frame)
        .max_frame_size(max_frame)
        .on_failed_upgrade(move |error| {
            tokio::spawn(async move {
                let reason = format!("websocket_error: {error}");
                failed.detach_socket(peer, reason).await;
            });
        })
        .on_upgrade(move |socket| serve(server, socket, peer, outgoing))
}

/// How a socket's life ended, from the server's side.
struct Ending {
    /// For `Event::Closed` (`None`: the network loop already closed the peer).
    reason: Option<String>,
    /// The close frame to send, if the socket is still up.
    close: Option<(u16, String)>,
}

/// Serves one WebSocket peer until it or the server ends it.
async fn serve(server: Server, socket: WebSocket, peer: PeerId, mut outgoing: FrameReceiver) {
    let config = server.config();
    let (ping_every, idle_timeout) = (config.socket_ping_interval, config.socket_idle_timeout);
    let write_timeout = config.socket_write_timeout;
    let (control_rate, control_burst) = (
        config.socket_control_per_second,
        config.socket_control_burst,
    );
    let mut control = TokenBucket::full(control_burst, std::time::Instant::now());
    // A write that fails or does not finish in time: the socket is not taking data.
    let stuck = || Ending {
        reason: Some("write_timeout".into()),
        close: None,
    };
    let mut inbox = Inbox::new(config.max_message_bytes);
    let (mut sink, mut stream) = socket.split();
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    let mut heard = Instant::now();
    let ending = loop {
        tokio::select! {
            frame = outgoing.recv() => match frame {
                Some(frame) => {
                    match tokio::time::timeout(write_timeout, sink.send(WsMessage::Binary(frame.into()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) if !is_write_buffer_full(&error) => {
                            break Ending { reason: Some("websocket_closed".into()), close: None };
                        }
                        Ok(Err(_)) | Err(_) => break stuck(),
                    }
                }
                // Kicked, refused a reliable frame, or shut down: the loop already reported it.
                None => break Ending { reason: None, close: Some((CLOSE_NORMAL, "closed".into())) },
            },
            received = stream.next() => {
                heard = Instant::now();
                match received {
                    Some(Ok(WsMessage::Binary(bytes))) => match inbox.push(&bytes) {
                        Ok(Some(Delivery::Message(channel, data))) => {
                            server.socket_received(peer, channel, data).await;
                        }
                        Ok(Some(Delivery::Goodbye(reason))) => break Ending {
                            reason: Some(format!("goodbye: {reason}")),
                            close: Some((CLOSE_NORMAL, "goodbye".into())),
                        },
                        Ok(None) => {}
                        Err(error) => break Ending {
                            reason: Some(format!("bad_frame: {error}")),
                            close: Some((CLOSE_POLICY, format!("bad_frame: {error}"))),
                        },
                    },
                    Some(Ok(WsMessage::Text(_))) => break Ending {
                        reason: Some("bad_frame: text message".into()),
                        close: Some((CLOSE_UNSUPPORTED, "bad_frame: binary messages only".into())),
                    },
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {
                        // Each ping owes a pong: control frames have their own budget.
                        if !control.try_take(control_rate, control_burst, std::time::Instant::now()) {
                            break Ending {
                                reason: Some("flooding".into()),
                                close: Some((CLOSE_POLICY, "flooding".into())),
                            };
                        }
                    }
                    Some(Ok(WsMessage::Close(_))) => {
                        // Send the reply the WebSocket layer queued: a clean close, not 1006.
                        let _ = tokio::time::timeout(Duration::from_secs(1), sink.flush()).await;
                        break Ending { reason: Some("websocket_closed".into()), close: None };
                    }
                    None => break Ending { reason: Some("websocket_closed".into()), close: None },
                    // TCP ended (FIN or reset) with no close frame: the browser is simply gone.
                    Some(Err(error)) if is_lost_connection(&error) => {
                        break Ending { reason: Some("websocket_closed".into()), close: None }
                    }
                    Some(Err(error)) => break Ending {
                        reason: Some(format!("websocket_error: {error}")),
                        // RFC 6455: a protocol error is answered 1002, text that is not UTF-8 1007.
                        close: violation(&error).map(|(code, why)| (code, why.to_owned())),
                    },
                }
            },
            _ = ping.tick() => {
                if heard.elapsed() >= idle_timeout {
                    break Ending {
                        reason: Some("timeout".into()),
                        close: Some((CLOSE_GOING_AWAY, "timeout".into())),
                    };
                }
                match tokio::time::timeout(write_timeout, sink.send(WsMessage::Ping(Default::default()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) if !is_write_buffer_full(&error) => {
                        break Ending { reason: Some("websocket_closed".into()), close: None };
                    }
                    Ok(Err(_)) | Err(_) => break stuck(),
                }
            },
        }
    };
    if let Some(reason) = ending.reason {
        server.detach_socket(peer, reason).await;
    }
    if let Some((code, reason)) = ending.close {
        // A socket that does not take the close frame in time is dropped anyway.
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            sink.send(close_message(code, &reason)),
        )
        .await;
    }
}

/// The RFC 6455 close code for a peer that broke the WebSocket protocol: 1002, or 1007 for a
/// text frame that is not UTF-8.
fn violation(error: &axum::Error) -> Option<(u16, &'static str)> {
    use tokio_tungstenite::tungstenite::Error;
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        match inner.downcast_ref::<Error>() {
            Some(Error::Protocol(_)) => return Some((1002, "protocol_error")),
            Some(Error::Utf8(_)) => return Some((1007, "invalid_utf8")),
            _ => {}
        }
        source = inner.source();
    }
    None
}

/// Whether the connection ended without a close frame, by a FIN or a reset (a lost connection,
/// not a violation).
fn is_lost_connection(error: &axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    use tokio_tungstenite::tungstenite::Error;
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        if let Some(Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) | Error::Io(_)) =
            inner.downcast_ref::<Error>()
        {
            return true;
        }
        source = inner.source();
    }
    false
}

/// Whether a write failed because the socket holds `socket_max_write_buffer_bytes` unsent.
fn is_write_buffer_full(error: &axum::Error) -> bool {
    use std::error::Error as _;
    let mut source = error.source();
    while let Some(inner) = source {
        if let Some(tokio_tungstenite::tungstenite::Error::WriteBufferFull(_)) =
            inner.downcast_ref::<tokio_tungstenite::tungstenite::Error>()
        {
            return true;
        }
        source = inner.source();
    }
    false
}

fn close_message(code: u16, reason: &str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::frame;

    fn framed(channel: u8, frame: &[u8]) -> Vec<u8> {
        let mut message = vec![channel];
        message.extend_from_slice(frame);
        message
    }

    #[test]
    fn whole_messages_on_both_channels() {
        let mut inbox = Inbox::new(1024);
        let text = frame::encode(true, b"hi", 100, true, 1024).expect("fits");
        assert_eq!(
            inbox.push(&framed(0, &text[0])),
            Ok(Some(Delivery::Message(
                Channel::Reliable,
                Data::Text("hi".into())
            )))
        );
        let binary = frame::encode(false, &[1, 2], 100, false, 1024).expect("fits");
        assert_eq!(
            inbox.push(&framed(1, &binary[0])),
            Ok(Some(Delivery::Message(
                Channel::Unreliable,
                Data::Binary(vec![1, 2])
            )))
        );
    }

    #[test]
    fn chunks_are_reassembled_per_channel() {
        let mut inbox = Inbox::new(1 << 20);
        let big = vec![7u8; 1000];
        let frames = frame::encode(false, &big, 100, true, 1 << 20).expect("fits");
        assert!(frames.len() > 5);
        let (last, rest) = frames.split_last().expect("frames");
        for part in rest {
            assert_eq!(inbox.push(&framed(0, part)), Ok(None));
            // An unreliable message in between does not disturb the reliable reassembly.
            let small = frame::encode(false, &[9], 100, false, 1024).expect("fits");
            assert!(matches!(inbox.push(&framed(1, &small[0])), Ok(Some(_))));
        }
        assert_eq!(
            inbox.push(&framed(0, last)),
            Ok(Some(Delivery::Message(
                Channel::Reliable,
                Data::Binary(big)
            )))
        );
    }

    #[test]
    fn goodbye_and_bad_input() {
        let mut inbox = Inbox::new(1024);
        assert_eq!(
            inbox.push(&framed(0, &frame::goodbye("page closed"))),
            Ok(Some(Delivery::Goodbye("page closed".into())))
        );
        assert_eq!(inbox.push(&[]), Err(InboxError::UnknownChannel));
        assert_eq!(inbox.push(&[2, 0, 1]), Err(InboxError::UnknownChannel));
        assert!(matches!(inbox.push(&[0]), Err(InboxError::Frame(_))));
        assert!(matches!(inbox.push(&[0, 99]), Err(InboxError::Frame(_))));
        // Announces more than max_message_bytes.
        assert!(matches!(
            inbox.push(&[0, frame::FIRST_BINARY_CHUNK, 0, 1, 0, 0, 1]),
            Err(InboxError::Frame(_))
        ));
    }
}
