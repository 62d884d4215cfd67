//! Compact SDP: the shared test vectors (`testdata/compact-sdp.json`, also read by the browser
//! client's tests), round-trip properties over random descriptions, and hostile codes.
//!
//! `REGENERATE_COMPACT_VECTORS=1 cargo test -p switchboard-protocol --test compact_sdp` rewrites
//! the expected fields of the vectors from this implementation; the browser client's tests then
//! check the JavaScript implementation against them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use switchboard_protocol::compact::{
    Address, Candidate, CandidateType, DecodeError, Description, Fingerprint, HashAlgorithm,
    SdpType, Setup, TcpType, TextForm, Transport, MAX_CANDIDATES, MAX_CODE_BYTES,
};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/compact-sdp.json"
);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn with_checksum(mut body: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&body);
    body.extend(crc.to_be_bytes());
    body
}

/// Hostile codes derived from a valid one, each with the error it must give.
fn invalid_codes(valid: &[u8]) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let body = &valid[..valid.len() - 4];
    let mut flipped = valid.to_vec();
    flipped[20] ^= 0x10;
    let mut both_flags = body.to_vec();
    both_flags[1] |= 0x80 | 0x20;
    let mut trailing = body.to_vec();
    trailing.push(0);
    let mut short_ufrag = body.to_vec();
    short_ufrag[2] = 3;
    let mut version = valid.to_vec();
    version[0] = 2;
    let mut offer_active = body.to_vec();
    offer_active[1] = (offer_active[1] & !0b111) | 0b010;
    vec![
        ("empty", vec![], "truncated"),
        ("cut short", valid[..valid.len() - 5].to_vec(), "checksum"),
        ("only a version byte", vec![1], "truncated"),
        ("one bit flipped", flipped, "checksum"),
        ("unknown version", version, "unsupported_version"),
        ("oversized", vec![1; MAX_CODE_BYTES + 1], "oversized"),
        (
            "both the extras and the Firefox defaults flags, valid checksum",
            with_checksum(both_flags),
            "invalid",
        ),
        (
            "trailing byte, valid checksum",
            with_checksum(trailing),
            "invalid",
        ),
        (
            "ufrag of 3 characters, valid checksum",
            with_checksum(short_ufrag),
            "invalid",
        ),
        (
            "an offer with setup active, valid checksum",
            with_checksum(offer_active),
            "invalid",
        ),
        (
            "candidates cut off, valid checksum",
            with_checksum(body[..body.len() - 3].to_vec()),
            "invalid",
        ),
    ]
}

#[test]
fn shared_vectors() {
    let mut vectors: Value =
        serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap();
    let regenerate = std::env::var_os("REGENERATE_COMPACT_VECTORS").is_some();
    let mut first_code = None;
    for vector in vectors["valid"].as_array_mut().unwrap() {
        let name = vector["name"].as_str().unwrap().to_owned();
        let description = Description::from_sdp(vector["sdp"].as_str().unwrap()).unwrap();
        let bytes = description.encode().unwrap();
        let rebuilt = description.to_sdp();
        let expected = json!({
            "bytes": bytes.len(),
            "hex": hex(&bytes),
            "qr": TextForm::Qr.encode(&bytes),
            "url": TextForm::Url.encode(&bytes),
            "rebuilt_sdp": rebuilt,
        });
        if regenerate {
            for (key, value) in expected.as_object().unwrap() {
                vector[key] = value.clone();
            }
        }
        for key in ["bytes", "hex", "qr", "url", "rebuilt_sdp"] {
            assert_eq!(vector[key], expected[key], "{name}: {key}");
        }
        assert_eq!(Description::decode(&bytes).unwrap(), description, "{name}");
        assert_eq!(
            TextForm::Qr.decode(vector["qr"].as_str().unwrap()).unwrap(),
            bytes
        );
        assert_eq!(
            TextForm::Url
                .decode(vector["url"].as_str().unwrap())
                .unwrap(),
            bytes
        );
        assert_eq!(
            Description::from_sdp(&rebuilt).unwrap(),
            description,
            "{name}: rebuilt SDP reads back"
        );
        first_code.get_or_insert(bytes);
    }
    let first_code = first_code.unwrap();
    let invalid: Vec<Value> = invalid_codes(&first_code)
        .into_iter()
        .map(|(name, bytes, error)| json!({"name": name, "hex": hex(&bytes), "error": error}))
        .collect();
    if regenerate {
        vectors["invalid"] = Value::Array(invalid.clone());
        std::fs::write(
            VECTORS,
            serde_json::to_string_pretty(&vectors).unwrap() + "\n",
        )
        .unwrap();
    }
    assert_eq!(vectors["invalid"], Value::Array(invalid));
    for vector in vectors["invalid"].as_array().unwrap() {
        let error = Description::decode(&unhex(vector["hex"].as_str().unwrap())).unwrap_err();
        assert_eq!(error.code(), vector["error"], "{}: {error}", vector["name"]);
    }
}

#[test]
fn a_real_chromium_offer_with_two_ipv4_candidates_fits_in_100_bytes() {
    let sdp = include_str!("data/chromium-offer-2-ipv4.sdp");
    let description = Description::from_sdp(sdp).unwrap();
    let ipv4 = description
        .candidates
        .iter()
        .filter(|c| matches!(c.address, Address::Ip(IpAddr::V4(_))))
        .count();
    assert_eq!((description.candidates.len(), ipv4), (2, 2));
    let bytes = description.encode().unwrap();
    assert!(bytes.len() <= 100, "{} bytes", bytes.len());
    assert!(
        bytes.len() * 5 < sdp.len(),
        "{} vs {} bytes of SDP",
        bytes.len(),
        sdp.len()
    );
}

