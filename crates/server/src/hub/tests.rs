use super::*;
use std::net::Ipv4Addr;
use switchboard_protocol::Topology;
use switchboard_protocol::{HostLeaves, RoomKind};

fn limits() -> HubLimits {
    HubLimits {
        max_peers_per_room: 3,
        max_peers_per_directory: 1_000,
        max_connections: 5,
        max_connections_per_ip: 4,
        messages_per_second: 10,
        message_burst: 2,
        resume_grace: Duration::from_secs(10),
        detached_ttl: Duration::from_secs(60),
        max_room_meta_bytes: 64,
        joins_per_ip: (1000.0, 1000),
        joins_per_room: (1000.0, 1000),
        code_lookups_per_ip: (1000.0, 1000),
        max_public_rooms_per_ip: 1000,
        directory_broadcasts: (1000.0, 1000),
    }
}

fn roomy() -> HubLimits {
    HubLimits {
        max_connections: 100,
        max_connections_per_ip: 100,
        message_burst: 100,
        ..limits()
    }
}

fn id(n: u128) -> PeerId {
    PeerId::from_u128(n)
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn named(room: &str) -> Destination {
    Destination::Named {
        room: room.into(),
        create: true,
        options: RoomOptions::default(),
    }
}

fn request(n: u128, destination: Destination) -> JoinRequest {
    JoinRequest {
        id: id(n),
        conn: n as u64,
        destination,
        name: None,
        ip: ip(n as u8),
        token: None,
        entropy: n * 7919,
        permits: Permits::default(),
    }
}

fn enter(hub: &mut Hub, request: JoinRequest, now: Instant) -> Result<(Seat, Effects), ErrorCode> {
    hub.join(request, now).map_err(|e| e.code)
}

fn join(
    hub: &mut Hub,
    n: u128,
    room: &str,
    name: Option<&str>,
    now: Instant,
) -> Result<Seat, ErrorCode> {
    let request = JoinRequest {
        name: name.map(Into::into),
        ..request(n, named(room))
    };
    enter(hub, request, now).map(|(seat, _)| seat)
}

fn handle(hub: &mut Hub, n: u128, message: ClientMessage, now: Instant) -> Effects {
    hub.handle(id(n), n as u64, message, now)
}

fn data() -> Payload {
    Payload::from_json(r#"{"hello":1}"#).unwrap()
}

fn send(to: Target) -> ClientMessage {
    ClientMessage::Message { to, data: data() }
}

/// The single delivery of an effect list.
fn only(effects: Effects) -> Delivery {
    assert_eq!(effects.deliveries.len(), 1, "{effects:?}");
    effects.deliveries.into_iter().next().unwrap()
}

fn error_code(effects: Effects) -> Option<ErrorCode> {
    effects
        .deliveries
        .into_iter()
        .find_map(|d| match d.message {
            ServerMessage::Error { code, .. } => Some(code),
            _ => None,
        })
}

fn left(id: PeerId, reason: LeaveReason) -> ServerMessage {
    ServerMessage::PeerLeft { id, reason }
}

#[test]
fn join_lists_present_peers_and_announces_the_newcomer() {
    let now = Instant::now();
    let mut hub = Hub::new(limits());
    let (first, effects) = enter(
        &mut hub,
        JoinRequest {
            name: Some("ann".into()),
            ..request(1, named("r"))
        },
        now,
    )
    .unwrap();
    assert!(first.peers.is_empty() && effects.deliveries.is_empty());
    assert_eq!(first.info.host, Some(id(1)), "the creator hosts");
    let (second, effects) = enter(&mut hub, request(2, named("r")), now).unwrap();
    assert_eq!(
        second.peers,
        vec![PeerInfo {
            id: id(1),
            name: Some("ann".into()),
            resumable: false
        }]
    );
    let announce = only(effects);
    assert_eq!(announce.to, vec![id(1)]);
    assert_eq!(
        announce.message,
        ServerMessage::PeerJoined(PeerInfo {
            id: id(2),
            name: None,
            resumable: false
        })
    );
    assert_eq!((hub.peer_count(), hub.room_count()), (2, 1));
}

#[test]
fn relays_to_room_self_peer_and_name_with_the_real_sender() {
    let now = Instant::now();
    let mut hub = Hub::new(limits());
    for n in 1..=3 {
        join(&mut hub, n, "r", Some(&format!("p{n}")), now).unwrap();
    }
    let to_room = only(handle(&mut hub, 1, send(Target::Room), now));
    assert_eq!(to_room.to, vec![id(2), id(3)]);
    assert_eq!(
        to_room.message,
        ServerMessage::Message {
            from: id(1),
            data: data()
        }
    );
    assert_eq!(
        only(handle(&mut hub, 1, send(Target::Myself), now)).to,
        vec![id(1)]
    );
    assert_eq!(
        only(handle(&mut hub, 2, send(Target::Peer(id(3))), now)).to,
        vec![id(3)]
    );
    let by_name = only(handle(
        &mut hub,
        2,
        ClientMessage::Signal {
            to: Target::Name("p1".into()),
            data: data(),
        },
        now,
    ));
    assert_eq!(by_name.to, vec![id(1)]);
    assert_eq!(
        by_name.message,
        ServerMessage::Signal {
            from: id(2),
            data: data()
        }
    );
}

#[test]
fn peers_in_other_rooms_are_unreachable() {
    let now = Instant::now();
    let mut hub = Hub::new(HubLimits {
        message_burst: 100,
        ..limits()
    });
    join(&mut hub, 1, "a", Some("ann"), now).unwrap();
    join(&mut hub, 2, "b", Some("bob"), now).unwrap();
    assert_eq!(
        error_code(handle(&mut hub, 1, send(Target::Peer(id(2))), now)),
        Some(ErrorCode::UnknownPeer)
    );
    assert_eq!(
        error_code(handle(&mut hub, 1, send(Target::Peer(id(99))), now)),
        Some(ErrorCode::UnknownPeer)
    );
    assert_eq!(
        error_code(handle(&mut hub, 1, send(Target::Name("bob".into())), now)),
        Some(ErrorCode::UnknownName)
    );
    assert!(handle(&mut hub, 1, send(Target::Room), now)
        .deliveries
        .is_empty());
}

#[test]
fn names_are_unique_per_room_and_freed_on_leave() {
    let now = Instant::now();
    let mut hub = Hub::new(limits());
    join(&mut hub, 1, "a", Some("ann"), now).unwrap();
    assert_eq!(
        join(&mut hub, 2, "a", Some("ann"), now).unwrap_err(),
        ErrorCode::NameTaken
    );
    join(&mut hub, 3, "b", Some("ann"), now).unwrap();
    hub.disconnect(id(1), 1, LeaveReason::Closed, false, now);
    join(&mut hub, 2, "a", Some("ann"), now).unwrap();
}

#[test]
fn enforces_room_total_and_per_ip_limits() {
    let now = Instant::now();
    let mut hub = Hub::new(limits());
    for n in 1..=3 {
        join(&mut hub, n, "r", None, now).unwrap();
    }
    assert_eq!(
        join(&mut hub, 4, "r", None, now).unwrap_err(),
        ErrorCode::RoomFull
    );
    join(&mut hub, 4, "s", None, now).unwrap();
    join(&mut hub, 5, "s", None, now).unwrap();
    assert_eq!(
        join(&mut hub, 6, "t", None, now).unwrap_err(),
        ErrorCode::TooManyConnections
    );

    let mut hub = Hub::new(limits());
    let same_ip = |n: u128| JoinRequest {
        ip: ip(9),
        ..request(n, named(&format!("r{n}")))
    };
    for n in 1..=4 {
        hub.join(same_ip(n), now).unwrap();
    }
    assert_eq!(
        hub.join(same_ip(5), now).unwrap_err().code,
        ErrorCode::TooManyConnections
    );
    hub.disconnect(id(1), 1, LeaveReason::Closed, false, now);
    hub.join(same_ip(5), now).unwrap();
}

#[test]
fn rate_limit_answers_the_first_drop_then_stays_quiet() {
    let t0 = Instant::now();
    let mut hub = Hub::new(limits());
    join(&mut hub, 1, "r", None, t0).unwrap();
    join(&mut hub, 2, "r", None, t0).unwrap();
    assert_eq!(
        only(handle(&mut hub, 1, send(Target::Room), t0)).to,
        vec![id(2)]
    );
    assert_eq!(
        only(handle(&mut hub, 1, send(Target::Room), t0)).to,
        vec![id(2)]
    );
    assert_eq!(
        error_code(handle(&mut hub, 1, send(Target::Room), t0)),
        Some(ErrorCode::RateLimited)
    );
    assert_eq!(
        handle(&mut hub, 1, send(Target::Room), t0),
        Effects::default()
    );
    // The other peer is not affected.
    assert_eq!(
        only(handle(&mut hub, 2, send(Target::Room), t0)).to,
        vec![id(1)]
    );
    let later = t0 + Duration::from_millis(150);
    assert_eq!(
        only(handle(&mut hub, 1, send(Target::Room), later)).to,
        vec![id(2)]
    );
}

#[test]
fn pings_count_against_the_message_rate_like_any_message() {
    let t0 = Instant::now();
    let mut hub = Hub::new(limits());
    join(&mut hub, 1, "r", None, t0).unwrap();
    join(&mut hub, 2, "r", None, t0).unwrap();
    let ping = || ClientMessage::Ping { nonce: Some(7) };
    // The burst (2) spent on pings, each answered...
    for _ in 0..2 {
        assert_eq!(
            only(handle(&mut hub, 1, ping(), t0)),
            Delivery {
                to: vec![id(1)],
                message: ServerMessage::Pong { nonce: Some(7) },
            }
        );
    }
    // ...leaves nothing for a message: it is dropped with `rate_limited`.
    assert_eq!(
        error_code(handle(&mut hub, 1, send(Target::Room), t0)),
        Some(ErrorCode::RateLimited)
    );
}

#[test]
fn leaving_announces_and_removes_empty_rooms() {
    let now = Instant::now();
    let mut hub = Hub::new(limits());
    join(&mut hub, 1, "r", None, now).unwrap();
    join(&mut hub, 2, "r", None, now).unwrap();
    let effects = hub.disconnect(id(1), 1, LeaveReason::Timeout, true, now);
    assert_eq!(
        effects.deliveries[0],
        Delivery {
            to: vec![id(2)],
            message: left(id(1), LeaveReason::Timeout)
        }
    );
    assert_eq!(
        hub.disconnect(id(1), 1, LeaveReason::Closed, false, now),
        Effects::default()
    );
    // The last one leaves: nobody to tell; the room is gone (a changed room for snapshots).
    assert_eq!(
        hub.disconnect(id(2), 2, LeaveReason::Closed, false, now),
        Effects {
            changed: vec!["r".into()],
            ..Effects::default()
        }
    );
    assert_eq!((hub.peer_count(), hub.room_count()), (0, 0));
    assert_eq!(
        handle(&mut hub, 2, send(Target::Room), now),
        Effects::default()
    );
}

#[test]
fn ping_is_answered_with_its_nonce() {
    let now = Instant::now();
    let mut hub = Hub::new(limits());
    join(&mut hub, 1, "r", None, now).unwrap();
    let pong = only(handle(
        &mut hub,
        1,
        ClientMessage::Ping { nonce: Some(7) },
        now,
    ));
    assert_eq!(
        pong,
        Delivery {
            to: vec![id(1)],
            message: ServerMessage::Pong { nonce: Some(7) }
        }
    );
}

#[test]
fn host_migrates_to_the_oldest_peer_when_it_leaves() {
    let now = Instant::now();
    let mut hub = Hub::new(limits());
    for n in 1..=3 {
        join(&mut hub, n, "r", None, now).unwrap();
    }
    let effects = hub.disconnect(id(1), 1, LeaveReason::Closed, false, now);
    assert_eq!(
        effects.deliveries[0].message,
        left(id(1), LeaveReason::Closed)
    );
    assert_eq!(
        effects.deliveries[1],
        Delivery {
            to: vec![id(2), id(3)],
            message: ServerMessage::HostChanged { host: id(2) }
        }
    );
    assert_eq!(
        join(&mut hub, 4, "r", None, now).unwrap().info.host,
        Some(id(2))
    );
    // A non-host leaving changes nothing about the host.
    assert_eq!(
        hub.disconnect(id(3), 3, LeaveReason::Closed, false, now)
            .deliveries
            .len(),
        1
    );
}

#[test]
fn a_room_that_closes_with_its_host_closes_everyone() {
    let now = Instant::now();
    let mut hub = Hub::new(limits());
    let options = RoomOptions {
        topology: Topology::Star,
        host_leaves: HostLeaves::Close,
        ..RoomOptions::default()
    };
    let dest = Destination::Named {
        room: "r".into(),
        create: true,
        options,
    };
    let (seat, _) = enter(&mut hub, request(1, dest.clone()), now).unwrap();
    assert_eq!(
        (seat.info.topology, seat.info.host_leaves),
        (Topology::Star, HostLeaves::Close)
    );
    enter(&mut hub, request(2, dest.clone()), now).unwrap();
    enter(&mut hub, request(3, dest), now).unwrap();
    let effects = hub.disconnect(id(1), 1, LeaveReason::Closed, false, now);
    let closed: Vec<(PeerId, u64)> = effects.closes.iter().map(|c| (c.peer, c.conn)).collect();
    assert_eq!(closed, vec![(id(2), 2), (id(3), 3)]);
    assert!(effects
        .closes
        .iter()
        .all(|c| matches!(&c.reason, CloseReason::Error(e) if e.code == ErrorCode::RoomClosed)));
    assert_eq!((hub.peer_count(), hub.room_count()), (0, 0));
    // Their connections ending afterwards changes nothing.
    assert_eq!(
        hub.disconnect(id(2), 2, LeaveReason::Closed, true, now),
        Effects::default()
    );
}

#[test]
fn sessions_take_exactly_two_peers() {
    let now = Instant::now();
    let mut hub = Hub::new(roomy());
    let (host, _) = enter(&mut hub, request(1, Destination::NewSession), now).unwrap();
    assert_eq!(host.room.len(), 32);
    assert!(host.room.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        (host.info.kind, host.info.capacity, host.info.topology),
        (RoomKind::Session, 2, Topology::Star)
    );
    let join_session = |n| {
        request(
            n,
            Destination::Named {
                room: host.room.clone(),
                create: false,
                options: RoomOptions::default(),
            },
        )
    };
    let (guest, _) = enter(&mut hub, join_session(2), now).unwrap();
    assert_eq!(guest.peers.len(), 1);
    let third = hub.join(join_session(3), now).unwrap_err();
    assert_eq!(third.code, ErrorCode::RoomFull);
    assert!(third.message.contains("session"), "{}", third.message);
    let missing = Destination::Named {
        room: format!("{:032x}", 5),
        create: false,
        options: RoomOptions::default(),
    };
    assert_eq!(
        enter(&mut hub, request(4, missing), now).unwrap_err(),
        ErrorCode::NoSuchRoom
    );
    // Two sessions from the same entropy still get different ids.
    let (other, _) = enter(&mut hub, request(1 + 100, Destination::NewSession), now).unwrap();
    let (again, _) = enter(
        &mut hub,
        JoinRequest {
            entropy: 101 * 7919,
            permits: Permits::default(),
            ..request(102, Destination::NewSession)
        },
        now,
    )
    .unwrap();
    assert_ne!(other.room, again.room);
}

#[test]
fn auto_match_fills_rooms_in_order_and_starts_them() {
    let now = Instant::now();
    let mut hub = Hub::new(roomy());
    let matching = |n, players, key: &str| {
        request(
            n,
            Destination::Match {
                players,
                key: key.into(),
            },
        )
    };
    let (a, _) = enter(&mut hub, matching(1, 3, "ffa"), now).unwrap();
    let (b, _) = enter(&mut hub, matching(2, 3, "ffa"), now).unwrap();
    let (other_key, _) = enter(&mut hub, matching(3, 3, "duel"), now).unwrap();
    let (other_size, _) = enter(&mut hub, matching(4, 2, "ffa"), now).unwrap();
    assert_eq!(a.room, b.room);
    assert!(a.room.starts_with("match-"));
    assert_ne!(a.room, other_key.room);
    assert_ne!(a.room, other_size.room);
    assert!(!b.info.started);
    let (c, effects) = enter(&mut hub, matching(5, 3, "ffa"), now).unwrap();
    assert_eq!(c.room, a.room);
    assert!(c.info.started);
    assert_eq!(
        effects.deliveries.last().unwrap(),
        &Delivery {
            to: vec![id(1), id(2), id(5)],
            message: ServerMessage::RoomStarted
        }
    );
    // The started room takes nobody else, and a leave does not reopen it.
    hub.disconnect(id(2), 2, LeaveReason::Closed, false, now);
    let (d, _) = enter(&mut hub, matching(6, 3, "ffa"), now).unwrap();
    assert_ne!(d.room, a.room);
    // Joining a match room by its name is refused.
    assert_eq!(
        enter(&mut hub, request(7, named(&d.room)), now).unwrap_err(),
        ErrorCode::NoSuchRoom
    );
    assert_eq!(
        enter(&mut hub, matching(8, 1, ""), now).unwrap_err(),
        ErrorCode::InvalidOptions
    );
}

#[test]
fn empty_matches_and_their_keys_are_removed() {
    let now = Instant::now();
    let mut hub = Hub::new(roomy());
    enter(
        &mut hub,
        request(
            1,
            Destination::Match {
                players: 3,
                key: "k".into(),
            },
        ),
        now,
    )
    .unwrap();
    enter(
        &mut hub,
        request(
            2,
            Destination::Match {
                players: 3,
                key: "k".into(),
            },
        ),
        now,
    )
    .unwrap();
    assert_eq!((hub.room_count(), hub.open_match_count()), (1, 1));
    hub.disconnect(id(1), 1, LeaveReason::Closed, false, now);
    assert_eq!(
        (hub.room_count(), hub.open_match_count()),
        (1, 1),
        "one player still waits"
    );
    hub.disconnect(id(2), 2, LeaveReason::Closed, false, now);
    assert_eq!((hub.room_count(), hub.open_match_count()), (0, 0));
}

#[test]
fn two_joiners_for_the_last_seat_one_wins() {
    let now = Instant::now();
    let mut hub = Hub::new(roomy());
    let options = RoomOptions {
        capacity: Some(2),
        ..RoomOptions::default()
    };
    let dest = Destination::Named {
        room: "duel".into(),
        create: true,
        options,
    };
    enter(&mut hub, request(1, dest.clone()), now).unwrap();
    // The shell serializes hub calls under one lock: whichever comes first gets the seat.
    assert!(enter(&mut hub, request(2, dest.clone()), now).is_ok());
    assert_eq!(
        enter(&mut hub, request(3, dest), now).unwrap_err(),
        ErrorCode::RoomFull
    );
    // For matches, the loser of the last seat starts the next match instead.
    let m = |n| {
        request(
            n,
            Destination::Match {
                players: 2,
                key: String::new(),
            },
        )
    };
    let (first, _) = enter(&mut hub, m(4), now).unwrap();
    let (second, _) = enter(&mut hub, m(5), now).unwrap();
    let (third, _) = enter(&mut hub, m(6), now).unwrap();
    assert_eq!(first.room, second.room);
    assert_ne!(third.room, first.room);
}

#[test]
fn codes_are_short_unambiguous_and_joinable_typed_loosely() {
    let now = Instant::now();
    let mut hub = Hub::new(roomy());
    let (seat, _) = enter(
        &mut hub,
        request(
            1,
            Destination::NewCode {
                options: RoomOptions::default(),
            },
        ),
        now,
    )
    .unwrap();
    assert_eq!(seat.room.len(), CODE_LENGTH);
    assert!(seat.room.bytes().all(|b| CODE_ALPHABET.contains(&b)));
    assert_eq!(seat.info.kind, RoomKind::Code);
    let typed = format!("{}-{}", &seat.room[..3], &seat.room[3..]).to_lowercase();
    let code = normalize_code(&typed).unwrap();
    let dest = Destination::Named {
        room: code,
        create: false,
        options: RoomOptions::default(),
    };
    assert_eq!(
        enter(&mut hub, request(2, dest), now).unwrap().0.room,
        seat.room
    );
    // Same random bits again: the taken code is not reused.
    let (second, _) = enter(
        &mut hub,
        JoinRequest {
            entropy: 7919,
            permits: Permits::default(),
            ..request(
                3,
                Destination::NewCode {
                    options: RoomOptions::default(),
                },
            )
        },
        now,
    )
    .unwrap();
    assert_ne!(second.room, seat.room);
    assert_eq!(
        normalize_code("O0I1L"),
        None,
        "ambiguous characters are not in codes"
    );
    assert_eq!(normalize_code("ab"), None);
}

#[test]
fn only_public_rooms_are_listed_with_their_metadata() {
    let now = Instant::now();
    let mut hub = Hub::new(roomy());
    let meta = Payload::from_json(r#"{"name":"Friday game","mode":"ctf"}"#).unwrap();
    let public = RoomOptions {
        public: true,
        capacity: Some(2),
        meta: Some(meta.clone()),
        ..RoomOptions::default()
    };
    let open = |room: &str, options: RoomOptions| Destination::Named {
        room: room.into(),
        create: true,
        options,
    };
    enter(&mut hub, request(1, open("pub", public.clone())), now).unwrap();
    enter(&mut hub, request(2, open("full", public)), now).unwrap();
    enter(&mut hub, request(3, named("full")), now).unwrap();
    enter(&mut hub, request(4, named("private")), now).unwrap();
    enter(
        &mut hub,
        request(
            5,
            Destination::Match {
                players: 2,
                key: String::new(),
            },
        ),
        now,
    )
    .unwrap();
    let all: Vec<String> = hub
        .public_rooms(false, 10, None)
        .0
        .into_iter()
        .map(|l| l.room)
        .collect();
    // Newest first.
    assert_eq!(all, vec!["full", "pub"]);
    let (open_only, next) = hub.public_rooms(true, 10, None);
    assert_eq!(next, None, "one page holds them all");
    assert_eq!(open_only.len(), 1);
    assert_eq!(
        (open_only[0].room.as_str(), open_only[0].players),
        ("pub", 1)
    );
    assert_eq!(open_only[0].info.meta, Some(meta));
    // Pages of one, by cursor.
    let (first, next) = hub.public_rooms(false, 1, None);
    assert_eq!(first[0].room, "full");
    let (second, _) = hub.public_rooms(false, 1, next);
    assert_eq!(second[0].room, "pub");
}

#[test]
fn public_rooms_are_capped_per_address_and_hidden_while_everyone_detached() {
    let now = Instant::now();
    let mut hub = Hub::new(HubLimits {
        max_public_rooms_per_ip: 2,
        directory_broadcasts: (1000.0, 1000),
        ..roomy()
    });
    let public = |room: &str| Destination::Named {
        room: room.into(),
        create: true,
        options: RoomOptions {
            public: true,
            ..RoomOptions::default()
        },
    };
    let from_one = |n: u128, destination| JoinRequest {
        ip: ip(1),
        ..request(n, destination)
    };
    enter(&mut hub, from_one(1, public("a")), now).unwrap();
    enter(&mut hub, from_one(2, public("b")), now).unwrap();
    assert_eq!(
        enter(&mut hub, from_one(3, public("c")), now).err(),
        Some(ErrorCode::Throttled)
    );
    // A private room is still fine, and another address may list one.
    enter(&mut hub, from_one(4, named("d")), now).unwrap();
    enter(&mut hub, request(5, public("e")), now).unwrap();
    let listed = |hub: &Hub| -> Vec<String> {
        hub.public_rooms(false, 10, None)
            .0
            .into_iter()
            .map(|l| l.room)
            .collect()
    };
    assert_eq!(listed(&hub), vec!["e", "b", "a"]);
    // The only member of "a" detaches: nobody could answer a newcomer, so it is hidden.
    handle(&mut hub, 1, ClientMessage::Detach, now);
    assert_eq!(listed(&hub), vec!["e", "b"]);
    // When "b" goes, address 1 may make another public room.
    hub.disconnect(id(2), 2, LeaveReason::Closed, false, now);
    assert_eq!(listed(&hub), vec!["e"]);
    enter(&mut hub, from_one(6, public("f")), now).unwrap();
    assert_eq!(listed(&hub), vec!["f", "e"]);
}

fn resumable(n: u128, room: &str) -> JoinRequest {
    JoinRequest {
        token: Some(1000 + n),
        ..request(n, named(room))
    }
}

#[test]
fn a_resumed_peer_keeps_its_id_and_the_room_sees_nothing() {
    let now = Instant::now();
    let mut hub = Hub::new(roomy());
    let (seat, _) = enter(&mut hub, resumable(1, "r"), now).unwrap();
    assert_eq!(seat.token, Some(1001));
    let (other, _) = enter(&mut hub, request(2, named("r")), now).unwrap();
    assert!(other.peers[0].resumable);
    // The connection drops: suspended, nobody told.
    let effects = hub.disconnect(id(1), 1, LeaveReason::Closed, true, now);
    assert!(effects.deliveries.is_empty() && effects.new_deadline);
    assert_eq!(hub.next_deadline(), Some(now + Duration::from_secs(10)));
    // Messages to a suspended peer go nowhere (it has no connection), without an error.
    assert_eq!(
        only(handle(&mut hub, 2, send(Target::Peer(id(1))), now)).to,
        vec![id(1)]
    );
    let (back, effects) = hub
        .resume(ResumeRequest {
            token: 1001,
            conn: 50,
            next_token: 2001,
            name: None,
            permits: Permits::default(),
        })
        .unwrap();
    assert_eq!(
        (back.id, back.room.as_str(), back.token),
        (id(1), "r", Some(2001))
    );
    assert_eq!(back.peers.len(), 1);
    // Nothing for the room; only the new token to write down (cluster snapshots).
    let changed = Effects {
        changed: vec!["r".into()],
        ..Effects::default()
    };
    assert_eq!(effects, changed);
    assert_eq!(hub.next_deadline(), None);
    // Tokens are single-use.
    assert_eq!(
        hub.resume(ResumeRequest {
            token: 1001,
            conn: 51,
            next_token: 3001,
            name: None,
            permits: Permits::default(),
        })
        .unwrap_err()
        .code,
        ErrorCode::ResumeFailed
    );
    // The new connection works; the old one's late end changes nothing.
    assert_eq!(
        hub.disconnect(id(1), 1, LeaveReason::Closed, false, now),
        Effects::default()
    );
    assert_eq!(
        only(hub.handle(id(1), 50, send(Target::Room), now)).to,
        vec![id(2)]
    );
    assert_eq!(
        hub.handle(id(1), 1, send(Target::Room), now),
        Effects::default()
    );
}

#[test]
fn after_the_grace_period_a_suspended_peer_is_gone() {
    let t0 = Instant::now();
    let mut hub = Hub::new(roomy());
    enter(&mut hub, resumable(1, "r"), t0).unwrap();
    enter(&mut hub, request(2, named("r")), t0).unwrap();
    hub.disconnect(id(1), 1, LeaveReason::Closed, true, t0);
    assert_eq!(
        hub.expire_due(t0 + Duration::from_secs(9)),
        Effects::default()
    );
    let effects = hub.expire_due(t0 + Duration::from_secs(10));
    assert_eq!(
        effects.deliveries[0],
        Delivery {
            to: vec![id(2)],
            message: left(id(1), LeaveReason::Timeout)
        }
    );
    assert_eq!(
        hub.resume(ResumeRequest {
            token: 1001,
            conn: 9,
            next_token: 9,
            name: None,
            permits: Permits::default(),
        })
        .unwrap_err()
        .code,
        ErrorCode::ResumeFailed
    );
}

#[test]
fn a_resume_racing_the_end_of_grace_either_wins_or_is_refused() {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(10);
    // Resume first: the deadline passes without a leave.
    let mut hub = Hub::new(roomy());
    enter(&mut hub, resumable(1, "r"), t0).unwrap();
    enter(&mut hub, request(2, named("r")), t0).unwrap();
    hub.disconnect(id(1), 1, LeaveReason::Closed, true, t0);
    hub.resume(ResumeRequest {
        token: 1001,
        conn: 7,
        next_token: 7,
        name: None,
        permits: Permits::default(),
    })
    .unwrap();
    assert_eq!(hub.expire_due(deadline), Effects::default());
    assert_eq!(hub.peer_count(), 2);
    // Leave first: the resume is refused, cleanly.
    let mut hub = Hub::new(roomy());
    enter(&mut hub, resumable(1, "r"), t0).unwrap();
    enter(&mut hub, request(2, named("r")), t0).unwrap();
    hub.disconnect(id(1), 1, LeaveReason::Closed, true, t0);
    let effects = hub.expire_due(deadline);
    assert_eq!(
        effects.deliveries[0].message,
        left(id(1), LeaveReason::Timeout)
    );
    assert_eq!(
        effects.deliveries[1].message,
        ServerMessage::HostChanged { host: id(2) }
    );
    assert_eq!(
        hub.resume(ResumeRequest {
            token: 1001,
            conn: 7,
            next_token: 7,
            name: None,
            permits: Permits::default(),
        })
        .unwrap_err()
        .code,
        ErrorCode::ResumeFailed
    );
    assert_eq!(hub.peer_count(), 1);
}

#[test]
fn resuming_while_still_connected_replaces_the_old_connection() {
    let now = Instant::now();
    let mut hub = Hub::new(roomy());
    enter(&mut hub, resumable(1, "r"), now).unwrap();
    let (_, effects) = hub
        .resume(ResumeRequest {
            token: 1001,
            conn: 77,
            next_token: 5,
            name: None,
            permits: Permits::default(),
        })
        .unwrap();
    assert_eq!(effects.closes.len(), 1);
    assert_eq!((effects.closes[0].peer, effects.closes[0].conn), (id(1), 1));
    assert!(
        matches!(&effects.closes[0].reason, CloseReason::Error(e) if e.code == ErrorCode::Replaced)
    );
}

#[test]
fn goodbyes_and_non_resumable_drops_leave_at_once() {
    let now = Instant::now();
    let mut hub = Hub::new(roomy());
    enter(&mut hub, resumable(1, "r"), now).unwrap();
    enter(&mut hub, request(2, named("r")), now).unwrap();
    enter(&mut hub, request(3, named("r")), now).unwrap();
    assert_eq!(
        hub.disconnect(id(2), 2, LeaveReason::Closed, true, now)
            .deliveries[0]
            .message,
        left(id(2), LeaveReason::Closed)
    );
    assert_eq!(
        hub.disconnect(id(1), 1, LeaveReason::Closed, false, now)
            .deliveries[0]
            .message,
        left(id(1), LeaveReason::Closed)
    );
}

#[test]
fn detached_peers_stay_until_reported_gone_or_their_time_is_up() {
    let t0 = Instant::now();
    let mut hub = Hub::new(roomy());
    for n in 1..=3 {
        join(&mut hub, n, "r", None, t0).unwrap();
    }
    join(&mut hub, 4, "elsewhere", None, t0).unwrap();
    let effects = handle(&mut hub, 2, ClientMessage::Detach, t0);
    assert_eq!(
        effects.closes,
        vec![Close {
            peer: id(2),
            conn: 2,
            reason: CloseReason::Detached
        }]
    );
    assert!(effects.deliveries.is_empty());
    // Its connection closing does not make it leave.
    assert_eq!(
        hub.disconnect(id(2), 2, LeaveReason::Closed, false, t0),
        Effects::default()
    );
    assert_eq!(
        join(&mut hub, 5, "r", None, t0).unwrap_err(),
        ErrorCode::RoomFull,
        "it still takes its seat"
    );
    // Reports from another room, and about connected peers, change nothing.
    assert_eq!(
        handle(&mut hub, 4, ClientMessage::Gone { peer: id(2) }, t0),
        Effects::default()
    );
    assert_eq!(
        handle(&mut hub, 1, ClientMessage::Gone { peer: id(3) }, t0),
        Effects::default()
    );
    let effects = handle(&mut hub, 1, ClientMessage::Gone { peer: id(2) }, t0);
    assert_eq!(
        effects.deliveries[0],
        Delivery {
            to: vec![id(1), id(3)],
            message: left(id(2), LeaveReason::Gone)
        }
    );
    // The time limit.
    handle(&mut hub, 3, ClientMessage::Detach, t0);
    assert_eq!(
        hub.expire_due(t0 + Duration::from_secs(60)).deliveries[0].message,
        left(id(3), LeaveReason::Gone)
    );
}

#[test]
fn only_the_host_kicks_and_the_kicked_peer_is_closed() {
    let now = Instant::now();
    let mut hub = Hub::new(roomy());
    for n in 1..=3 {
        join(&mut hub, n, "r", None, now).unwrap();
    }
    assert_eq!(
        error_code(handle(
            &mut hub,
            2,
            ClientMessage::Kick { peer: id(3) },
            now
        )),
        Some(ErrorCode::NotHost)
    );
    assert_eq!(
        error_code(handle(
            &mut hub,
            1,
            ClientMessage::Kick { peer: id(1) },
            now
        )),
        Some(ErrorCode::UnknownPeer)
    );
    assert_eq!(
        error_code(handle(
            &mut hub,
            1,
            ClientMessage::Kick { peer: id(9) },
            now
        )),
        Some(ErrorCode::UnknownPeer)
    );
    let effects = handle(&mut hub, 1, ClientMessage::Kick { peer: id(3) }, now);
    assert_eq!(effects.closes.len(), 1);
    assert!(
        matches!(&effects.closes[0].reason, CloseReason::Error(e) if e.code == ErrorCode::Kicked)
    );
    assert_eq!(
        effects.deliveries[0],
        Delivery {
            to: vec![id(1), id(2)],
            message: left(id(3), LeaveReason::Kicked)
        }
    );
    assert_eq!(hub.peer_count(), 2);
}

#[test]
fn the_host_sets_valid_metadata() {
    let now = Instant::now();
    let mut hub = Hub::new(roomy());
    join(&mut hub, 1, "r", None, now).unwrap();
    join(&mut hub, 2, "r", None, now).unwrap();
    let meta = Payload::from_json(r#"{"round":2}"#).unwrap();
    assert_eq!(
        error_code(handle(
            &mut hub,
            2,
            ClientMessage::SetMeta { meta: meta.clone() },
            now
        )),
        Some(ErrorCode::NotHost)
    );
    let not_object = Payload::from_json("[1,2]").unwrap();
    assert_eq!(
        error_code(handle(
            &mut hub,
            1,
            ClientMessage::SetMeta { meta: not_object },
            now
        )),
        Some(ErrorCode::InvalidMessage)
    );
    let huge = Payload::from_json(&format!(r#"{{"x":"{}"}}"#, "y".repeat(100))).unwrap();
    assert_eq!(
        error_code(handle(
            &mut hub,
            1,
            ClientMessage::SetMeta { meta: huge },
            now
        )),
        Some(ErrorCode::InvalidMessage)
    );
    let effects = handle(
        &mut hub,
        1,
        ClientMessage::SetMeta { meta: meta.clone() },
        now,
    );
    assert_eq!(
        only(effects),
        Delivery {
            to: vec![id(2)],
            message: ServerMessage::RoomUpdated { meta: meta.clone() }
        }
    );
    assert_eq!(
        join(&mut hub, 3, "r", None, now).unwrap().info.meta,
        Some(meta)
    );
}

#[test]
fn room_options_are_validated() {
    let now = Instant::now();
    let mut hub = Hub::new(roomy());
    for capacity in [0, 1, 4] {
        let options = RoomOptions {
            capacity: Some(capacity),
            ..RoomOptions::default()
        };
        let dest = Destination::Named {
            room: "r".into(),
            create: true,
            options,
        };
        assert_eq!(
            enter(&mut hub, request(1, dest), now).unwrap_err(),
            ErrorCode::InvalidOptions,
            "capacity {capacity}"
        );
    }
    let dest = Destination::Named {
        room: "nope".into(),
        create: false,
        options: RoomOptions::default(),
    };
    assert_eq!(
        enter(&mut hub, request(1, dest), now).unwrap_err(),
        ErrorCode::NoSuchRoom
    );
}

fn throttled_limits() -> HubLimits {
    HubLimits {
        max_peers_per_room: 100,
        max_peers_per_directory: 1_000,
        joins_per_ip: (1.0, 3),
        joins_per_room: (1.0, 4),
        code_lookups_per_ip: (1.0, 2),
        ..roomy()
    }
}

/// A join from `address` (the peer number is separate from the address here).
fn join_from(
    hub: &mut Hub,
    n: u128,
    address: u8,
    destination: Destination,
    now: Instant,
) -> Result<Seat, ErrorCode> {
    let request = JoinRequest {
        ip: ip(address),
        ..request(n, destination)
    };
    enter(hub, request, now).map(|(seat, _)| seat)
}

#[test]
fn joins_are_throttled_per_address_then_refilled() {
    let t0 = Instant::now();
    let mut hub = Hub::new(throttled_limits());
    for n in 1..=3 {
        assert!(join_from(&mut hub, n, 1, named(&format!("r{n}")), t0).is_ok());
    }
    // The burst of 3 is spent: a fourth join from that address is refused; another address is not.
    assert_eq!(
        join_from(&mut hub, 4, 1, named("r4"), t0).err(),
        Some(ErrorCode::Throttled)
    );
    assert!(join_from(&mut hub, 5, 2, named("r5"), t0).is_ok());
    // One token a second comes back.
    assert!(join_from(
        &mut hub,
        6,
        1,
        named("r6"),
        t0 + Duration::from_millis(1100)
    )
    .is_ok());
}

#[test]
fn joins_into_one_room_are_throttled_whatever_the_address() {
    let t0 = Instant::now();
    let mut hub = Hub::new(throttled_limits());
    // The first join creates the room (not counted); four more fill the room's burst.
    for n in 1..=5 {
        assert!(
            join_from(&mut hub, n, n as u8, named("busy"), t0).is_ok(),
            "join {n}"
        );
    }
    assert_eq!(
        join_from(&mut hub, 6, 6, named("busy"), t0).err(),
        Some(ErrorCode::Throttled)
    );
    // Other rooms are not affected.
    assert!(join_from(&mut hub, 7, 7, named("quiet"), t0).is_ok());
}

#[test]
fn missed_code_lookups_are_throttled_and_then_every_lookup_is_refused() {
    let t0 = Instant::now();
    let mut hub = Hub::new(throttled_limits());
    let (seat, _) = enter(
        &mut hub,
        request(
            1,
            Destination::NewCode {
                options: RoomOptions::default(),
            },
        ),
        t0,
    )
    .expect("a code room");
    let code = seat.room.clone();
    let by_code = |room: &str| Destination::Named {
        room: room.into(),
        create: false,
        options: RoomOptions::default(),
    };
    // Two misses spend the burst...
    assert_eq!(
        join_from(&mut hub, 2, 9, by_code("AAAAAA"), t0).err(),
        Some(ErrorCode::NoSuchRoom)
    );
    assert_eq!(
        join_from(&mut hub, 3, 9, by_code("BBBBBB"), t0).err(),
        Some(ErrorCode::NoSuchRoom)
    );
    // ...then even the right code is refused from that address (a refusal tells nothing).
    assert_eq!(
        join_from(&mut hub, 4, 9, by_code(&code), t0).err(),
        Some(ErrorCode::Throttled)
    );
    // A code-shaped name with create=true counts as a lookup too (it cannot be used to guess).
    assert_eq!(
        join_from(&mut hub, 5, 9, named(&code), t0).err(),
        Some(ErrorCode::Throttled)
    );
    // Another address finds the room; a hit costs no token.
    assert!(join_from(&mut hub, 6, 8, by_code(&code), t0).is_ok());
    assert!(join_from(&mut hub, 7, 8, by_code(&code), t0).is_ok());
    // Later, the throttled address may try again.
    assert_eq!(
        join_from(
            &mut hub,
            8,
            9,
            by_code("CCCCCC"),
            t0 + Duration::from_millis(1100)
        )
        .err(),
        Some(ErrorCode::NoSuchRoom)
    );
}

fn with_permits(n: u128, destination: Destination, permits: &Permits) -> JoinRequest {
    JoinRequest {
        permits: permits.clone(),
        ..request(n, destination)
    }
}

#[test]
fn a_token_limits_rooms_creation_and_capacity() {
    let now = Instant::now();
    // Rooms of up to 10 by the hub's limit: the token's max_peers (3) is what caps.
    let mut hub = Hub::new(HubLimits {
        max_peers_per_room: 10,
        max_peers_per_directory: 1_000,
        max_connections: 100,
        max_connections_per_ip: 100,
        ..limits()
    });
    let host = Permits {
        rooms: Some(switchboard_auth::RoomPatterns(vec![
            "lobby".into(),
            "team-*".into(),
            "match-*".into(),
        ])),
        may_create: true,
        max_peers: Some(3),
    };
    let player = Permits {
        may_create: false,
        ..host.clone()
    };
    let code = |hub: &mut Hub, n, destination, permits: &Permits| {
        enter(hub, with_permits(n, destination, permits), now).map(|_| ())
    };
    // A player may not create, not even a room its patterns allow.
    assert_eq!(
        code(&mut hub, 1, named("team-red"), &player),
        Err(ErrorCode::Forbidden)
    );
    assert_eq!(
        code(&mut hub, 1, Destination::NewSession, &player),
        Err(ErrorCode::Forbidden)
    );
    // A host creates inside its patterns only; a generated code matches none of them.
    assert_eq!(
        code(&mut hub, 2, named("elsewhere"), &host),
        Err(ErrorCode::Forbidden)
    );
    let new_code = Destination::NewCode {
        options: RoomOptions::default(),
    };
    assert_eq!(
        code(&mut hub, 2, new_code, &host),
        Err(ErrorCode::Forbidden)
    );
    assert_eq!(code(&mut hub, 2, named("team-red"), &host), Ok(()));
    // Players join what exists inside their patterns; the host's max_peers capped the room.
    assert_eq!(code(&mut hub, 3, named("team-red"), &player), Ok(()));
    assert_eq!(code(&mut hub, 4, named("team-red"), &player), Ok(()));
    assert_eq!(
        code(&mut hub, 5, named("team-red"), &player),
        Err(ErrorCode::RoomFull)
    );
    // A room outside the patterns is refused even when it exists.
    assert_eq!(
        code(&mut hub, 6, named("open"), &Permits::default()),
        Ok(())
    );
    assert_eq!(
        code(&mut hub, 7, named("open"), &player),
        Err(ErrorCode::Forbidden)
    );
    // Matching needs no host claim, and match rooms are named match-...
    let matching = Destination::Match {
        players: 2,
        key: String::new(),
    };
    assert_eq!(code(&mut hub, 8, matching.clone(), &player), Ok(()));
    let only_lobby = Permits {
        rooms: Some(switchboard_auth::RoomPatterns(vec!["lobby".into()])),
        ..player.clone()
    };
    assert_eq!(
        code(&mut hub, 9, matching, &only_lobby),
        Err(ErrorCode::Forbidden)
    );
    // Refusals leave nothing behind: the host, two players, the open room's peer and the
    // matcher.
    assert_eq!(hub.peer_count(), 5);
}

fn directory(room: &str) -> Destination {
    Destination::Named {
        room: room.into(),
        create: true,
        options: RoomOptions {
            directory: true,
            ..RoomOptions::default()
        },
    }
}

fn enter_directory(hub: &mut Hub, n: u128, name: &str, now: Instant) -> (Seat, Effects) {
    let request = JoinRequest {
        name: Some(name.into()),
        ip: ip(1),
        ..request(n, directory("peerjs:k"))
    };
    hub.join(request, now).unwrap()
}

#[test]
fn a_directory_is_silent_has_no_host_and_routes_by_name() {
    let now = Instant::now();
    let mut hub = Hub::new(roomy());
    let (first, effects) = enter_directory(&mut hub, 1, "ann", now);
    assert!(first.peers.is_empty() && effects.deliveries.is_empty());
    assert_eq!(first.info.host, None, "nobody hosts a directory");
    let (second, effects) = enter_directory(&mut hub, 2, "bob", now);
    assert!(
        second.peers.is_empty(),
        "welcome lists nobody: {:?}",
        second.peers
    );
    assert!(effects.deliveries.is_empty(), "no peer_joined: {effects:?}");
    let delivered = only(handle(&mut hub, 2, send(Target::Name("ann".into())), now));
    assert_eq!(delivered.to, vec![id(1)]);
    assert_eq!(
        only(handle(&mut hub, 1, send(Target::Room), now)).to,
        vec![id(2)]
    );
    assert_eq!(hub.names_in("peerjs:k"), vec!["ann", "bob"]);
    assert_eq!(hub.connected_by_name("peerjs:k", "bob"), Some(id(2)));
    assert_eq!(hub.connected_by_name("peerjs:k", "cat"), None);
    let effects = hub.disconnect(id(1), 1, LeaveReason::Closed, false, now);
    assert!(effects.deliveries.is_empty(), "no peer_left: {effects:?}");
    assert_eq!(hub.names_in("peerjs:k"), vec!["bob"]);
    let ann_again = enter_directory(&mut hub, 3, "ann", now);
    assert_eq!(
        ann_again.0.name.as_deref(),
        Some("ann"),
        "the name is free again"
    );
    assert_eq!(
        enter(
            &mut hub,
            JoinRequest {
                name: Some("bob".into()),
                ..request(4, directory("peerjs:k"))
            },
            now
        )
        .map(|_| ()),
        Err(ErrorCode::NameTaken)
    );
}

#[test]
fn a_directory_holds_max_peers_per_directory_not_max_peers_per_room() {
    let now = Instant::now();
    let mut hub = Hub::new(HubLimits {
        max_peers_per_directory: 5,
        ..roomy()
    });
    assert_eq!(hub.limits.max_peers_per_room, 3);
    for n in 1..=5 {
        enter_directory(&mut hub, n, &format!("u{n}"), now);
    }
    let sixth = JoinRequest {
        name: Some("u6".into()),
        ..request(6, directory("peerjs:k"))
    };
    assert_eq!(
        enter(&mut hub, sixth, now).map(|_| ()),
        Err(ErrorCode::RoomFull)
    );
}

#[test]
fn a_suspended_name_is_not_connected_but_still_taken() {
    let now = Instant::now();
    let mut hub = Hub::new(roomy());
    let request = JoinRequest {
        name: Some("ann".into()),
        token: Some(77),
        ..request(1, directory("peerjs:k"))
    };
    hub.join(request, now).unwrap();
    hub.disconnect(id(1), 1, LeaveReason::Closed, true, now);
    assert_eq!(hub.connected_by_name("peerjs:k", "ann"), None);
    assert_eq!(hub.names_in("peerjs:k"), vec!["ann"]);
}

fn client_server(room: &str) -> Destination {
    Destination::Named {
        room: room.into(),
        create: true,
        options: RoomOptions {
            topology: Topology::Star,
            host_leaves: HostLeaves::Close,
            host_only: true,
            ..RoomOptions::default()
        },
    }
}

#[test]
fn host_only_presence_clients_meet_the_host_and_nobody_else() {
    let now = Instant::now();
    let mut hub = Hub::new(roomy());
    let (host, effects) = hub.join(request(1, client_server("cs")), now).unwrap();
    assert!(host.peers.is_empty() && effects.deliveries.is_empty());
    let (a, effects) = hub.join(request(2, client_server("cs")), now).unwrap();
    assert_eq!(a.peers.iter().map(|p| p.id).collect::<Vec<_>>(), [id(1)]);
    assert_eq!(
        only(effects).to,
        vec![id(1)],
        "only the host hears of a client"
    );
    let (b, effects) = hub.join(request(3, client_server("cs")), now).unwrap();
    assert_eq!(b.peers.iter().map(|p| p.id).collect::<Vec<_>>(), [id(1)]);
    assert_eq!(only(effects).to, vec![id(1)]);
    // A client reaches the host only; the host reaches everyone.
    assert_eq!(
        only(handle(&mut hub, 2, send(Target::Room), now)).to,
        vec![id(1)]
    );
    assert_eq!(
        error_code(handle(&mut hub, 2, send(Target::Peer(id(3))), now)),
        Some(ErrorCode::UnknownPeer)
    );
    assert_eq!(
        only(handle(&mut hub, 2, send(Target::Peer(id(1))), now)).to,
        vec![id(1)]
    );
    assert_eq!(
        only(handle(&mut hub, 1, send(Target::Room), now)).to,
        vec![id(2), id(3)]
    );
    assert_eq!(
        only(handle(&mut hub, 1, send(Target::Peer(id(3))), now)).to,
        vec![id(3)]
    );
    // A client leaving is news for the host only.
    let effects = hub.disconnect(id(2), 2, LeaveReason::Closed, false, now);
    let left = only(effects);
    assert_eq!(left.to, vec![id(1)]);
    assert_eq!(
        left.message,
        ServerMessage::PeerLeft {
            id: id(2),
            reason: LeaveReason::Closed
        }
    );
    // The host leaving: the clients hear it, and the room closes.
    let effects = hub.disconnect(id(1), 1, LeaveReason::Closed, false, now);
    assert_eq!(effects.deliveries[0].to, vec![id(3)]);
    assert_eq!(
        effects.deliveries[0].message,
        ServerMessage::PeerLeft {
            id: id(1),
            reason: LeaveReason::Closed
        }
    );
    assert_eq!(effects.closes.len(), 1);
    assert!(!hub.has_room("cs"));
}

#[test]
fn a_directory_is_not_held_to_joins_per_room_and_its_broadcasts_have_a_budget() {
    let now = Instant::now();
    let mut hub = Hub::new(HubLimits {
        joins_per_room: (0.0, 1),
        directory_broadcasts: (0.0, 2),
        ..roomy()
    });
    for n in 1..=5 {
        let request = JoinRequest {
            name: Some(format!("u{n}")),
            ip: ip(n as u8),
            ..request(n, directory("rustysignal:net"))
        };
        assert!(hub.join(request, now).is_ok(), "join {n} of a directory");
    }
    // A named room with the same throttle takes one join after its creator.
    hub.join(request(10, named("room")), now).unwrap();
    hub.join(request(11, named("room")), now).unwrap();
    assert_eq!(
        enter(&mut hub, request(12, named("room")), now).map(|_| ()),
        Err(ErrorCode::Throttled)
    );
    // Everyone (the sender too) as one message; the directory's budget of 2 is shared.
    let everyone = hub.signal_everyone(id(1), 1, data(), now);
    let mut to = only(everyone).to;
    to.sort();
    assert_eq!(to, (1..=5).map(id).collect::<Vec<_>>());
    assert_eq!(
        only(handle(&mut hub, 2, send(Target::Room), now)).to.len(),
        4
    );
    assert_eq!(
        error_code(hub.signal_everyone(id(3), 3, data(), now)),
        Some(ErrorCode::RateLimited)
    );
    assert_eq!(
        error_code(handle(&mut hub, 4, send(Target::Room), now)),
        Some(ErrorCode::RateLimited)
    );
    // One-to-one is not a broadcast.
    assert_eq!(
        only(handle(&mut hub, 4, send(Target::Name("u1".into())), now)).to,
        vec![id(1)]
    );
}
