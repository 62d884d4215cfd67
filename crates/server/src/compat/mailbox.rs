//! Messages held for PeerJS ids that are not connected, as peerjs-server holds them: a peer that
//! connects within `expire_timeout` gets them after `OPEN`; otherwise each sender gets one
//! `EXPIRE` per absent id. Bounded per sender and in bytes; past a bound the sender gets `EXPIRE`
//! at once. A pure state machine: the time is passed in.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use switchboard_protocol::PeerId;

/// A room (a directory) and a user name in it.
pub type Address = (String, String);

/// One message held for an absent id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The sender's hub id (for its bound).
    pub sender: PeerId,
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
    /// Most messages one sender may have waiting.
    pub max_per_sender: usize,
    /// Most bytes waiting in all.
    pub max_bytes: usize,
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
    per_sender: HashMap<PeerId, usize>,
    bytes: usize,
}

impl Mailboxes {
    /// Empty mailboxes with these bounds.
    pub fn new(limits: MailLimits) -> Self {
        Self {
            limits,
            boxes: HashMap::new(),
            deadlines: BTreeSet::new(),
            per_sender: HashMap::new(),
            bytes: 0,
        }
    }

    /// Holds `held` for `to`. Past a bound it is not held and `Err` says who gets `EXPIRE` now.
    /// `Ok(true)` when this opened a mailbox (a new deadline for the shell's timer).
    pub fn hold(&mut self, to: Address, held: Held, now: Instant) -> Result<bool, Expired> {
        let count = self.per_sender.get(&held.sender).copied().unwrap_or(0);
        if count >= self.limits.max_per_sender
            || self.bytes + held.text.len() > self.limits.max_bytes
        {
            return Err(Expired {
                room: to.0,
                to: held.sender_name,
                about: to.1,
            });
        }
        *self.per_sender.entry(held.sender).or_insert(0) += 1;
        self.bytes += held.text.len();
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
            self.release(held);
        }
        mailbox.held
    }

    /// When the next mailbox expires.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Closes the mailboxes whose time is up: one `EXPIRE` per sender and absent id.
    pub fn expire_due(&mut self, now: Instant) -> Vec<Expired> {
        let mut expired: Vec<Expired> = Vec::new();
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
            for held in &mailbox.held {
                self.release(held);
                let seen = expired
                    .iter()
                    .any(|e| e.to == held.sender_name && e.about == to.1 && e.room == to.0);
                if !seen {
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
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn release(&mut self, held: &Held) {
        self.bytes -= held.text.len();
        if let Some(count) = self.per_sender.get_mut(&held.sender) {
            *count -= 1;
            if *count == 0 {
                self.per_sender.remove(&held.sender);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: MailLimits = MailLimits {
        hold: Duration::from_secs(5),
        max_per_sender: 3,
        max_bytes: 100,
    };

    fn at(name: &str) -> Address {
        ("peerjs:k".into(), name.into())
    }

    fn from(n: u128, text: &str) -> Held {
        Held {
            sender: PeerId::from_u128(n),
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
    fn bounds_per_sender_and_in_bytes_expire_at_once() {
        let now = Instant::now();
        let mut boxes = Mailboxes::new(LIMITS);
        for n in 0..3 {
            boxes.hold(at(&format!("p{n}")), from(1, "x"), now).unwrap();
        }
        let refused = boxes.hold(at("p9"), from(1, "x"), now).unwrap_err();
        assert_eq!((refused.to.as_str(), refused.about.as_str()), ("s1", "p9"));
        // Another sender still may; taking a mailbox frees the sender's share.
        boxes.hold(at("p9"), from(2, "x"), now).unwrap();
        boxes.take(&at("p0"));
        boxes.hold(at("p9"), from(1, "x"), now).unwrap();
        // Bytes: 100 in all. Exactly at the bound is held, one byte more is not.
        let mut boxes = Mailboxes::new(LIMITS);
        boxes
            .hold(at("bob"), from(1, &"y".repeat(60)), now)
            .unwrap();
        boxes
            .hold(at("bob"), from(2, &"y".repeat(40)), now)
            .unwrap();
        assert_eq!(boxes.bytes(), 100);
        assert!(boxes.hold(at("bob"), from(3, "z"), now).is_err());
    }
}
