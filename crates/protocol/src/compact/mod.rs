//! Compact SDP: a data-channel-only offer or answer in about 80 bytes, small enough for a QR code,
//! so two devices can connect with no signaling server (by QR code, link or copy-paste).
//!
//! Only what a data channel needs survives: offer or answer, ICE ufrag and password, the DTLS
//! fingerprint and setup role, the SCTP port and maximum message size, the media id, and the
//! candidates (IPv4, IPv6, mDNS `.local` names, host / srflx / prflx / relay, UDP or TCP).
//! [`Description::to_sdp`] rebuilds an SDP that browsers accept. The byte layout is written
//! down in `docs/compact-sdp.md`; the browser client implements the same format and both read
//! the test vectors in `testdata/compact-sdp.json`.
//!
//! ```
//! # use switchboard_protocol::compact::{Description, TextForm};
//! # let sdp = include_str!("../../tests/data/chromium-offer-2-ipv4.sdp");
//! let description = Description::from_sdp(sdp)?;
//! let bytes = description.encode()?;
//! assert!(bytes.len() <= 100);
//! let code = TextForm::Url.encode(&bytes);
//! let back = Description::decode(&TextForm::Url.decode(&code)?)?;
//! assert_eq!(back, description);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod binary;
mod sdp;
mod text;

use std::fmt;
use std::net::IpAddr;

pub use binary::{DecodeError, EncodeError, MAX_CANDIDATES, MAX_CODE_BYTES, VERSION};
pub use sdp::SdpError;
pub use text::{TextError, TextForm};

/// Offer or answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdpType {
    /// `offer`
    Offer,
    /// `answer`
    Answer,
}

/// The DTLS role (`a=setup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// `actpass`: either (offers).
    ActPass,
    /// `active`: DTLS client.
    Active,
    /// `passive`: DTLS server.
    Passive,
}

/// The certificate fingerprint's hash function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// `sha-256` (browsers today).
    Sha256,
    /// `sha-384`
    Sha384,
    /// `sha-512`
    Sha512,
    /// `sha-1` (legacy).
    Sha1,
}

impl HashAlgorithm {
    /// The name used in SDP.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
            Self::Sha1 => "sha-1",
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
            Self::Sha1 => 20,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Sha256, Self::Sha384, Self::Sha512, Self::Sha1]
            .into_iter()
            .find(|alg| alg.name().eq_ignore_ascii_case(name))
    }
}

/// The DTLS certificate fingerprint (`a=fingerprint`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash function.
    pub algorithm: HashAlgorithm,
    /// Digest, `algorithm.digest_len()` bytes.
    pub digest: Vec<u8>,
}

/// Candidate type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CandidateType {
    /// A local interface address.
    Host,
    /// Server reflexive: the address a STUN server saw.
    Srflx,
    /// Peer reflexive.
    Prflx,
    /// A TURN relay address.
    Relay,
}

impl CandidateType {
    fn name(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Srflx => "srflx",
            Self::Prflx => "prflx",
            Self::Relay => "relay",
        }
    }

    /// RFC 8445 type preference.
    fn preference(self) -> u32 {
        match self {
            Self::Host => 126,
            Self::Prflx => 110,
            Self::Srflx => 100,
            Self::Relay => 0,
        }
    }
}

/// Transport of a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP with its RFC 6544 `tcptype`.
    Tcp(TcpType),
}

/// RFC 6544 TCP candidate type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpType {
    /// `passive`
    Passive,
    /// `active`
    Active,
    /// `so` (simultaneous open)
    So,
}

impl TcpType {
    fn name(self) -> &'static str {
        match self {
            Self::Passive => "passive",
            Self::Active => "active",
            Self::So => "so",
        }
    }
}

/// Where a candidate is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// An mDNS name `<uuid>.local` (how browsers hide host addresses), stored as the UUID.
    Mdns(u128),
    /// Any other host name (at most 255 bytes).
    Name(String),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Mdns(uuid) => {
                let hex = format!("{uuid:032x}");
                write!(
                    f,
                    "{}-{}-{}-{}-{}.local",
                    &hex[..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..]
                )
            }
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// One ICE candidate of component 1 (data channels use one component).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Host, srflx, prflx or relay.
    pub kind: CandidateType,
    /// UDP or TCP.
    pub transport: Transport,
    /// Address or name.
    pub address: Address,
    /// Port.
    pub port: u16,
}

/// A data-channel-only session description, reduced to what a connection needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    /// Offer or answer.
    pub sdp_type: SdpType,
    /// `a=ice-ufrag` (4-255 ICE characters: `A-Z a-z 0-9 + /`).
    pub ice_ufrag: String,
    /// `a=ice-pwd` (22-255 ICE characters).
    pub ice_pwd: String,
    /// `a=fingerprint`.
    pub fingerprint: Fingerprint,
    /// `a=setup`.
    pub setup: Setup,
    /// `a=mid` of the application section (`"0"` in browsers).
    pub mid: String,
    /// `a=sctp-port` (5000 in browsers).
    pub sctp_port: u16,
    /// `a=max-message-size` (262144 in Chromium; 65536 when absent, RFC 8841).
    pub max_message_size: u32,
    /// Candidates, in their order of preference.
    pub candidates: Vec<Candidate>,
}

impl Description {
    /// Reads a code in any text form (hex, base64url or base45), or a link whose fragment is
    /// one: the form whose bytes decode with a valid checksum wins. Surrounding line breaks are
    /// ignored.
    pub fn from_code(code: &str) -> Result<Self, DecodeError> {
        let trimmed = code.trim_matches(|c| c == '\n' || c == '\r' || c == ' ');
        let trimmed = trimmed
            .rsplit_once('#')
            .map_or(trimmed, |(_, fragment)| fragment);
        let hex =
            (trimmed.len() % 2 == 0 && trimmed.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
                (0..trimmed.len())
                    .step_by(2)
                    .filter_map(|i| u8::from_str_radix(&trimmed[i..i + 2], 16).ok())
                    .collect::<Vec<u8>>()
            });
        let forms = [
            hex,
            TextForm::Url.decode(trimmed).ok(),
            TextForm::Qr.decode(trimmed).ok(),
        ];
        let mut last = DecodeError::Invalid("not hex, base64url or base45 text");
        for bytes in forms.into_iter().flatten() {
            match Self::decode(&bytes) {
                Ok(description) => return Ok(description),
                Err(error) => last = error,
            }
        }
        Err(last)
    }
}
