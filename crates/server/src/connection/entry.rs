//! Entering the hub: a join, a resume or a claim, then the welcome and whatever was held for
//! the peer, queued before anything else.

use std::net::IpAddr;
use std::time::Instant;

use axum::extract::ws::Message;
use switchboard_protocol::{
    ErrorCode, IceServer, PeerId, ProtocolError, ServerMessage, Welcome, PROTOCOL_VERSION,
};

use crate::config::TurnConfig;
use crate::handshake::{Entry, Handshake};
use crate::hub::{CloseReason, JoinRequest, ResumeRequest, Seat};
use crate::relay::{lock, Outbox, Relay};
use crate::server::{unix_now, Shared};
use crate::wire::{encode_for, Wire};

/// A joined peer's place: its id, room and user name (empty without one).
pub(super) type Place = (PeerId, String, String);

/// Joins or resumes; queues the welcome, then what the room must hear. Returns the peer's place.
pub(super) fn enter(
    shared: &Shared,
    handshake: Handshake,
    conn: u64,
    ip: IpAddr,
    ice_servers: Vec<IceServer>,
    outbox: Outbox,
) -> Result<Place, ProtocolError> {
    let limits = &shared.config.limits;
    let mut relay = lock(&shared.relay);
    let now = Instant::now();
    let join = |relay: &mut Relay, destination, token| {
        let request = JoinRequest {
            id: PeerId::from_u128(rand::random()),
            conn,
            destination,
            name: handshake.name.clone(),
            ip,
            token,
            entropy: rand::random(),
            permits: handshake.permits.clone(),
        };
        relay.hub.join(request, now)
    };
    let resume = |relay: &mut Relay, token, next_token| {
        let request = ResumeRequest {
            token,
            conn,
            next_token,
            name: handshake.token_name.clone(),
            permits: handshake.permits.clone(),
        };
        relay.hub.resume(request)
    };
    let (seat, effects, resumed) = match handshake.entry {
        Entry::Join(destination) => {
            let token = handshake.resumable.then(rand::random);
            let (seat, effects) = join(&mut relay, destination, token)?;
            (seat, effects, false)
        }
        Entry::Resume(token) => {
            let (seat, effects) = resume(&mut relay, token, rand::random())?;
            (seat, effects, true)
        }
        // The token stays the same: the client's credentials are what it derives from.
        Entry::Claim { token, destination } => match resume(&mut relay, token, token) {
            Ok((seat, effects)) => (seat, effects, true),
            Err(error) if error.code == ErrorCode::ResumeFailed => {
                let (seat, effects) = join(&mut relay, destination, Some(token))?;
                (seat, effects, false)
            }
            Err(error) => return Err(error),
        },
    };
    let Seat {
        id,
        room,
        name,
        peers,
        info,
        token,
    } = seat;
    let (seat_room, seat_name) = (room.clone(), name.clone());
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
    if let Some(frame) = encode_for(&welcome, outbox.wire) {
        let _ = outbox.queue.try_send(frame?);
    }
    // On resume this replaces the old connection's outbox; the hub closes that connection.
    let outbox_wire = outbox.wire;
    let old = relay.outboxes.insert(id, outbox);
    shared.settle(&relay, effects);
    let room = seat_room;
    let name = seat_name.unwrap_or_default();
    if outbox_wire == Wire::Peerjs {
        // What was held for this id while it was away follows `OPEN`.
        for held in relay.mailboxes.take(&(room.clone(), name.clone())) {
            relay.send_frame(id, Message::Text(held.text.into()), &shared.metrics);
        }
    }
    if let Some(old) = old {
        old.closer.close_for(CloseReason::Error(ProtocolError::new(
            ErrorCode::Replaced,
            "this peer resumed on another connection",
        )));
    }
    tracing::debug!(peer = %id, %ip, resumed, "joined");
    shared.metrics.connections_accepted.inc();
    shared.metrics.joined(outbox_wire.protocol());
    shared
        .metrics
        .connections
        .set(relay.hub.peer_count() as i64);
    shared.metrics.rooms.set(relay.hub.room_count() as i64);
    Ok((id, room, name))
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
