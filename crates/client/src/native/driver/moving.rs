//! The room's signaling moving to another server node: when its node drains (a cluster's
//! rolling restart, close `draining`, 1012), the room connects again with its resume token
//! (a load balancer picks another node) and goes on with the same id, peers and connections.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use switchboard_protocol::Welcome;

use super::{Task, Ws};
use crate::event::Event;
use crate::native::room::{lock, open_signaling};
use crate::signaling_move::{dropped_error, keep_first, still_addressed, Retries};
use crate::Error;

/// A new signaling socket being opened, with its welcome.
pub(super) type Opening = Pin<Box<dyn Future<Output = Result<(Ws, Box<Welcome>), Error>> + Send>>;

impl Task {
    /// Keeps the messages for the hub while the signaling moves (at most
    /// `signaling_move::MAX_WAITING`; later ones are dropped and reported).
    pub(super) fn hold_for_move(&mut self) {
        let dropped = keep_first(&mut self.to_hub);
        if dropped > 0 {
            self.emit(Event::Error {
                error: dropped_error(dropped),
                peer: None,
            });
        }
    }

    /// The server node is draining (a cluster's rolling restart): the room connects again with
    /// its resume token (a load balancer picks another node), keeping its id, its peers and
    /// their connections; an attempt that reaches a draining or gone node is tried again (see
    /// `signaling_move::Retries`) while the server keeps the place. What the room sends to
    /// the hub meanwhile waits for the new socket.
    pub(super) fn move_signaling(&mut self, token: String) {
        self.signaling_open = false;
        let url = self.url.clone();
        let mut options = self.options.clone();
        options.resume = Some(token);
        let mut retries = Retries::new(self.resume_grace);
        self.moving = Some(Box::pin(async move {
            let started = Instant::now();
            loop {
                match open_signaling(&url, &options).await {
                    // The balancer sent us to a node that is draining too, or gone: again,
                    // while the server keeps the place.
                    Err(error) => match retries.after_failure(&error.code, started.elapsed()) {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => return Err(error),
                    },
                    opened => return opened,
                }
            }
        }));
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
        self.resume_grace = Duration::from_millis(welcome.resume_grace_ms);
        lock(&self.view).resume_token = welcome.resume_token.clone();
        let actions = self.core.moved(&welcome);
        self.perform(actions);
        let core = &self.core;
        self.to_hub
            .retain(|message| still_addressed(message, |peer| core.member(peer).is_some()));
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
