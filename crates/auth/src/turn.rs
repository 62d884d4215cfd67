//! TURN REST credentials ("A REST API for access to TURN services", the scheme coturn implements
//! with `use-auth-secret`): the user name is `<expiry>:<identity>` and the password is
//! base64(HMAC-SHA1(secret, user name)). The TURN server recomputes it and refuses it after the
//! expiry, so nothing is stored and nothing is shared but the secret.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// A user name and password for a TURN server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCredential {
    /// `<expiry Unix seconds>:<identity>`.
    pub username: String,
    /// base64(HMAC-SHA1(secret, username)).
    pub credential: String,
}

/// The credential for `identity` valid until `expires_unix` (seconds), signed with `secret`.
/// `identity` must not contain `:` (a peer id or user name does not).
pub fn credential(secret: &[u8], identity: &str, expires_unix: u64) -> TurnCredential {
    let username = format!("{expires_unix}:{identity}");
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, username.as_bytes());
    TurnCredential {
        credential: STANDARD.encode(tag.as_ref()),
        username,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independent_hmac_sha1() {
        // Python: base64.b64encode(hmac.new(b"north", b"1800003600:ann", hashlib.sha1).digest())
        assert_eq!(
            credential(b"north", "ann", 1_800_003_600),
            TurnCredential {
                username: "1800003600:ann".into(),
                credential: "Cr6BV9Y6S/ZFXiZ47vdlFLWYOog=".into(),
            }
        );
    }
}
