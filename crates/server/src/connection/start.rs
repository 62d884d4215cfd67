//! An upgraded connection on its way to a session: what it starts from, and (in cluster mode,
//! where the room's owner may be another node) the entering step run apart from the session.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_protocol::{IceServer, LeaveReason};

use super::entry::Place;
use super::{Ending, Membership, Pump, Served, Session, Speaker};
use crate::cluster::capacity::Seat;
use crate::cluster::envelope::NodeId;
use crate::hub::TokenBucket;
use crate::relay::Closer;
use crate::send_queue::QueueReceiver;
use crate::server::Shared;
use crate::wire::Wire;
use switchboard_ws::WebSocket;

/// A connection that enters in its own task step (cluster mode: the room's owner may be another
/// node): the entering future, then the session it resolves to. Only the step running now is
/// held, so an idle connection keeps its session and nothing of how it entered.
pub(super) enum Stages {
    /// Finding the seat; resolves to what runs next.
    Entering(Pin<Box<dyn Future<Output = Served> + Send>>),
    /// The session (or the refusal's close).
    Running(Served),
}

impl Future for Stages {
    type Output = ();

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        loop {
            match &mut *self {
                Stages::Entering(entering) => match entering.as_mut().poll(cx) {
                    std::task::Poll::Ready(next) => *self = Stages::Running(next),
                    std::task::Poll::Pending => return std::task::Poll::Pending,
                },
                Stages::Running(running) => return running.as_mut().poll(cx),
            }
        }
    }
}

/// An upgraded connection before it has a seat.
pub(super) struct Start {
    pub(super) shared: Arc<Shared>,
    pub(super) socket: WebSocket,
    pub(super) conn: u64,
    pub(super) wire: Wire,
    pub(super) origin: String,
    pub(super) ip: IpAddr,
    pub(super) outgoing: QueueReceiver,
    pub(super) closer: Arc<Closer>,
    pub(super) turn_refresh: Option<(Vec<IceServer>, Duration)>,
    pub(super) seat: Option<Seat>,
}

impl Start {
    /// The seated connection's session; `owner` is the node owning its room, if another.
    pub(super) fn session(self, place: Place, owner: Option<NodeId>) -> Session {
        let Place { id, room, name, .. } = place;
        let shared = self.shared;
        let membership = Membership {
            shared: shared.clone(),
            id,
            conn: self.conn,
            ending: Ending::quietly(LeaveReason::Closed),
        };
        let bytes = TokenBucket::full(
            u32::try_from(shared.config.limits.byte_burst).unwrap_or(u32::MAX),
            Instant::now(),
        );
        let speaker = Speaker {
            id,
            conn: self.conn,
            wire: self.wire,
            room,
            name,
            origin: self.origin,
            ip: self.ip,
        };
        let pump = Pump {
            shared,
            speaker,
            owner,
            socket: self.socket,
            outgoing: self.outgoing,
            closer: self.closer,
            bytes,
            bytes_throttled: false,
            turn_refresh: self.turn_refresh,
            _seat: self.seat,
        };
        Session { membership, pump }
    }
}
