//! Data channel declarations, as the browser client makes them: every peer of a room declares
//! the same channels; sorted by name they get the pre-negotiated ids 0, 1, 2, ... and a
//! fingerprint that goes with every offer, so a mismatch is refused instead of misdelivering.

use crate::Error;

/// Delivery properties of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelOptions {
    /// Deliver in the order sent.
    pub ordered: bool,
    /// Give up after this many retransmissions (`Some(0)`: never retransmit). Exclusive with
    /// `max_packet_lifetime_ms`.
    pub max_retransmits: Option<u16>,
    /// Give up retransmitting after this many milliseconds. Exclusive with `max_retransmits`.
    pub max_packet_lifetime_ms: Option<u16>,
}

impl ChannelOptions {
    /// Ordered and retransmitted until delivered: large messages are chunked and reassembled.
    pub const RELIABLE: Self = Self {
        ordered: true,
        max_retransmits: None,
        max_packet_lifetime_ms: None,
    };

    /// Unordered, never retransmitted: each message arrives once, late, or not at all.
    pub const UNRELIABLE: Self = Self {
        ordered: false,
        max_retransmits: Some(0),
        max_packet_lifetime_ms: None,
    };

    /// Ordered and fully reliable: the channels whose large messages are chunked.
    pub fn is_chunked(&self) -> bool {
        self.ordered && self.max_retransmits.is_none() && self.max_packet_lifetime_ms.is_none()
    }
}

/// At most this many channels may be declared (as in the browser client).
pub const MAX_CHANNELS: usize = 64;

/// A declared channel with its fixed data channel id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    /// The name the application uses.
    pub name: String,
    /// The pre-negotiated SCTP stream id.
    pub id: u16,
    /// Its delivery properties.
    pub options: ChannelOptions,
}

/// The channels of a room whose peers declare none: `reliable` and `unreliable`.
pub fn default_channels() -> Vec<(String, ChannelOptions)> {
    vec![
        ("reliable".to_owned(), ChannelOptions::RELIABLE),
        ("unreliable".to_owned(), ChannelOptions::UNRELIABLE),
    ]
}

fn invalid(message: String) -> Error {
    Error::new("invalid_options", message)
}

/// Validates declarations and assigns ids (names sorted in byte order); `invalid_options` when
/// a name is not 1-64 of `A-Za-z0-9_.-`, repeats, or the options contradict each other.
pub fn channel_specs(declared: &[(String, ChannelOptions)]) -> Result<Vec<ChannelSpec>, Error> {
    if declared.is_empty() {
        return Err(invalid("declare at least one channel".into()));
    }
    if declared.len() > MAX_CHANNELS {
        return Err(invalid(format!("at most {MAX_CHANNELS} channels")));
    }
    let mut sorted: Vec<&(String, ChannelOptions)> = declared.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut specs = Vec::with_capacity(sorted.len());
    for (index, (name, options)) in sorted.into_iter().enumerate() {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !valid {
            return Err(invalid(format!(
                "channel names are 1-64 characters of A-Z a-z 0-9 _ . - (got {name:?})"
            )));
        }
        if specs.iter().any(|s: &ChannelSpec| &s.name == name) {
            return Err(invalid(format!("channel {name} is declared twice")));
        }
        if options.max_retransmits.is_some() && options.max_packet_lifetime_ms.is_some() {
            return Err(invalid(format!(
                "channel {name}: max_retransmits and max_packet_lifetime_ms are exclusive"
            )));
        }
        specs.push(ChannelSpec {
            name: name.clone(),
            id: u16::try_from(index).map_err(|_| invalid("too many channels".into()))?,
            options: *options,
        });
    }
    Ok(specs)
}

/// The text sent with every offer (`id:name:o|u:maxRetransmits:maxPacketLifeTime`, `-` when
/// unset): equal for two peers exactly when they declared the same channels.
pub fn fingerprint(specs: &[ChannelSpec]) -> String {
    let unset = |v: Option<u16>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    specs
        .iter()
        .map(|s| {
            format!(
                "{}:{}:{}:{}:{}",
                s.id,
                s.name,
                if s.options.ordered { "o" } else { "u" },
                unset(s.options.max_retransmits),
                unset(s.options.max_packet_lifetime_ms)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_channels_have_the_browser_clients_fingerprint() {
        let specs = channel_specs(&default_channels()).expect("valid");
        // The browser client's `channelsFingerprint` of its default channels.
        assert_eq!(fingerprint(&specs), "0:reliable:o:-:-,1:unreliable:u:0:-");
        assert!(specs[0].options.is_chunked());
        assert!(!specs[1].options.is_chunked());
    }

    #[test]
    fn ids_follow_the_byte_order_of_names() {
        let lifetime = ChannelOptions {
            ordered: false,
            max_retransmits: None,
            max_packet_lifetime_ms: Some(150),
        };
        let declared = vec![
            ("state".to_owned(), lifetime),
            ("Chat".to_owned(), ChannelOptions::RELIABLE),
            ("input".to_owned(), ChannelOptions::UNRELIABLE),
        ];
        let specs = channel_specs(&declared).expect("valid");
        let names: Vec<_> = specs.iter().map(|s| (s.id, s.name.as_str())).collect();
        assert_eq!(names, vec![(0, "Chat"), (1, "input"), (2, "state")]);
        assert_eq!(
            fingerprint(&specs),
            "0:Chat:o:-:-,1:input:u:0:-,2:state:u:-:150"
        );
    }

    #[test]
    fn bad_declarations_are_refused() {
        let one = |name: &str, options| channel_specs(&[(name.to_owned(), options)]);
        assert_eq!(channel_specs(&[]).unwrap_err().code, "invalid_options");
        assert!(one("", ChannelOptions::RELIABLE).is_err());
        assert!(one("has space", ChannelOptions::RELIABLE).is_err());
        assert!(one(&"x".repeat(65), ChannelOptions::RELIABLE).is_err());
        assert!(one(&"x".repeat(64), ChannelOptions::RELIABLE).is_ok());
        let both = ChannelOptions {
            ordered: true,
            max_retransmits: Some(1),
            max_packet_lifetime_ms: Some(1),
        };
        assert!(one("a", both).is_err());
        let twice = vec![
            ("a".to_owned(), ChannelOptions::RELIABLE),
            ("a".to_owned(), ChannelOptions::UNRELIABLE),
        ];
        assert!(channel_specs(&twice).is_err());
        let many: Vec<_> = (0..=MAX_CHANNELS)
            .map(|i| (format!("c{i}"), ChannelOptions::RELIABLE))
            .collect();
        assert!(channel_specs(&many).is_err());
        assert!(channel_specs(&many[..MAX_CHANNELS]).is_ok());
    }
}
