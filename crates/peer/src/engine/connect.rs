//! New peers: the browser's offer (`POST /connect`), our offer (hub way) and its answer, and
//! WebSocket fallback peers.

use std::cmp::Reverse;
use std::net::IpAddr;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::channel::ChannelId;
use str0m::{Candidate, Rtc};
use switchboard_protocol::PeerId;

use super::table::PeerTable;
use super::Attached;
use crate::api::{Channel, ConnectError, Event};
use crate::channels::{channel_config, CHANNELS};
use crate::slot::Slot;
use crate::socket_queue::frame_queue;

impl PeerTable {
    /// A new `Rtc` for a peer, ice-lite, with this server's candidates.
    fn new_rtc(&self, now: Instant) -> Rtc {
        // Data channels only: no codecs, no periodic stats.
        let mut config = Rtc::builder()
            .set_ice_lite(true)
            .clear_codecs()
            .set_stats_interval(None);
        if let Some(cert) = &self.dtls_cert {
            config = config.set_dtls_cert(cert.clone());
        }
        let mut rtc = config.build(now);
        for addr in &self.advertised {
            if let Ok(candidate) = Candidate::host(*addr, "udp") {
                rtc.add_local_candidate(candidate);
            }
        }
        rtc
    }

    /// Registers a peer's slot here (new, or handed over by another shard): its route, its
    /// deadlines, and, until its browser is heard from, its ufrag in the roster (so a check
    /// reaching another shard's socket is passed here).
    pub(super) fn admit(&mut self, peer: PeerId, mut slot: Box<Slot>) {
        let ufrag = slot.rtc.direct_api().local_ice_credentials().ufrag;
        if !slot.heard {
            self.roster.awaits_check(&ufrag, self.shard);
        }
        self.deadlines.push(Reverse((slot.connect_by, peer)));
        if slot.timeout != slot.connect_by {
            self.deadlines.push(Reverse((slot.timeout, peer)));
        }
        self.peers.insert(peer, slot);
        self.routes.add_peer(peer, ufrag);
    }

    /// Drains a new peer; one that fails is removed and refused (the detail goes to the log).
    fn settle(&mut self, peer: PeerId) -> Result<(), ConnectError> {
        self.drain(peer).map_err(|error| {
            tracing::debug!(%peer, %error, "peer setup failed");
            self.finish(peer);
            ConnectError::InvalidOffer("the offer cannot be accepted".into())
        })
    }

    /// Refuses a new peer early when shutting down, when `max_peers` are there (both
    /// transports, every shard), or when its address has `max_peers_per_ip`. The roster checks
    /// again when it counts the peer.
    fn has_room(&self, ip: Option<IpAddr>) -> Result<(), ConnectError> {
        if self.stopping {
            Err(ConnectError::Stopped)
        } else {
            self.roster.has_room(ip)
        }
    }

    /// Hub way: the server offers (its candidates in the offer; an ice-lite server needs none of
    /// the browser's, it answers the browser's checks).
    pub(super) fn offer(&mut self, peer: PeerId) -> Result<String, ConnectError> {
        if self.roster.shard_of(peer).is_some() {
            return Err(ConnectError::InvalidOffer(
                "already connecting to this peer".into(),
            ));
        }
        self.has_room(None)?;
        let now = self.now;
        let mut rtc = self.new_rtc(now);
        let mut api = rtc.sdp_api();
        let ids: Vec<(Channel, ChannelId)> = CHANNELS
            .iter()
            .map(|&(channel, label)| {
                (
                    channel,
                    api.add_channel_with_config(channel_config(channel, label)),
                )
            })
            .collect();
        let Some((offer, pending)) = api.apply() else {
            return Err(ConnectError::InvalidOffer("no offer".into()));
        };
        let mut slot = Box::new(Slot::new(
            rtc,
            now + self.config.connect_timeout,
            self.config.max_message_bytes,
        ));
        for (channel, cid) in ids {
            slot.channels.insert(cid, channel);
            slot.ids.insert(channel, cid);
        }
        slot.pending = Some(pending);
        self.roster.admit(peer, None, self.shard)?;
        self.admit(peer, slot);
        self.settle(peer)?;
        Ok(offer.to_sdp_string())
    }

