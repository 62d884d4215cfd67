//! The checks every send makes before anything is queued, on every target: the message framed
//! for its channel (chunked on ordered reliable channels) within the limits, and a recipient
//! that is connected.

use switchboard_protocol::{Data, PeerId};

use crate::channels::ChannelSpec;
use crate::Error;

/// The frames of `data` on the channel `spec` (frames of at most `frame_bytes`; chunked
/// messages of at most `max_message_bytes`); `message_too_big` past the channel's limit.
pub(crate) fn frames(
    spec: &ChannelSpec,
    data: &Data,
    frame_bytes: usize,
    max_message_bytes: usize,
) -> Result<Vec<Vec<u8>>, Error> {
    let chunked = spec.options.is_chunked();
    switchboard_protocol::frame::encode(
        data.is_text(),
        data.as_bytes(),
        frame_bytes,
        chunked,
        max_message_bytes,
    )
    .ok_or_else(|| {
        let limit = if chunked {
            max_message_bytes
        } else {
            frame_bytes - 1
        };
        Error::new(
            "message_too_big",
            format!(
                "{} bytes: channel {} takes at most {limit}",
                data.as_bytes().len(),
                spec.name
            ),
        )
    })
}

/// Whether `peer` can be sent to, from its membership (`None`: not a member; `Some(connected)`).
pub(crate) fn recipient(peer: PeerId, membership: Option<bool>) -> Result<(), Error> {
    match membership {
        None => Err(Error::new(
            "unknown_peer",
            format!("no peer {peer} in the room"),
        )),
        Some(false) => Err(Error::new(
            "peer_not_connected",
            format!("no connection to {peer} (yet; star rooms connect clients only to the host)"),
        )),
        Some(true) => Ok(()),
    }
}

/// The index of the declared channel named `channel`; `unknown_channel` when there is none.
pub(crate) fn lane(specs: &[ChannelSpec], channel: &str) -> Result<usize, Error> {
    specs
        .iter()
        .position(|s| s.name == channel)
        .ok_or_else(|| Error::new("unknown_channel", format!("no channel named {channel}")))
}

/// A broadcast: `send` to each of `targets`; returns how many it went to. A peer that left or
/// disconnected meanwhile is skipped; any other refusal stops it.
pub(crate) fn to_each(
    targets: Vec<PeerId>,
    mut send: impl FnMut(PeerId) -> Result<(), Error>,
) -> Result<usize, Error> {
    let mut sent = 0;
    for peer in targets {
        match send(peer) {
            Ok(()) => sent += 1,
            Err(e) if e.code == "unknown_peer" || e.code == "peer_not_connected" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}
