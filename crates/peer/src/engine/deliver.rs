//! Moving messages: the application's sends (reliable frames through each peer's outbox, so a
//! full transport delays them instead of losing them), draining an `Rtc` after every input, its
//! events, and closing a peer: goodbye first, then the data channels and the association.

use std::cmp::Reverse;

use str0m::{Event as RtcEvent, IceConnectionState, Output};
use switchboard_protocol::frame::{self, Message};
use switchboard_protocol::PeerId;

use super::table::{PeerTable, CLOSE_OUTPUTS};
use crate::api::{Channel, Data, Event};
use crate::channels::channel_id;
use crate::socket_queue::Refused;

/// Why a peer is closed when its send queue overflows.
const SEND_QUEUE_FULL: &str = "send_queue_full";

impl PeerTable {
    /// Sends one message to peers on either transport, framed once for all of them.
    pub(super) fn send(&mut self, peers: &[PeerId], channel: Channel, data: &Data) {
        let text = matches!(data, Data::Text(_));
        let Some(frames) = frame::encode(
            text,
            data.as_bytes(),
            self.config.frame_bytes,
            channel == Channel::Reliable,
            self.config.max_message_bytes,
        ) else {
            tracing::debug!(
                peers = peers.len(),
                "message too big for its channel: dropped"
            );
            return;
        };
        for &peer in peers {
            self.send_frames(peer, channel, &frames);
        }
    }

    /// Sends one message's frames to a peer on either transport.
    fn send_frames(&mut self, peer: PeerId, channel: Channel, frames: &[Vec<u8>]) {
        if self.sockets.contains_key(&peer) {
            for frame in frames {
                self.write_socket(peer, channel, frame);
            }
            return;
        }
        let Some(slot) = self.peers.get_mut(&peer).filter(|s| s.takes_sends()) else {
            return;
        };
        match channel {
            Channel::Reliable => {
                let size: usize = frames.iter().map(Vec::len).sum();
                if slot
                    .queue_reliable(frames.to_vec(), self.config.send_queue_bytes)
                    .is_err()
                {
                    self.overflowed(peer);
                    return;
                }
                self.stats.queued_bytes.inc_by(gauge(size));
                self.after(peer, Ok(()));
            }
            Channel::Unreliable => {
                // One frame (unreliable messages are never chunked).
                for frame in frames {
                    match slot.write_now(channel, frame) {
                        Ok(true) => {}
                        Ok(false) => {
                            self.stats.unreliable_dropped.inc();
                        }
                        Err(reason) => {
                            self.fail(peer, reason);
                            return;
                        }
                    }
                }
                self.after(peer, Ok(()));
            }
        }
    }

    /// A WebSocket peer's frame: queued, or dropped (unreliable) or the peer closed (reliable)
    /// when its queue is full.
    fn write_socket(&mut self, peer: PeerId, channel: Channel, frame: &[u8]) {
        let Some(socket) = self.sockets.get(&peer) else {
            return;
        };
        let mut message = Vec::with_capacity(frame.len() + 1);
        message.push(channel_id(channel));
        message.extend_from_slice(frame);
        match socket.push(message, self.config.send_queue_bytes) {
            Ok(()) => {}
            Err(Refused::Full) if channel == Channel::Unreliable => {
                self.stats.unreliable_dropped.inc();
            }
            Err(Refused::Full) => self.overflowed(peer),
            // The socket task is ending; its `Drop` comes next.
            Err(Refused::Closed) => {}
        }
    }

    /// A peer's reliable queue overflowed: it does not read. Closed at once (waiting behind its
    /// backlog would never end); the goodbye goes on the unreliable channel, which is not behind
    /// the backlog, as a best effort.
    fn overflowed(&mut self, peer: PeerId) {
        tracing::info!(%peer, limit = self.config.send_queue_bytes, "send queue full: peer closed");
        self.stats.send_queue_full.inc();
        if let Some(slot) = self.peers.get_mut(&peer) {
            let _ = slot.write_now(Channel::Unreliable, &frame::goodbye(SEND_QUEUE_FULL));
        }
        self.close(peer, SEND_QUEUE_FULL.into(), None);
    }

    /// After a mutation: drain, write what waits, or close the peer if the mutation failed.
    pub(super) fn after(&mut self, peer: PeerId, result: Result<(), String>) {
        if let Err(reason) = result.and_then(|()| self.pump(peer)) {
            self.fail(peer, reason);
        }
    }

    /// Drains the `Rtc`, then writes waiting reliable frames while it takes them (and drains
    /// again, so they go out). A closing peer whose goodbye is acknowledged is closed.
    fn pump(&mut self, peer: PeerId) -> Result<(), String> {
        loop {
            self.drain(peer)?;
            let Some(slot) = self.peers.get_mut(&peer) else {
                return Ok(());
            };
            let written = slot.flush()?;
            self.stats.queued_bytes.dec_by(gauge(written));
            if slot.closing_by.is_some() && slot.buffered() == 0 {
                self.drain(peer)?;
                self.finish(peer);
                return Ok(());
            }
            if written == 0 {
                return Ok(());
            }
        }
    }

