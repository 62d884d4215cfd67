//! A connection to one peer outside any room, as the browser client's `Connection`: to a
//! server peer ([`Connection::to_server`], `server_connect`) or to a device paired by compact
//! codes (`pairing`). WebRTC on one UDP socket, or the server peer's WebSocket fallback.

use std::sync::{Arc, Mutex};

use switchboard_protocol::{Data, PeerId};
use tokio::sync::mpsc;

use super::connection_task::{self, Shared, Transport as Carrier};
use crate::channels::ChannelSpec;
use crate::connect_options::ConnectOptions;
use crate::connection_event::{ConnectionEvent, Transport};
use crate::outgoing;
use crate::Error;

/// What the application asks of the connection's task.
#[derive(Debug)]
pub(crate) enum Order {
    /// Frames of one message on a channel (already checked and counted).
    Send { lane: usize, frames: Vec<Vec<u8>> },
    /// Close on purpose (a goodbye first).
    Close,
}

/// A connection to one peer outside any room. Create it with [`Connection::to_server`] or by
/// pairing ([`crate::PairingOffer`], [`crate::PairingAnswer`]).
pub struct Connection {
    id: Option<PeerId>,
    transport: Transport,
    specs: Vec<ChannelSpec>,
    options: ConnectOptions,
    shared: Arc<Mutex<Shared>>,
    orders: mpsc::UnboundedSender<Order>,
    events: mpsc::UnboundedReceiver<ConnectionEvent>,
}

impl Connection {
    /// Starts the task of an open transport and returns the handle.
    pub(crate) fn start(
        carrier: Carrier,
        id: Option<PeerId>,
        specs: Vec<ChannelSpec>,
        options: &ConnectOptions,
    ) -> Self {
        let (orders, orders_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let transport = match carrier {
            Carrier::WebRtc { .. } => Transport::WebRtc,
            Carrier::WebSocket(_) => Transport::WebSocket,
        };
        tokio::spawn(connection_task::run(connection_task::Setup {
            carrier,
            specs: specs.clone(),
            max_message_bytes: options.max_message_bytes,
            shared: shared.clone(),
            orders: orders_rx,
            events: events_tx,
        }));
        Self {
            id,
            transport,
            specs,
            options: options.clone(),
            shared,
            orders,
            events,
        }
    }

    /// Our id on the server peer (its `PeerId` for us); `None` over the WebSocket fallback,
    /// whose upgrade does not tell it, and for a paired connection.
    pub fn id(&self) -> Option<PeerId> {
        self.id
    }

    /// Which transport carries the connection.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        connection_task::lock(&self.shared).closed
    }

    /// Sends a message on a channel. Errors: `unknown_channel`,
    /// `message_too_big`, `send_queue_full`, `room_closed` (the connection is over).
    pub fn send(&self, channel: &str, data: impl Into<Data>) -> Result<(), Error> {
        let data = data.into();
        let lane = outgoing::lane(&self.specs, channel)?;
        let chunked = self.specs[lane].options.is_chunked();
        let frames = outgoing::frames(
            &self.specs[lane],
            &data,
            self.options.frame_bytes,
            self.options.max_message_bytes,
        )?;
        let size: usize = frames.iter().map(Vec::len).sum();
        let mut shared = connection_task::lock(&self.shared);
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
    /// `ConnectionEvent::Closed` (code `closed`) follows.
    pub fn close(&self) {
        let _ = self.orders.send(Order::Close);
    }

    /// The next event; `None` once the connection is over and every event was taken.
    pub async fn next_event(&mut self) -> Option<ConnectionEvent> {
        self.events.recv().await
    }

    /// Every event that has arrived, without waiting: for game loops (call it once a frame).
    pub fn poll(&mut self) -> Vec<ConnectionEvent> {
        std::iter::from_fn(|| self.events.try_recv().ok()).collect()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.orders.send(Order::Close);
    }
}
