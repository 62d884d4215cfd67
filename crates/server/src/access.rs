//! Who may connect: the token of a connection (from `?token=` or a `switchboard.token.<jwt>`
//! subprotocol), checked before the upgrade, and what it allows. Pure: the time is passed in.

use switchboard_auth::{TokenError, Verifier};
use switchboard_protocol::{validate_user_name, ErrorCode, ProtocolError};

use crate::hub::Permits;

/// The subprotocol prefix that carries a token, for clients that cannot set a query string.
pub const TOKEN_SUBPROTOCOL: &str = "switchboard.token.";

/// A connection the token lets in: the user name it must use and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The token's `sub`: the peer's user name.
    pub name: Option<String>,
    /// Rooms, creation, capacity.
    pub permits: Permits,
}

/// A connection refused by auth: HTTP 401 (`unauthorized`) or 403 (`forbidden`), with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// `unauthorized` or `forbidden`, with the explanation.
    pub error: ProtocolError,
    /// A stable code for the exact cause (`token_expired`, ..., or `forbidden`).
    pub reason: &'static str,
}

impl Denied {
    fn token(error: TokenError) -> Self {
        Self {
            reason: error.code(),
            error: ProtocolError::new(ErrorCode::Unauthorized, error.to_string()),
        }
    }

    /// A valid token that does not allow this.
    pub fn forbidden(error: ProtocolError) -> Self {
        Self {
            reason: "forbidden",
            error,
        }
    }

    /// Too many failed token checks from one address: not checked at all for a while.
    pub fn throttled(per_minute: u32) -> Self {
        Self {
            reason: "throttled",
            error: ProtocolError::new(
                ErrorCode::Throttled,
                format!(
                    "too many failed token checks from your address (auth.failed_checks_per_minute: {per_minute}): wait"
                ),
            ),
        }
    }

    /// The HTTP status: 401 for a bad token, 403 for a good one that does not allow this, 429
    /// for an address with too many failed checks.
    pub fn status(&self) -> u16 {
        match self.error.code {
            ErrorCode::Forbidden => 403,
            ErrorCode::Throttled => 429,
            _ => 401,
        }
    }
}

/// The token a client sent: a non-empty `?token=` first, else a `switchboard.token.<jwt>`
/// subprotocol.
pub fn find_token<'a>(query_token: Option<&'a str>, subprotocols: &'a [String]) -> Option<&'a str> {
    let nonempty = |token: &&str| !token.is_empty();
    query_token.filter(nonempty).or_else(|| {
        subprotocols
            .iter()
            .find_map(|p| p.strip_prefix(TOKEN_SUBPROTOCOL))
            .filter(nonempty)
    })
}

/// Checks `token` at `now_unix`; a `?user=` other than the token's `sub` is refused.
pub fn authorize(
    verifier: &Verifier,
    token: Option<&str>,
    requested_user: Option<&str>,
    now_unix: u64,
) -> Result<Granted, Denied> {
    let token = token.ok_or(Denied::token(TokenError::Missing))?;
    let claims = verifier.verify(token, now_unix).map_err(Denied::token)?;
    if let Some(sub) = &claims.sub {
        validate_user_name(sub)
            .map_err(|why| Denied::token(TokenError::Claims(format!("sub: a user name {why}"))))?;
        if requested_user.is_some_and(|user| user != sub) {
            return Err(Denied::forbidden(ProtocolError::new(
                ErrorCode::Forbidden,
                format!("your token names you {sub:?}; leave out ?user= or use that name"),
            )));
        }
    }
    if claims.max_peers.is_some_and(|max| max < 2) {
        return Err(Denied::token(TokenError::Claims(
            "max_peers: a room holds at least 2 peers".into(),
        )));
    }
    Ok(Granted {
        permits: Permits::from_claims(&claims),
        name: claims.sub,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_auth::{VerifierConfig, VerifyKey};

    const NOW: u64 = 1_800_000_000;

    fn verifier() -> Verifier {
        Verifier::new(VerifierConfig {
            key: VerifyKey::Secret(b"k".to_vec()),
            audience: None,
            leeway_s: 0,
            max_token_bytes: 4096,
        })
        .expect("a key")
    }

    fn token(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"k"),
        )
        .expect("signs")
    }

    #[test]
    fn the_query_wins_over_the_subprotocol() {
        let protocols = vec!["switchboard.v1.json".into(), "switchboard.token.abc".into()];
        assert_eq!(find_token(Some("q"), &protocols), Some("q"));
        assert_eq!(find_token(None, &protocols), Some("abc"));
        assert_eq!(find_token(None, &[]), None);
        assert_eq!(
            find_token(Some(""), &protocols),
            Some("abc"),
            "an empty query is no token"
        );
    }

    #[test]
    fn sub_is_the_name_and_another_name_is_forbidden() {
        let ann = token(serde_json::json!({"sub": "ann", "exp": NOW + 9, "host": true}));
        let granted = authorize(&verifier(), Some(&ann), None, NOW).expect("valid");
        assert_eq!(granted.name.as_deref(), Some("ann"));
        assert!(granted.permits.may_create);
        assert!(authorize(&verifier(), Some(&ann), Some("ann"), NOW).is_ok());
        let denied = authorize(&verifier(), Some(&ann), Some("bob"), NOW).unwrap_err();
        assert_eq!((denied.status(), denied.reason), (403, "forbidden"));
        let missing = authorize(&verifier(), None, None, NOW).unwrap_err();
        assert_eq!((missing.status(), missing.reason), (401, "token_missing"));
        let bad_sub = token(serde_json::json!({"sub": "", "exp": NOW + 9}));
        let denied = authorize(&verifier(), Some(&bad_sub), None, NOW).unwrap_err();
        assert_eq!((denied.status(), denied.reason), (401, "token_claims"));
        for (max, allowed) in [(0, false), (1, false), (2, true)] {
            let capped = token(serde_json::json!({"exp": NOW + 9, "max_peers": max}));
            let outcome = authorize(&verifier(), Some(&capped), None, NOW);
            assert_eq!(outcome.is_ok(), allowed, "max_peers {max}");
        }
    }
}
