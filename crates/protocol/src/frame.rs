//! Data channel framing (docs/protocol.md, "Data channel framing"), the same as the browser
//! client's: one kind byte, then the message; large messages on ordered reliable channels are
//! chunked. Pure: bytes in, frames out, and back.

/// Kind byte: a whole binary message.
pub const BINARY: u8 = 0;
/// Kind byte: a whole text (UTF-8) message.
pub const TEXT: u8 = 1;
/// Kind byte: the first chunk of a binary message (then the total length, u32 big endian).
pub const FIRST_BINARY_CHUNK: u8 = 2;
/// Kind byte: the first chunk of a text message.
pub const FIRST_TEXT_CHUNK: u8 = 3;
/// Kind byte: a following chunk.
pub const CHUNK: u8 = 4;
/// Kind byte: goodbye: the sender closes the connection; the rest is the reason (UTF-8).
pub const GOODBYE: u8 = 5;

const FIRST_HEADER: usize = 5;

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Binary data.
    Binary(Vec<u8>),
    /// Text.
    Text(String),
    /// The other side is closing, for this reason.
    Goodbye(String),
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad frame: {0}")]
pub struct FrameError(pub &'static str);

/// Frames for one message: `frame_bytes` at most each; chunked only when `chunked` (ordered,
/// fully reliable channels). `None` when the message does not fit (too big for an unchunked
/// channel, or over `max_message_bytes`).
pub fn encode(
    kind_text: bool,
    message: &[u8],
    frame_bytes: usize,
    chunked: bool,
    max_message_bytes: usize,
) -> Option<Vec<Vec<u8>>> {
    if message.len() > max_message_bytes || frame_bytes <= FIRST_HEADER {
        return None;
    }
    if message.len() < frame_bytes {
        let mut frame = Vec::with_capacity(message.len() + 1);
        frame.push(if kind_text { TEXT } else { BINARY });
        frame.extend_from_slice(message);
        return Some(vec![frame]);
    }
    if !chunked {
        return None;
    }
    let total = u32::try_from(message.len()).ok()?;
    let first_body = frame_bytes - FIRST_HEADER;
    let mut first = Vec::with_capacity(frame_bytes);
    first.push(if kind_text {
        FIRST_TEXT_CHUNK
    } else {
        FIRST_BINARY_CHUNK
    });
    first.extend_from_slice(&total.to_be_bytes());
    first.extend_from_slice(&message[..first_body]);
    let mut frames = vec![first];
    for part in message[first_body..].chunks(frame_bytes - 1) {
        let mut frame = Vec::with_capacity(part.len() + 1);
        frame.push(CHUNK);
        frame.extend_from_slice(part);
        frames.push(frame);
    }
    Some(frames)
}

/// A goodbye frame with a reason (cut to fit one small frame).
pub fn goodbye(reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(256);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut frame = vec![GOODBYE];
    frame.extend_from_slice(&reason.as_bytes()[..end]);
    frame
}

struct Pending {
    text: bool,
    buffer: Vec<u8>,
    total: usize,
}

/// Turns received frames back into messages. A frame that breaks the rules is an error and
/// discards any message being reassembled; the next well-formed message is accepted again.
pub struct Reassembler {
    max_message_bytes: usize,
    pending: Option<Pending>,
}

impl Reassembler {
    /// `max_message_bytes` bounds what a peer can make us buffer.
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            max_message_bytes,
            pending: None,
        }
    }

    /// Feeds one frame; returns a whole message, or `None` while a chunked one is incomplete.
    pub fn push(&mut self, frame: &[u8]) -> Result<Option<Message>, FrameError> {
        let Some((&kind, rest)) = frame.split_first() else {
            return self.fail("empty frame");
        };
        if kind != CHUNK && self.pending.is_some() {
            return self.fail("a new message started before the previous chunked one was complete");
        }
        match kind {
            BINARY => Ok(Some(Message::Binary(rest.to_vec()))),
            TEXT => self.text(rest.to_vec()).map(|t| Some(Message::Text(t))),
            GOODBYE => Ok(Some(Message::Goodbye(
                String::from_utf8_lossy(rest).into_owned(),
            ))),
            FIRST_BINARY_CHUNK | FIRST_TEXT_CHUNK => {
                let Some((length, body)) = rest.split_first_chunk::<4>() else {
                    return self.fail("truncated first chunk");
                };
                let total = u32::from_be_bytes(*length) as usize;
                if total > self.max_message_bytes {
                    return self.fail("announced message is over max_message_bytes");
                }
                self.pending = Some(Pending {
                    text: kind == FIRST_TEXT_CHUNK,
                    buffer: Vec::with_capacity(total),
                    total,
                });
                self.append(body)
            }
            CHUNK => {
                if self.pending.is_none() {
                    return self.fail("a chunk with no message started");
                }
                self.append(rest)
            }
            _ => self.fail("unknown frame kind"),
        }
    }

    fn append(&mut self, part: &[u8]) -> Result<Option<Message>, FrameError> {
        let Some(pending) = self.pending.as_mut() else {
            return self.fail("a chunk with no message started");
        };
        if pending.buffer.len() + part.len() > pending.total {
            return self.fail("chunks longer than the announced length");
        }
        pending.buffer.extend_from_slice(part);
        if pending.buffer.len() < pending.total {
            return Ok(None);
        }
        match self.pending.take() {
            Some(Pending {
                text: true, buffer, ..
            }) => self.text(buffer).map(|t| Some(Message::Text(t))),
            Some(Pending { buffer, .. }) => Ok(Some(Message::Binary(buffer))),
            None => Ok(None),
        }
    }

    fn text(&mut self, bytes: Vec<u8>) -> Result<String, FrameError> {
        String::from_utf8(bytes).or_else(|_| self.fail("text message is not valid UTF-8"))
    }

    fn fail<T>(&mut self, why: &'static str) -> Result<T, FrameError> {
        self.pending = None;
        Err(FrameError(why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_round_trips_with_chunks_only_when_needed() {
        for size in 0..300 {
            let message: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
            let frames = encode(false, &message, 64, true, 1 << 20).unwrap();
            assert_eq!(frames.len() == 1, size < 64, "size {size}");
            assert!(frames.iter().all(|f| f.len() <= 64));
            let mut reassembler = Reassembler::new(1 << 20);
            let out: Vec<Message> = frames
                .iter()
                .filter_map(|f| reassembler.push(f).unwrap())
                .collect();
            assert_eq!(out, vec![Message::Binary(message)]);
        }
        let text = "é".repeat(100);
        let frames = encode(true, text.as_bytes(), 64, true, 1 << 20).unwrap();
        let mut reassembler = Reassembler::new(1 << 20);
        let out: Vec<Message> = frames
            .iter()
            .filter_map(|f| reassembler.push(f).unwrap())
            .collect();
        assert_eq!(out, vec![Message::Text(text)]);
    }

    #[test]
    fn limits_and_bad_frames() {
        assert_eq!(
            encode(false, &[0; 64], 64, false, 1 << 20),
            None,
            "unchunked channels refuse big messages"
        );
        assert_eq!(encode(false, &[0; 101], 64, true, 100), None);
        let mut r = Reassembler::new(100);
        for bad in [
            &[][..],
            &[9],
            &[CHUNK, 1],
            &[FIRST_BINARY_CHUNK, 0],
            &[FIRST_BINARY_CHUNK, 0, 0, 1, 0],
            &[TEXT, 0xff],
        ] {
            assert!(r.push(bad).is_err(), "{bad:?}");
            assert_eq!(
                r.push(&[TEXT, b'o', b'k']).unwrap(),
                Some(Message::Text("ok".into()))
            );
        }
        assert_eq!(
            r.push(&goodbye("kicked")).unwrap(),
            Some(Message::Goodbye("kicked".into()))
        );
    }

    #[test]
    fn matches_the_browser_clients_bytes() {
        // The same bytes clients/js/test/unit/framing.test.mjs expects.
        assert_eq!(
            encode(true, b"hi", 64, true, 100).unwrap(),
            vec![vec![TEXT, 0x68, 0x69]]
        );
        assert_eq!(
            encode(false, &[7, 8], 64, true, 100).unwrap(),
            vec![vec![BINARY, 7, 8]]
        );
    }
}
