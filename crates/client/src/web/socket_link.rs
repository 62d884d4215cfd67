//! The server peer's WebSocket fallback in the browser (`GET /connect/ws`), for networks where
//! UDP is blocked: every WebSocket message is one channel byte (the channel's id) and one data
//! channel frame, so large reliable messages are chunked as on a data channel (docs/protocol.md,
//! "WebSocket fallback to a server peer"). Over TCP every channel is reliable and ordered.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::{mpsc, oneshot};
use futures_util::future::{select, Either};
use js_sys::{ArrayBuffer, Uint8Array};
use switchboard_protocol::frame::{self, Message, Reassembler};
use switchboard_protocol::Data;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use super::refusal::why_refused;
use super::timer::sleep;
use crate::channels::ChannelSpec;
use crate::connection_event::ConnectionEvent;
use crate::Error;

/// Abnormal closure (RFC 6455): no close frame, the connection dropped.
const CLOSE_ABNORMAL: u16 = 1006;

/// A connection over the fallback WebSocket.
pub(crate) struct SocketLink {
    ws: WebSocket,
    specs: Vec<ChannelSpec>,
    reassemblers: Vec<Reassembler>,
    events: mpsc::UnboundedSender<ConnectionEvent>,
    max_buffered_bytes: usize,
    closed: bool,
    _handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl SocketLink {
    /// Opens the WebSocket at `url` within `within`; `connection_failed` when it is refused,
    /// unreachable or late.
    pub(crate) async fn open(
        url: &str,
        specs: Vec<ChannelSpec>,
        max_message_bytes: usize,
        max_buffered_bytes: usize,
        within: Duration,
        events: mpsc::UnboundedSender<ConnectionEvent>,
    ) -> Result<Rc<RefCell<Self>>, Error> {
        let failed = |why: String| Error::new("connection_failed", format!("{url}: {why}"));
        let ws = WebSocket::new(url).map_err(|e| failed(format!("{e:?}")))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let (opened_tx, opened) = oneshot::channel::<bool>();
        let opened_tx = Rc::new(RefCell::new(Some(opened_tx)));
        let on_open = {
            let tx = opened_tx.clone();
            Closure::<dyn FnMut(JsValue)>::new(move |_| {
                if let Some(tx) = tx.borrow_mut().take() {
                    let _ = tx.send(true);
                }
            })
        };
        let on_early_close = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            if let Some(tx) = opened_tx.borrow_mut().take() {
                let _ = tx.send(false);
            }
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_early_close.as_ref().unchecked_ref()));
        let outcome = select(opened, Box::pin(sleep(within))).await;
        ws.set_onopen(None);
        ws.set_onclose(None);
        match outcome {
            Either::Left((Ok(true), _)) => {}
            Either::Left(_) => {
                let refused = why_refused(url).await;
                return Err(refused.unwrap_or_else(|| {
                    failed("the WebSocket was refused or closed before it opened".into())
                }));
            }
            Either::Right(_) => {
                let _ = ws.close();
                return Err(failed(format!(
                    "the WebSocket did not open within {within:?}"
                )));
            }
        }
        let link = Rc::new(RefCell::new(Self {
            ws: ws.clone(),
            reassemblers: specs
                .iter()
                .map(|_| Reassembler::new(max_message_bytes))
                .collect(),
            specs,
            events,
            max_buffered_bytes,
            closed: false,
            _handlers: Vec::new(),
        }));
        let me = Rc::downgrade(&link);
        let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let (Some(link), Some(event)) = (me.upgrade(), event.dyn_ref::<MessageEvent>()) else {
                return;
            };
            link.borrow_mut().received(&event.data());
        });
        let me = Rc::downgrade(&link);
        let on_close = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let Some(link) = me.upgrade() else {
                return;
            };
            let code = event
                .dyn_ref::<CloseEvent>()
                .map_or(CLOSE_ABNORMAL, CloseEvent::code);
            let reason = if code == CLOSE_ABNORMAL {
                "connection_lost"
            } else {
                "disconnected"
            };
            link.borrow_mut().end(reason);
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        link.borrow_mut()._handlers = vec![on_message, on_close];
        Ok(link)
    }

    fn emit(&self, event: ConnectionEvent) {
        let _ = self.events.unbounded_send(event);
    }

    fn bad_frame(&self, why: String) {
        self.emit(ConnectionEvent::Error(Error::new("bad_frame", why)));
    }

    fn received(&mut self, data: &JsValue) {
        if self.closed {
            return;
        }
        let Some(buffer) = data.dyn_ref::<ArrayBuffer>() else {
            return self.bad_frame("the server sent text, not a channel frame".into());
        };
        let bytes = Uint8Array::new(buffer).to_vec();
        let Some((&id, frame)) = bytes.split_first() else {
            return self.bad_frame("the server sent an empty message".into());
        };
        let Some(lane) = self.specs.iter().position(|s| s.id == u16::from(id)) else {
            return self.bad_frame(format!("the server sent a frame for unknown channel {id}"));
        };
        match self.reassemblers[lane].push(frame) {
            Ok(None) => {}
            Ok(Some(Message::Binary(bytes))) => self.message(lane, Data::Binary(bytes)),
            Ok(Some(Message::Text(text))) => self.message(lane, Data::Text(text)),
            Ok(Some(Message::Goodbye(_))) => self.end("goodbye"),
            Err(error) => self.bad_frame(error.to_string()),
        }
    }

    fn message(&self, lane: usize, data: Data) {
        let channel = self.specs[lane].name.clone();
        self.emit(ConnectionEvent::Message { channel, data });
    }

    /// Sends a message's frames on lane `lane`; `send_queue_full` past `max_buffered_bytes`
    /// waiting in the browser's socket buffer.
    pub(crate) fn send(&mut self, lane: usize, frames: Vec<Vec<u8>>) -> Result<(), Error> {
        if self.closed {
            return Err(Error::new("room_closed", "the connection is closed"));
        }
        let size: usize = frames.iter().map(|f| f.len() + 1).sum();
        let buffered = self.ws.buffered_amount() as usize;
        if buffered + size > self.max_buffered_bytes {
            return Err(Error::new(
                "send_queue_full",
                format!(
                    "{buffered} bytes wait for the server already (max_buffered_bytes {})",
                    self.max_buffered_bytes
                ),
            ));
        }
        let Ok(id) = u8::try_from(self.specs[lane].id) else {
            return Err(Error::new("unknown_channel", "a channel id past 255"));
        };
        for frame in frames {
            let mut message = Vec::with_capacity(frame.len() + 1);
            message.push(id);
            message.extend_from_slice(&frame);
            if let Err(error) = self.ws.send_with_u8_array(&message) {
                return Err(Error::new(
                    "webrtc_error",
                    format!("send failed: {error:?}"),
                ));
            }
        }
        Ok(())
    }

    /// Where its events go.
    pub(crate) fn events(&self) -> mpsc::UnboundedSender<ConnectionEvent> {
        self.events.clone()
    }

    /// Whether the connection is over.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    fn end(&mut self, reason: &str) {
        if self.closed {
            return;
        }
        self.shut();
        self.emit(ConnectionEvent::Closed {
            code: reason.to_owned(),
            reason: reason.to_owned(),
        });
    }

    /// Closes on purpose: a goodbye frame on the reliable channel first, so the server reports
    /// `goodbye`. Reports nothing.
    pub(crate) fn close(&mut self, reason: &str) {
        if self.closed {
            return;
        }
        let reliable = self.specs.iter().find(|s| s.options.is_chunked());
        if let Some(id) = reliable.and_then(|s| u8::try_from(s.id).ok()) {
            let mut message = vec![id];
            message.extend_from_slice(&frame::goodbye(reason));
            // Closing anyway when the browser refuses it.
            let _ = self.ws.send_with_u8_array(&message);
        }
        self.shut();
    }

    fn shut(&mut self) {
        self.closed = true;
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close_with_code(1000);
    }
}
