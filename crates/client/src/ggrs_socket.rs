//! GGRS over a room (the `ggrs` feature): a [`ChannelSocket`] is a `ggrs::NonBlockingSocket`
//! addressed by [`PeerId`], so a rollback game starts a P2P session with
//! `start_p2p_session(room.take_channel("unreliable")?)`. Messages are GGRS's own bincode
//! encoding, one binary message each; GGRS brings its own reliability, so the channel should
//! be unreliable (`maxRetransmits: 0`), as matchbox does.

use switchboard_protocol::{Data, PeerId};

use crate::ChannelSocket;

impl ggrs::NonBlockingSocket<PeerId> for ChannelSocket {
    /// Sends like a UDP socket: a message that cannot go (the peer is not connected, the
    /// message is larger than a frame) is dropped, and GGRS resends what it needs.
    fn send_to(&mut self, message: &ggrs::Message, peer: &PeerId) {
        match bincode::serialize(message) {
            Ok(bytes) => {
                if let Err(error) = self.send(*peer, bytes) {
                    tracing::debug!(%peer, code = error.code, "ggrs message dropped");
                }
            }
            Err(error) => tracing::warn!(%error, "ggrs message not encodable"),
        }
    }

    /// Every GGRS message that has arrived; anything else on the channel (text, bytes that are
    /// not a GGRS message) is skipped.
    fn receive_all_messages(&mut self) -> Vec<(PeerId, ggrs::Message)> {
        self.receive()
            .into_iter()
            .filter_map(|(peer, data)| match data {
                Data::Binary(bytes) => match bincode::deserialize(&bytes) {
                    Ok(message) => Some((peer, message)),
                    Err(error) => {
                        tracing::debug!(%peer, %error, "not a ggrs message: skipped");
                        None
                    }
                },
                Data::Text(_) => None,
            })
            .collect()
    }
}
