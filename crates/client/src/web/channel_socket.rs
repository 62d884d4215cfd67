//! A channel taken out of a room in the browser ([`super::Room::take_channel`]), as natively:
//! its messages come here instead of the room's events, and it sends on that channel only (the
//! `ggrs` feature makes it a GGRS socket).

use std::cell::RefCell;
use std::rc::Rc;

use futures_channel::mpsc;
use futures_util::StreamExt;
use switchboard_protocol::{Data, PeerId};

use super::shell::Shell;
use crate::Error;

/// One channel of a room, on its own. Dropping it gives the channel back to the room's events.
pub struct ChannelSocket {
    shell: Rc<RefCell<Shell>>,
    lane: usize,
    name: String,
    received: mpsc::UnboundedReceiver<(PeerId, Data)>,
}

impl ChannelSocket {
    pub(crate) fn new(
        shell: Rc<RefCell<Shell>>,
        lane: usize,
        name: String,
        received: mpsc::UnboundedReceiver<(PeerId, Data)>,
    ) -> Self {
        Self {
            shell,
            lane,
            name,
            received,
        }
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a message to one peer on this channel; errors as [`super::Room::send`].
    pub fn send(&self, peer: PeerId, data: impl Into<Data>) -> Result<(), Error> {
        self.shell.borrow_mut().send(peer, self.lane, &data.into())
    }

    /// Sends a message to every connected peer on this channel; returns how many it went to.
    pub fn broadcast(&self, data: impl Into<Data>) -> Result<usize, Error> {
        self.shell.borrow_mut().broadcast(self.lane, &data.into())
    }

    /// Every message that has arrived on this channel, oldest first, without waiting.
    pub fn receive(&mut self) -> Vec<(PeerId, Data)> {
        std::iter::from_fn(|| self.received.try_recv().ok()).collect()
    }

    /// The next message on this channel; `None` once the room is closed.
    pub async fn next(&mut self) -> Option<(PeerId, Data)> {
        if self.shell.borrow().is_closed() {
            return self.received.try_recv().ok();
        }
        self.received.next().await
    }
}

impl Drop for ChannelSocket {
    fn drop(&mut self) {
        self.shell.borrow_mut().give_back(self.lane);
    }
}
