//! The WebSocket wire (RFC 6455), server side, as a pure codec: bytes read so far in, whole
//! messages out; messages in, frame bytes out. No socket: the shell (`ws::socket`) reads into
//! the buffer this codec consumes and writes what it encodes.
//!
//! Reading follows the RFC's rules for a server that negotiated no extension: client frames are
//! masked, reserved bits are clear, opcodes are known, control frames are short (at most 125
//! bytes) and never fragmented, a fragmented message is continued only by continuation frames
//! (control frames may come between them), a text message is UTF-8 (checked once, when whole),
//! a close frame carries nothing, or a valid code and a UTF-8 reason. A frame's size is known
//! from its header, so a frame or message over `max_message_bytes` is refused before its
//! payload is read, and a payload is unmasked in place and handed on without a copy.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::Error;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Largest payload of a control frame (RFC 6455, 5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// What the decoder made of the bytes read so far.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// A whole message (a data message, or a control frame).
    Message(Message),
    /// The buffer must hold at least this many bytes (from its start) before the next frame is
    /// whole.
    NeedBytes(usize),
}

/// A data message whose first frames have arrived.
#[derive(Debug)]
struct Fragmented {
    text: bool,
    payload: BytesMut,
}

/// Turns the bytes a client sent into messages. Holds only an unfinished fragmented message.
#[derive(Debug)]
pub struct Decoder {
    max_message_bytes: usize,
    fragmented: Option<Fragmented>,
}

/// A parsed frame header.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Header bytes, mask included.
    len: usize,
    payload_len: usize,
}

impl Decoder {
    /// A decoder refusing frames and messages larger than `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            max_message_bytes,
            fragmented: None,
        }
    }

    /// Takes the next whole message from the front of `buf` (consuming its frames), or says
    /// how many bytes the next frame needs. A broken rule is an error: the connection must be
    /// closed, with the code the error names.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, Error> {
        loop {
            let header = match self.header(buf)? {
                Ok(header) => header,
                Err(need) => return Ok(Decoded::NeedBytes(need)),
            };
            let total = header.len + header.payload_len;
            if buf.len() < total {
                return Ok(Decoded::NeedBytes(total));
            }
            let mut payload = buf.split_to(total);
            payload.advance(header.len);
            unmask(&mut payload, header.mask);
            if let Some(message) = self.take(header.fin, header.opcode, payload)? {
                return Ok(Decoded::Message(message));
            }
        }
    }

    /// The header at the front of `buf`, checked; `Err(n)` when `buf` holds less than the
    /// header's `n` bytes.
    fn header(&self, buf: &[u8]) -> Result<Result<Header, usize>, Error> {
        let [first, second, ..] = *buf else {
            return Ok(Err(2));
        };
        let fin = first & 0x80 != 0;
        if first & 0x70 != 0 {
            return Err(Error::Protocol("a reserved bit is set"));
        }
        let opcode = first & 0x0F;
        let control = opcode & 0x08 != 0;
        match opcode {
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
            _ => return Err(Error::Protocol("unknown opcode")),
        }
        if second & 0x80 == 0 {
            return Err(Error::Protocol("a client frame is not masked"));
        }
        let (length_bytes, short_len) = match second & 0x7F {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(usize::from(n))),
        };
        let len = 2 + length_bytes + 4;
        if buf.len() < len {
            return Ok(Err(len));
        }
        let payload_len = match short_len {
            Some(n) => n,
            None if length_bytes == 2 => usize::from(u16::from_be_bytes([buf[2], buf[3]])),
            None => {
                let mut be = [0u8; 8];
                be.copy_from_slice(&buf[2..10]);
                let n = u64::from_be_bytes(be);
                if n >> 63 != 0 {
                    return Err(Error::Protocol("a frame length has its top bit set"));
                }
                usize::try_from(n).unwrap_or(usize::MAX)
            }
        };
        if control && (!fin || payload_len > MAX_CONTROL_PAYLOAD) {
            return Err(Error::Protocol(
                "a control frame is fragmented or longer than 125 bytes",
            ));
        }
        let so_far = self.fragmented.as_ref().map_or(0, |f| f.payload.len());
        if !control && payload_len.saturating_add(so_far) > self.max_message_bytes {
            return Err(Error::TooBig);
        }
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&buf[len - 4..len]);
        Ok(Ok(Header {
            fin,
            opcode,
            mask,
            len,
            payload_len,
        }))
    }

    /// A frame's unmasked payload: a message, once it is whole.
    fn take(&mut self, fin: bool, opcode: u8, payload: BytesMut) -> Result<Option<Message>, Error> {
        match opcode {
            OP_PING => Ok(Some(Message::Ping(payload.freeze()))),
            OP_PONG => Ok(Some(Message::Pong(payload.freeze()))),
            OP_CLOSE => close_frame(payload.freeze()).map(|frame| Some(Message::Close(frame))),
            OP_TEXT | OP_BINARY => {
                if self.fragmented.is_some() {
                    return Err(Error::Protocol(
                        "a new message started before the fragmented one ended",
                    ));
                }
                let text = opcode == OP_TEXT;
                if fin {
                    return data_message(text, payload.freeze()).map(Some);
                }
                self.fragmented = Some(Fragmented { text, payload });
                Ok(None)
            }
            _ => {
                let Some(fragmented) = self.fragmented.as_mut() else {
                    return Err(Error::Protocol(
                        "a continuation frame with nothing to continue",
                    ));
                };
                fragmented.payload.extend_from_slice(&payload);
                if !fin {
                    return Ok(None);
                }
                let Some(Fragmented { text, payload }) = self.fragmented.take() else {
                    return Ok(None);
                };
                data_message(text, payload.freeze()).map(Some)
            }
        }
    }
}

