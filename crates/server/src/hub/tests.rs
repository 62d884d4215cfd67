use super::*;
use std::net::Ipv4Addr;
use std::time::Duration;
use switchboard_protocol::Payload;

fn limits() -> HubLimits {
    HubLimits {
        max_peers_per_room: 3,
        max_connections: 5,
        max_connections_per_ip: 4,
        messages_per_second: 10,
        message_burst: 2,
    }
}

fn id(n: u128) -> PeerId {
    PeerId::from_u128(n)
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn join(
    hub: &mut Hub,
    n: u128,
    room: &str,
    name: Option<&str>,
    now: Instant,
) -> Result<Joined, ErrorCode> {
    hub.join(
        JoinRequest {
            id: id(n),
            room: room.into(),
            name: name.map(Into::into),
            ip: ip(n as u8),
        },
        now,
    )
    .map_err(|e| e.code)
}

fn data() -> Payload {
    Payload::from_json(r#"{"hello":1}"#).unwrap()
}

fn send(to: Target) -> ClientMessage {
    ClientMessage::Message { to, data: data() }
}

fn error_code(delivery: Option<Delivery>) -> Option<ErrorCode> {
    match delivery?.message {
        ServerMessage::Error { code, .. } => Some(code),
        _ => None,
    }
}

#[test]
fn join_lists_present_peers_and_announces_the_newcomer() {
    let now = Instant::now();
    let mut hub = Hub::new(limits());
    let first = join(&mut hub, 1, "r", Some("ann"), now).unwrap();
    assert!(first.peers.is_empty());
    assert!(first.announce.to.is_empty());
    let second = join(&mut hub, 2, "r", None, now).unwrap();
    assert_eq!(
        second.peers,
        vec![PeerInfo {
            id: id(1),
            name: Some("ann".into())
        }]
    );
    assert_eq!(second.announce.to, vec![id(1)]);
    assert_eq!(
        second.announce.message,
        ServerMessage::PeerJoined(PeerInfo {
            id: id(2),
            name: None
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
    let to_room = hub.handle(id(1), send(Target::Room), now).unwrap();
    assert_eq!(to_room.to, vec![id(2), id(3)]);
    assert_eq!(
        to_room.message,
        ServerMessage::Message {
            from: id(1),
            data: data()
        }
    );
    assert_eq!(
        hub.handle(id(1), send(Target::Myself), now).unwrap().to,
        vec![id(1)]
    );
    assert_eq!(
        hub.handle(id(2), send(Target::Peer(id(3))), now)
            .unwrap()
            .to,
        vec![id(3)]
    );
    let by_name = hub
        .handle(
            id(2),
            ClientMessage::Signal {
                to: Target::Name("p1".into()),
                data: data(),
            },
            now,
        )
        .unwrap();
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
        error_code(hub.handle(id(1), send(Target::Peer(id(2))), now)),
        Some(ErrorCode::UnknownPeer)
    );
    assert_eq!(
        error_code(hub.handle(id(1), send(Target::Peer(id(99))), now)),
        Some(ErrorCode::UnknownPeer)
    );
    assert_eq!(
        error_code(hub.handle(id(1), send(Target::Name("bob".into())), now)),
        Some(ErrorCode::UnknownName)
    );
    assert!(hub
        .handle(id(1), send(Target::Room), now)
        .unwrap()
        .to
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
    hub.leave(id(1), LeaveReason::Closed);
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
        id: id(n),
        room: format!("r{n}"),
        name: None,
        ip: ip(9),
    };
    for n in 1..=4 {
        hub.join(same_ip(n), now).unwrap();
    }
    assert_eq!(
        hub.join(same_ip(5), now).unwrap_err().code,
        ErrorCode::TooManyConnections
    );
    hub.leave(id(1), LeaveReason::Closed);
    hub.join(same_ip(5), now).unwrap();
}

#[test]
fn rate_limit_answers_the_first_drop_then_stays_quiet() {
    let t0 = Instant::now();
    let mut hub = Hub::new(limits());
    join(&mut hub, 1, "r", None, t0).unwrap();
    join(&mut hub, 2, "r", None, t0).unwrap();
    assert_eq!(
        hub.handle(id(1), send(Target::Room), t0).unwrap().to,
        vec![id(2)]
    );
    assert_eq!(
        hub.handle(id(1), send(Target::Room), t0).unwrap().to,
        vec![id(2)]
    );
    assert_eq!(
        error_code(hub.handle(id(1), send(Target::Room), t0)),
        Some(ErrorCode::RateLimited)
    );
    assert_eq!(hub.handle(id(1), send(Target::Room), t0), None);
    // The other peer is not affected.
    assert_eq!(
        hub.handle(id(2), send(Target::Room), t0).unwrap().to,
        vec![id(1)]
    );
    let later = t0 + Duration::from_millis(150);
    assert_eq!(
        hub.handle(id(1), send(Target::Room), later).unwrap().to,
        vec![id(2)]
    );
}

#[test]
fn leaving_announces_and_removes_empty_rooms() {
    let now = Instant::now();
    let mut hub = Hub::new(limits());
    join(&mut hub, 1, "r", None, now).unwrap();
    join(&mut hub, 2, "r", None, now).unwrap();
    let left = hub.leave(id(1), LeaveReason::Timeout).unwrap();
    assert_eq!(left.to, vec![id(2)]);
    assert_eq!(
        left.message,
        ServerMessage::PeerLeft {
            id: id(1),
            reason: LeaveReason::Timeout
        }
    );
    assert_eq!(hub.leave(id(1), LeaveReason::Closed), None);
    assert_eq!(hub.leave(id(2), LeaveReason::Closed), None);
    assert_eq!((hub.peer_count(), hub.room_count()), (0, 0));
    assert_eq!(hub.handle(id(2), send(Target::Room), now), None);
}

#[test]
fn ping_is_answered_with_its_nonce() {
    let now = Instant::now();
    let mut hub = Hub::new(limits());
    join(&mut hub, 1, "r", None, now).unwrap();
    let pong = hub
        .handle(id(1), ClientMessage::Ping { nonce: Some(7) }, now)
        .unwrap();
    assert_eq!(
        pong,
        Delivery {
            to: vec![id(1)],
            message: ServerMessage::Pong { nonce: Some(7) }
        }
    );
}
