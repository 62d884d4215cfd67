//! Any datagram: the STUN responder must not panic, and whatever it answers must itself parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_stun::{parse, respond, Action, MAX_RESPONSE_LEN, SOFTWARE};

fuzz_target!(|data: &[u8]| {
    let source = "192.0.2.1:32853".parse().expect("a fixed address");
    let mut out = [0u8; MAX_RESPONSE_LEN];
    match respond(data, source, SOFTWARE, &mut out) {
        Action::Reply(n) | Action::ReplyError(n) => {
            assert!(parse(&out[..n]).is_ok(), "our own response must parse");
        }
        Action::Drop(_) => {}
    }
});
