use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

use super::*;
use crate::RoomPatterns;

const NOW: u64 = 1_800_000_000;
const SECRET: &[u8] = b"a shared secret of some length";

fn verifier(key: VerifyKey, audience: Option<&str>) -> Verifier {
    Verifier::new(VerifierConfig {
        key,
        audience: audience.map(str::to_owned),
        leeway_s: 30,
        max_token_bytes: 4096,
    })
    .expect("a usable key")
}

fn hs(claims: serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .expect("signs")
}

fn secret_verifier() -> Verifier {
    verifier(VerifyKey::Secret(SECRET.to_vec()), None)
}

fn b64(json: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(json.to_string())
}

#[test]
fn a_valid_hs256_token_gives_its_claims() {
    let token = hs(json!({
        "sub": "ann", "exp": NOW + 60, "rooms": ["lobby", "team-*"], "host": true, "max_peers": 4
    }));
    let claims = secret_verifier().verify(&token, NOW).expect("valid");
    assert_eq!(claims.sub.as_deref(), Some("ann"));
    assert_eq!(
        claims.rooms,
        Some(RoomPatterns(vec!["lobby".into(), "team-*".into()]))
    );
    assert!(claims.host);
    assert_eq!(claims.max_peers, Some(4));
}

#[test]
fn ed25519_and_rsa_public_keys_verify_their_tokens() {
    let cases = [
        (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(include_bytes!("../../testdata/ed25519.pem")),
            &include_bytes!("../../testdata/ed25519.pub.pem")[..],
        ),
        (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(include_bytes!("../../testdata/rsa.pem")),
            &include_bytes!("../../testdata/rsa.pub.pem")[..],
        ),
    ];
    for (algorithm, private, public) in cases {
        let token = encode(
            &Header::new(algorithm),
            &json!({"sub": "bob", "exp": NOW + 60}),
            &private.expect("a private key"),
        )
        .expect("signs");
        let verifier = verifier(VerifyKey::PublicPem(public.to_vec()), None);
        assert_eq!(verifier.algorithm(), algorithm_name(algorithm));
        let claims = verifier.verify(&token, NOW).expect("valid");
        assert_eq!(claims.sub.as_deref(), Some("bob"));
        // The same claims signed with the shared secret are refused by name (no confusion).
        let hs256 = hs(json!({"sub": "bob", "exp": NOW + 60}));
        assert!(matches!(
            verifier.verify(&hs256, NOW),
            Err(TokenError::Algorithm { .. })
        ));
    }
}

#[test]
fn a_public_key_used_as_an_hmac_secret_is_refused() {
    // The classic confusion: an HS256 token signed with the public key's PEM text.
    let public = include_bytes!("../../testdata/ed25519.pub.pem");
    let token = encode(
        &Header::new(Algorithm::HS256),
        &json!({"exp": NOW + 60}),
        &EncodingKey::from_secret(public),
    )
    .expect("signs");
    let verifier = verifier(VerifyKey::PublicPem(public.to_vec()), None);
    assert_eq!(
        verifier.verify(&token, NOW).map_err(|e| e.code()),
        Err("token_algorithm")
    );
}

#[test]
fn expiry_and_not_before_allow_the_leeway_and_no_more() {
    let v = secret_verifier();
    let expired_at = |exp: u64| v.verify(&hs(json!({"exp": exp})), NOW).map(|_| ());
    assert_eq!(expired_at(NOW - 30), Ok(()), "inside the leeway");
    assert_eq!(expired_at(NOW - 31), Err(TokenError::Expired));
    let nbf = |nbf: u64| {
        v.verify(&hs(json!({"exp": NOW + 600, "nbf": nbf})), NOW)
            .map(|_| ())
    };
    assert_eq!(nbf(NOW + 30), Ok(()), "inside the leeway");
    assert_eq!(nbf(NOW + 31), Err(TokenError::NotYetValid));
}

