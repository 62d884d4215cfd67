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

use super::Error;

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
pub(super) enum Decoded {
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
pub(super) struct Decoder {
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
    pub(super) fn new(max_message_bytes: usize) -> Self {
        Self {
            max_message_bytes,
            fragmented: None,
        }
    }

    /// Takes the next whole message from the front of `buf` (consuming its frames), or says
    /// how many bytes the next frame needs. A broken rule is an error: the connection must be
    /// closed, with the code the error names.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, Error> {
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
pub(super) fn unmask(payload: &mut [u8], mask: [u8; 4]) {
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
pub(super) fn encode(message: &Message, out: &mut BytesMut) {
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
pub(super) fn encoded_len(message: &Message) -> usize {
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
pub(super) fn close_reply(frame: &Option<CloseFrame>) -> Message {
    Message::Close(frame.as_ref().map(|f| CloseFrame {
        code: f.code,
        reason: Utf8Bytes::from_static(""),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&MASK);
        let mut masked = payload.to_vec();
        unmask(&mut masked, MASK);
        out.extend_from_slice(&masked);
        out
    }

    /// Every message `bytes` decodes to, fed `step` bytes at a time; or the first error.
    fn decode_in_steps(bytes: &[u8], step: usize, max: usize) -> Result<Vec<Message>, Error> {
        let mut decoder = Decoder::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in bytes.chunks(step) {
            buf.extend_from_slice(chunk);
            while let Decoded::Message(message) = decoder.decode(&mut buf)? {
                out.push(message);
            }
        }
        assert!(buf.is_empty(), "bytes left over");
        Ok(out)
    }

    fn text(s: &str) -> Message {
        Message::Text(s.into())
    }

    #[test]
    fn unmask_matches_the_bytewise_rule_at_every_length_and_offset() {
        for len in 0..40 {
            let original: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut fast = original.clone();
            unmask(&mut fast, MASK);
            let slow: Vec<u8> = original
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ MASK[i % 4])
                .collect();
            assert_eq!(fast, slow, "length {len}");
        }
    }

    #[test]
    fn a_stream_of_frames_decodes_the_same_whatever_the_read_boundaries() {
        let big = "é".repeat(40_000);
        let mut bytes = frame(true, OP_TEXT, b"hello");
        bytes.extend(frame(true, OP_BINARY, &[0u8; 300]));
        bytes.extend(frame(true, OP_TEXT, big.as_bytes()));
        bytes.extend(frame(false, OP_TEXT, "frag".as_bytes()));
        bytes.extend(frame(true, OP_PING, b"p"));
        bytes.extend(frame(false, OP_CONTINUATION, "men".as_bytes()));
        bytes.extend(frame(true, OP_PONG, b""));
        bytes.extend(frame(true, OP_CONTINUATION, "ted".as_bytes()));
        bytes.extend(frame(true, OP_CLOSE, &[0x03, 0xE8, b'o', b'k']));
        let expected = vec![
            text("hello"),
            Message::Binary(Bytes::from(vec![0u8; 300])),
            text(&big),
            Message::Ping(Bytes::from_static(b"p")),
            Message::Pong(Bytes::new()),
            text("fragmented"),
            Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "ok".into(),
            })),
        ];
        for step in [1, 2, 3, 7, 13, 64, 1000, bytes.len()] {
            let decoded = decode_in_steps(&bytes, step, 128 * 1024).expect("valid");
            assert_eq!(decoded, expected, "read {step} bytes at a time");
        }
    }

    #[test]
    fn a_frame_says_how_many_bytes_it_needs() {
        let bytes = frame(true, OP_BINARY, &[1u8; 200]);
        let mut decoder = Decoder::new(1024);
        let mut buf = BytesMut::from(&bytes[..1]);
        assert_eq!(decoder.decode(&mut buf), Ok(Decoded::NeedBytes(2)));
        buf.extend_from_slice(&bytes[1..3]);
        assert_eq!(decoder.decode(&mut buf), Ok(Decoded::NeedBytes(8)));
        buf.extend_from_slice(&bytes[3..10]);
        assert_eq!(decoder.decode(&mut buf), Ok(Decoded::NeedBytes(208)));
        buf.extend_from_slice(&bytes[10..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Decoded::Message(Message::Binary(Bytes::from(vec![
                1u8;
                200
            ]))))
        );
    }

    #[test]
    fn the_size_limit_holds_on_both_sides_for_frames_and_fragmented_messages() {
        let max = 1000;
        assert!(decode_in_steps(&frame(true, OP_BINARY, &[0; 1000]), 4096, max).is_ok());
        assert_eq!(
            decode_in_steps(&frame(true, OP_BINARY, &[0; 1001]), 4096, max),
            Err(Error::TooBig)
        );
        // Refused from the header alone: a 2^62-byte frame costs nothing.
        let mut huge = vec![0x82, 0x80 | 127];
        huge.extend_from_slice(&(1u64 << 62).to_be_bytes());
        huge.extend_from_slice(&MASK);
        assert_eq!(
            Decoder::new(max).decode(&mut BytesMut::from(&huge[..])),
            Err(Error::TooBig)
        );
        let mut fragments = frame(false, OP_BINARY, &[0; 600]);
        fragments.extend(frame(true, OP_CONTINUATION, &[0; 400]));
        assert_eq!(
            decode_in_steps(&fragments, 4096, max).map(|m| m.len()),
            Ok(1)
        );
        let mut fragments = frame(false, OP_BINARY, &[0; 600]);
        fragments.extend(frame(true, OP_CONTINUATION, &[0; 401]));
        assert_eq!(decode_in_steps(&fragments, 4096, max), Err(Error::TooBig));
        // Control frames do not count against it (their own limit is 125 bytes).
        assert!(decode_in_steps(&frame(true, OP_PING, &[0; 125]), 4096, 10).is_ok());
    }

    #[test]
    fn broken_rules_are_protocol_errors_or_invalid_utf8() {
        let protocol = |bytes: Vec<u8>| {
            assert!(
                matches!(decode_in_steps(&bytes, 4096, 4096), Err(Error::Protocol(_))),
                "{bytes:?}"
            )
        };
        let mut rsv = frame(true, OP_TEXT, b"x");
        rsv[0] |= 0x40;
        protocol(rsv);
        protocol(frame(true, 0x3, b"x"));
        protocol(frame(true, 0xB, b"x"));
        protocol(vec![0x81, 0x01, b'x']);
        protocol(frame(false, OP_PING, b""));
        protocol(frame(true, OP_PING, &[0; 126]));
        protocol(frame(true, OP_CONTINUATION, b"x"));
        let mut two_starts = frame(false, OP_TEXT, b"a");
        two_starts.extend(frame(true, OP_TEXT, b"b"));
        protocol(two_starts);
        protocol(frame(true, OP_CLOSE, &[0x03]));
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            protocol(frame(true, OP_CLOSE, &code.to_be_bytes()));
        }
        let mut top_bit = vec![0x82, 0x80 | 127];
        top_bit.extend_from_slice(&(1u64 << 63).to_be_bytes());
        top_bit.extend_from_slice(&MASK);
        protocol(top_bit);

        let utf8 = |bytes: Vec<u8>| {
            assert_eq!(
                decode_in_steps(&bytes, 4096, 4096),
                Err(Error::InvalidUtf8),
                "{bytes:?}"
            )
        };
        utf8(frame(true, OP_TEXT, &[0xFF, 0xFE]));
        // A character split across fragments is fine; a broken one is not.
        let mut split = frame(false, OP_TEXT, &[0xC3]);
        split.extend(frame(true, OP_CONTINUATION, &[0xA9]));
        assert_eq!(decode_in_steps(&split, 4096, 4096), Ok(vec![text("é")]));
        let mut broken = frame(false, OP_TEXT, &[0xC3]);
        broken.extend(frame(true, OP_CONTINUATION, b"x"));
        utf8(broken);
        utf8(frame(true, OP_CLOSE, &[0x03, 0xE8, 0xFF]));
    }

