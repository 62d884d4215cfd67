//! The room's signaling moving to another server node: when its node drains (a cluster's
//! rolling restart, close `draining`, 1012), the room connects again with its resume token
//! (a load balancer picks another node) and goes on with the same id, peers and connections.

use std::future::Future;
use std::pin::Pin;

use switchboard_protocol::Welcome;

use super::{Task, Ws};
use crate::event::Event;
use crate::native::room::{lock, open_signaling};
use crate::Error;

/// A new signaling socket being opened, with its welcome.
pub(super) type Opening = Pin<Box<dyn Future<Output = Result<(Ws, Box<Welcome>), Error>> + Send>>;

/// Messages for the hub kept while the signaling moves to another node; more are dropped.
const MAX_WAITING: usize = 1024;

impl Task {
    /// Keeps the messages for the hub while the signaling moves (at most `MAX_WAITING`; later
    /// ones are dropped and reported).
    pub(super) fn hold_for_move(&mut self) {
        if keep_first(&mut self.to_hub, MAX_WAITING) > 0 {
            self.emit(Event::Error {
                error: Error::new(
                    "signaling_moving",
                    format!(
                        "more than {MAX_WAITING} messages for the server while it moved: the rest were dropped"
                    ),
                ),
                peer: None,
            });
        }
    }

    /// The server node is draining (a cluster's rolling restart): the room connects again with
    /// its resume token (a load balancer picks another node), keeping its id, its peers and
    /// their connections. What it sends to the hub meanwhile waits for the new socket.
    pub(super) fn move_signaling(&mut self, token: String) {
        self.signaling_open = false;
        let url = self.url.clone();
        let mut options = self.options.clone();
        options.resume = Some(token);
        self.moving = Some(Box::pin(
            async move { open_signaling(&url, &options).await },
        ));
    }

    /// The new signaling socket is open (or could not be): the room goes on with it, caught up
    /// on what happened meanwhile, or ends.
    pub(super) async fn moved(&mut self, opened: Result<(Ws, Box<Welcome>), Error>) {
        let (ws, welcome) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                let actions = self.core.shutdown(&error.code, &error.message);
                self.perform(actions);
                return;
            }
        };
        self.ws = ws;
        self.signaling_open = true;
        self.resume_token = welcome.resume_token.clone();
        lock(&self.view).resume_token = welcome.resume_token.clone();
        let actions = self.core.moved(&welcome);
        self.perform(actions);
        self.flush_hub().await;
    }
}

/// The socket being opened, when there is one (else never ready).
pub(super) async fn opening(moving: &mut Option<Opening>) -> Result<(Ws, Box<Welcome>), Error> {
    match moving {
        Some(opening) => opening.await,
        None => std::future::pending().await,
    }
}

/// Keeps the first `max` of `waiting`; returns how many later ones were dropped.
fn keep_first<T>(waiting: &mut Vec<T>, max: usize) -> usize {
    let dropped = waiting.len().saturating_sub(max);
    waiting.truncate(max);
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waiting_messages_are_kept_up_to_the_bound_and_the_later_ones_dropped() {
        let mut waiting: Vec<usize> = (0..MAX_WAITING).collect();
        assert_eq!(keep_first(&mut waiting, MAX_WAITING), 0);
        assert_eq!(waiting.len(), MAX_WAITING);
        waiting.push(MAX_WAITING);
        waiting.push(MAX_WAITING + 1);
        assert_eq!(keep_first(&mut waiting, MAX_WAITING), 2);
        assert_eq!(
            waiting,
            (0..MAX_WAITING).collect::<Vec<_>>(),
            "the first ones, in order"
        );
    }
}
