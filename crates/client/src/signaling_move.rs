//! What the native and the browser shells share when a room's signaling moves to another server
//! node: the close that asks for it, and the bound on what waits for the new socket.

use std::time::Duration;

use switchboard_protocol::{ClientMessage, PeerId, Target};

use crate::Error;

/// Messages for the hub kept while the signaling moves to another node; more are dropped.
pub(crate) const MAX_WAITING: usize = 1024;

/// Whether the server closed the signaling socket because its node is draining (a cluster's
/// rolling restart: close code 1012, reason `draining`); a resumable room then moves.
pub(crate) fn is_drain(code: u16, reason: &str) -> bool {
    code == 1012 && reason == "draining"
}

/// Whether a failed attempt to reconnect during a move is worth another: the node reached was
/// draining too (a balancer that has not taken it out yet), was gone, or did not answer in time.
/// Anything else (the token refused, the room closed) ends the room.
fn worth_retrying(code: &str) -> bool {
    matches!(
        code,
        "draining" | "unavailable" | "connection_failed" | "connection_closed" | "join_timeout"
    )
}

/// The wait before the next attempt to reconnect, after `failed` failed ones: 100 ms, doubling,
/// at most 2 s.
fn retry_delay(failed: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failed.min(5)).min(2_000))
}

/// The attempts of one move to reconnect: each failure worth another is followed by a wait
/// ([`retry_delay`]), as long as the next attempt starts within the room's resume grace period
/// (after it the server no longer keeps the place). Pure: the shell passes the time elapsed.
pub(crate) struct Retries {
    grace: Duration,
    failed: u32,
}

impl Retries {
    /// A move whose place the server keeps for `grace` (the welcome's `resume_grace_ms`).
    pub(crate) fn new(grace: Duration) -> Self {
        Self { grace, failed: 0 }
    }

    /// An attempt failed with `code`, `elapsed` after the move began: the wait before the next
    /// one, or `None` when the move is over (the failure is the room's end).
    pub(crate) fn after_failure(&mut self, code: &str, elapsed: Duration) -> Option<Duration> {
        let delay = retry_delay(self.failed);
        if !worth_retrying(code) || elapsed + delay >= self.grace {
            return None;
        }
        self.failed += 1;
        Some(delay)
    }
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

    #[test]
    fn a_move_tries_again_after_refusals_of_the_moment_with_growing_waits() {
        for code in [
            "draining",
            "unavailable",
            "connection_failed",
            "connection_closed",
            "join_timeout",
        ] {
            assert!(worth_retrying(code), "{code}");
        }
        for code in ["resume_failed", "room_closed", "kicked", "unauthorized"] {
            assert!(!worth_retrying(code), "{code}");
        }
        let waits: Vec<u64> = (0..8).map(|n| retry_delay(n).as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
    }

    #[test]
    fn a_move_gives_up_on_other_refusals_and_when_the_next_attempt_would_start_past_the_grace() {
        let grace = Duration::from_millis(1_000);
        let mut retries = Retries::new(grace);
        assert_eq!(retries.after_failure("resume_failed", Duration::ZERO), None);
        let mut waits = Vec::new();
        let mut elapsed = Duration::ZERO;
        while let Some(wait) = retries.after_failure("draining", elapsed) {
            waits.push(wait.as_millis());
            elapsed += wait;
        }
        // 100 + 200 + 400 = 700 ms; the next wait (800) would start the attempt at 1,500 ms.
        assert_eq!(waits, [100, 200, 400]);
        // One millisecond short of the grace for the first wait: still one more attempt.
        let mut edge = Retries::new(grace);
        assert_eq!(
            edge.after_failure("join_timeout", Duration::from_millis(899)),
            Some(Duration::from_millis(100))
        );
        let mut past = Retries::new(grace);
        assert_eq!(
            past.after_failure("join_timeout", Duration::from_millis(900)),
            None
        );
    }
}
