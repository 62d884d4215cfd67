//! Pairing codes (compact SDP, docs/compact-sdp.md) on every target: a complete local
//! description made into a code in both text forms, and a code read back into SDP.

use switchboard_protocol::compact::{Description, SdpType, TextForm, MAX_CANDIDATES};

use crate::Error;

/// A code to hand to the other device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingCode {
    code: String,
    qr_text: String,
    bytes: usize,
}

impl PairingCode {
    pub(crate) fn new(compact: &[u8]) -> Self {
        Self {
            code: TextForm::Url.encode(compact),
            qr_text: TextForm::Qr.encode(compact),
            bytes: compact.len(),
        }
    }

    /// Base64url text: for links (`#code`) and copy-paste.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Base45 text: the smallest QR code (alphanumeric mode).
    pub fn qr_text(&self) -> &str {
        &self.qr_text
    }

    /// Size of the compact form in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// A link that opens `page` with this code in the fragment.
    pub fn link(&self, page: &str) -> String {
        let page = page.split('#').next().unwrap_or(page);
        format!("{page}#{}", self.code)
    }
}

/// The compact code of a complete local description.
pub(crate) fn compact(sdp: &str) -> Result<PairingCode, Error> {
    let mut description = Description::from_sdp(sdp)
        .map_err(|e| Error::new("webrtc_error", format!("our description: {e}")))?;
    description.candidates.truncate(MAX_CANDIDATES);
    let bytes = description
        .encode()
        .map_err(|e| Error::new("webrtc_error", format!("our description: {e}")))?;
    Ok(PairingCode::new(&bytes))
}

/// The SDP of a code, which must be of the `expected` type.
pub(crate) fn read_code(code: &str, expected: SdpType) -> Result<String, Error> {
    let description = Description::from_code(code)
        .map_err(|e| Error::new("invalid_code", format!("{} ({})", e, e.code())))?;
    if description.sdp_type != expected {
        return Err(Error::new(
            "invalid_code",
            format!(
                "expected an {expected:?} code, got an {:?}",
                description.sdp_type
            )
            .to_lowercase(),
        ));
    }
    Ok(description.to_sdp())
}
