//! The STUN header and attribute framing: parsing (never panics) and writing (into a slice).

use std::net::SocketAddr;

use crate::attributes::{
    encode_xor_mapped_address, ERROR_CODE, FINGERPRINT, FINGERPRINT_XOR, SOFTWARE,
    UNKNOWN_ATTRIBUTES, XOR_MAPPED_ADDRESS,
};
use crate::{MAX_REASON_LEN, MAX_SOFTWARE_LEN};

/// The magic cookie of every RFC 5389/8489 message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER_LEN: usize = 20;

/// The class of a STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A request: expects a response.
    Request,
    /// An indication: no response.
    Indication,
    /// A success response.
    SuccessResponse,
    /// An error response.
    ErrorResponse,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Self::Request => 0b00,
            Self::Indication => 0b01,
            Self::SuccessResponse => 0b10,
            Self::ErrorResponse => 0b11,
        }
    }
}

/// A parsed STUN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Request, indication or response.
    pub class: Class,
    /// The method (Binding is 0x001).
    pub method: u16,
    /// The 96-bit transaction id.
    pub transaction_id: [u8; 12],
}

/// Why a datagram was not accepted as STUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not a STUN message at all.
    NotStun,
    /// An attribute runs past the end, or FINGERPRINT is misplaced or mis-sized.
    BadAttribute,
    /// FINGERPRINT does not match the message.
    BadFingerprint,
}

/// One attribute: its type and value (without padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute<'a> {
    /// Attribute type.
    pub kind: u16,
    /// Attribute value.
    pub value: &'a [u8],
}

/// A validated STUN message.
#[derive(Debug, Clone, Copy)]
pub struct Parsed<'a> {
    /// The header.
    pub header: Header,
    body: &'a [u8],
}

impl<'a> Parsed<'a> {
    /// The attributes, in order (already bounds-checked by [`parse`]).
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'a>> + 'a {
        Attributes { rest: self.body }
    }

    /// The first attribute of this type.
    pub fn attribute(&self, kind: u16) -> Option<&'a [u8]> {
        self.attributes().find(|a| a.kind == kind).map(|a| a.value)
    }
}

struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Attribute<'a>> {
        let (head, after) = self.rest.split_at_checked(4)?;
        let kind = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let value = after.get(..len)?;
        self.rest = after.get(padded(len)..).unwrap_or_default();
        Some(Attribute { kind, value })
    }
}

fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// Parses and validates a datagram as a STUN message (RFC 8489 §6.3): header checks, attribute
/// bounds, FINGERPRINT position and value.
pub fn parse(datagram: &[u8]) -> Result<Parsed<'_>, ParseError> {
    let (header, body) = datagram
        .split_at_checked(HEADER_LEN)
        .ok_or(ParseError::NotStun)?;
    let kind = u16::from_be_bytes([header[0], header[1]]);
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let cookie = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if kind & 0xC000 != 0 || cookie != MAGIC_COOKIE || length % 4 != 0 || length != body.len() {
        return Err(ParseError::NotStun);
    }
    let mut offset = 0;
    while offset < body.len() {
        let head = body
            .get(offset..offset + 4)
            .ok_or(ParseError::BadAttribute)?;
        let attr_kind = u16::from_be_bytes([head[0], head[1]]);
        let attr_len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let end = offset + 4 + padded(attr_len);
        if end > body.len() {
            return Err(ParseError::BadAttribute);
        }
        if attr_kind == FINGERPRINT {
            if attr_len != 4 || end != body.len() {
                return Err(ParseError::BadAttribute);
            }
            let value = &body[offset + 4..offset + 8];
            let expected = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
            let covered = &datagram[..HEADER_LEN + offset];
            if crc32fast::hash(covered) ^ FINGERPRINT_XOR != expected {
                return Err(ParseError::BadFingerprint);
            }
        }
        offset = end;
    }
    let mut transaction_id = [0u8; 12];
    transaction_id.copy_from_slice(&header[8..20]);
    let method = (kind & 0x000F) | ((kind & 0x00E0) >> 1) | ((kind & 0x3E00) >> 2);
    let class = match ((kind >> 7) & 0b10) | ((kind >> 4) & 0b01) {
        0b00 => Class::Request,
        0b01 => Class::Indication,
        0b10 => Class::SuccessResponse,
        _ => Class::ErrorResponse,
    };
    Ok(Parsed {
        header: Header {
            class,
            method,
            transaction_id,
        },
        body,
    })
}

