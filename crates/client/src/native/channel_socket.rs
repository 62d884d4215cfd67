//! A channel taken out of a room ([`super::Room::take_channel`]): its messages come here instead
//! of the room's events, and it sends on that channel only. What a transport adapter (GGRS) or
//! a game's own network layer wants: one queue per channel, polled each frame.

use switchboard_protocol::{Data, PeerId};
use tokio::sync::mpsc;

use super::sending::Sending;
use crate::Error;

/// One channel of a room, on its own. Dropping it gives the channel back to the room's events.
pub struct ChannelSocket {
    sending: Sending,
    lane: usize,
    received: mpsc::UnboundedReceiver<(PeerId, Data)>,
}

impl ChannelSocket {
    pub(crate) fn new(
        sending: Sending,
        lane: usize,
        received: mpsc::UnboundedReceiver<(PeerId, Data)>,
    ) -> Self {
        Self {
            sending,
            lane,
            received,
        }
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.sending.specs[self.lane].name
    }

    /// Sends a message to one peer on this channel; errors as [`super::Room::send`].
    pub fn send(&self, peer: PeerId, data: impl Into<Data>) -> Result<(), Error> {
        self.sending.send(peer, self.lane, &data.into())
    }

    /// Sends a message to every connected peer on this channel; returns how many it went to.
    pub fn broadcast(&self, data: impl Into<Data>) -> Result<usize, Error> {
        self.sending.broadcast(self.lane, &data.into())
    }

    /// Every message that has arrived on this channel, oldest first, without waiting.
    pub fn receive(&mut self) -> Vec<(PeerId, Data)> {
        std::iter::from_fn(|| self.received.try_recv().ok()).collect()
    }

    /// The next message on this channel; `None` once the room is closed.
    pub async fn next(&mut self) -> Option<(PeerId, Data)> {
        self.received.recv().await
    }
}

impl Drop for ChannelSocket {
    fn drop(&mut self) {
        super::room::lock(&self.sending.view)
            .diverted
            .remove(&self.lane);
    }
}
