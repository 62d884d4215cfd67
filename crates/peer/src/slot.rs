//! One WebRTC peer of the network loop: its `str0m::Rtc`, its channels, the reassembly of what it
//! sends, the reliable frames waiting for room (`Outbox`), its deadlines and how it closes.

use std::collections::HashMap;
use std::time::Instant;

use str0m::change::SdpPendingOffer;
use str0m::channel::ChannelId;
use str0m::Rtc;
use switchboard_protocol::frame::Reassembler;

use crate::api::Channel;
use switchboard_protocol::outbox::{Outbox, Overflow};

/// A WebRTC peer, from its offer (or ours) to its close.
pub(crate) struct Slot {
    pub(crate) rtc: Rtc,
    pub(crate) channels: HashMap<ChannelId, Channel>,
    pub(crate) ids: HashMap<Channel, ChannelId>,
    pub(crate) reliable: Reassembler,
    pub(crate) unreliable: Reassembler,
    /// Channels whose `ChannelOpen` came.
    pub(crate) opened: Vec<ChannelId>,
    /// Every channel is open and the application was told (`Open`).
    pub(crate) open: bool,
    /// A datagram from its browser reached it: it stays on this shard.
    pub(crate) heard: bool,
    /// Hub way: our offer, waiting for the answer.
    pub(crate) pending: Option<SdpPendingOffer>,
    /// str0m's next timeout.
    pub(crate) timeout: Instant,
    /// A peer still not open at this instant is dropped.
    pub(crate) connect_by: Instant,
    /// Reliable frames the transport had no room for yet, in order.
    pub(crate) outbox: Outbox,
    /// Closing: the application was told, a goodbye is queued, and the association is closed
    /// once everything queued is acknowledged, or at this instant at the latest.
    pub(crate) closing_by: Option<Instant>,
}

impl Slot {
    /// A peer that has just made (or received) an offer.
    pub(crate) fn new(rtc: Rtc, connect_by: Instant, max_message_bytes: usize) -> Self {
        Self {
            rtc,
            channels: HashMap::new(),
            ids: HashMap::new(),
            reliable: Reassembler::new(max_message_bytes),
            unreliable: Reassembler::new(max_message_bytes),
            opened: Vec::new(),
            open: false,
            heard: false,
            pending: None,
            // Not a real deadline: the first drain replaces it and schedules the real one.
            timeout: connect_by,
            connect_by,
            outbox: Outbox::default(),
            closing_by: None,
        }
    }

    /// Whether `at` is still one of this peer's deadlines (not a stale heap entry).
    pub(crate) fn is_due_at(&self, at: Instant) -> bool {
        at == self.timeout || (!self.open && at == self.connect_by) || self.closing_by == Some(at)
    }

    /// Open and not closing: the application's sends reach it.
    pub(crate) fn takes_sends(&self) -> bool {
        self.open && self.closing_by.is_none()
    }

    /// Queues the reliable frames of one message behind what is waiting (see [`Slot::flush`]).
    pub(crate) fn queue_reliable(
        &mut self,
        frames: Vec<Vec<u8>>,
        limit: usize,
    ) -> Result<(), Overflow> {
        self.outbox.push(frames, limit)
    }

    /// Writes waiting reliable frames while the transport takes them; returns the bytes written.
    pub(crate) fn flush(&mut self) -> Result<usize, String> {
        let Some(&cid) = self.ids.get(&Channel::Reliable) else {
            return Ok(0);
        };
        let before = self.outbox.bytes();
        let rtc = &mut self.rtc;
        self.outbox.flush(|frame| match rtc.channel(cid) {
            Some(mut writer) => writer.write(true, frame).map_err(|e| e.to_string()),
            // Not open (yet, or any more): the frame waits.
            None => Ok(false),
        })?;
        Ok(before - self.outbox.bytes())
    }

    /// Writes one frame on a channel now, if the transport has room; `Ok(false)` if not.
    pub(crate) fn write_now(&mut self, channel: Channel, frame: &[u8]) -> Result<bool, String> {
        let Some(&cid) = self.ids.get(&channel) else {
            return Ok(false);
        };
        match self.rtc.channel(cid) {
            Some(mut writer) => writer.write(true, frame).map_err(|e| e.to_string()),
            None => Ok(false),
        }
    }

    /// Bytes sent by the application and not yet acknowledged by the peer: waiting in the outbox
    /// and in the transport's buffers.
    pub(crate) fn buffered(&mut self) -> usize {
        let in_transport: usize = self
            .ids
            .values()
            .map(|&cid| {
                self.rtc
                    .channel(cid)
                    .map_or(0, |mut writer| writer.buffered_amount())
            })
            .sum();
        self.outbox.bytes() + in_transport
    }

    /// Closes the data channels (an SCTP stream reset each) and starts closing the association
    /// and DTLS; the caller sends what that produces.
    pub(crate) fn shut(&mut self) {
        let ids: Vec<ChannelId> = self.ids.values().copied().collect();
        for cid in ids {
            self.rtc.direct_api().close_data_channel(cid);
        }
        if let Err(error) = self.rtc.close() {
            tracing::debug!(%error, "closing a peer's association failed");
        }
    }
}
