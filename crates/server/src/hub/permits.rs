//! What a peer's token allows in the hub: which rooms it may be in, whether it may create rooms,
//! and how large the rooms it creates may be. Everything is allowed when auth is off.

use switchboard_auth::{Claims, RoomPatterns};
use switchboard_protocol::{ErrorCode, ProtocolError};

/// A joining peer's permissions, from its token's claims.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Permits {
    /// Rooms it may join or create; `None`: any.
    pub rooms: Option<RoomPatterns>,
    /// It may create rooms (named rooms, code rooms, sessions).
    pub may_create: bool,
    /// Rooms it creates hold at most this many peers.
    pub max_peers: Option<usize>,
}

impl Default for Permits {
    /// Auth off: everything.
    fn default() -> Self {
        Self {
            rooms: None,
            may_create: true,
            max_peers: None,
        }
    }
}

impl Permits {
    /// The permissions a verified token grants.
    pub fn from_claims(claims: &Claims) -> Self {
        Self {
            rooms: claims.rooms.clone(),
            may_create: claims.host,
            max_peers: claims.max_peers,
        }
    }

    /// Refuses a room outside the token's `rooms`.
    pub fn check_room(&self, room: &str) -> Result<(), ProtocolError> {
        match &self.rooms {
            Some(patterns) if !patterns.allows(room) => Err(ProtocolError::new(
                ErrorCode::Forbidden,
                format!("your token's rooms do not include {room:?}"),
            )),
            _ => Ok(()),
        }
    }

    /// Refuses creating a room without `host`, or outside the token's `rooms`.
    pub fn check_create(&self, room: &str) -> Result<(), ProtocolError> {
        self.check_may_create()?;
        self.check_room(room)
    }

    /// Refuses creating any room without `host`.
    pub fn check_may_create(&self) -> Result<(), ProtocolError> {
        if self.may_create {
            Ok(())
        } else {
            Err(ProtocolError::new(
                ErrorCode::Forbidden,
                "your token may not create rooms (it has no host claim)",
            ))
        }
    }

    /// A new room's capacity, within the token's `max_peers`.
    pub fn cap(&self, capacity: usize) -> usize {
        self.max_peers.map_or(capacity, |max| capacity.min(max))
    }
}
