//! The compact SDP decoder, its text forms and the SDP reader on arbitrary input: no panic, and
//! whatever decodes re-encodes to a code that decodes to the same description.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_protocol::compact::{Description, TextForm};

fuzz_target!(|data: &[u8]| {
    if let Ok(description) = Description::decode(data) {
        let again = description.encode().expect("a decoded description encodes");
        assert_eq!(Description::decode(&again).as_ref(), Ok(&description));
        assert_eq!(Description::from_sdp(&description.to_sdp()).as_ref(), Ok(&description));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = TextForm::Qr.decode(text);
        let _ = TextForm::Url.decode(text);
        let _ = Description::from_sdp(text);
    }
});