    /// Hub way: the browser's answer to our offer.
    pub(super) fn answer(&mut self, peer: PeerId, sdp: &str) {
        let Some(slot) = self.peers.get_mut(&peer) else {
            return;
        };
        let (Some(pending), Ok(answer)) = (slot.pending.take(), SdpAnswer::from_sdp_string(sdp))
        else {
            tracing::debug!(%peer, "unexpected or invalid answer: dropped");
            return;
        };
        let result = slot
            .rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| e.to_string());
        self.after(peer, result);
    }

    /// WebSocket fallback: a new peer, open at once.
    pub(super) fn attach(&mut self, ip: Option<IpAddr>) -> Result<Attached, ConnectError> {
        self.has_room(ip)?;
        let peer = PeerId::from_u128(rand::random());
        self.roster.admit(peer, ip, self.shard)?;
        let (frames, outgoing) = frame_queue();
        self.sockets.insert(peer, frames);
        self.events.push(Event::Open(peer));
        Ok((peer, outgoing))
    }

    /// `POST /connect`: accepts the browser's offer; returns the new peer and our answer.
    pub(super) fn connect(
        &mut self,
        offer: &str,
        ip: Option<IpAddr>,
    ) -> Result<(PeerId, String), ConnectError> {
        self.has_room(ip)?;
        if !offers_data_channel(offer) {
            return Err(ConnectError::InvalidOffer(
                "the offer has no data channel (an m=application line for webrtc-datachannel)"
                    .into(),
            ));
        }
        let offer = SdpOffer::from_sdp_string(offer).map_err(|error| {
            tracing::debug!(%error, "unparsable offer");
            ConnectError::InvalidOffer("not an SDP offer".into())
        })?;
        let now = self.now;
        let mut rtc = self.new_rtc(now);
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|error| {
            tracing::debug!(%error, "offer refused by the WebRTC stack");
            ConnectError::InvalidOffer("the offer cannot be accepted (a data channel offer with ICE credentials and a DTLS fingerprint is needed)".into())
        })?;
        let peer = PeerId::from_u128(rand::random());
        self.roster.admit(peer, ip, self.shard)?;
        let slot = Box::new(Slot::new(
            rtc,
            now + self.config.connect_timeout,
            self.config.max_message_bytes,
        ));
        self.admit(peer, slot);
        self.settle(peer)?;
        // The browser client's channels are pre-negotiated with fixed ids: create the same.
        for (channel, label) in CHANNELS {
            if let Some(slot) = self.peers.get_mut(&peer) {
                let cid = slot
                    .rtc
                    .direct_api()
                    .create_data_channel(channel_config(channel, label));
                slot.channels.insert(cid, channel);
                slot.ids.insert(channel, cid);
            }
            self.settle(peer)?;
        }
        Ok((peer, answer.to_sdp_string()))
    }
}

/// Whether an SDP offers a data channel: an `m=application` section over (UDP/)DTLS/SCTP. An offer
/// with audio or video only would be answered with every section rejected: a peer that can never
/// open.
pub(crate) fn offers_data_channel(sdp: &str) -> bool {
    sdp.lines().any(|line| {
        line.strip_prefix("m=application ")
            .is_some_and(|rest| rest.contains("DTLS/SCTP") && !rest.starts_with("0 "))
    })
}

#[cfg(test)]
mod tests {
    use super::offers_data_channel;

    #[test]
    fn only_offers_with_a_live_data_channel_section_count() {
        let data = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
        assert!(offers_data_channel(data));
        let old_style = "m=application 9 DTLS/SCTP 5000\r\n";
        assert!(offers_data_channel(old_style));
        let audio = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
        assert!(!offers_data_channel(audio));
        let rejected = "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n";
        assert!(!offers_data_channel(rejected));
        assert!(!offers_data_channel(""));
    }
}
