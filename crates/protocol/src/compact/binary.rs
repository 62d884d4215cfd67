//! The compact byte layout (docs/compact-sdp.md): version, flags, ICE credentials packed six
//! bits per character, fingerprint, optional non-default fields, candidates, CRC-32.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::sdp::{
    is_ice_char, valid_ice, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MID, DEFAULT_SCTP_PORT,
};
use super::{
    Address, Candidate, CandidateType, Description, Fingerprint, HashAlgorithm, SdpType, Setup,
    TcpType, Transport,
};

/// The format version, the first byte of every code.
pub const VERSION: u8 = 1;
/// Most candidates a code carries.
pub const MAX_CANDIDATES: usize = 32;
/// Largest code accepted by [`Description::decode`].
pub const MAX_CODE_BYTES: usize = 2048;

const CHECKSUM_BYTES: usize = 4;
const FLAG_ANSWER: u8 = 0b0000_0001;
const FLAG_EXTRAS: u8 = 0b0010_0000;
/// The ICE credentials are lowercase hex (as Firefox makes them): 4 bits per character.
const FLAG_HEX_ICE: u8 = 0b0100_0000;
/// Firefox's SCTP port, max message size and mid (5000, 1073741823, `0`): no extras bytes.
const FLAG_FIREFOX: u8 = 0b1000_0000;
/// Firefox's `a=max-message-size`.
const FIREFOX_MAX_MESSAGE_SIZE: u32 = 1_073_741_823;
const CANDIDATE_RESERVED: u8 = 0b1000_0000;

/// Why a description cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// More than [`MAX_CANDIDATES`] candidates.
    #[error("more than {MAX_CANDIDATES} candidates")]
    TooManyCandidates,
    /// A field is outside what the format (and ICE) allows.
    #[error("cannot encode: {0}")]
    Invalid(&'static str),
}

/// Why bytes are not a valid code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Too short to be a code.
    #[error("truncated: {0} bytes is too short")]
    Truncated(usize),
    /// Larger than [`MAX_CODE_BYTES`].
    #[error("oversized: {0} bytes (at most {MAX_CODE_BYTES})")]
    Oversized(usize),
    /// The first byte is not a version this decoder knows.
    #[error("unsupported version {0} (this decoder reads version {VERSION})")]
    UnsupportedVersion(u8),
    /// The CRC-32 does not match: the code was corrupted or cut.
    #[error("checksum mismatch: the code is corrupted or incomplete")]
    Checksum,
    /// The checksum matches but the content breaks a rule of the format.
    #[error("invalid code: {0}")]
    Invalid(&'static str),
}

impl DecodeError {
    /// A stable name for the kind of error (the browser client uses the same names).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Truncated(_) => "truncated",
            Self::Oversized(_) => "oversized",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::Checksum => "checksum",
            Self::Invalid(_) => "invalid",
        }
    }
}

impl Description {
    /// The compact bytes (typically 70-100 bytes for a browser's offer or answer).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let invalid = EncodeError::Invalid;
        if !valid_ice(&self.ice_ufrag, 4) {
            return Err(invalid("ice-ufrag must be 4-255 ICE characters"));
        }
        if !valid_ice(&self.ice_pwd, 22) {
            return Err(invalid("ice-pwd must be 22-255 ICE characters"));
        }
        if self.fingerprint.digest.len() != self.fingerprint.algorithm.digest_len() {
            return Err(invalid("fingerprint length does not match its hash"));
        }
        if self.mid.is_empty() || self.mid.len() > 32 {
            return Err(invalid("mid must be 1-32 bytes"));
        }
        if self.candidates.len() > MAX_CANDIDATES {
            return Err(EncodeError::TooManyCandidates);
        }
        let firefox = self.mid == DEFAULT_MID
            && self.sctp_port == DEFAULT_SCTP_PORT
            && self.max_message_size == FIREFOX_MAX_MESSAGE_SIZE;
        let extras = !firefox
            && (self.mid != DEFAULT_MID
                || self.sctp_port != DEFAULT_SCTP_PORT
                || self.max_message_size != DEFAULT_MAX_MESSAGE_SIZE);
        let hex = is_hex(&self.ice_ufrag) && is_hex(&self.ice_pwd);
        let mut flags = match self.sdp_type {
            SdpType::Offer => 0,
            SdpType::Answer => FLAG_ANSWER,
        };
        flags |= setup_bits(self.setup) << 1;
        flags |= hash_bits(self.fingerprint.algorithm) << 3;
        if extras {
            flags |= FLAG_EXTRAS;
        }
        if firefox {
            flags |= FLAG_FIREFOX;
        }
        if hex {
            flags |= FLAG_HEX_ICE;
        }
        let mut out = Vec::with_capacity(96);
        out.extend([
            VERSION,
            flags,
            self.ice_ufrag.len() as u8,
            self.ice_pwd.len() as u8,
        ]);
        let credentials = self.ice_ufrag.bytes().chain(self.ice_pwd.bytes());
        if hex {
            pack_hex(credentials, &mut out);
        } else {
            pack_ice(credentials, &mut out);
        }
        out.extend_from_slice(&self.fingerprint.digest);
        if extras {
            out.extend(self.sctp_port.to_be_bytes());
            out.extend(self.max_message_size.to_be_bytes());
            out.push(self.mid.len() as u8);
            out.extend(self.mid.bytes());
        }
        out.push(self.candidates.len() as u8);
        for candidate in &self.candidates {
            encode_candidate(candidate, &mut out)?;
        }
        let checksum = crc32fast::hash(&out);
        out.extend(checksum.to_be_bytes());
        Ok(out)
    }

    /// Reads compact bytes; rejects truncated, corrupted, oversized or unknown-version input.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_CODE_BYTES {
            return Err(DecodeError::Oversized(bytes.len()));
        }
        if let Some(&version) = bytes.first() {
            if version != VERSION {
                return Err(DecodeError::UnsupportedVersion(version));
            }
        }
        if bytes.len() < 4 + CHECKSUM_BYTES {
            return Err(DecodeError::Truncated(bytes.len()));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
        if crc32fast::hash(body).to_be_bytes() != checksum {
            return Err(DecodeError::Checksum);
        }
        let mut reader = Reader { bytes: body, at: 1 };
        let description = read_description(&mut reader)?;
        if reader.at != body.len() {
            return Err(DecodeError::Invalid("bytes left after the last candidate"));
        }
        Ok(description)
    }
}

