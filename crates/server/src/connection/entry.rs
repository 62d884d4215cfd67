//! Entering the hub: a join, a resume or a claim, then the welcome and whatever was held for
//! the peer, queued before anything else. The seat is taken by the hub of the room's owner:
//! this node, or in cluster mode another node (`cluster::entry`), whose answer the welcome is
//! built from here the same way.

use std::net::IpAddr;
use std::time::Instant;

use axum::extract::ws::Message;
use switchboard_protocol::{
    ErrorCode, IceServer, PeerId, ProtocolError, ServerMessage, Welcome, PROTOCOL_VERSION,
};

use crate::cluster::envelope::Entering;
use crate::config::TurnConfig;
use crate::handshake::{Entry, Handshake};
use crate::hub::{CloseReason, Effects, Hub, JoinRequest, ResumeRequest, Seat};
use crate::relay::{lock, Outbox, Relay};
use crate::server::{unix_now, Shared};
use crate::wire::{encode_for, Wire};

/// A seated peer's place.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// Its id.
    pub id: PeerId,
    /// Its room.
    pub room: String,
    /// Its user name (empty without one).
    pub name: String,
    /// Its resume token, when resumable.
    pub token: Option<u128>,
}

/// The hub call a handshake asks for, with the random values drawn for it here.
pub(crate) fn entering(handshake: &Handshake) -> Entering {
    let permits = handshake.permits.clone();
    match &handshake.entry {
        Entry::Join(destination) => Entering::Join {
            destination: destination.clone(),
            token: handshake.resumable.then(rand::random),
            entropy: rand::random(),
            permits,
        },
        Entry::Resume(token) => Entering::Resume {
            token: *token,
            next_token: rand::random(),
            token_name: handshake.token_name.clone(),
            permits,
        },
        Entry::Claim { token, destination } => Entering::Claim {
            token: *token,
            destination: destination.clone(),
            entropy: rand::random(),
            token_name: handshake.token_name.clone(),
            permits,
        },
    }
}

/// Who takes a seat: the peer's id (drawn by the node of its connection), that connection,
/// the user name it asked for and its address.
pub(crate) struct Newcomer {
    /// The peer's id.
    pub id: PeerId,
    /// Its connection.
    pub conn: u64,
    /// The user name it asked for.
    pub name: Option<String>,
    /// Where it connects from.
    pub ip: IpAddr,
}

/// Seats a peer in `hub`: join, resume or claim. Returns the seat, what the room must hear and
/// whether the peer resumed.
pub(crate) fn take_seat(
    hub: &mut Hub,
    newcomer: &Newcomer,
    entering: Entering,
    now: Instant,
) -> Result<(Seat, Effects, bool), ProtocolError> {
    let join = |hub: &mut Hub, destination, token, entropy, permits| {
        let request = JoinRequest {
            id: newcomer.id,
            conn: newcomer.conn,
            destination,
            name: newcomer.name.clone(),
            ip: newcomer.ip,
            token,
            entropy,
            permits,
        };
        hub.join(request, now)
    };
    let resume = |hub: &mut Hub, token, next_token, name, permits| {
        let request = ResumeRequest {
            token,
            conn: newcomer.conn,
            next_token,
            name,
            permits,
        };
        hub.resume(request)
    };
    Ok(match entering {
        Entering::Join {
            destination,
            token,
            entropy,
            permits,
        } => {
            let (seat, effects) = join(hub, destination, token, entropy, permits)?;
            (seat, effects, false)
        }
        Entering::Resume {
            token,
            next_token,
            token_name,
            permits,
        } => {
            let (seat, effects) = resume(hub, token, next_token, token_name, permits)?;
            (seat, effects, true)
        }
        // The token stays the same: the client's credentials are what it derives from.
        Entering::Claim {
            token,
            destination,
            entropy,
            token_name,
            permits,
        } => match resume(hub, token, token, token_name, permits.clone()) {
            Ok((seat, effects)) => (seat, effects, true),
            Err(error) if error.code == ErrorCode::ResumeFailed => {
                let (seat, effects) = join(hub, destination, Some(token), entropy, permits)?;
                (seat, effects, false)
            }
            Err(error) => return Err(error),
        },
    })
}

