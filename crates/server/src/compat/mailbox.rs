//! Messages held for PeerJS ids that are not connected, as peerjs-server holds them: a peer that
//! connects within `expire_timeout` gets them after `OPEN`; otherwise each sender gets one
//! `EXPIRE` per absent id. Bounded per sending address, per absent id and in bytes (what is
//! stored, keys and bookkeeping included); past a bound the sender gets `EXPIRE` at once. A pure
//! state machine: the time is passed in.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A room (a directory) and a user name in it.
pub type Address = (String, String);

/// One message held for an absent id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The sender's address (for its bound).
    pub from: IpAddr,
    /// The sender's user name (where `EXPIRE` goes).
    pub sender_name: String,
    /// The message as the recipient will get it.
    pub text: String,
}

/// Nobody came for the messages `to` sent `about`: `to` gets `EXPIRE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// The directory.
    pub room: String,
    /// The sender of the held messages.
    pub to: String,
    /// The absent id they were for.
    pub about: String,
}

/// The bounds of the mailboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailLimits {
    /// How long messages wait for their recipient.
    pub hold: Duration,
    /// Most messages one address may have waiting.
    pub max_per_address: usize,
    /// Most messages waiting for one id (all go into its send queue at once when it comes).
    pub max_per_target: usize,
    /// Most bytes waiting in all, bookkeeping included.
    pub max_bytes: usize,
}

/// What a held message costs besides its text and names: its entry, the map and deadline
/// entries of its mailbox, allocator overhead (an estimate on the safe side).
const ENTRY_OVERHEAD: usize = 128;

/// The bytes a held message for `to` is counted as.
fn cost(to: &Address, held: &Held) -> usize {
    held.text.len() + held.sender_name.len() + 2 * (to.0.len() + to.1.len()) + ENTRY_OVERHEAD
}

#[derive(Debug)]
struct Mailbox {
    until: Instant,
    held: Vec<Held>,
}

/// Every held message, by recipient.
#[derive(Debug)]
pub struct Mailboxes {
    limits: MailLimits,
    boxes: HashMap<Address, Mailbox>,
    deadlines: BTreeSet<(Instant, Address)>,
    per_address: HashMap<IpAddr, usize>,
    bytes: usize,
}

impl Mailboxes {
    /// Empty mailboxes with these bounds.
    pub fn new(limits: MailLimits) -> Self {
        Self {
            limits,
            boxes: HashMap::new(),
            deadlines: BTreeSet::new(),
            per_address: HashMap::new(),
            bytes: 0,
        }
    }

    /// Holds `held` for `to`. Past a bound it is not held and `Err` says who gets `EXPIRE` now.
    /// `Ok(true)` when this opened a mailbox (a new deadline for the shell's timer).
    pub fn hold(&mut self, to: Address, held: Held, now: Instant) -> Result<bool, Expired> {
        let count = self.per_address.get(&held.from).copied().unwrap_or(0);
        let waiting = self.boxes.get(&to).map_or(0, |m| m.held.len());
        let cost = cost(&to, &held);
        if count >= self.limits.max_per_address
            || waiting >= self.limits.max_per_target
            || self.bytes + cost > self.limits.max_bytes
        {
            return Err(Expired {
                room: to.0,
                to: held.sender_name,
                about: to.1,
            });
        }
        *self.per_address.entry(held.from).or_insert(0) += 1;
        self.bytes += cost;
        let mut opened = false;
        let until = now + self.limits.hold;
        let mailbox = self.boxes.entry(to.clone()).or_insert_with(|| {
            opened = true;
            Mailbox {
                until,
                held: Vec::new(),
            }
        });
        mailbox.held.push(held);
        if opened {
            self.deadlines.insert((until, to));
        }
        Ok(opened)
    }

    /// The messages held for `to`, oldest first; its mailbox is closed.
    pub fn take(&mut self, to: &Address) -> Vec<Held> {
        let Some(mailbox) = self.boxes.remove(to) else {
            return Vec::new();
        };
        self.deadlines.remove(&(mailbox.until, to.clone()));
        for held in &mailbox.held {
            self.release(to, held);
        }
        mailbox.held
    }