/// A whole data message; text must be UTF-8.
fn data_message(text: bool, payload: Bytes) -> Result<Message, Error> {
    if text {
        Utf8Bytes::try_from(payload)
            .map(Message::Text)
            .map_err(|_| Error::InvalidUtf8)
    } else {
        Ok(Message::Binary(payload))
    }
}

/// A close frame's payload: nothing, or a code a peer may send and a UTF-8 reason.
fn close_frame(payload: Bytes) -> Result<Option<CloseFrame>, Error> {
    match payload.len() {
        0 => return Ok(None),
        1 => return Err(Error::Protocol("a close frame of one byte")),
        _ => {}
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    if !close_code_allowed(code) {
        return Err(Error::Protocol("a close code a peer may not send"));
    }
    let reason = Utf8Bytes::try_from(payload.slice(2..)).map_err(|_| Error::InvalidUtf8)?;
    Ok(Some(CloseFrame { code, reason }))
}

/// Close codes a peer may put in a close frame (RFC 6455, 7.4; 1004-1006 and 1015 never go on
/// the wire; 1012-1014 are registered since).
fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Unmasks (or masks) `payload` in place, a word at a time.
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

/// Appends `message` as one unmasked server frame to `out`.
pub fn encode(message: &Message, out: &mut BytesMut) {
    let (opcode, payload): (u8, &[u8]) = match message {
        Message::Text(text) => (OP_TEXT, text.as_bytes()),
        Message::Binary(bytes) => (OP_BINARY, bytes),
        Message::Ping(bytes) => (OP_PING, bytes),
        Message::Pong(bytes) => (OP_PONG, bytes),
        Message::Close(frame) => {
            let reason = frame.as_ref().map_or(&[][..], |f| f.reason.as_bytes());
            // A reason longer than a control frame allows is cut at a character boundary.
            let mut cut = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
            while cut > 0 && std::str::from_utf8(&reason[..cut]).is_err() {
                cut -= 1;
            }
            let len = frame.as_ref().map_or(0, |_| 2 + cut);
            put_header(OP_CLOSE, len, out);
            if let Some(frame) = frame {
                out.put_u16(frame.code);
                out.extend_from_slice(&reason[..cut]);
            }
            return;
        }
    };
    put_header(opcode, payload.len(), out);
    out.extend_from_slice(payload);
}

/// The bytes `message` takes as a server frame.
pub fn encoded_len(message: &Message) -> usize {
    let payload = match message {
        Message::Text(text) => text.len(),
        Message::Binary(bytes) | Message::Ping(bytes) | Message::Pong(bytes) => bytes.len(),
        Message::Close(_) => MAX_CONTROL_PAYLOAD,
    };
    header_len(payload) + payload
}

fn header_len(payload_len: usize) -> usize {
    match payload_len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

/// A final frame's header (no mask: servers do not mask).
fn put_header(opcode: u8, payload_len: usize, out: &mut BytesMut) {
    out.reserve(header_len(payload_len) + payload_len);
    out.put_u8(0x80 | opcode);
    match payload_len {
        // The match arms bound each cast.
        0..=125 => out.put_u8(payload_len as u8),
        126..=0xFFFF => {
            out.put_u8(126);
            out.put_u16(payload_len as u16);
        }
        _ => {
            out.put_u8(127);
            out.put_u64(payload_len as u64);
        }
    }
}

/// The reply to a client's close frame: the same code (without its reason), or an empty close.
pub fn close_reply(frame: &Option<CloseFrame>) -> Message {
    Message::Close(frame.as_ref().map(|f| CloseFrame {
        code: f.code,
        reason: Utf8Bytes::from_static(""),
    }))
}

#[cfg(test)]
mod tests;
