//! Where a joining peer goes: finding or creating its room (named, code, session, match), with
//! the throttles on lookups and joins and the limits on public rooms.

use std::net::IpAddr;
use std::time::Instant;

use switchboard_protocol::{ErrorCode, HostLeaves, ProtocolError, RoomKind};

use super::room::{code_from, reroll, Room};
use super::{error, throttled, Destination, Hub, JoinRequest, RoomOptions};
use crate::hub::normalize_code;

impl Hub {
    /// Finds or creates the room for a join; returns its name. The room has a free seat.
    /// `place`, with the throttles: a lookup of a private room by name (a code, a session; or a
    /// code-shaped name) needs a lookup token from the address when it misses, and none left
    /// refuses every lookup (so a hit cannot be told from a miss by the refusal); a join into a
    /// room with members takes a token of that room.
    pub(super) fn place_looked_up(
        &mut self,
        request: &JoinRequest,
        now: Instant,
    ) -> Result<String, ProtocolError> {
        let code_shaped = match &request.destination {
            Destination::Named { room, create, .. } => {
                !create || normalize_code(room).as_deref() == Some(room.as_str())
            }
            _ => false,
        };
        if code_shaped && !self.throttles.lookups_by_ip.allows(&request.ip, now) {
            return Err(throttled(
                "lookups of rooms by code from your address are over code_lookups_per_minute",
            ));
        }
        let placed = self.place(request);
        let missed = matches!(&placed, Err(e) if e.code == ErrorCode::NoSuchRoom);
        let created = placed
            .as_ref()
            .is_ok_and(|name| self.rooms.get(name).is_some_and(|r| r.members.is_empty()));
        if code_shaped && (missed || created) {
            self.throttles.lookups_by_ip.try_take(&request.ip, now);
        }
        let name = placed?;
        // A directory announces no joins, so there is no flood of news to hold back; its joins
        // are held back per address only.
        let directory = self.rooms.get(&name).is_some_and(|r| r.options.directory);
        if !created && !directory && !self.throttles.joins_by_room.try_take(&name, now) {
            return Err(throttled(
                "joins into this room are over joins_per_room_per_second",
            ));
        }
        Ok(name)
    }

    /// Refuses a new public room from an address that has `max_public_rooms_per_ip`.
    pub(super) fn admit_public(
        &self,
        options: &RoomOptions,
        ip: IpAddr,
    ) -> Result<(), ProtocolError> {
        if options.public && !self.public.has_room_for(ip) {
            return Err(throttled(
                "your address has max_public_rooms_per_ip public rooms: make this one private",
            ));
        }
        Ok(())
    }

    /// Enters a new public room in the index (shown once someone is in it).
    pub(super) fn index_public(&mut self, room: &str, options: &RoomOptions, ip: IpAddr) {
        if options.public {
            self.public.add(room, ip);
        }
    }

    pub(super) fn place(&mut self, request: &JoinRequest) -> Result<String, ProtocolError> {
        let max = self.limits.max_peers_per_room;
        match &request.destination {
            Destination::Named {
                room,
                create,
                options,
            } => {
                if let Some(existing) = self.rooms.get(room) {
                    if existing.kind == RoomKind::Match {
                        return Err(error(
                            ErrorCode::NoSuchRoom,
                            "match rooms are joined by matching, not by name",
                        ));
                    }
                    request.permits.check_room(room)?;
                    if existing.is_full() {
                        return Err(full(room, existing));
                    }
                    return Ok(room.clone());
                }
                if !create {
                    return Err(error(ErrorCode::NoSuchRoom, format!("no room {room:?}")));
                }
                let capacity = if options.directory {
                    // A directory is a namespace, not a room someone hosts.
                    request.permits.check_room(room)?;
                    self.limits.max_peers_per_directory
                } else {
                    request.permits.check_create(room)?;
                    request
                        .permits
                        .cap(checked_capacity(options.capacity, max)?)
                };
                self.admit_public(options, request.ip)?;
                let mut options = options.clone();
                if options.host_only {
                    // Clients that know only the host cannot take over from it.
                    options.topology = switchboard_protocol::Topology::Star;
                    options.host_leaves = HostLeaves::Close;
                }
                self.rooms.insert(
                    room.clone(),
                    Room::new(RoomKind::Named, options.clone(), capacity),
                );
                self.index_public(room, &options, request.ip);
                Ok(room.clone())
            }
            Destination::NewCode { options } => {
                request.permits.check_may_create()?;
                let capacity = request
                    .permits
                    .cap(checked_capacity(options.capacity, max)?);
                self.admit_public(options, request.ip)?;
                let name = self.fresh_name(request.entropy, code_from);
                request.permits.check_room(&name)?;
                self.rooms.insert(
                    name.clone(),
                    Room::new(RoomKind::Code, options.clone(), capacity),
                );
                self.index_public(&name, options, request.ip);
                Ok(name)
            }
            Destination::NewSession => {
                let options = RoomOptions {
                    topology: switchboard_protocol::Topology::Star,
                    host_leaves: HostLeaves::Close,
                    ..RoomOptions::default()
                };
                request.permits.check_may_create()?;
                let name = self.fresh_name(request.entropy, |bits| format!("{bits:032x}"));
                request.permits.check_room(&name)?;
                self.rooms
                    .insert(name.clone(), Room::new(RoomKind::Session, options, 2));
                Ok(name)
            }
            Destination::Match { players, key } => {
                if !(2..=max).contains(players) {
                    return Err(error(
                        ErrorCode::InvalidOptions,
                        format!("players must be 2 to {max}"),
                    ));
                }
                let slot = (key.clone(), *players);
                if let Some(name) = self.open_matches.get(&slot) {
                    request.permits.check_room(name)?;
                    return Ok(name.clone());
                }
                let name = self.fresh_name(request.entropy, |bits| {
                    format!("match-{:016x}", bits as u64)
                });
                request.permits.check_room(&name)?;
                let mut room = Room::new(RoomKind::Match, RoomOptions::default(), *players);
                room.open_match = Some(slot.clone());
                self.rooms.insert(name.clone(), room);
                self.open_matches.insert(slot, name.clone());
                Ok(name)
            }
        }
    }

    pub(super) fn fresh_name(&self, mut bits: u128, make: impl Fn(u128) -> String) -> String {
        loop {
            let name = make(bits);
            if !self.rooms.contains_key(&name) {
                return name;
            }
            bits = reroll(bits);
        }
    }
}

fn full(name: &str, room: &Room) -> ProtocolError {
    let what = if room.kind == RoomKind::Session {
        format!("session {name} already has its two peers")
    } else {
        format!("room {name:?} is full ({} peers)", room.capacity)
    };
    error(ErrorCode::RoomFull, what)
}

fn checked_capacity(asked: Option<usize>, max: usize) -> Result<usize, ProtocolError> {
    match asked {
        None => Ok(max),
        Some(n) if (2..=max).contains(&n) => Ok(n),
        Some(_) => Err(error(
            ErrorCode::InvalidOptions,
            format!("capacity must be 2 to {max}"),
        )),
    }
}
