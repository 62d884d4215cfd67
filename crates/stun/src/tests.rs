use super::*;
use crate::attributes::{MESSAGE_INTEGRITY, SOFTWARE as SOFTWARE_ATTR, USERNAME};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// RFC 5769 §2.1 sample request (USERNAME padded with spaces, as published).
const SAMPLE_REQUEST: [u8; 108] = [
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
    0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09,
    0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14,
    0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
];

/// RFC 5769 §2.2 sample IPv4 response: 192.0.2.1 port 32853.
const SAMPLE_IPV4_RESPONSE: [u8; 80] = [
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
];

/// RFC 5769 §2.3 sample IPv6 response: 2001:db8:1234:5678:11:2233:4455:6677 port 32853.
const SAMPLE_IPV6_RESPONSE: [u8; 92] = [
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
    0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14,
    0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75,
    0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
];

const TXID: [u8; 12] = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];

fn source() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 32853)
}

#[test]
fn rfc5769_sample_request_parses_with_a_valid_fingerprint() {
    let parsed = parse(&SAMPLE_REQUEST).unwrap();
    assert_eq!(
        parsed.header,
        Header {
            class: Class::Request,
            method: BINDING,
            transaction_id: TXID
        }
    );
    assert_eq!(
        parsed.attribute(SOFTWARE_ATTR),
        Some(&b"STUN test client"[..])
    );
    assert_eq!(parsed.attribute(USERNAME), Some(&b"evtj:h6vY"[..]));
    assert_eq!(
        parsed.attribute(MESSAGE_INTEGRITY).map(<[u8]>::len),
        Some(20)
    );
    let kinds: Vec<u16> = parsed.attributes().map(|a| a.kind).collect();
    assert_eq!(kinds, [0x8022, 0x0024, 0x8029, 0x0006, 0x0008, 0x8028]);
}

#[test]
fn rfc5769_sample_responses_decode_to_the_published_addresses() {
    let v4 = parse(&SAMPLE_IPV4_RESPONSE).unwrap();
    assert_eq!(v4.header.class, Class::SuccessResponse);
    let addr = decode_xor_mapped_address(v4.attribute(XOR_MAPPED_ADDRESS).unwrap(), &TXID);
    assert_eq!(addr, Some(source()));
    let v6 = parse(&SAMPLE_IPV6_RESPONSE).unwrap();
    let addr = decode_xor_mapped_address(v6.attribute(XOR_MAPPED_ADDRESS).unwrap(), &TXID);
    let ip = Ipv6Addr::new(0x2001, 0xdb8, 0x1234, 0x5678, 0x11, 0x2233, 0x4455, 0x6677);
    assert_eq!(addr, Some(SocketAddr::new(IpAddr::V6(ip), 32853)));
}

#[test]
fn answers_the_rfc5769_request_with_its_source_address() {
    let mut out = [0u8; MAX_RESPONSE_LEN];
    let Action::Reply(n) = respond(&SAMPLE_REQUEST, source(), "test vector", &mut out) else {
        panic!("a Binding request is answered")
    };
    let response = parse(&out[..n]).expect("our response parses, fingerprint included");
    assert_eq!(
        response.header,
        Header {
            class: Class::SuccessResponse,
            method: BINDING,
            transaction_id: TXID
        }
    );
    // Our XOR-MAPPED-ADDRESS and SOFTWARE are byte for byte the RFC's.
    assert_eq!(
        response.attribute(XOR_MAPPED_ADDRESS),
        Some(&SAMPLE_IPV4_RESPONSE[40..48])
    );
    assert_eq!(response.attribute(SOFTWARE_ATTR), Some(&b"test vector"[..]));
    assert_eq!(
        response.attributes().last().map(|a| a.kind),
        Some(FINGERPRINT)
    );
}

#[test]
fn answers_ipv6_sources() {
    let mut request = [0u8; 28];
    let n = binding_request([9; 12], true, &mut request);
    let from: SocketAddr = "[2001:db8::7]:40000".parse().unwrap();
    let mut out = [0u8; MAX_RESPONSE_LEN];
    let Action::Reply(len) = respond(&request[..n], from, SOFTWARE, &mut out) else {
        panic!("answered")
    };
    let response = parse(&out[..len]).unwrap();
    let mapped =
        decode_xor_mapped_address(response.attribute(XOR_MAPPED_ADDRESS).unwrap(), &[9; 12]);
    assert_eq!(mapped, Some(from));
}

