//! What a node does with the records other nodes send it: as a room's owner (joins, frames,
//! leaves) and as the node of a peer's connection (answers, deliveries, closes). Every record
//! is checked against what this node knows: a record about a peer from a node that does not
//! hold it (forged, or stale after a resume) is dropped and counted, never acted on.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message, Utf8Bytes};
use switchboard_protocol::{Frame, PeerId};

use super::entry::unwanted;
use super::envelope::{
    AdminAction, AdminAnswer, Batch, Entering, Member, NodeId, Record, WireFrame,
};
use super::owned::{placement, Placement};
use super::{Answer, Cluster};
use crate::connection::entry::{seat_connection, take_seat, Newcomer};
use crate::connection::Speaker;
use crate::hub::CloseReason;
use crate::relay::{lock, push, Outbox, Relay, Sink};
use crate::server::Shared;
use crate::wire::{decode, Wire};

/// Acts on one pub/sub message of this node's channel.
pub(super) fn handle(cluster: &Arc<Cluster>, shared: &Shared, bytes: &[u8]) {
    let batch = match Batch::decode(bytes) {
        Ok(batch) => batch,
        Err(error) => {
            tracing::warn!(%error, "cluster: dropped a bad batch");
            cluster.metrics.dropped("bad_batch", 1);
            return;
        }
    };
    let from = batch.from;
    cluster.metrics.received.inc_by(batch.records.len() as u64);
    let now = Instant::now();
    let mut relay = lock(&shared.relay);
    for record in batch.records {
        match record {
            Record::Join { ask, member, entry } => {
                seat_member(cluster, shared, &mut relay, from, ask, member, entry, now)
            }
            Record::Joined { ask, conn, result } => {
                let answer = result.map_err(Into::into);
                answered(cluster, shared, &mut relay, from, (ask, conn), Some(answer));
            }
            Record::NotOwner { ask } => answered(cluster, shared, &mut relay, from, (ask, 0), None),
            Record::Frames { peer, conn, frames } => {
                act_on_frames(cluster, shared, &mut relay, from, (peer, conn), frames, now)
            }
            Record::Leave {
                peer,
                conn,
                reason,
                may_suspend,
            } => {
                if remote_speaker(&relay, from, peer, conn).is_none() {
                    cluster.metrics.dropped("stale", 1);
                    continue;
                }
                relay.remove_outbox(peer, conn);
                let effects = relay.hub.disconnect(peer, conn, reason, may_suspend, now);
                shared.settle(&relay, effects);
                shared.update_gauges(&relay);
            }
            Record::Deliver { to, frame } => {
                let Some(frame) = message(frame) else {
                    cluster.metrics.dropped("forged", 1);
                    continue;
                };
                for id in to {
                    match local_of(&relay, from, id) {
                        Some((queue, closer)) => {
                            push(queue, closer, frame.clone(), &shared.metrics);
                            shared.metrics.messages_relayed.inc();
                        }
                        None => cluster.metrics.dropped("stale", 1),
                    }
                }
            }
            Record::Handover { room } => {
                tracing::info!(room = %room.room.name, "cluster: a room was handed over");
                cluster.rebuild(shared, &mut relay, room, from, |node| node != from);
            }
            Record::Admin { ask, action } => {
                let answer = match &action {
                    AdminAction::List => {
                        drop(relay);
                        let rooms = crate::admin_api::local_rooms(shared);
                        relay = lock(&shared.relay);
                        AdminAnswer::Rooms(rooms.iter().map(|room| room.to_string()).collect())
                    }
                    _ => AdminAnswer::Done(crate::admin_api::act(shared, &mut relay, &action)),
                };
                cluster
                    .out
                    .push(from, Record::AdminAnswered { ask, answer });
            }
            Record::AdminAnswered { ask, answer } => cluster.admin_answered(ask, answer),
            Record::Moved { room, peers } => super::takeover::moved(&mut relay, from, &room, peers),
            Record::Close { peer, conn, reason } => {
                let outbox = relay.outboxes.get(&peer).filter(|o| o.conn == conn);
                match outbox.map(|o| &o.sink) {
                    Some(Sink::Local {
                        closer,
                        owner: Some(owner),
                        ..
                    }) if owner.node == from => closer.close_for(reason.into_reason()),
                    _ => cluster.metrics.dropped("stale", 1),
                }
            }
        }
    }
}

/// A frame from a record as a WebSocket message; `None` for a text frame that is not UTF-8.
fn message(frame: WireFrame) -> Option<Message> {
    if frame.text {
        Utf8Bytes::try_from(frame.bytes).ok().map(Message::Text)
    } else {
        Some(Message::Binary(frame.bytes))
    }
}

/// The queue and closer of `id`'s connection here, if its room's owner is `from`.
fn local_of(
    relay: &Relay,
    from: NodeId,
    id: PeerId,
) -> Option<(&crate::send_queue::QueueSender, &crate::relay::Closer)> {
    match &relay.outboxes.get(&id)?.sink {
        Sink::Local {
            queue,
            closer,
            owner: Some(owner),
        } if owner.node == from => Some((queue, closer)),
        _ => None,
    }
}

/// The speaker of a member of a room owned here whose connection `conn` is on `from`.
fn remote_speaker(relay: &Relay, from: NodeId, peer: PeerId, conn: u64) -> Option<Arc<Speaker>> {
    let outbox = relay.outboxes.get(&peer).filter(|o| o.conn == conn)?;
    match &outbox.sink {
        Sink::Remote { node, speaker } if *node == from => Some(speaker.clone()),
        _ => None,
    }
}