    #[test]
    fn mutated_and_random_input_never_panics_and_always_ends_in_a_message_an_error_or_a_wait() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(6455);
        let mut valid = frame(false, OP_TEXT, "fragmé".as_bytes());
        valid.extend(frame(true, OP_PING, b"x"));
        valid.extend(frame(true, OP_CONTINUATION, "nted".as_bytes()));
        valid.extend(frame(true, OP_BINARY, &[7; 300]));
        valid.extend(frame(true, OP_CLOSE, &[0x03, 0xE8]));
        for round in 0..20_000 {
            let mut bytes = if round % 4 == 0 {
                (0..rng.random_range(0..64)).map(|_| rng.random()).collect()
            } else {
                let mut bytes = valid.clone();
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..bytes.len());
                    bytes[at] = rng.random();
                }
                bytes.truncate(rng.random_range(0..=bytes.len()));
                bytes
            };
            let mut decoder = Decoder::new(1024);
            let step = rng.random_range(1..=bytes.len().max(1));
            let mut buf = BytesMut::new();
            'feed: for chunk in bytes.chunks_mut(step) {
                buf.extend_from_slice(chunk);
                loop {
                    let before = buf.len();
                    match decoder.decode(&mut buf) {
                        Ok(Decoded::Message(_)) => assert!(buf.len() < before, "progress"),
                        Ok(Decoded::NeedBytes(need)) => {
                            assert!(need > buf.len(), "a wait asks for more than is there");
                            break;
                        }
                        Err(_) => break 'feed,
                    }
                }
            }
        }
    }

    #[test]
    fn valid_close_codes_and_empty_closes_are_taken() {
        for code in [1000u16, 1001, 1003, 1007, 1011, 1012, 1013, 3000, 4999] {
            let decoded = decode_in_steps(&frame(true, OP_CLOSE, &code.to_be_bytes()), 64, 64);
            assert_eq!(
                decoded,
                Ok(vec![Message::Close(Some(CloseFrame {
                    code,
                    reason: "".into()
                }))])
            );
        }
        assert_eq!(
            decode_in_steps(&frame(true, OP_CLOSE, b""), 64, 64),
            Ok(vec![Message::Close(None)])
        );
    }

    #[test]
    fn server_frames_are_unmasked_with_the_shortest_length() {
        for (len, header) in [
            (0usize, 2usize),
            (125, 2),
            (126, 4),
            (65_535, 4),
            (65_536, 10),
        ] {
            let message = Message::Binary(Bytes::from(vec![9u8; len]));
            let mut out = BytesMut::new();
            encode(&message, &mut out);
            assert_eq!(out.len(), header + len, "payload {len}");
            assert_eq!(out.len(), encoded_len(&message));
            assert_eq!(out[0], 0x82);
            assert_eq!(out[1] & 0x80, 0, "not masked");
        }
        let mut out = BytesMut::new();
        encode(&text("hi"), &mut out);
        assert_eq!(&out[..], &[0x81, 0x02, b'h', b'i']);
    }

    #[test]
    fn a_close_frame_is_encoded_with_its_code_and_a_reason_cut_to_fit() {
        let mut out = BytesMut::new();
        encode(
            &Message::Close(Some(CloseFrame {
                code: 4001,
                reason: "é".repeat(100).into(),
            })),
            &mut out,
        );
        assert_eq!(out[0], 0x88);
        let len = usize::from(out[1]);
        assert!(len <= MAX_CONTROL_PAYLOAD, "{len}");
        assert_eq!(out.len(), 2 + len);
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 4001);
        assert!(std::str::from_utf8(&out[4..]).is_ok());
        let mut out = BytesMut::new();
        encode(&Message::Close(None), &mut out);
        assert_eq!(&out[..], &[0x88, 0x00]);
        assert_eq!(
            close_reply(&Some(CloseFrame {
                code: 1001,
                reason: "bye".into()
            })),
            Message::Close(Some(CloseFrame {
                code: 1001,
                reason: "".into()
            }))
        );
    }
}