fn random_ice(rng: &mut StdRng, len: usize) -> String {
    const ICE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..len)
        .map(|_| char::from(ICE[rng.random_range(0..64)]))
        .collect()
}

fn random_description(rng: &mut StdRng) -> Description {
    let algorithm = [
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
        HashAlgorithm::Sha1,
    ][rng.random_range(0..4)];
    let sdp_type = if rng.random() {
        SdpType::Offer
    } else {
        SdpType::Answer
    };
    let setup = match sdp_type {
        SdpType::Offer => Setup::ActPass,
        SdpType::Answer if rng.random() => Setup::Active,
        SdpType::Answer => Setup::Passive,
    };
    let candidates = (0..rng.random_range(0..=MAX_CANDIDATES))
        .map(|_| Candidate {
            kind: [
                CandidateType::Host,
                CandidateType::Srflx,
                CandidateType::Prflx,
                CandidateType::Relay,
            ][rng.random_range(0..4)],
            transport: match rng.random_range(0..4) {
                0 => Transport::Tcp(
                    // Not active: SDP parsing drops those (port 9, unusable).
                    [TcpType::Passive, TcpType::So][rng.random_range(0..2)],
                ),
                _ => Transport::Udp,
            },
            address: match rng.random_range(0..5) {
                0 => Address::Ip(IpAddr::V6(Ipv6Addr::from(rng.random::<u128>()))),
                1 => Address::Mdns(rng.random()),
                2 => Address::Name(format!("host-{}.example", rng.random::<u16>())),
                _ => Address::Ip(IpAddr::V4(Ipv4Addr::from(rng.random::<u32>()))),
            },
            port: rng.random(),
        })
        .collect();
    let defaults = rng.random_bool(0.5);
    let (ufrag_len, pwd_len) = (rng.random_range(4..=255), rng.random_range(22..=255));
    Description {
        sdp_type,
        ice_ufrag: random_ice(rng, ufrag_len),
        ice_pwd: random_ice(rng, pwd_len),
        fingerprint: Fingerprint {
            algorithm,
            digest: (0..algorithm.digest_len()).map(|_| rng.random()).collect(),
        },
        setup,
        mid: if defaults {
            "0".into()
        } else {
            format!("m{}", rng.random::<u8>())
        },
        sctp_port: if defaults { 5000 } else { rng.random() },
        max_message_size: if defaults { 262_144 } else { rng.random() },
        candidates,
    }
}

#[test]
fn random_descriptions_round_trip_through_bytes_text_and_sdp() {
    let mut rng = StdRng::seed_from_u64(0x5b5b);
    for _ in 0..2000 {
        let description = random_description(&mut rng);
        let bytes = description.encode().unwrap();
        assert_eq!(Description::decode(&bytes).unwrap(), description);
        for form in [TextForm::Qr, TextForm::Url] {
            assert_eq!(form.decode(&form.encode(&bytes)).unwrap(), bytes);
        }
        assert_eq!(
            Description::from_sdp(&description.to_sdp()).unwrap(),
            description
        );
    }
}

#[test]
fn every_truncation_and_single_byte_corruption_is_an_error() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..50 {
        let bytes = random_description(&mut rng).encode().unwrap();
        for len in 0..bytes.len() {
            assert!(
                Description::decode(&bytes[..len]).is_err(),
                "truncated to {len}"
            );
        }
        for at in 0..bytes.len() {
            let mut corrupted = bytes.clone();
            corrupted[at] ^= rng.random_range(1..=255u8);
            assert!(
                Description::decode(&corrupted).is_err(),
                "byte {at} corrupted"
            );
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..20_000 {
        let len = rng.random_range(0..200);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if rng.random() && len > 4 {
            bytes[0] = 1;
            let body = bytes[..len - 4].to_vec();
            bytes = with_checksum(body);
        }
        let _ = Description::decode(&bytes);
        let text: String = bytes.iter().map(|&b| char::from(b % 128)).collect();
        let _ = TextForm::Qr.decode(&text);
        let _ = TextForm::Url.decode(&text);
        let _ = Description::from_sdp(&text);
    }
}

#[test]
fn sdp_that_is_not_a_data_channel_is_refused_with_a_reason() {
    let answer = include_str!("data/chromium-offer-2-ipv4.sdp");
    let cases = [
        ("", "no m=application"),
        (
            &*answer.replace("a=setup:actpass\r\n", ""),
            "missing a=setup",
        ),
        (
            &*answer.replace("a=ice-ufrag:", "a=ice-ufrag:-"),
            "ice-ufrag",
        ),
        (&*answer.replace("sha-256 ", "md5 "), "unsupported hash"),
        (
            &*answer.replace(
                "m=application",
                "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nm=application",
            ),
            "not a data channel",
        ),
        (
            &*answer.replace("typ host", "typ nonsense"),
            "unknown candidate type",
        ),
    ];
    for (sdp, reason) in cases {
        let error = Description::from_sdp(sdp).unwrap_err().to_string();
        assert!(error.contains(reason), "{error} should say {reason}");
    }
    assert!(matches!(
        Description::decode(&[9]),
        Err(DecodeError::UnsupportedVersion(9))
    ));
}