    /// Drains `poll_output` to the next timeout: sends, events. Returns why to close, if so.
    pub(super) fn drain(&mut self, peer: PeerId) -> Result<(), String> {
        loop {
            let Some(slot) = self.peers.get_mut(&peer) else {
                return Ok(());
            };
            if !slot.rtc.is_alive() {
                return Err("closed".into());
            }
            match slot.rtc.poll_output().map_err(|e| e.to_string())? {
                Output::Timeout(at) => {
                    if at != slot.timeout {
                        slot.timeout = at;
                        self.deadlines.push(Reverse((at, peer)));
                    }
                    return Ok(());
                }
                Output::Transmit(transmit) => {
                    self.transmits
                        .push((transmit.destination, transmit.contents.into()));
                }
                Output::Event(event) => self.event(peer, event)?,
            }
        }
    }

    fn event(&mut self, peer: PeerId, event: RtcEvent) -> Result<(), String> {
        let Some(slot) = self.peers.get_mut(&peer) else {
            return Ok(());
        };
        match event {
            RtcEvent::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                return Err("ice_disconnected".into())
            }
            RtcEvent::ChannelOpen(cid, _) if slot.channels.contains_key(&cid) => {
                if !slot.opened.contains(&cid) {
                    slot.opened.push(cid);
                }
                if !slot.open && slot.opened.len() == slot.channels.len() {
                    slot.open = true;
                    self.events.push(Event::Open(peer));
                }
            }
            RtcEvent::ChannelClose(_) | RtcEvent::Closed => return Err("channel_closed".into()),
            // The application was told `Closed`: nothing more from this peer.
            RtcEvent::ChannelData(_) if slot.closing_by.is_some() => {}
            RtcEvent::ChannelData(data) => {
                let Some(&channel) = slot.channels.get(&data.id) else {
                    return Ok(());
                };
                let reassembler = match channel {
                    Channel::Reliable => &mut slot.reliable,
                    Channel::Unreliable => &mut slot.unreliable,
                };
                let message = if data.binary {
                    reassembler.push(&data.data)
                } else {
                    // An unframed string from a non-Switchboard peer: deliver as text.
                    Ok(Some(Message::Text(
                        String::from_utf8_lossy(&data.data).into_owned(),
                    )))
                };
                match message {
                    Ok(Some(Message::Binary(bytes))) => {
                        self.events
                            .push(Event::Received(peer, channel, Data::Binary(bytes)))
                    }
                    Ok(Some(Message::Text(text))) => {
                        self.events
                            .push(Event::Received(peer, channel, Data::Text(text)))
                    }
                    Ok(Some(Message::Goodbye(reason))) => return Err(format!("goodbye: {reason}")),
                    Ok(None) => {}
                    Err(error) => tracing::debug!(%peer, %error, "bad frame from a peer: dropped"),
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The peer's transport failed or closed: closed at once, for this reason.
    fn fail(&mut self, peer: PeerId, reason: String) {
        self.close(peer, reason, None);
    }

    /// Ends a peer: the application is told (once, and only if it saw the peer open); with a
    /// `goodbye`, the peer gets it after everything already queued, then its channels and
    /// association are closed (at the latest after `close_linger`); without, they are closed now.
    pub(super) fn close(&mut self, peer: PeerId, reason: String, goodbye: Option<&str>) {
        if let Some(socket) = self.sockets.remove(&peer) {
            self.roster.remove(peer);
            if let Some(goodbye) = goodbye {
                let mut message = vec![channel_id(Channel::Reliable)];
                message.extend_from_slice(&frame::goodbye(goodbye));
                let _ = socket.push(message, usize::MAX);
            }
            // Dropping the sender ends the socket once it has sent what is queued.
            self.events.push(Event::Closed(peer, reason));
            return;
        }
        let Some(slot) = self.peers.get_mut(&peer) else {
            return;
        };
        if slot.closing_by.is_some() {
            // Already told; a failure while closing ends the close.
            if goodbye.is_none() {
                self.finish(peer);
            }
            return;
        }
        let was_open = slot.open;
        if was_open {
            self.events.push(Event::Closed(peer, reason));
        }
        match goodbye {
            Some(goodbye) if was_open => {
                let goodbye = frame::goodbye(goodbye);
                self.stats.queued_bytes.inc_by(gauge(goodbye.len()));
                slot.outbox.push_last(goodbye);
                let by = self.now + self.config.close_linger;
                slot.closing_by = Some(by);
                self.deadlines.push(Reverse((by, peer)));
                self.after(peer, Ok(()));
            }
            _ => self.finish(peer),
        }
    }

    /// Removes a peer: closes its data channels and association, sends what that produces.
    pub(super) fn finish(&mut self, peer: PeerId) {
        let Some(mut slot) = self.peers.remove(&peer) else {
            return;
        };
        if let Some(ufrag) = self.routes.ufrag_of(peer) {
            self.roster.heard(ufrag);
        }
        self.routes.remove_peer(peer);
        self.roster.remove(peer);
        self.stats.queued_bytes.dec_by(gauge(slot.outbox.bytes()));
        slot.shut();
        for _ in 0..CLOSE_OUTPUTS {
            match slot.rtc.poll_output() {
                Ok(Output::Transmit(transmit)) => {
                    self.transmits
                        .push((transmit.destination, transmit.contents.into()));
                }
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(_)) | Err(_) => break,
            }
        }
    }
}

/// A byte count as a gauge step.
fn gauge(bytes: usize) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}
