//! Entering in cluster mode: find the node that owns the room (claiming it when it is free),
//! then take the seat here or forward the join there and wait for the answer.

use std::net::IpAddr;
use std::sync::Arc;

use switchboard_protocol::{IceServer, PeerId, ProtocolError};

use super::envelope::{Member, NodeId, Record};
use super::owned::{placement, Key, Placement};
use super::{unavailable, Answer, Cluster};
use crate::connection::entry::{enter_here, entering, Newcomer, Place};
use crate::handshake::{Entry, Handshake};
use crate::relay::{lock, Outbox, RemoteRoom, Sink};
use crate::server::Shared;

/// How often a join follows a room that moved (its owner gave it up as the join arrived).
const MOST_MOVES: usize = 3;

/// Seats a connection of this node: here, or with the room's owner. Returns its place and the
/// owner when that is another node.
pub async fn enter(
    cluster: &Arc<Cluster>,
    shared: &Arc<Shared>,
    handshake: Handshake,
    (conn, ip): (u64, IpAddr),
    ice_servers: Vec<IceServer>,
    outbox: Outbox,
) -> Result<(Place, Option<NodeId>), ProtocolError> {
    if cluster.is_draining() {
        return Err(super::drain::draining());
    }
    let used_token = match &handshake.entry {
        Entry::Resume(token) | Entry::Claim { token, .. } => Some(*token),
        Entry::Join(_) => None,
    };
    let where_decided = match &handshake.entry {
        Entry::Join(destination) | Entry::Claim { destination, .. } => placement(destination),
        // A resume goes to the node holding the token's room, when the store remembers it.
        Entry::Resume(token) => match cluster.token_room(*token).await {
            Some(room) => Placement::Key(Key::Room(room)),
            None => Placement::Here,
        },
    };
    let creates_here = matches!(handshake.entry, Entry::Join(_));
    let newcomer = Newcomer {
        id: PeerId::from_u128(rand::random()),
        conn,
        name: handshake.name.clone(),
        ip,
    };
    let entry = entering(&handshake);
    let key = match where_decided {
        Placement::Key(key) => key,
        Placement::Here => {
            let place = enter_here(shared, &newcomer, entry, ice_servers, outbox)?;
            if creates_here {
                claim_new_room(cluster, shared, &place, conn).await?;
            }
            cluster.remember_token(&place, used_token).await;
            return Ok((place, None));
        }
    };
    let member = Member {
        id: newcomer.id,
        conn,
        wire: outbox.wire.slot() as u8,
        name: handshake.name.clone(),
        origin: handshake.origin.clone(),
        ip,
    };
    let (mut outbox, mut ice_servers) = (outbox, ice_servers);
    for _ in 0..MOST_MOVES {
        let owner = cluster.claim(&key, shared).await?;
        let (place, owner) = if owner == cluster.node {
            let place = enter_here(shared, &newcomer, entry, ice_servers, outbox)?;
            // A match room made by this join is held here under its own name too.
            cluster.hold_room(&mut lock(&shared.relay), &place.room);
            (place, None)
        } else {
            if let Sink::Local { owner: to, .. } = &mut outbox.sink {
                let room = match &key {
                    Key::Room(name) => name.clone(),
                    // A match room's name is the owner's answer; set when it comes.
                    Key::Match(..) => String::new(),
                };
                *to = Some(Box::new(RemoteRoom { node: owner, room }));
            }
            match cluster
                .ask(owner, member.clone(), entry.clone(), outbox, ice_servers)
                .await
            {
                Answer::Seated(place) => (place, Some(owner)),
                Answer::NotOwner(mut back, ice) => {
                    if let Sink::Local { owner: to, .. } = &mut back.sink {
                        *to = None;
                    }
                    (outbox, ice_servers) = (back, ice);
                    continue;
                }
                Answer::Refused(error) => return Err(error),
            }
        };
        cluster.remember_token(&place, used_token).await;
        return Ok((place, owner));
    }
    Err(unavailable(
        "your room kept moving between nodes: connect again",
    ))
}

/// A code room or session made here gets its name claimed in the store. Another node holding
/// a room of that name (two nodes drew the same code) refuses this join with `unavailable`.
async fn claim_new_room(
    cluster: &Cluster,
    shared: &Shared,
    place: &Place,
    conn: u64,
) -> Result<(), ProtocolError> {
    let owner = cluster.claim(&Key::Room(place.room.clone()), shared).await;
    if owner.as_ref().is_ok_and(|owner| *owner == cluster.node) {
        return Ok(());
    }
    let mut relay = lock(&shared.relay);
    relay.remove_outbox(place.id, conn);
    let now = std::time::Instant::now();
    let reason = switchboard_protocol::LeaveReason::Closed;
    let effects = relay.hub.disconnect(place.id, conn, reason, false, now);
    shared.settle(&relay, effects);
    shared.update_gauges(&relay);
    drop(relay);
    owner?;
    Err(unavailable(
        "another node holds a room of that code: connect again",
    ))
}

/// Tells `owner` that a seat it gave is not wanted (the asker gave up waiting).
pub(super) fn unwanted(cluster: &Cluster, owner: NodeId, peer: PeerId, conn: u64) {
    let reason = switchboard_protocol::LeaveReason::Closed;
    cluster
        .out
        .push(owner, Record::leave(peer, conn, reason, false));
}
