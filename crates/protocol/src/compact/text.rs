//! Text forms of a code: base45 (RFC 9285) for QR codes, whose alphanumeric mode stores exactly
//! that alphabet at 5.5 bits per character; base64url without padding for URL fragments and
//! copy-paste.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// A text form of compact bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextForm {
    /// Base45 (RFC 9285): for QR codes (alphanumeric mode).
    Qr,
    /// Base64url, no padding: for links (`#code`) and copy-paste.
    Url,
}

/// Why a text is not a code in the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// A character outside the form's alphabet, or an impossible length or value.
    #[error("not a {form} code: {reason}")]
    Invalid {
        /// `qr` or `url`.
        form: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

const BASE45: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

impl TextForm {
    /// Encodes bytes in this form.
    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            Self::Url => URL_SAFE_NO_PAD.encode(bytes),
            Self::Qr => base45_encode(bytes),
        }
    }

    /// Decodes text in this form (surrounding whitespace is ignored for `Url`).
    pub fn decode(self, text: &str) -> Result<Vec<u8>, TextError> {
        match self {
            Self::Url => URL_SAFE_NO_PAD
                .decode(text.trim())
                .map_err(|_| TextError::Invalid {
                    form: "url",
                    reason: "not unpadded base64url",
                }),
            Self::Qr => base45_decode(text),
        }
    }
}

fn base45_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3 / 2 + 1);
    for pair in bytes.chunks(2) {
        // Two bytes become three characters, a final single byte two.
        let mut n = pair.iter().fold(0u32, |n, &b| n * 256 + u32::from(b));
        for _ in 0..=pair.len() {
            out.push(char::from(BASE45[(n % 45) as usize]));
            n /= 45;
        }
    }
    out
}

fn base45_decode(text: &str) -> Result<Vec<u8>, TextError> {
    let invalid = |reason| TextError::Invalid { form: "qr", reason };
    let values = text
        .bytes()
        .map(|c| BASE45.iter().position(|&a| a == c).map(|v| v as u32))
        .collect::<Option<Vec<u32>>>()
        .ok_or(invalid("a character outside the base45 alphabet"))?;
    if values.len() % 3 == 1 {
        return Err(invalid("impossible length"));
    }
    let mut out = Vec::with_capacity(values.len() * 2 / 3);
    for group in values.chunks(3) {
        match group {
            [c, d, e] => {
                let n = c + d * 45 + e * 45 * 45;
                let n = u16::try_from(n).map_err(|_| invalid("a group above 65535"))?;
                out.extend(n.to_be_bytes());
            }
            [c, d] => {
                let n = u8::try_from(c + d * 45).map_err(|_| invalid("a final pair above 255"))?;
                out.push(n);
            }
            _ => return Err(invalid("impossible length")),
        }
    }
    Ok(out)
}
