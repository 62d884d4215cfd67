//! The JSON frame nearly every client sends, read without serde's envelope:
//! `{"type":"message"|"signal","to":{"peer":"<id>"}|"room"|"self","data":<any JSON>}` with the
//! keys in that order and no whitespace between them, as the browser and Rust clients write it.
//! Anything else (other keys or order, whitespace, names, errors) is `None` and goes the general
//! way; what this returns is what the general way returns for the same bytes (tested).

use serde_json::value::RawValue;

use crate::{ClientMessage, Payload, PeerId, Target};

/// The message, if `bytes` has exactly the shape above.
pub(super) fn relayed(bytes: &[u8]) -> Option<ClientMessage> {
    let rest = bytes.strip_prefix(br#"{"type":""#)?;
    let (signal, rest) = match rest.strip_prefix(br#"message","to":"#) {
        Some(rest) => (false, rest),
        None => (true, rest.strip_prefix(br#"signal","to":"#)?),
    };
    let (to, rest) = target(rest)?;
    let data = rest.strip_prefix(br#","data":"#)?.strip_suffix(b"}")?;
    // One JSON value and nothing after it but whitespace; serde checks it as it does elsewhere.
    let data = Payload::Json(serde_json::from_slice::<Box<RawValue>>(data).ok()?);
    Some(if signal {
        ClientMessage::Signal { to, data }
    } else {
        ClientMessage::Message { to, data }
    })
}

fn target(bytes: &[u8]) -> Option<(Target, &[u8])> {
    if let Some(rest) = bytes.strip_prefix(br#""room""#) {
        return Some((Target::Room, rest));
    }
    if let Some(rest) = bytes.strip_prefix(br#""self""#) {
        return Some((Target::Myself, rest));
    }
    let rest = bytes.strip_prefix(br#"{"peer":""#)?;
    let (hex, rest) = rest.split_at_checked(32)?;
    let rest = rest.strip_prefix(br#""}"#)?;
    let id: PeerId = std::str::from_utf8(hex).ok()?.parse().ok()?;
    Some((Target::Peer(id), rest))
}