/// Writes one STUN message into a caller's buffer, which the caller sized to
/// [`crate::MAX_RESPONSE_LEN`]; every write stays within that bound by construction.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
    method: u16,
    transaction_id: [u8; 12],
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut [u8], method: u16, transaction_id: [u8; 12]) -> Self {
        Self {
            buf,
            len: 0,
            method,
            transaction_id,
        }
    }

    /// Writes the header for `class` (the length is filled in by `finish`).
    pub fn start(&mut self, class: Class) {
        let m = self.method & 0x0FFF;
        let c = class.bits();
        let kind = (m & 0x000F)
            | ((m & 0x0070) << 1)
            | ((m & 0x0F80) << 2)
            | ((c & 1) << 4)
            | ((c & 2) << 7);
        self.buf[0..2].copy_from_slice(&kind.to_be_bytes());
        self.buf[2..4].copy_from_slice(&[0, 0]);
        self.buf[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        self.buf[8..20].copy_from_slice(&self.transaction_id);
        self.len = HEADER_LEN;
    }

    fn attribute(&mut self, kind: u16, value: &[u8]) {
        let start = self.len;
        self.buf[start..start + 2].copy_from_slice(&kind.to_be_bytes());
        self.buf[start + 2..start + 4].copy_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf[start + 4..start + 4 + value.len()].copy_from_slice(value);
        let end = start + 4 + padded(value.len());
        self.buf[start + 4 + value.len()..end].fill(0);
        self.len = end;
    }

    pub fn xor_mapped_address(&mut self, address: SocketAddr) {
        let mut value = [0u8; 20];
        let n = encode_xor_mapped_address(address, &self.transaction_id, &mut value);
        self.attribute(XOR_MAPPED_ADDRESS, &value[..n]);
    }

    pub fn software(&mut self, software: &str) {
        self.attribute(SOFTWARE, truncate(software, MAX_SOFTWARE_LEN).as_bytes());
    }

    pub fn error_code(&mut self, code: u16, reason: &str) {
        let reason = truncate(reason, MAX_REASON_LEN);
        let mut value = [0u8; 4 + MAX_REASON_LEN];
        value[2] = (code / 100) as u8;
        value[3] = (code % 100) as u8;
        value[4..4 + reason.len()].copy_from_slice(reason.as_bytes());
        self.attribute(ERROR_CODE, &value[..4 + reason.len()]);
    }

    pub fn unknown_attributes(&mut self, kinds: &[u16]) {
        let mut value = [0u8; 32];
        let kinds = &kinds[..kinds.len().min(16)];
        for (i, kind) in kinds.iter().enumerate() {
            value[2 * i..2 * i + 2].copy_from_slice(&kind.to_be_bytes());
        }
        self.attribute(UNKNOWN_ATTRIBUTES, &value[..2 * kinds.len()]);
    }

    /// Fills in the length; returns the message size.
    pub fn finish(self) -> usize {
        let body = (self.len - HEADER_LEN) as u16;
        self.buf[2..4].copy_from_slice(&body.to_be_bytes());
        self.len
    }

    /// Appends FINGERPRINT and fills in the length; returns the message size.
    pub fn finish_with_fingerprint(mut self) -> usize {
        let body = (self.len - HEADER_LEN + 8) as u16;
        self.buf[2..4].copy_from_slice(&body.to_be_bytes());
        let crc = crc32fast::hash(&self.buf[..self.len]) ^ FINGERPRINT_XOR;
        self.attribute(FINGERPRINT, &crc.to_be_bytes());
        self.len
    }
}

fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
