//! The two data channels every connection has, as the browser client declares them: fixed,
//! pre-negotiated ids (also each channel's byte on the WebSocket fallback) and properties.

use str0m::channel::{ChannelConfig, Reliability};

use crate::api::Channel;

/// The browser client's channels, as its offers describe them (`channelsFingerprint`).
pub(crate) const CHANNELS_FINGERPRINT: &str = "0:reliable:o:-:-,1:unreliable:u:0:-";

/// Each channel and its label.
pub(crate) const CHANNELS: [(Channel, &str); 2] = [
    (Channel::Reliable, "reliable"),
    (Channel::Unreliable, "unreliable"),
];

/// A channel's pre-negotiated data channel id, also its byte on the WebSocket fallback.
pub(crate) const fn channel_id(channel: Channel) -> u8 {
    match channel {
        Channel::Reliable => 0,
        Channel::Unreliable => 1,
    }
}

/// The channel with this id.
pub(crate) fn channel_by_id(id: u8) -> Option<Channel> {
    CHANNELS
        .iter()
        .map(|&(channel, _)| channel)
        .find(|&channel| channel_id(channel) == id)
}

/// A pre-negotiated channel with the browser client's fixed id and properties.
pub(crate) fn channel_config(channel: Channel, label: &str) -> ChannelConfig {
    ChannelConfig {
        label: label.to_owned(),
        ordered: channel == Channel::Reliable,
        reliability: match channel {
            Channel::Reliable => Reliability::Reliable,
            Channel::Unreliable => Reliability::MaxRetransmits { retransmits: 0 },
        },
        negotiated: Some(u16::from(channel_id(channel))),
        protocol: String::new(),
    }
}
