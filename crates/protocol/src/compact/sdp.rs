//! From an SDP text to a [`Description`] and back.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::{
    Address, Candidate, CandidateType, Description, Fingerprint, HashAlgorithm, SdpType, Setup,
    TcpType, Transport,
};

/// Why an SDP cannot be made compact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The text has no `m=application ... webrtc-datachannel` section, or has other media.
    #[error("not a data-channel-only SDP: {0}")]
    NotDataChannel(&'static str),
    /// A required attribute is missing.
    #[error("missing a={0}")]
    Missing(&'static str),
    /// An attribute is malformed.
    #[error("invalid a={attribute}: {reason}")]
    Invalid {
        /// The attribute.
        attribute: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

fn invalid(attribute: &'static str, reason: &'static str) -> SdpError {
    SdpError::Invalid { attribute, reason }
}

/// ICE characters (RFC 8839): exactly the 64 characters of base64.
pub(super) fn is_ice_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

pub(super) fn valid_ice(value: &str, min: usize) -> bool {
    (min..=255).contains(&value.len()) && value.bytes().all(is_ice_char)
}

/// Data channel defaults: what browsers write, and what costs no bytes in the compact form.
pub(super) const DEFAULT_MID: &str = "0";
pub(super) const DEFAULT_SCTP_PORT: u16 = 5000;
pub(super) const DEFAULT_MAX_MESSAGE_SIZE: u32 = 262_144;
const ABSENT_MAX_MESSAGE_SIZE: u32 = 65_536;

#[derive(Default)]
struct Fields {
    ufrag: Option<String>,
    pwd: Option<String>,
    fingerprint: Option<Fingerprint>,
    setup: Option<Setup>,
    mid: Option<String>,
    sctp_port: Option<u16>,
    max_message_size: Option<u32>,
    candidates: Vec<Candidate>,
}

impl Description {
    /// Reads a data-channel-only offer or answer (as `RTCPeerConnection.localDescription.sdp`
    /// gives it). Whether it is an offer or an answer is read from `a=setup` (`actpass` offers).
    pub fn from_sdp(sdp: &str) -> Result<Self, SdpError> {
        let mut fields = Fields::default();
        let mut application = false;
        for line in sdp.lines().map(str::trim_end) {
            if let Some(media) = line.strip_prefix("m=") {
                if application {
                    return Err(SdpError::NotDataChannel("more than one media section"));
                }
                if !media.starts_with("application ") || !media.ends_with(" webrtc-datachannel") {
                    return Err(SdpError::NotDataChannel(
                        "a media section that is not a data channel",
                    ));
                }
                application = true;
            } else if let Some(attribute) = line.strip_prefix("a=") {
                read_attribute(attribute, &mut fields)?;
            }
        }
        if !application {
            return Err(SdpError::NotDataChannel("no m=application section"));
        }
        let setup = fields.setup.ok_or(SdpError::Missing("setup"))?;
        Ok(Self {
            sdp_type: if setup == Setup::ActPass {
                SdpType::Offer
            } else {
                SdpType::Answer
            },
            ice_ufrag: fields.ufrag.ok_or(SdpError::Missing("ice-ufrag"))?,
            ice_pwd: fields.pwd.ok_or(SdpError::Missing("ice-pwd"))?,
            fingerprint: fields.fingerprint.ok_or(SdpError::Missing("fingerprint"))?,
            setup,
            mid: fields.mid.unwrap_or_else(|| DEFAULT_MID.to_owned()),
            sctp_port: fields.sctp_port.unwrap_or(DEFAULT_SCTP_PORT),
            max_message_size: fields.max_message_size.unwrap_or(ABSENT_MAX_MESSAGE_SIZE),
            candidates: fields.candidates,
        })
    }

    /// Rebuilds an SDP browsers accept (`setRemoteDescription`). The output is deterministic:
    /// the same description always gives the same text, in Rust and in the browser client.
    pub fn to_sdp(&self) -> String {
        let session = u64::from_be_bytes(session_seed(&self.fingerprint.digest)) & (u64::MAX >> 1);
        let mut sdp = String::with_capacity(600);
        let mid = &self.mid;
        // Writing to a String cannot fail.
        let _ = write!(
            sdp,
            "v=0\r\no=- {session} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE {mid}\r\n\
             a=msid-semantic: WMS\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
             c=IN IP4 0.0.0.0\r\n"
        );
        for (index, candidate) in self.candidates.iter().enumerate() {
            write_candidate(&mut sdp, index, candidate);
        }
        if !self.candidates.is_empty() {
            sdp.push_str("a=end-of-candidates\r\n");
        }
        let digest: Vec<String> = self
            .fingerprint
            .digest
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        let setup = match self.setup {
            Setup::ActPass => "actpass",
            Setup::Active => "active",
            Setup::Passive => "passive",
        };
        let _ = write!(
            sdp,
            "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=ice-options:trickle\r\na=fingerprint:{} {}\r\n\
             a=setup:{setup}\r\na=mid:{mid}\r\na=sctp-port:{}\r\na=max-message-size:{}\r\n",
            self.ice_ufrag,
            self.ice_pwd,
            self.fingerprint.algorithm.name(),
            digest.join(":"),
            self.sctp_port,
            self.max_message_size,
        );
        sdp
    }
}

fn session_seed(digest: &[u8]) -> [u8; 8] {
    let mut seed = [0u8; 8];
    for (slot, byte) in seed.iter_mut().zip(digest) {
        *slot = *byte;
    }
    seed
}

fn write_candidate(sdp: &mut String, index: usize, candidate: &Candidate) {
    // RFC 8445 priority: type preference, then the order of the list, component 1.
    let local = 65_535 - index.min(65_535) as u32;
    let priority = (candidate.kind.preference() << 24) | (local << 8) | 255;
    let transport = match candidate.transport {
        Transport::Udp => "udp",
        Transport::Tcp(_) => "tcp",
    };
    let _ = write!(
        sdp,
        "a=candidate:{} 1 {transport} {priority} {} {} typ {}",
        index + 1,
        candidate.address,
        candidate.port,
        candidate.kind.name()
    );
    if candidate.kind != CandidateType::Host {
        sdp.push_str(" raddr 0.0.0.0 rport 0");
    }
    if let Transport::Tcp(tcp) = candidate.transport {
        let _ = write!(sdp, " tcptype {}", tcp.name());
    }
    sdp.push_str("\r\n");
}

fn read_attribute(attribute: &str, fields: &mut Fields) -> Result<(), SdpError> {
    let (name, value) = attribute.split_once(':').unwrap_or((attribute, ""));
    match name {
        "ice-ufrag" => {
            if !valid_ice(value, 4) {
                return Err(invalid("ice-ufrag", "must be 4-255 ICE characters"));
            }
            fields.ufrag.get_or_insert_with(|| value.to_owned());
        }
        "ice-pwd" => {
            if !valid_ice(value, 22) {
                return Err(invalid("ice-pwd", "must be 22-255 ICE characters"));
            }
            fields.pwd.get_or_insert_with(|| value.to_owned());
        }
        "fingerprint" => {
            let fingerprint = parse_fingerprint(value)?;
            fields.fingerprint.get_or_insert(fingerprint);
        }
        "setup" => {
            let setup = match value {
                "actpass" => Setup::ActPass,
                "active" => Setup::Active,
                "passive" => Setup::Passive,
                _ => return Err(invalid("setup", "not actpass, active or passive")),
            };
            fields.setup.get_or_insert(setup);
        }
        "mid" => {
            if value.is_empty() || value.len() > 32 || !value.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(invalid("mid", "must be 1-32 visible ASCII characters"));
            }
            fields.mid.get_or_insert_with(|| value.to_owned());
        }
        "sctp-port" => {
            let port = value
                .parse()
                .map_err(|_| invalid("sctp-port", "not a port number"))?;
            fields.sctp_port.get_or_insert(port);
        }
        "max-message-size" => {
            let size =
                number(value).ok_or(invalid("max-message-size", "not a number below 2^32"))?;
            fields.max_message_size.get_or_insert(size);
        }
        "candidate" => {
            if let Some(candidate) = parse_candidate(value)? {
                fields.candidates.push(candidate);
            }
        }
        _ => {}
    }
    Ok(())
}

/// A decimal number of only digits (no sign), in range for `T`.
fn number<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_fingerprint(value: &str) -> Result<Fingerprint, SdpError> {
    let (algorithm, hex) = value
        .split_once(' ')
        .ok_or(invalid("fingerprint", "expected `<hash> <hex>`"))?;
    let algorithm = HashAlgorithm::from_name(algorithm)
        .ok_or(invalid("fingerprint", "unsupported hash function"))?;
    let digest = hex
        .trim()
        .split(':')
        .map(|pair| {
            if pair.len() == 2 && pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                u8::from_str_radix(pair, 16).ok()
            } else {
                None
            }
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or(invalid("fingerprint", "digest is not colon-separated hex"))?;
    if digest.len() != algorithm.digest_len() {
        return Err(invalid(
            "fingerprint",
            "digest length does not match the hash",
        ));
    }
    Ok(Fingerprint { algorithm, digest })
}

/// Parses `<foundation> <component> <transport> <priority> <address> <port> typ <type> ...`.
/// Candidates of other components are skipped (`Ok(None)`): data channels use component 1.
/// So are TCP `active` candidates (Firefox adds one per address): their port is always 9, no
/// connection can be made to them, and they only ever pair with the other side's passive TCP
/// candidates, which two peers that can exchange a code on one network never need.
pub(super) fn parse_candidate(value: &str) -> Result<Option<Candidate>, SdpError> {
    let bad = |reason| invalid("candidate", reason);
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    if fields.len() < 8 || fields[6] != "typ" {
        return Err(bad("expected `<foundation> <component> <transport> <priority> <address> <port> typ <type>`"));
    }
    if fields[1] != "1" {
        return Ok(None);
    }
    let kind = match fields[7] {
        "host" => CandidateType::Host,
        "srflx" => CandidateType::Srflx,
        "prflx" => CandidateType::Prflx,
        "relay" => CandidateType::Relay,
        _ => return Err(bad("unknown candidate type")),
    };
    let port = number(fields[5]).ok_or(bad("not a port number"))?;
    let extension = |key: &str| {
        fields[8..]
            .chunks(2)
            .find(|pair| pair[0] == key)
            .and_then(|pair| pair.get(1).copied())
    };
    let transport = match fields[2].to_ascii_lowercase().as_str() {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp(match extension("tcptype") {
            Some("active") => return Ok(None),
            Some("passive") => TcpType::Passive,
            Some("so") => TcpType::So,
            _ => return Err(bad("tcp candidate without a valid tcptype")),
        }),
        _ => return Err(bad("transport is not udp or tcp")),
    };
    Ok(Some(Candidate {
        kind,
        transport,
        address: parse_address(fields[4])
            .ok_or(bad("address is empty or longer than 255 bytes"))?,
        port,
    }))
}

/// An IP address, an mDNS `<uuid>.local` name, or another host name.
pub(super) fn parse_address(text: &str) -> Option<Address> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(Address::Ip(ip));
    }
    if let Some(uuid) = text.strip_suffix(".local").and_then(parse_uuid) {
        return Some(Address::Mdns(uuid));
    }
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    Some(Address::Name(text.to_owned()))
}

/// A lowercase `8-4-4-4-12` UUID (as browsers write mDNS names); anything else is a plain name,
/// so that the name is rebuilt exactly.
fn parse_uuid(text: &str) -> Option<u128> {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    if groups.len() != 5
        || groups.iter().zip(lengths).any(|(g, n)| {
            g.len() != n
                || !g
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
    {
        return None;
    }
    u128::from_str_radix(&groups.concat(), 16).ok()
}
