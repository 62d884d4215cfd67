//! One room: its settings, members in join order, names, host, and match state.

use std::collections::HashMap;

use switchboard_protocol::rate::TokenBucket;
use switchboard_protocol::{HostLeaves, Payload, PeerId, RoomInfo, RoomKind, Topology};

/// Settings chosen by the peer that creates a room (validated by the handshake).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoomOptions {
    /// Mesh (default) or star.
    pub topology: Topology,
    /// Most peers; `None` means the server's `max_peers_per_room`.
    pub capacity: Option<usize>,
    /// What happens when the host leaves.
    pub host_leaves: HostLeaves,
    /// Listed in `/rooms`.
    pub public: bool,
    /// Application metadata for the listing (a JSON object).
    pub meta: Option<Payload>,
    /// A directory: a flat namespace of named users (PeerJS keys, the rustysignal network),
    /// not a game room. Nobody hears joins, leaves or a host; `welcome` lists no peers; it holds
    /// up to `max_peers_per_directory`. Only the compat endpoints create directories.
    pub directory: bool,
    /// Client/server presence (matchbox's client/server topology): clients hear only of the
    /// host and may send only to it; only the host hears of clients. Goes with `star` and
    /// `host_leaves: close`. Only the compat endpoints create such rooms.
    pub host_only: bool,
}

#[derive(Debug)]
pub(super) struct Room {
    pub kind: RoomKind,
    pub options: RoomOptions,
    pub capacity: usize,
    pub host: Option<PeerId>,
    pub members: Vec<PeerId>,
    pub names: HashMap<String, PeerId>,
    /// For matches: the `(key, players)` this room fills, while it is open.
    pub open_match: Option<(String, usize)>,
    pub started: bool,
    /// A directory's messages to everyone in it, held to `directory_broadcasts_per_second`
    /// (each reaches up to `max_peers_per_directory` peers); made at the first one.
    pub broadcasts: Option<TokenBucket>,
}

impl Room {
    pub fn new(kind: RoomKind, options: RoomOptions, capacity: usize) -> Self {
        Self {
            broadcasts: None,
            kind,
            options,
            capacity,
            host: None,
            members: Vec::new(),
            names: HashMap::new(),
            open_match: None,
            started: false,
        }
    }

    pub fn is_full(&self) -> bool {
        self.members.len() >= self.capacity
    }

    pub fn info(&self) -> RoomInfo {
        RoomInfo {
            kind: self.kind,
            topology: self.options.topology,
            capacity: self.capacity,
            host: self.host,
            host_leaves: self.options.host_leaves,
            public: self.options.public,
            meta: self.options.meta.clone(),
            started: self.started,
        }
    }
}

/// Room codes use 30 characters that cannot be mistaken for one another when read aloud or
/// typed: no `0 O 1 I L U`.
pub const CODE_ALPHABET: &[u8; 30] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Length of generated room codes (30^6 = 729 million codes).
pub const CODE_LENGTH: usize = 6;

/// A room code from random bits.
pub fn code_from(mut bits: u128) -> String {
    (0..CODE_LENGTH)
        .map(|_| {
            let c = CODE_ALPHABET[(bits % 30) as usize];
            bits /= 30;
            char::from(c)
        })
        .collect()
}

/// Normalizes a typed code: upper case, without spaces and dashes. `None` when it cannot be a
/// code.
pub fn normalize_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid = (4..=12).contains(&code.len()) && code.bytes().all(|b| CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// A fresh random value for the next try when a generated name is taken.
pub fn reroll(bits: u128) -> u128 {
    // SplitMix-style mixing: a different, still uniformly spread value.
    let mut z = bits.wrapping_add(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834);
    z = (z ^ (z >> 67)).wrapping_mul(0xbf58_476d_1ce4_e5b9_94d0_49bb_1331_11eb);
    z ^ (z >> 59)
}
