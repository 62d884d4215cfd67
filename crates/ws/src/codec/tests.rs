//! The codec's tests: every read boundary, both sides of the size limit, broken rules, random
//! and mutated input, and the frames the server writes.

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