fn setup_bits(setup: Setup) -> u8 {
    match setup {
        Setup::ActPass => 0,
        Setup::Active => 1,
        Setup::Passive => 2,
    }
}

fn hash_bits(algorithm: HashAlgorithm) -> u8 {
    match algorithm {
        HashAlgorithm::Sha256 => 0,
        HashAlgorithm::Sha384 => 1,
        HashAlgorithm::Sha512 => 2,
        HashAlgorithm::Sha1 => 3,
    }
}

fn ice_value(c: u8) -> u8 {
    match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    }
}

const ICE_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Six bits per ICE character, most significant bit first, zero-padded to a byte.
fn pack_ice(chars: impl Iterator<Item = u8>, out: &mut Vec<u8>) {
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in chars {
        debug_assert!(is_ice_char(c));
        acc = (acc << 6) | u32::from(ice_value(c));
        bits += 6;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        out.push((acc << (8 - bits)) as u8);
    }
}

fn encode_candidate(candidate: &Candidate, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let kind = match candidate.kind {
        CandidateType::Host => 0,
        CandidateType::Srflx => 1,
        CandidateType::Prflx => 2,
        CandidateType::Relay => 3,
    };
    let (address_kind, address): (u8, Vec<u8>) = match &candidate.address {
        Address::Ip(IpAddr::V4(ip)) => (0, ip.octets().to_vec()),
        Address::Ip(IpAddr::V6(ip)) => (1, ip.octets().to_vec()),
        Address::Mdns(uuid) => (2, uuid.to_be_bytes().to_vec()),
        Address::Name(name) => {
            if name.is_empty() || name.len() > 255 {
                return Err(EncodeError::Invalid("host names are 1-255 bytes"));
            }
            let mut bytes = vec![name.len() as u8];
            bytes.extend(name.bytes());
            (3, bytes)
        }
    };
    let (tcp, tcp_type) = match candidate.transport {
        Transport::Udp => (0, 0),
        Transport::Tcp(TcpType::Passive) => (1, 0),
        Transport::Tcp(TcpType::Active) => (1, 1),
        Transport::Tcp(TcpType::So) => (1, 2),
    };
    out.push(kind | (address_kind << 2) | (tcp << 4) | (tcp_type << 5));
    out.extend(address);
    out.extend(candidate.port.to_be_bytes());
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or(DecodeError::Invalid("a field runs past the end"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }
}

fn read_description(reader: &mut Reader<'_>) -> Result<Description, DecodeError> {
    let invalid = DecodeError::Invalid;
    let flags = reader.byte()?;
    if flags & FLAG_EXTRAS != 0 && flags & FLAG_FIREFOX != 0 {
        return Err(invalid(
            "both the extras and the Firefox defaults flag are set",
        ));
    }
    let sdp_type = if flags & FLAG_ANSWER != 0 {
        SdpType::Answer
    } else {
        SdpType::Offer
    };
    let setup = match (flags >> 1) & 0b11 {
        0 => Setup::ActPass,
        1 => Setup::Active,
        2 => Setup::Passive,
        _ => return Err(invalid("unknown setup role")),
    };
    if (sdp_type == SdpType::Offer) != (setup == Setup::ActPass) {
        return Err(invalid("offers are actpass, answers active or passive"));
    }
    let algorithm = match (flags >> 3) & 0b11 {
        0 => HashAlgorithm::Sha256,
        1 => HashAlgorithm::Sha384,
        2 => HashAlgorithm::Sha512,
        _ => HashAlgorithm::Sha1,
    };
    let ufrag_len = usize::from(reader.byte()?);
    let pwd_len = usize::from(reader.byte()?);
    if ufrag_len < 4 || pwd_len < 22 {
        return Err(invalid("ICE ufrag or password too short"));
    }
    let chars = ufrag_len + pwd_len;
    let text = if flags & FLAG_HEX_ICE != 0 {
        unpack_hex(reader.take(chars.div_ceil(2))?, chars)
    } else {
        unpack_ice(reader.take((chars * 6).div_ceil(8))?, chars)
    };
    let (ufrag, pwd) = text.split_at(ufrag_len);
    let digest = reader.take(algorithm.digest_len())?.to_vec();
    let (mut sctp_port, mut max_message_size, mut mid) = (
        DEFAULT_SCTP_PORT,
        DEFAULT_MAX_MESSAGE_SIZE,
        DEFAULT_MID.to_owned(),
    );
    if flags & FLAG_FIREFOX != 0 {
        max_message_size = FIREFOX_MAX_MESSAGE_SIZE;
    }
    if flags & FLAG_EXTRAS != 0 {
        sctp_port = u16::from_be_bytes(reader.array()?);
        max_message_size = u32::from_be_bytes(reader.array()?);
        let len = usize::from(reader.byte()?);
        let bytes = reader.take(len)?;
        if len == 0 || len > 32 || !bytes.iter().all(u8::is_ascii_graphic) {
            return Err(invalid("mid must be 1-32 visible ASCII characters"));
        }
        mid = String::from_utf8_lossy(bytes).into_owned();
    }
    let count = usize::from(reader.byte()?);
    if count > MAX_CANDIDATES {
        return Err(invalid("too many candidates"));
    }
    let candidates = (0..count)
        .map(|_| read_candidate(reader))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Description {
        sdp_type,
        ice_ufrag: ufrag.to_owned(),
        ice_pwd: pwd.to_owned(),
        fingerprint: Fingerprint { algorithm, digest },
        setup,
        mid,
        sctp_port,
        max_message_size,
        candidates,
    })
}

