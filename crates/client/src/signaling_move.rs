//! What the native and the browser shells share when a room's signaling moves to another server
//! node: the close that asks for it, and the bound on what waits for the new socket.

use crate::Error;

/// Messages for the hub kept while the signaling moves to another node; more are dropped.
pub(crate) const MAX_WAITING: usize = 1024;

/// Whether the server closed the signaling socket because its node is draining (a cluster's
/// rolling restart: close code 1012, reason `draining`); a resumable room then moves.
pub(crate) fn is_drain(code: u16, reason: &str) -> bool {
    code == 1012 && reason == "draining"
}

/// Keeps the first [`MAX_WAITING`] of `waiting`; the error to report when later ones were
/// dropped.
pub(crate) fn keep_first<T>(waiting: &mut Vec<T>) -> Option<Error> {
    let dropped = waiting.len().saturating_sub(MAX_WAITING);
    waiting.truncate(MAX_WAITING);
    (dropped > 0).then(|| {
        Error::new(
            "signaling_moving",
            format!(
                "more than {MAX_WAITING} messages for the server while it moved: {dropped} were dropped"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waiting_messages_are_kept_up_to_the_bound_and_the_later_ones_dropped() {
        let mut waiting: Vec<usize> = (0..MAX_WAITING).collect();
        assert!(keep_first(&mut waiting).is_none());
        assert_eq!(waiting.len(), MAX_WAITING);
        waiting.push(MAX_WAITING);
        waiting.push(MAX_WAITING + 1);
        let error = keep_first(&mut waiting).map(|e| (e.code, e.message));
        assert_eq!(
            error,
            Some((
                "signaling_moving".to_owned(),
                "more than 1024 messages for the server while it moved: 2 were dropped".to_owned()
            ))
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
}
