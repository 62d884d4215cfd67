//! The claims of a token that the hub enforces, and the room patterns of its `rooms` claim.

use serde::{Deserialize, Serialize};

/// What a verified token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    /// Subject: becomes the peer's user name (a client cannot pick another).
    #[serde(default)]
    pub sub: Option<String>,
    /// Expiry, Unix seconds. Required.
    pub exp: u64,
    /// Not before, Unix seconds.
    #[serde(default)]
    pub nbf: Option<u64>,
    /// Audience: one string or a list.
    #[serde(default)]
    pub aud: Option<Audience>,
    /// Rooms the holder may join or create: exact names, or prefixes ending in `*`. Absent:
    /// any room.
    #[serde(default)]
    pub rooms: Option<RoomPatterns>,
    /// The holder may create rooms (others then join them). Default: false.
    #[serde(default)]
    pub host: bool,
    /// Rooms the holder creates hold at most this many peers.
    #[serde(default)]
    pub max_peers: Option<usize>,
}

/// The `aud` claim: a string or a list of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `wanted` is among the audiences.
    pub fn contains(&self, wanted: &str) -> bool {
        match self {
            Self::One(one) => one == wanted,
            Self::Many(many) => many.iter().any(|a| a == wanted),
        }
    }
}

/// The `rooms` claim: exact room names, or prefixes written with a trailing `*` (`"*"` alone
/// allows every room).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomPatterns(pub Vec<String>);

impl RoomPatterns {
    /// Whether `room` matches one of the patterns.
    pub fn allows(&self, room: &str) -> bool {
        self.0
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => room.starts_with(prefix),
                None => pattern == room,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_exact_names_and_prefixes() {
        let patterns = RoomPatterns(vec!["lobby".into(), "team-*".into()]);
        assert!(patterns.allows("lobby"));
        assert!(!patterns.allows("lobby2"));
        assert!(patterns.allows("team-"));
        assert!(patterns.allows("team-red"));
        assert!(!patterns.allows("team"));
        assert!(!patterns.allows("other"));
        assert!(RoomPatterns(vec!["*".into()]).allows("anything"));
        assert!(!RoomPatterns(Vec::new()).allows("lobby"));
    }
}
