//! The placement keys a node owns, and which of them to give up: a key whose room (or open
//! match) is gone on two sweeps in a row is released, so a key claimed for a join that has not
//! reached the hub yet is never released under it. Pure: the hub's answers are passed in.

use std::collections::HashMap;

use crate::hub::{Destination, Hub};

/// Where a join is decided in a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// By the owner of this key (a room by name, or the match key that fills match rooms).
    Key(Key),
    /// Here: a new room with a name drawn here (code rooms, sessions), claimed once it exists.
    Here,
}

/// What a node owns: a room by name, or the open matches of one match key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A room.
    Room(String),
    /// The matches for `(key, players)`.
    Match(String, usize),
}

impl Key {
    /// The key in the store (`room:NAME`, `match:PLAYERS:KEY`).
    pub fn store_key(&self) -> String {
        match self {
            Self::Room(name) => format!("room:{name}"),
            Self::Match(key, players) => format!("match:{players}:{key}"),
        }
    }

    /// Whether the hub still has what this key owns.
    fn alive(&self, hub: &Hub) -> bool {
        match self {
            Self::Room(name) => hub.has_room(name),
            Self::Match(key, players) => hub.has_open_match(key, *players),
        }
    }
}

/// Where a join for `destination` is decided.
pub fn placement(destination: &Destination) -> Placement {
    match destination {
        Destination::Named { room, .. } => Placement::Key(Key::Room(room.clone())),
        Destination::Match { players, key } => Placement::Key(Key::Match(key.clone(), *players)),
        Destination::NewCode { .. } | Destination::NewSession => Placement::Here,
    }
}

/// The keys a node owns, each with whether the last sweep found it empty.
#[derive(Debug, Default)]
pub struct Owned {
    keys: HashMap<Key, bool>,
}

impl Owned {
    /// Records a key this node owns now (fresh: not released before two sweeps find it empty).
    pub fn insert(&mut self, key: Key) {
        self.keys.insert(key, false);
    }

    /// Whether this node owns the key.
    pub fn contains(&self, key: &Key) -> bool {
        self.keys.contains_key(key)
    }

    /// Forgets a key (handed to another node).
    pub fn remove(&mut self, key: &Key) {
        self.keys.remove(key);
    }

    /// Forgets every key and returns them.
    pub fn take_all(&mut self) -> Vec<Key> {
        self.keys.drain().map(|(key, _)| key).collect()
    }

    /// Every key this node owns.
    pub fn keys(&self) -> Vec<Key> {
        self.keys.keys().cloned().collect()
    }

    /// How many keys this node owns.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it owns none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Forgets the keys found empty twice in a row and returns them (to release in the store).
    pub fn sweep(&mut self, hub: &Hub) -> Vec<Key> {
        let mut released = Vec::new();
        self.keys.retain(|key, idle| {
            if key.alive(hub) {
                *idle = false;
                return true;
            }
            if *idle {
                released.push(key.clone());
                return false;
            }
            *idle = true;
            true
        });
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{HubLimits, JoinRequest, Permits, RoomOptions};
    use std::time::Instant;
    use switchboard_protocol::{LeaveReason, PeerId};

    fn hub() -> Hub {
        Hub::new(HubLimits::roomy())
    }

    fn join(hub: &mut Hub, id: u128, destination: Destination, now: Instant) {
        let request = JoinRequest {
            id: PeerId::from_u128(id),
            conn: id as u64,
            destination,
            name: None,
            ip: "127.0.0.1".parse().unwrap(),
            token: None,
            entropy: id,
            permits: Permits::default(),
        };
        hub.join(request, now).unwrap();
    }

    #[test]
    fn where_joins_are_decided() {
        let named = Destination::Named {
            room: "lobby".into(),
            create: true,
            options: RoomOptions::default(),
        };
        assert_eq!(placement(&named), Placement::Key(Key::Room("lobby".into())));
        let matched = Destination::Match {
            players: 4,
            key: "duel".into(),
        };
        let key = Key::Match("duel".into(), 4);
        assert_eq!(placement(&matched), Placement::Key(key.clone()));
        assert_eq!(key.store_key(), "match:4:duel");
        assert_eq!(Key::Room("a:b".into()).store_key(), "room:a:b");
        assert_eq!(placement(&Destination::NewSession), Placement::Here);
    }

    #[test]
    fn a_key_goes_after_two_empty_sweeps_and_never_while_used() {
        let now = Instant::now();
        let mut hub = hub();
        let mut owned = Owned::default();
        let (room, matches) = (Key::Room("lobby".into()), Key::Match("duel".into(), 2));
        owned.insert(room.clone());
        owned.insert(matches.clone());
        // Claimed before the join reaches the hub: the first sweep keeps both.
        assert!(owned.sweep(&hub).is_empty());
        let named = Destination::Named {
            room: "lobby".into(),
            create: true,
            options: RoomOptions::default(),
        };
        join(&mut hub, 1, named, now);
        let duel = Destination::Match {
            players: 2,
            key: "duel".into(),
        };
        join(&mut hub, 2, duel, now);
        // In use: kept however often swept, and the idle mark is cleared.
        assert!(owned.sweep(&hub).is_empty());
        assert!(owned.sweep(&hub).is_empty());
        hub.disconnect(PeerId::from_u128(1), 1, LeaveReason::Closed, false, now);
        hub.disconnect(PeerId::from_u128(2), 2, LeaveReason::Closed, false, now);
        assert!(owned.sweep(&hub).is_empty());
        let mut released = owned.sweep(&hub);
        released.sort_by_key(Key::store_key);
        assert_eq!(released, vec![matches, room]);
        assert!(owned.is_empty());
    }
}
