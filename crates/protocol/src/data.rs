//! A data channel message's contents, as applications send and receive them.

/// A message's contents: binary, or text (UTF-8). Browsers see binary as `Uint8Array` and text
/// as `string`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// Bytes.
    Binary(Vec<u8>),
    /// Text.
    Text(String),
}

impl Data {
    /// The bytes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Binary(bytes) => bytes,
            Self::Text(text) => text.as_bytes(),
        }
    }

    /// Whether this is text.
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }
}

impl From<Vec<u8>> for Data {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Binary(bytes)
    }
}

impl From<&[u8]> for Data {
    fn from(bytes: &[u8]) -> Self {
        Self::Binary(bytes.to_vec())
    }
}

impl From<String> for Data {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<&str> for Data {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}