/// Whether every character is a lowercase hex digit.
fn is_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Four bits per lowercase hex character, most significant first, zero-padded to a byte.
fn pack_hex(chars: impl Iterator<Item = u8>, out: &mut Vec<u8>) {
    let mut high = None;
    for c in chars {
        let nibble = if c.is_ascii_digit() {
            c - b'0'
        } else {
            c - b'a' + 10
        };
        match high.take() {
            None => high = Some(nibble),
            Some(h) => out.push((h << 4) | nibble),
        }
    }
    if let Some(h) = high {
        out.push(h << 4);
    }
}

fn unpack_hex(packed: &[u8], chars: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    packed
        .iter()
        .flat_map(|b| [b >> 4, b & 0x0f])
        .take(chars)
        .map(|nibble| char::from(HEX[usize::from(nibble)]))
        .collect()
}

fn unpack_ice(packed: &[u8], chars: usize) -> String {
    let (mut acc, mut bits) = (0u32, 0u32);
    let mut text = String::with_capacity(chars);
    for &byte in packed {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 6 && text.len() < chars {
            bits -= 6;
            text.push(char::from(ICE_ALPHABET[((acc >> bits) & 0x3f) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    text
}

fn read_candidate(reader: &mut Reader<'_>) -> Result<Candidate, DecodeError> {
    let invalid = DecodeError::Invalid;
    let head = reader.byte()?;
    if head & CANDIDATE_RESERVED != 0 {
        return Err(invalid("reserved candidate bit is set"));
    }
    let kind = match head & 0b11 {
        0 => CandidateType::Host,
        1 => CandidateType::Srflx,
        2 => CandidateType::Prflx,
        _ => CandidateType::Relay,
    };
    let address = match (head >> 2) & 0b11 {
        0 => Address::Ip(IpAddr::V4(Ipv4Addr::from(reader.array::<4>()?))),
        1 => Address::Ip(IpAddr::V6(Ipv6Addr::from(reader.array::<16>()?))),
        2 => Address::Mdns(u128::from_be_bytes(reader.array()?)),
        _ => {
            let len = usize::from(reader.byte()?);
            let name = reader.take(len)?;
            if len == 0 || !name.iter().all(u8::is_ascii_graphic) {
                return Err(invalid("host name must be 1-255 visible ASCII characters"));
            }
            Address::Name(String::from_utf8_lossy(name).into_owned())
        }
    };
    let transport = match ((head >> 4) & 1, (head >> 5) & 0b11) {
        (0, 0) => Transport::Udp,
        (0, _) => return Err(invalid("tcptype bits on a UDP candidate")),
        (_, 0) => Transport::Tcp(TcpType::Passive),
        (_, 1) => Transport::Tcp(TcpType::Active),
        (_, 2) => Transport::Tcp(TcpType::So),
        _ => return Err(invalid("unknown tcptype")),
    };
    let port = u16::from_be_bytes(reader.array()?);
    Ok(Candidate {
        kind,
        transport,
        address,
        port,
    })
}