#[test]
fn drops_what_is_not_a_valid_request() {
    let mut out = [0u8; MAX_RESPONSE_LEN];
    let mut drop_reason = |datagram: &[u8]| match respond(datagram, source(), SOFTWARE, &mut out) {
        Action::Drop(reason) => reason,
        other => panic!("expected a drop, got {other:?}"),
    };
    assert_eq!(drop_reason(b""), DropReason::NotStun);
    assert_eq!(drop_reason(&SAMPLE_REQUEST[..19]), DropReason::NotStun);
    assert_eq!(
        drop_reason(&SAMPLE_REQUEST[..100]),
        DropReason::NotStun,
        "truncated"
    );
    let mut bad_cookie = SAMPLE_REQUEST;
    bad_cookie[4] ^= 1;
    assert_eq!(drop_reason(&bad_cookie), DropReason::NotStun);
    let mut top_bits = SAMPLE_REQUEST;
    top_bits[0] |= 0x80;
    assert_eq!(drop_reason(&top_bits), DropReason::NotStun);
    let mut bad_fingerprint = SAMPLE_REQUEST;
    bad_fingerprint[107] ^= 1;
    assert_eq!(drop_reason(&bad_fingerprint), DropReason::Malformed);
    let mut huge_attribute = SAMPLE_REQUEST;
    huge_attribute[22..24].copy_from_slice(&[0xff, 0xff]);
    assert_eq!(drop_reason(&huge_attribute), DropReason::Malformed);
    assert_eq!(drop_reason(&SAMPLE_IPV4_RESPONSE), DropReason::NotARequest);
    let mut indication = [0u8; 28];
    let n = binding_request([1; 12], false, &mut indication);
    indication[1] |= 0x10; // class bit c0: indication
    assert_eq!(drop_reason(&indication[..n]), DropReason::NotARequest);
    // Random bytes never panic and are never answered as a success.
    let mut state = 0x1234_5678_u32;
    for len in 0..600 {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        assert!(matches!(
            respond(&bytes, source(), SOFTWARE, &mut out),
            Action::Drop(_)
        ));
    }
}

#[test]
fn unknown_comprehension_required_attribute_gets_420() {
    let mut request = [0u8; 28];
    let n = binding_request([3; 12], false, &mut request);
    let mut with_unknown = request[..n].to_vec();
    with_unknown.extend_from_slice(&[0x00, 0x2f, 0x00, 0x00]); // type 0x002F, empty
    with_unknown[3] = 4;
    let mut out = [0u8; MAX_RESPONSE_LEN];
    let Action::ReplyError(len) = respond(&with_unknown, source(), SOFTWARE, &mut out) else {
        panic!("error reply")
    };
    let response = parse(&out[..len]).unwrap();
    assert_eq!(response.header.class, Class::ErrorResponse);
    // No reason phrase, no SOFTWARE: less than twice the request (44 bytes for 24).
    assert_eq!(response.attribute(0x0009), Some(&b"\0\0\x04\x14"[..]));
    assert_eq!(response.attribute(SOFTWARE_ATTR), None);
    assert_eq!(response.attribute(0x000A), Some(&[0x00, 0x2f][..]));
    assert_eq!((with_unknown.len(), len), (24, 44));
    // Unknown comprehension-optional attributes (>= 0x8000) are ignored.
    with_unknown[20] = 0x80;
    assert!(matches!(
        respond(&with_unknown, source(), SOFTWARE, &mut out),
        Action::Reply(_)
    ));
}

#[test]
fn other_methods_get_400() {
    let mut request = [0u8; 28];
    let n = binding_request([4; 12], false, &mut request);
    request[1] = 0x03; // Allocate (TURN)
    let mut out = [0u8; MAX_RESPONSE_LEN];
    let Action::ReplyError(len) = respond(&request[..n], source(), SOFTWARE, &mut out) else {
        panic!("error reply")
    };
    let response = parse(&out[..len]).unwrap();
    assert_eq!(response.header.method, 0x003);
    assert_eq!(response.attribute(0x0009), Some(&[0, 0, 4, 0][..]));
    assert_eq!(response.attribute(SOFTWARE_ATTR), None);
    // Header, ERROR-CODE, FINGERPRINT: 36 bytes for a 20-byte request.
    assert_eq!((n, len), (20, 36));
}

#[test]
fn a_binding_answer_carries_software_only_when_given() {
    let mut request = [0u8; 28];
    let n = binding_request([5; 12], false, &mut request);
    let mut out = [0u8; MAX_RESPONSE_LEN];
    let Action::Reply(len) = respond(&request[..n], source(), "", &mut out) else {
        panic!("answered")
    };
    let response = parse(&out[..len]).unwrap();
    assert_eq!(response.attribute(SOFTWARE_ATTR), None);
    // Header, XOR-MAPPED-ADDRESS (IPv4), FINGERPRINT.
    assert_eq!((n, len), (20, 40));
}

#[test]
fn long_software_is_cut_at_a_character_boundary() {
    let mut out = [0u8; MAX_RESPONSE_LEN];
    let long = "é".repeat(200);
    let Action::Reply(n) = respond(&SAMPLE_REQUEST, source(), &long, &mut out) else {
        panic!("answered")
    };
    let software = parse(&out[..n])
        .unwrap()
        .attribute(SOFTWARE_ATTR)
        .unwrap()
        .to_vec();
    assert!(software.len() <= MAX_SOFTWARE_LEN);
    assert!(std::str::from_utf8(&software).is_ok());
}
