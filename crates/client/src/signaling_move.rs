//! What the native and the browser shells share when a room's signaling moves to another server
//! node: the close that asks for it, and the bound on what waits for the new socket.

use switchboard_protocol::{ClientMessage, PeerId, Target};

use crate::Error;

/// Messages for the hub kept while the signaling moves to another node; more are dropped.
pub(crate) const MAX_WAITING: usize = 1024;

/// Whether the server closed the signaling socket because its node is draining (a cluster's
/// rolling restart: close code 1012, reason `draining`); a resumable room then moves.
pub(crate) fn is_drain(code: u16, reason: &str) -> bool {
    code == 1012 && reason == "draining"
}

/// Keeps the first [`MAX_WAITING`] of `waiting`; returns how many later ones were dropped.
pub(crate) fn keep_first<T>(waiting: &mut Vec<T>) -> usize {
    let dropped = waiting.len().saturating_sub(MAX_WAITING);
    waiting.truncate(MAX_WAITING);
    dropped
}

/// The error reported once `dropped` messages for the hub were dropped during a move.
pub(crate) fn dropped_error(dropped: usize) -> Error {
    Error::new(
        "signaling_moving",
        format!(
            "more than {MAX_WAITING} messages for the server while it moved: {dropped} were dropped"
        ),
    )
}

/// Whether a message held during the move still has someone to go to once the room has caught
/// up: signals, messages, kicks and goodbyes for a peer that left meanwhile are dropped (the hub
/// would answer each with `unknown_peer`).
pub(crate) fn still_addressed(message: &ClientMessage, is_member: impl Fn(PeerId) -> bool) -> bool {
    match message {
        ClientMessage::Signal {
            to: Target::Peer(peer),
            ..
        }
        | ClientMessage::Message {
            to: Target::Peer(peer),
            ..
        }
        | ClientMessage::Kick { peer }
        | ClientMessage::Gone { peer } => is_member(*peer),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waiting_messages_are_kept_up_to_the_bound_and_the_later_ones_dropped() {
        let mut waiting: Vec<usize> = (0..MAX_WAITING).collect();
        assert_eq!(keep_first(&mut waiting), 0);
        assert_eq!(waiting.len(), MAX_WAITING);
        waiting.push(MAX_WAITING);
        waiting.push(MAX_WAITING + 1);
        assert_eq!(keep_first(&mut waiting), 2);
        assert_eq!(
            dropped_error(2).message,
            "more than 1024 messages for the server while it moved: 2 were dropped"
        );
        assert_eq!(
            waiting,
            (0..MAX_WAITING).collect::<Vec<_>>(),
            "the first ones, in order"
        );
    }

    #[test]
    fn only_a_draining_close_moves_the_signaling() {
        assert!(is_drain(1012, "draining"));
        assert!(!is_drain(1012, ""));
        assert!(!is_drain(1001, "draining"));
        assert!(!is_drain(1000, "closed"));
    }

    #[test]
    fn held_messages_for_peers_that_left_meanwhile_are_dropped() {
        let stayed = PeerId::from_u128(1);
        let left = PeerId::from_u128(2);
        let is_member = |peer| peer == stayed;
        let signal = |to| ClientMessage::Signal {
            to,
            data: switchboard_protocol::Payload::from_json("1").unwrap(),
        };
        assert!(still_addressed(&signal(Target::Peer(stayed)), is_member));
        assert!(!still_addressed(&signal(Target::Peer(left)), is_member));
        assert!(!still_addressed(
            &ClientMessage::Gone { peer: left },
            is_member
        ));
        assert!(!still_addressed(
            &ClientMessage::Kick { peer: left },
            is_member
        ));
        assert!(still_addressed(
            &ClientMessage::Kick { peer: stayed },
            is_member
        ));
        assert!(still_addressed(&signal(Target::Room), is_member));
        assert!(still_addressed(
            &signal(Target::Name("x".into())),
            is_member
        ));
        assert!(still_addressed(&ClientMessage::Detach, is_member));
    }
}
