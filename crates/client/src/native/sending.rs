//! Sends checked and framed on the application's side (errors come back at once), then handed
//! to the room's task. Shared by [`super::Room`] and the channels taken out of it.

use std::sync::{Arc, Mutex};

use switchboard_protocol::{Data, PeerId};
use tokio::sync::mpsc;

use super::driver::Command;
use super::room::{lock, View};
use crate::channels::ChannelSpec;
use crate::options::JoinOptions;
use crate::outgoing;
use crate::Error;

/// What a send needs: the channels, the limits, the room's view and the task's queue.
#[derive(Clone)]
pub(crate) struct Sending {
    pub specs: Vec<ChannelSpec>,
    pub options: JoinOptions,
    pub view: Arc<Mutex<View>>,
    pub commands: mpsc::UnboundedSender<Command>,
}

impl Sending {
    /// The index of a declared channel.
    pub fn lane(&self, channel: &str) -> Result<usize, Error> {
        outgoing::lane(&self.specs, channel)
    }

    /// Sends `data` to `peer` on lane `lane`.
    pub fn send(&self, peer: PeerId, lane: usize, data: &Data) -> Result<(), Error> {
        let frames = self.frames(lane, data)?;
        self.enqueue(peer, lane, frames)
    }

    /// Sends `data` to every connected peer on lane `lane`; returns how many it went to.
    pub fn broadcast(&self, lane: usize, data: &Data) -> Result<usize, Error> {
        let frames = self.frames(lane, data)?;
        let targets: Vec<PeerId> = lock(&self.view)
            .peers
            .iter()
            .filter(|(_, connected)| *connected)
            .map(|(p, _)| p.id)
            .collect();
        outgoing::to_each(targets, |peer| self.enqueue(peer, lane, frames.clone()))
    }

    fn frames(&self, lane: usize, data: &Data) -> Result<Vec<Vec<u8>>, Error> {
        if lock(&self.view).closed {
            return Err(Error::new("room_closed", "the room is closed"));
        }
        outgoing::frames(
            &self.specs[lane],
            data,
            self.options.frame_bytes,
            self.options.max_message_bytes,
        )
    }

    fn enqueue(&self, peer: PeerId, lane: usize, frames: Vec<Vec<u8>>) -> Result<(), Error> {
        let size: usize = frames.iter().map(Vec::len).sum();
        let mut view = lock(&self.view);
        let membership = view
            .peers
            .iter()
            .find(|(p, _)| p.id == peer)
            .map(|(_, connected)| *connected);
        outgoing::recipient(peer, membership)?;
        if self.specs[lane].options.is_chunked() {
            let queued = view.queued.entry(peer).or_insert(0);
            if *queued + size > self.options.max_buffered_bytes {
                return Err(Error::new(
                    "send_queue_full",
                    format!(
                        "{} bytes wait for {peer} already (max_buffered_bytes {})",
                        *queued, self.options.max_buffered_bytes
                    ),
                ));
            }
            *queued += size;
        }
        drop(view);
        self.commands
            .send(Command::Send { peer, lane, frames })
            .map_err(|_| Error::new("room_closed", "the room is closed"))
    }
}
