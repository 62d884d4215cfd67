//! The index of public rooms for `/rooms`: newest first, so a listing costs what it returns and
//! not the number of rooms, and names cannot buy a place at the top; a cap on public rooms per
//! creating address, so one address cannot fill the list. A room is shown only while someone in
//! it can answer a newcomer (a room whose members all detached is hidden). Pure.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

#[derive(Debug)]
struct Entry {
    seq: u64,
    creator: IpAddr,
    shown: bool,
}

/// Public rooms by creation order.
#[derive(Debug)]
pub struct PublicIndex {
    max_per_ip: usize,
    next_seq: u64,
    shown: BTreeMap<u64, String>,
    rooms: HashMap<String, Entry>,
    per_ip: HashMap<IpAddr, usize>,
}

impl PublicIndex {
    /// Empty; one address may have `max_per_ip` public rooms at once.
    pub fn new(max_per_ip: usize) -> Self {
        Self {
            max_per_ip,
            next_seq: 1,
            shown: BTreeMap::new(),
            rooms: HashMap::new(),
            per_ip: HashMap::new(),
        }
    }

    /// Whether `ip` may create one more public room.
    pub fn has_room_for(&self, ip: IpAddr) -> bool {
        self.per_ip.get(&ip).copied().unwrap_or(0) < self.max_per_ip
    }

    /// A new public room created from `ip` (hidden until [`PublicIndex::show`]).
    pub fn add(&mut self, room: &str, creator: IpAddr) {
        let seq = self.next_seq;
        self.next_seq += 1;
        *self.per_ip.entry(creator).or_insert(0) += 1;
        self.rooms.insert(
            room.to_owned(),
            Entry {
                seq,
                creator,
                shown: false,
            },
        );
    }

    /// Shows or hides a room (someone in it can answer newcomers, or not).
    pub fn show(&mut self, room: &str, shown: bool) {
        let Some(entry) = self.rooms.get_mut(room) else {
            return;
        };
        if entry.shown == shown {
            return;
        }
        entry.shown = shown;
        if shown {
            self.shown.insert(entry.seq, room.to_owned());
        } else {
            self.shown.remove(&entry.seq);
        }
    }

    /// The room is gone.
    pub fn remove(&mut self, room: &str) {
        let Some(entry) = self.rooms.remove(room) else {
            return;
        };
        self.shown.remove(&entry.seq);
        if let Some(count) = self.per_ip.get_mut(&entry.creator) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&entry.creator);
            }
        }
    }

    /// Whether the room is shown in the listing now.
    pub fn is_shown(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|entry| entry.shown)
    }

    /// Shown rooms, newest first, older than the cursor `before` if given, with their cursors.
    pub fn newest(&self, before: Option<u64>) -> impl Iterator<Item = (u64, &str)> {
        self.shown
            .range(..before.unwrap_or(u64::MAX))
            .rev()
            .map(|(seq, room)| (*seq, room.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn names<'a>(it: impl Iterator<Item = (u64, &'a str)>) -> Vec<&'a str> {
        it.map(|(_, room)| room).collect()
    }

    #[test]
    fn newest_first_with_cursors_and_only_shown_rooms() {
        let mut index = PublicIndex::new(10);
        for room in ["aaa", "zzz", "mmm"] {
            index.add(room, ip(1));
            index.show(room, true);
        }
        // Creation order, newest first: a name cannot sort itself to the top.
        assert_eq!(names(index.newest(None)), vec!["mmm", "zzz", "aaa"]);
        let cursor = index.newest(None).nth(1).map(|(seq, _)| seq);
        assert_eq!(names(index.newest(cursor)), vec!["aaa"]);
        index.show("zzz", false);
        assert_eq!(names(index.newest(None)), vec!["mmm", "aaa"]);
        index.show("zzz", true);
        index.remove("mmm");
        assert_eq!(names(index.newest(None)), vec!["zzz", "aaa"]);
    }

    #[test]
    fn one_address_has_a_cap_given_back_when_rooms_go() {
        let mut index = PublicIndex::new(2);
        index.add("a", ip(1));
        index.add("b", ip(1));
        assert!(!index.has_room_for(ip(1)));
        assert!(index.has_room_for(ip(2)));
        index.remove("a");
        assert!(index.has_room_for(ip(1)));
        index.remove("a");
        index.remove("b");
        assert!(index.per_ip.is_empty());
    }
}