#[test]
fn the_audience_must_match_when_configured() {
    let v = verifier(VerifyKey::Secret(SECRET.to_vec()), Some("game"));
    let check = |claims: serde_json::Value| v.verify(&hs(claims), NOW).map(|_| ());
    assert_eq!(check(json!({"exp": NOW + 60, "aud": "game"})), Ok(()));
    assert_eq!(
        check(json!({"exp": NOW + 60, "aud": ["other", "game"]})),
        Ok(())
    );
    assert_eq!(
        check(json!({"exp": NOW + 60, "aud": "other"})),
        Err(TokenError::Audience)
    );
    assert_eq!(check(json!({"exp": NOW + 60})), Err(TokenError::Audience));
}

#[test]
fn every_bad_token_is_refused_with_its_code() {
    let v = secret_verifier();
    let other = encode(
        &Header::new(Algorithm::HS256),
        &json!({"exp": NOW + 60}),
        &EncodingKey::from_secret(b"another secret"),
    )
    .expect("signs");
    let valid = hs(json!({"exp": NOW + 60}));
    let (head, rest) = valid.split_once('.').expect("three parts");
    let (_, signature) = rest.split_once('.').expect("three parts");
    let payload = |claims: serde_json::Value| b64(&claims);
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        payload(json!({"exp": NOW + 60}))
    );
    // A payload changed after signing (a forged `host`).
    let tampered = format!(
        "{head}.{}.{signature}",
        payload(json!({"exp": NOW + 60, "host": true}))
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "token_missing"),
        ("oversized", "a".repeat(4097), "token_too_large"),
        ("one part", "abc".into(), "token_malformed"),
        (
            "two parts",
            format!("{head}.{signature}"),
            "token_malformed",
        ),
        ("four parts", format!("{valid}.x"), "token_malformed"),
        ("header not base64", format!("!!.{rest}"), "token_malformed"),
        ("alg none", alg_none, "token_algorithm"),
        ("another secret", other, "token_signature"),
        ("tampered payload", tampered, "token_signature"),
        ("exp missing", hs(json!({"sub": "ann"})), "token_claims"),
        ("exp a string", hs(json!({"exp": "soon"})), "token_claims"),
        (
            "rooms a string",
            hs(json!({"exp": NOW + 60, "rooms": "lobby"})),
            "token_claims",
        ),
        (
            "host a string",
            hs(json!({"exp": NOW + 60, "host": "yes"})),
            "token_claims",
        ),
        (
            "sub a number",
            hs(json!({"exp": NOW + 60, "sub": 7})),
            "token_claims",
        ),
        (
            "max_peers negative",
            hs(json!({"exp": NOW + 60, "max_peers": -1})),
            "token_claims",
        ),
    ];
    for (what, token, code) in cases {
        assert_eq!(
            v.verify(&token, NOW).map(|_| ()).map_err(|e| e.code()),
            Err(code),
            "{what}"
        );
    }
}

#[test]
fn unusable_keys_are_refused_at_start() {
    let new = |key| {
        Verifier::new(VerifierConfig {
            key,
            audience: None,
            leeway_s: 0,
            max_token_bytes: 10,
        })
        .map(|_| ())
    };
    assert_eq!(
        new(VerifyKey::Secret(Vec::new())),
        Err(KeyError::EmptySecret)
    );
    assert!(matches!(
        new(VerifyKey::PublicPem(b"not a pem".to_vec())),
        Err(KeyError::BadPem(_))
    ));
}

#[test]
fn a_token_of_exactly_max_token_bytes_is_checked_and_one_byte_more_is_not() {
    let v = secret_verifier();
    // Pad a claim until the token is exactly the limit (4096 bytes).
    let sized = |len: usize| {
        let mut pad = 0;
        loop {
            let token = hs(json!({"exp": NOW + 60, "pad": "x".repeat(pad)}));
            if token.len() >= len {
                return token;
            }
            pad += 1;
        }
    };
    let at = sized(4096);
    let over = sized(4097);
    assert_eq!(at.len(), 4096);
    assert!(over.len() > 4096);
    assert!(v.verify(&at, NOW).is_ok());
    assert_eq!(v.verify(&over, NOW), Err(TokenError::TooLarge(4096)));
}
