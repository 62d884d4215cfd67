//! A sans-IO STUN (RFC 8489) Binding responder.
//!
//! [`respond`] takes one received datagram and the address it came from, and says what to do:
//! answer with a Binding success response (XOR-MAPPED-ADDRESS, SOFTWARE if one is given,
//! FINGERPRINT), answer with a minimal error response, or drop it. It never reads a clock or touches a socket, never panics on any
//! input (it is fuzzed: `fuzz/`), and writes responses into a caller-supplied buffer so the hot
//! path does not allocate.
//!
//! What gets which answer, and why:
//!
//! | datagram | answer |
//! |---|---|
//! | not STUN (first two bits not 0, no magic cookie, shorter than 20 bytes, length not a multiple of 4 or not matching the datagram) | dropped: it may be DTLS/RTP/garbage, and RFC 8489 §6.3 says to discard |
//! | STUN with malformed attributes (running past the end) or a wrong FINGERPRINT | dropped (§6.3, §14.7): the sender is broken or spoofing; answering would help reflection |
//! | Binding request with an unknown comprehension-required attribute | 420 with UNKNOWN-ATTRIBUTES (§6.3.1.1), no reason phrase, no SOFTWARE: under twice the request (44 bytes for 24) |
//! | request of another method (e.g. TURN Allocate) | 400 with no reason phrase and no SOFTWARE (36 bytes for a 20-byte request): the client learns at once that this server does STUN only |
//! | Binding request | success response with the source address; SOFTWARE only if the caller gives one (the servers give none: 40 bytes for a 20-byte IPv4 request, 2x, the least an answer can be) |
//!
//! Answers are kept small because a spoofed source turns every answer into traffic at a victim:
//! the 400 answer to an unknown method was 120 bytes for 20 (6x) with a reason and SOFTWARE.
//! | indications and responses | dropped (§6.3.2, §6.3.3): nothing to answer |

mod attributes;
mod message;

pub use attributes::{
    decode_xor_mapped_address, is_known_comprehension_required, FINGERPRINT, XOR_MAPPED_ADDRESS,
};
pub use message::{parse, Attribute, Class, Header, ParseError, Parsed, MAGIC_COOKIE};

use std::net::SocketAddr;

/// STUN method Binding.
pub const BINDING: u16 = 0x001;
/// Default SOFTWARE attribute value.
pub const SOFTWARE: &str = concat!("switchboard ", env!("CARGO_PKG_VERSION"));
/// The largest response [`respond`] writes, in bytes; a buffer of this size always suffices.
pub const MAX_RESPONSE_LEN: usize =
    20 + (8 + MAX_REASON_LEN) + (4 + 32) + (4 + MAX_SOFTWARE_LEN) + 8;
/// Longest SOFTWARE value written, in bytes (longer values are cut at a character boundary).
pub const MAX_SOFTWARE_LEN: usize = 128;
/// Longest ERROR-CODE reason phrase written, in bytes.
pub const MAX_REASON_LEN: usize = 64;

/// What to do with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send the first `n` bytes of the buffer back to the source.
    Reply(usize),
    /// Send the first `n` bytes of the buffer back: an error response.
    ReplyError(usize),
    /// Do not answer.
    Drop(DropReason),
}

/// Why a datagram is not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not a STUN message.
    NotStun,
    /// A STUN message that failed validation (attribute bounds, FINGERPRINT).
    Malformed,
    /// A STUN indication or response: nothing to answer.
    NotARequest,
}

/// Decides how to answer `datagram` from `source`, writing any response into `out` (which must
/// hold at least [`MAX_RESPONSE_LEN`] bytes; a shorter buffer makes it drop the datagram).
pub fn respond(datagram: &[u8], source: SocketAddr, software: &str, out: &mut [u8]) -> Action {
    let parsed = match parse(datagram) {
        Ok(parsed) => parsed,
        Err(ParseError::NotStun) => return Action::Drop(DropReason::NotStun),
        Err(_) => return Action::Drop(DropReason::Malformed),
    };
    let header = parsed.header;
    if header.class != Class::Request {
        return Action::Drop(DropReason::NotARequest);
    }
    if out.len() < MAX_RESPONSE_LEN {
        return Action::Drop(DropReason::Malformed);
    }
    let mut writer = message::Writer::new(out, header.method, header.transaction_id);
    if header.method != BINDING {
        writer.start(Class::ErrorResponse);
        writer.error_code(400, "");
        return Action::ReplyError(writer.finish_with_fingerprint());
    }
    let mut unknown = [0u16; 16];
    let mut unknown_len = 0;
    for attribute in parsed.attributes() {
        if !is_known_comprehension_required(attribute.kind)
            && attribute.kind < 0x8000
            && unknown_len < unknown.len()
        {
            unknown[unknown_len] = attribute.kind;
            unknown_len += 1;
        }
    }
    if unknown_len > 0 {
        writer.start(Class::ErrorResponse);
        writer.error_code(420, "");
        writer.unknown_attributes(&unknown[..unknown_len]);
        return Action::ReplyError(writer.finish_with_fingerprint());
    }
    writer.start(Class::SuccessResponse);
    writer.xor_mapped_address(source);
    if !software.is_empty() {
        writer.software(software);
    }
    Action::Reply(writer.finish_with_fingerprint())
}

/// Builds a Binding request (for clients and tests): `transaction_id`, optional FINGERPRINT.
/// Returns the number of bytes written into `out` (at least 28 bytes long).
pub fn binding_request(transaction_id: [u8; 12], fingerprint: bool, out: &mut [u8]) -> usize {
    let mut writer = message::Writer::new(out, BINDING, transaction_id);
    writer.start(Class::Request);
    if fingerprint {
        writer.finish_with_fingerprint()
    } else {
        writer.finish()
    }
}

#[cfg(test)]
mod tests;
