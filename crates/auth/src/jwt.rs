//! JWT verification: one allowed algorithm, the signature, `exp` (required) and `nbf` with a
//! leeway, `aud` when configured, and a size cap. Time is passed in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::Claims;

/// The key tokens are checked with.
#[derive(Clone, PartialEq, Eq)]
pub enum VerifyKey {
    /// A shared secret: tokens are HS256.
    Secret(Vec<u8>),
    /// A PEM public key (SubjectPublicKeyInfo): Ed25519 (tokens are EdDSA) or RSA (RS256).
    PublicPem(Vec<u8>),
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        match self {
            Self::Secret(_) => f.write_str("Secret(..)"),
            Self::PublicPem(_) => f.write_str("PublicPem(..)"),
        }
    }
}

/// How tokens are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// The key.
    pub key: VerifyKey,
    /// When set, a token's `aud` must contain it.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_s: u64,
    /// Longest token accepted, in bytes.
    pub max_token_bytes: usize,
}

/// A key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// An empty shared secret.
    #[error("the JWT secret is empty")]
    EmptySecret,
    /// A PEM that is neither an Ed25519 nor an RSA public key.
    #[error("the JWT public key is not an Ed25519 or RSA public key in PEM: {0}")]
    BadPem(String),
}

/// Why a token was refused. Each has a stable code ([`TokenError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token was given.
    #[error("a token is required (?token=, or the subprotocol switchboard.token.<token>)")]
    Missing,
    /// Longer than `max_token_bytes`.
    #[error("the token is longer than max_token_bytes ({0})")]
    TooLarge(usize),
    /// Not three base64url parts with a JSON header.
    #[error("the token is not a JWT")]
    Malformed,
    /// Signed with an algorithm this server does not accept (`none` included).
    #[error("the token's algorithm {found:?} is not accepted; this server accepts {expected}")]
    Algorithm {
        /// The header's `alg`.
        found: String,
        /// The one algorithm accepted.
        expected: &'static str,
    },
    /// The signature does not verify with the server's key.
    #[error("the token's signature is not valid")]
    Signature,
    /// Past `exp` (plus the leeway).
    #[error("the token expired")]
    Expired,
    /// Before `nbf` (minus the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `aud` does not contain the configured audience.
    #[error("the token is not for this audience")]
    Audience,
    /// A claim is missing or of the wrong type.
    #[error("the token's claims are not valid: {0}")]
    Claims(String),
}

impl TokenError {
    /// The stable code, e.g. `"token_expired"`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Missing => "token_missing",
            Self::TooLarge(_) => "token_too_large",
            Self::Malformed => "token_malformed",
            Self::Algorithm { .. } => "token_algorithm",
            Self::Signature => "token_signature",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::Audience => "token_audience",
            Self::Claims(_) => "token_claims",
        }
    }
}

/// Checks tokens against one key.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    algorithm: Algorithm,
    validation: Validation,
    audience: Option<String>,
    leeway_s: u64,
    max_token_bytes: usize,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithm", &self.algorithm)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for `config`; the key decides the one algorithm accepted.
    pub fn new(config: VerifierConfig) -> Result<Self, KeyError> {
        let (key, algorithm) = match &config.key {
            VerifyKey::Secret(secret) if secret.is_empty() => return Err(KeyError::EmptySecret),
            VerifyKey::Secret(secret) => (DecodingKey::from_secret(secret), Algorithm::HS256),
            VerifyKey::PublicPem(pem) => match DecodingKey::from_ed_pem(pem) {
                Ok(key) => (key, Algorithm::EdDSA),
                Err(_) => match DecodingKey::from_rsa_pem(pem) {
                    Ok(key) => (key, Algorithm::RS256),
                    Err(error) => return Err(KeyError::BadPem(error.to_string())),
                },
            },
        };
        // jsonwebtoken checks the signature and the algorithm; time and audience are checked
        // here, against the time the caller passes in.
        let mut validation = Validation::new(algorithm);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        Ok(Self {
            key,
            algorithm,
            validation,
            audience: config.audience,
            leeway_s: config.leeway_s,
            max_token_bytes: config.max_token_bytes,
        })
    }

    /// The one algorithm tokens must use.
    pub fn algorithm(&self) -> &'static str {
        algorithm_name(self.algorithm)
    }

    /// Checks `token` at `now_unix` (seconds); returns its claims.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Claims, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > self.max_token_bytes {
            return Err(TokenError::TooLarge(self.max_token_bytes));
        }
        let found = header_algorithm(token).ok_or(TokenError::Malformed)?;
        if found != self.algorithm() {
            return Err(TokenError::Algorithm {
                found,
                expected: self.algorithm(),
            });
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature => TokenError::Signature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    TokenError::Algorithm {
                        found: String::new(),
                        expected: self.algorithm(),
                    }
                }
                ErrorKind::Json(inner) => TokenError::Claims(inner.to_string()),
                _ => TokenError::Malformed,
            })?
            .claims;
        if now_unix > claims.exp.saturating_add(self.leeway_s) {
            return Err(TokenError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now_unix.saturating_add(self.leeway_s))
        {
            return Err(TokenError::NotYetValid);
        }
        if let Some(wanted) = &self.audience {
            if !claims.aud.as_ref().is_some_and(|aud| aud.contains(wanted)) {
                return Err(TokenError::Audience);
            }
        }
        Ok(claims)
    }
}

fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::HS256 => "HS256",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::RS256 => "RS256",
        _ => "unsupported",
    }
}

/// The `alg` of a token's header, read before any signature check so that `none` and other
/// algorithms are refused by name.
fn header_algorithm(token: &str) -> Option<String> {
    let (header, rest) = token.split_once('.')?;
    // Exactly three parts.
    if rest.matches('.').count() != 1 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(header).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    header.get("alg")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests;