    /// When the next mailbox expires.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Closes the mailboxes whose time is up: one `EXPIRE` per sender and absent id.
    pub fn expire_due(&mut self, now: Instant) -> Vec<Expired> {
        let mut expired = Vec::new();
        while let Some((at, _)) = self.deadlines.first() {
            if *at > now {
                break;
            }
            let Some((_, to)) = self.deadlines.pop_first() else {
                break;
            };
            let Some(mailbox) = self.boxes.remove(&to) else {
                continue;
            };
            // Senders of this mailbox already told (a mailbox holds at most max_per_target).
            let mut told: Vec<&str> = Vec::new();
            for held in &mailbox.held {
                self.release(&to, held);
                if !told.contains(&held.sender_name.as_str()) {
                    told.push(&held.sender_name);
                    expired.push(Expired {
                        room: to.0.clone(),
                        to: held.sender_name.clone(),
                        about: to.1.clone(),
                    });
                }
            }
        }
        expired
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn release(&mut self, to: &Address, held: &Held) {
        self.bytes -= cost(to, held);
        if let Some(count) = self.per_address.get_mut(&held.from) {
            *count -= 1;
            if *count == 0 {
                self.per_address.remove(&held.from);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LIMITS: MailLimits = MailLimits {
        hold: Duration::from_secs(5),
        max_per_address: 3,
        max_per_target: 4,
        max_bytes: 100_000,
    };

    fn at(name: &str) -> Address {
        ("peerjs:k".into(), name.into())
    }

    fn from(n: u8, text: &str) -> Held {
        Held {
            from: IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)),
            sender_name: format!("s{n}"),
            text: text.into(),
        }
    }

    #[test]
    fn held_messages_go_to_the_recipient_in_order() {
        let now = Instant::now();
        let mut boxes = Mailboxes::new(LIMITS);
        assert_eq!(boxes.hold(at("bob"), from(1, "offer"), now), Ok(true));
        assert_eq!(boxes.hold(at("bob"), from(1, "cand"), now), Ok(false));
        assert_eq!(boxes.next_deadline(), Some(now + LIMITS.hold));
        let taken: Vec<_> = boxes.take(&at("bob")).into_iter().map(|h| h.text).collect();
        assert_eq!(taken, ["offer", "cand"]);
        assert!(boxes.take(&at("bob")).is_empty());
        assert_eq!(boxes.next_deadline(), None);
        assert_eq!(boxes.bytes(), 0);
        assert!(boxes.expire_due(now + LIMITS.hold).is_empty());
    }

    #[test]
    fn unclaimed_messages_expire_once_per_sender_and_id() {
        let now = Instant::now();
        let mut boxes = Mailboxes::new(LIMITS);
        boxes.hold(at("bob"), from(1, "a"), now).unwrap();
        boxes.hold(at("bob"), from(1, "b"), now).unwrap();
        boxes.hold(at("bob"), from(2, "c"), now).unwrap();
        let later = now + Duration::from_secs(1);
        boxes.hold(at("cat"), from(1, "d"), later).unwrap();
        assert!(boxes
            .expire_due(now + LIMITS.hold - Duration::from_millis(1))
            .is_empty());
        let expired = boxes.expire_due(now + LIMITS.hold);
        let pairs: Vec<_> = expired
            .iter()
            .map(|e| (e.to.as_str(), e.about.as_str()))
            .collect();
        assert_eq!(pairs, [("s1", "bob"), ("s2", "bob")]);
        assert_eq!(boxes.next_deadline(), Some(later + LIMITS.hold));
        let expired = boxes.expire_due(later + LIMITS.hold);
        assert_eq!(expired.len(), 1);
        assert_eq!(
            (expired[0].to.as_str(), expired[0].about.as_str()),
            ("s1", "cat")
        );
        assert_eq!(boxes.bytes(), 0);
    }

    #[test]
    fn bounds_per_address_per_target_and_in_bytes_expire_at_once() {
        let now = Instant::now();
        let mut boxes = Mailboxes::new(LIMITS);
        for n in 0..3 {
            boxes.hold(at(&format!("p{n}")), from(1, "x"), now).unwrap();
        }
        let refused = boxes.hold(at("p9"), from(1, "x"), now).unwrap_err();
        assert_eq!((refused.to.as_str(), refused.about.as_str()), ("s1", "p9"));
        // Another address still may; taking a mailbox frees the address's share.
        boxes.hold(at("p9"), from(2, "x"), now).unwrap();
        boxes.take(&at("p0"));
        boxes.hold(at("p9"), from(1, "x"), now).unwrap();
        // Per target: max_per_target messages wait for one id, from any number of addresses.
        let mut boxes = Mailboxes::new(LIMITS);
        for n in 1..=4 {
            boxes.hold(at("bob"), from(n, "x"), now).unwrap();
        }
        assert!(boxes.hold(at("bob"), from(5, "x"), now).is_err());
        // Bytes, bookkeeping included: exactly at the bound is held, one byte more is not.
        let one = cost(&at("bob"), &from(1, "y"));
        let limits = MailLimits {
            max_bytes: 2 * one,
            ..LIMITS
        };
        let mut boxes = Mailboxes::new(limits);
        boxes.hold(at("bob"), from(1, "y"), now).unwrap();
        boxes.hold(at("bob"), from(2, "y"), now).unwrap();
        assert_eq!(boxes.bytes(), 2 * one);
        let mut boxes = Mailboxes::new(MailLimits {
            max_bytes: 2 * one - 1,
            ..LIMITS
        });
        boxes.hold(at("bob"), from(1, "y"), now).unwrap();
        assert!(boxes.hold(at("bob"), from(2, "y"), now).is_err());
        assert!(
            one > ENTRY_OVERHEAD + 1,
            "names and keys are counted: {one}"
        );
    }
}
