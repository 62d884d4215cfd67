//! Attribute types this codec knows, and the XOR-MAPPED-ADDRESS value format.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::MAGIC_COOKIE;

/// MAPPED-ADDRESS.
pub const MAPPED_ADDRESS: u16 = 0x0001;
/// USERNAME.
pub const USERNAME: u16 = 0x0006;
/// MESSAGE-INTEGRITY.
pub const MESSAGE_INTEGRITY: u16 = 0x0008;
/// ERROR-CODE.
pub const ERROR_CODE: u16 = 0x0009;
/// UNKNOWN-ATTRIBUTES.
pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
/// XOR-MAPPED-ADDRESS.
pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// SOFTWARE.
pub const SOFTWARE: u16 = 0x8022;
/// FINGERPRINT.
pub const FINGERPRINT: u16 = 0x8028;
/// XOR of the FINGERPRINT CRC-32 (RFC 8489 §14.7).
pub const FINGERPRINT_XOR: u32 = 0x5354_554e;

/// Comprehension-required attributes (type below 0x8000) a Binding request may carry that this
/// responder understands well enough to ignore: RFC 8489 ones, and ICE's PRIORITY and
/// USE-CANDIDATE (RFC 8445). Anything else in that range earns a 420.
pub fn is_known_comprehension_required(kind: u16) -> bool {
    matches!(
        kind,
        MAPPED_ADDRESS
            | USERNAME
            | MESSAGE_INTEGRITY
            | ERROR_CODE
            | UNKNOWN_ATTRIBUTES
            | 0x0014 // REALM
            | 0x0015 // NONCE
            | 0x001C // MESSAGE-INTEGRITY-SHA256
            | 0x001D // PASSWORD-ALGORITHM
            | 0x001E // USERHASH
            | XOR_MAPPED_ADDRESS
            | 0x0024 // PRIORITY
            | 0x0025 // USE-CANDIDATE
    )
}

/// Writes the XOR-MAPPED-ADDRESS value for `address` into `out` (8 or 20 bytes); returns its length.
pub(crate) fn encode_xor_mapped_address(
    address: SocketAddr,
    transaction_id: &[u8; 12],
    out: &mut [u8],
) -> usize {
    let port = address.port() ^ (MAGIC_COOKIE >> 16) as u16;
    out[0] = 0;
    out[2..4].copy_from_slice(&port.to_be_bytes());
    match address.ip() {
        IpAddr::V4(ip) => {
            out[1] = 0x01;
            let x = u32::from(ip) ^ MAGIC_COOKIE;
            out[4..8].copy_from_slice(&x.to_be_bytes());
            8
        }
        IpAddr::V6(ip) => {
            out[1] = 0x02;
            let key = xor_key(transaction_id);
            for (i, byte) in ip.octets().iter().enumerate() {
                out[4 + i] = byte ^ key[i];
            }
            20
        }
    }
}

/// Reads an XOR-MAPPED-ADDRESS value; `None` when it is not well formed.
pub fn decode_xor_mapped_address(value: &[u8], transaction_id: &[u8; 12]) -> Option<SocketAddr> {
    let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]) ^ (MAGIC_COOKIE >> 16) as u16;
    match (value.first()?, value.get(1)?, value.len()) {
        (0, 0x01, 8) => {
            let x = u32::from_be_bytes([value[4], value[5], value[6], value[7]]) ^ MAGIC_COOKIE;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(x)), port))
        }
        (0, 0x02, 20) => {
            let key = xor_key(transaction_id);
            let mut octets = [0u8; 16];
            for (i, octet) in octets.iter_mut().enumerate() {
                *octet = value[4 + i] ^ key[i];
            }
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        _ => None,
    }
}

fn xor_key(transaction_id: &[u8; 12]) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    key[4..].copy_from_slice(transaction_id);
    key
}
