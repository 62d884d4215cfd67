//! Any frame, in either encoding: decoding must not panic, and a decoded message must encode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::{decode_client, decode_server, encode_client, Encoding, Frame};

fuzz_target!(|data: &[u8]| {
    for encoding in [Encoding::Json, Encoding::MsgPack] {
        for frame in [Frame::Text(data), Frame::Binary(data)] {
            if let Ok(message) = decode_client(frame, encoding) {
                // JSON payloads deeper than MessagePack's depth limit may not convert; no panic.
                let _ = encode_client(&message, encoding);
            }
            let _ = decode_server(frame, encoding);
        }
    }
});