/// As the owner: seats a peer connected to `from`, or says why not.
#[allow(clippy::too_many_arguments)]
fn seat_member(
    cluster: &Arc<Cluster>,
    shared: &Shared,
    relay: &mut Relay,
    from: NodeId,
    ask: u64,
    member: Member,
    entry: Entering,
    now: Instant,
) {
    let decided_here = match &entry {
        Entering::Join { destination, .. } | Entering::Claim { destination, .. } => {
            match placement(destination) {
                Placement::Key(key) => relay
                    .cluster
                    .as_ref()
                    .is_some_and(|c| c.owned.contains(&key)),
                Placement::Here => false,
            }
        }
        // The hub answers: it holds the token's peer, or the resume fails.
        Entering::Resume { .. } => true,
    };
    let Some(wire) = Wire::from_slot(member.wire).filter(|_| decided_here) else {
        cluster.out.push(from, Record::NotOwner { ask });
        return;
    };
    let newcomer = Newcomer {
        id: member.id,
        conn: member.conn,
        name: member.name,
        ip: member.ip,
    };
    let (seat, effects, resumed) = match take_seat(&mut relay.hub, &newcomer, entry, now) {
        Ok(seated) => seated,
        Err(error) => {
            let (conn, result) = (member.conn, Err(error.into()));
            cluster.out.push(from, Record::Joined { ask, conn, result });
            return;
        }
    };
    let speaker = Speaker {
        id: seat.id,
        conn: member.conn,
        wire,
        room: seat.room.clone(),
        name: seat.name.clone().unwrap_or_default(),
        origin: member.origin,
        ip: member.ip,
    };
    let (id, room, name) = (seat.id, speaker.room.clone(), speaker.name.clone());
    let outbox = Outbox {
        conn: member.conn,
        wire,
        sink: Sink::Remote {
            node: from,
            speaker: Arc::new(speaker),
        },
    };
    // The answer goes before what the room hears, so the asker has the outbox for it.
    let (conn, result) = (member.conn, Ok((seat, resumed)));
    cluster.out.push(from, Record::Joined { ask, conn, result });
    if let Some(old) = relay.outboxes.insert(id, outbox) {
        let replaced = CloseReason::Error(switchboard_protocol::ProtocolError::new(
            switchboard_protocol::ErrorCode::Replaced,
            "this peer resumed on another connection",
        ));
        old.close_for(id, replaced, relay.outgoing());
    }
    shared.settle(relay, effects);
    cluster.hold_room(relay, &room);
    if wire == Wire::Peerjs {
        for held in relay.mailboxes.take(&(room, name)) {
            relay.send_frame(id, Message::Text(held.text.into()), &shared.metrics);
        }
    }
    shared.metrics.joined(wire.protocol());
    shared.update_gauges(relay);
}

/// As the node of the asking connection: the owner answered a forwarded join (`None`: it does
/// not own the room).
fn answered(
    cluster: &Cluster,
    shared: &Shared,
    relay: &mut Relay,
    from: NodeId,
    (ask, conn): (u64, u64),
    answer: Option<Result<(crate::hub::Seat, bool), switchboard_protocol::ProtocolError>>,
) {
    let pending = {
        let mut asks = cluster.asks_lock();
        match asks.get(&ask) {
            Some(pending) if pending.owner == from => asks.remove(&ask),
            _ => None,
        }
    };
    let Some(pending) = pending else {
        // Given up on (timed out) or never asked: a seat given for it is handed back.
        if let Some(Ok((seat, _))) = answer {
            unwanted(cluster, from, seat.id, conn);
        }
        return;
    };
    let reply = match answer {
        None => Answer::NotOwner(pending.outbox, pending.ice_servers),
        Some(Err(error)) => Answer::Refused(error),
        Some(Ok((seat, resumed))) => {
            let id = seat.id;
            let mut outbox = pending.outbox;
            if let Sink::Local {
                owner: Some(owner), ..
            } = &mut outbox.sink
            {
                owner.room.clone_from(&seat.room);
            }
            let place = seat_connection(shared, relay, seat, resumed, pending.ice_servers, outbox);
            if pending.reply.send(Answer::Seated(place)).is_err() {
                relay.remove_outbox(id, conn);
                unwanted(cluster, from, id, conn);
            }
            return;
        }
    };
    let _ = pending.reply.send(reply);
}

/// As the owner: a member's frames, decoded and acted on as its own node would.
fn act_on_frames(
    cluster: &Cluster,
    shared: &Shared,
    relay: &mut Relay,
    from: NodeId,
    (peer, conn): (PeerId, u64),
    frames: Vec<WireFrame>,
    now: Instant,
) {
    let Some(speaker) = remote_speaker(relay, from, peer, conn) else {
        cluster.metrics.dropped("stale", frames.len() as u64);
        return;
    };
    for frame in frames {
        let frame_ref = if frame.text {
            Frame::Text(&frame.bytes)
        } else {
            Frame::Binary(&frame.bytes)
        };
        match decode(frame_ref, speaker.wire, &speaker.name) {
            Ok(inbound) => speaker.dispatch(shared, relay, inbound, now),
            Err(error) if speaker.wire.closes_on_bad_input() => {
                shared.metrics.error(error.code);
                if let Some(outbox) = relay.outboxes.get(&peer) {
                    outbox.close_for(peer, CloseReason::Error(error), relay.outgoing());
                }
                return;
            }
            Err(error) => relay.send_error(peer, error, &shared.metrics),
        }
    }
}