/// Joins or resumes in this node's hub; queues the welcome, then what the room must hear.
/// Returns the peer's place.
pub(super) fn enter(
    shared: &Shared,
    handshake: Handshake,
    conn: u64,
    ip: IpAddr,
    ice_servers: Vec<IceServer>,
    outbox: Outbox,
) -> Result<Place, ProtocolError> {
    let entering = entering(&handshake);
    let newcomer = Newcomer {
        id: PeerId::from_u128(rand::random()),
        conn,
        name: handshake.name,
        ip,
    };
    enter_here(shared, &newcomer, entering, ice_servers, outbox)
}

/// Like [`enter`], with the newcomer and its hub call already drawn.
pub(crate) fn enter_here(
    shared: &Shared,
    newcomer: &Newcomer,
    entering: Entering,
    ice_servers: Vec<IceServer>,
    outbox: Outbox,
) -> Result<Place, ProtocolError> {
    let ip = newcomer.ip;
    let mut relay = lock(&shared.relay);
    let (seat, effects, resumed) = take_seat(&mut relay.hub, newcomer, entering, Instant::now())?;
    let outbox_wire = outbox.wire;
    let place = seat_connection(shared, &mut relay, seat, resumed, ice_servers, outbox);
    shared.settle(&relay, effects);
    if outbox_wire == Wire::Peerjs {
        // What was held for this id while it was away follows `OPEN`.
        for held in relay
            .mailboxes
            .take(&(place.room.clone(), place.name.clone()))
        {
            relay.send_frame(place.id, Message::Text(held.text.into()), &shared.metrics);
        }
    }
    tracing::debug!(peer = %place.id, %ip, resumed, "joined");
    shared.update_gauges(&relay);
    Ok(place)
}

/// Gives a seated peer's connection (on this node) its welcome and its outbox; closes the
/// connection it resumed from, if that one is still open. Returns its place.
pub(crate) fn seat_connection(
    shared: &Shared,
    relay: &mut Relay,
    seat: Seat,
    resumed: bool,
    ice_servers: Vec<IceServer>,
    outbox: Outbox,
) -> Place {
    let limits = &shared.config.limits;
    let Seat {
        id,
        room,
        name,
        peers,
        info,
        token,
    } = seat;
    let place = Place {
        id,
        room: room.clone(),
        name: name.clone().unwrap_or_default(),
        token,
    };
    let welcome = ServerMessage::Welcome(Box::new(Welcome {
        version: PROTOCOL_VERSION,
        id,
        room,
        name,
        peers,
        ice_servers: with_turn(&shared.config.turn, ice_servers, id),
        heartbeat_ms: limits.heartbeat_interval_ms,
        idle_timeout_ms: limits.idle_timeout_ms,
        max_message_bytes: limits.max_message_bytes,
        resume_grace_ms: limits.resume_grace_ms,
        detached_ttl_ms: limits.detached_ttl_ms,
        room_info: info,
        resume_token: token.map(|t| format!("{t:032x}")),
        resumed,
    }));
    // The queue is new and its capacity is at least 1 (validated), so the welcome goes first.
    if let (Some(Ok(frame)), crate::relay::Sink::Local { queue, .. }) =
        (encode_for(&welcome, outbox.wire), &outbox.sink)
    {
        let _ = queue.try_send(frame);
    }
    let protocol = outbox.wire.protocol();
    // On resume this replaces the old connection's outbox; the hub closes that connection.
    if let Some(old) = relay.outboxes.insert(id, outbox) {
        let replaced = CloseReason::Error(ProtocolError::new(
            ErrorCode::Replaced,
            "this peer resumed on another connection",
        ));
        old.close_for(id, replaced, relay.outgoing());
    }
    shared.metrics.connections_accepted.inc();
    shared.metrics.joined(protocol);
    place
}

/// `base` plus, when TURN is configured, a TURN entry with fresh credentials for `peer`.
pub(super) fn with_turn(
    turn: &TurnConfig,
    mut base: Vec<IceServer>,
    peer: PeerId,
) -> Vec<IceServer> {
    base.extend(turn.ice_server(&peer.to_string(), unix_now()));
    base
}
