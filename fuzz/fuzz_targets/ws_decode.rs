//! Any bytes from a client, read in chunks of any size (the first byte picks the size): the
//! WebSocket codec never panics, every step makes progress (a message consumes its bytes, a wait
//! asks for more than is there), and a decoded data message framed again as a client would frame
//! it decodes to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use switchboard_ws::codec::{unmask, Decoded, Decoder};
use switchboard_ws::Message;

const MAX_MESSAGE_BYTES: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    let mut decoder = Decoder::new(MAX_MESSAGE_BYTES);
    let mut buf = BytesMut::new();
    for chunk in input.chunks(usize::from(step).max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf) {
                Ok(Decoded::Message(message)) => {
                    assert!(buf.len() < before, "a message consumes its bytes");
                    frames_back_to_itself(&message);
                }
                Ok(Decoded::NeedBytes(need)) => {
                    assert!(need > buf.len(), "a wait asks for more than is there");
                    break;
                }
                Err(_) => return,
            }
        }
    }
});

/// A data message as one masked client frame decodes to the same message, consuming it all.
fn frames_back_to_itself(message: &Message) {
    let (opcode, payload): (u8, &[u8]) = match message {
        Message::Text(text) => (0x1, text.as_bytes()),
        Message::Binary(bytes) => (0x2, bytes),
        _ => return,
    };
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend((len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend((len as u64).to_be_bytes());
        }
    }
    frame.extend(mask);
    let start = frame.len();
    frame.extend_from_slice(payload);
    unmask(&mut frame[start..], mask);
    let mut buf = BytesMut::from(&frame[..]);
    let decoded = Decoder::new(MAX_MESSAGE_BYTES).decode(&mut buf);
    assert!(
        matches!(&decoded, Ok(Decoded::Message(again)) if again == message),
        "{message:?} framed again decoded to {decoded:?}"
    );
    assert!(buf.is_empty(), "the frame was consumed");
}
