//! Lobbies, sessions and reconnection over real WebSockets: topologies and hosts, one-to-one
//! sessions, auto-matching, room codes, the public list, resume tokens, close-after-connect,
//! kicking, metadata and room options, including the races.

mod common;

use std::time::Duration;

use common::*;
use switchboard_protocol::{
    ClientMessage, Encoding, ErrorCode, HostLeaves, LeaveReason, RoomKind, ServerMessage, Topology,
};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn star_room_everyone_knows_the_host_and_a_new_one_takes_over() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut host = Client::at(addr, "/ws/arena?topology=star").await;
    assert_eq!(host.welcome.room_info.topology, Topology::Star);
    assert_eq!(host.welcome.room_info.host, Some(host.id()));
    let mut a = Client::join(addr, "arena", "topology=mesh").await;
    assert_eq!(
        a.welcome.room_info.topology,
        Topology::Star,
        "options come from the creator"
    );
    assert_eq!(a.welcome.room_info.host, Some(host.id()));
    let mut b = Client::join(addr, "arena", "").await;
    host.recv().await;
    host.recv().await;
    a.recv().await;
    let (host_id, successor) = (host.id(), a.id());
    host.socket.close(None).await.unwrap();
    for client in [&mut a, &mut b] {
        assert_eq!(
            client.recv().await,
            ServerMessage::PeerLeft {
                id: host_id,
                reason: LeaveReason::Closed
            }
        );
        assert_eq!(
            client.recv().await,
            ServerMessage::HostChanged { host: successor }
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_room_closes_with_its_host_when_asked_to() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut host = Client::at(addr, "/ws/table?host_leaves=close").await;
    assert_eq!(host.welcome.room_info.host_leaves, HostLeaves::Close);
    let mut guest = Client::join(addr, "table", "").await;
    host.recv().await;
    host.socket.close(None).await.unwrap();
    assert_eq!(guest.closed().await, (4012, "room_closed".into()));
    // The room is gone: the name is free again.
    let again = Client::join(addr, "table", "").await;
    assert!(again.welcome.peers.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_session_takes_two_peers_and_refuses_a_third() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let host = Client::at(addr, "/ws?create=session").await;
    let session = host.welcome.room.clone();
    assert_eq!(session.len(), 32);
    assert_eq!(host.welcome.room_info.kind, RoomKind::Session);
    let guest = Client::at(addr, &format!("/ws?session={session}")).await;
    assert_eq!(guest.welcome.peers[0].id, host.id());
    let (code, close, _) = refused(addr, &format!("/ws?session={session}"), Encoding::Json).await;
    assert_eq!((code, close), (ErrorCode::RoomFull, 4005));
    let (code, close, _) = refused(addr, &format!("/ws/{session}"), Encoding::Json).await;
    assert_eq!((code, close), (ErrorCode::RoomFull, 4005));
    let unknown = format!("/ws?session={:032x}", 12345);
    assert_eq!(
        refused(addr, &unknown, Encoding::Json).await.0,
        ErrorCode::NoSuchRoom
    );
    server.shutdown().await;
}

#[tokio::test]
async fn auto_match_of_four_starts_and_the_fifth_gets_a_new_room() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut players = Vec::new();
    for _ in 0..4 {
        players.push(Client::at(addr, "/ws?match=4&key=ffa").await);
    }
    let room = players[0].welcome.room.clone();
    assert!(players.iter().all(|p| p.welcome.room == room));
    assert!(players[3].welcome.room_info.started);
    for player in &mut players {
        loop {
            if player.recv().await == ServerMessage::RoomStarted {
                break;
            }
        }
    }
    let fifth = Client::at(addr, "/ws?match=4&key=ffa").await;
    assert_ne!(fifth.welcome.room, room);
    assert!(fifth.welcome.peers.is_empty());
    let other_mode = Client::at(addr, "/ws?match=4&key=duel").await;
    assert_ne!(other_mode.welcome.room, fifth.welcome.room);
    server.shutdown().await;
}

#[tokio::test]
async fn many_simultaneous_matchers_fill_whole_matches() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let joins = (0..12).map(|_| tokio::spawn(async move { Client::at(addr, "/ws?match=3").await }));
    let mut rooms = std::collections::HashMap::<String, usize>::new();
    let mut clients = Vec::new();
    for join in joins {
        let client = join.await.unwrap();
        *rooms.entry(client.welcome.room.clone()).or_default() += 1;
        clients.push(client);
    }
    assert_eq!(rooms.len(), 4, "{rooms:?}");
    assert!(rooms.values().all(|n| *n == 3));
    server.shutdown().await;
}

#[tokio::test]
async fn two_joiners_at_once_for_the_last_seat() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let _first = Client::join(addr, "duel", "capacity=2").await;
    let attempt = || {
        tokio::spawn(async move {
            let mut socket = raw(addr, "/ws/duel").await;
            match tokio_stream_next(&mut socket).await {
                ServerMessage::Welcome(_) => Ok(socket),
                ServerMessage::Error { code, .. } => Err(code),
                other => panic!("{other:?}"),
            }
        })
    };
    let (a, b) = (attempt(), attempt());
    let outcomes = [a.await.unwrap(), b.await.unwrap()];
    let seated = outcomes.iter().filter(|o| o.is_ok()).count();
    let refused: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!((seated, refused), (1, vec![&ErrorCode::RoomFull]));
    server.shutdown().await;
}

async fn tokio_stream_next(socket: &mut Socket) -> ServerMessage {
    use futures_util::StreamExt;
    loop {
        match socket.next().await.expect("open").expect("ok") {
            Message::Text(text) => {
                return switchboard_protocol::decode_server(
                    switchboard_protocol::Frame::Text(text.as_bytes()),
                    Encoding::Json,
                )
                .unwrap()
            }
            _ => continue,
        }
    }
}

#[tokio::test]
async fn room_codes_are_short_and_typed_loosely() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let host = Client::at(addr, "/ws?create=code").await;
    let code = host.welcome.room.clone();
    assert_eq!(code.len(), 6);
    assert_eq!(host.welcome.room_info.kind, RoomKind::Code);
    let typed = format!("{}-{}", &code[..3], &code[3..]).to_lowercase();
    let friend = Client::at(addr, &format!("/ws?code={typed}")).await;
    assert_eq!(friend.welcome.room, code);
    assert_eq!(
        refused(addr, "/ws?code=ZZZZZZ", Encoding::Json).await.0,
        ErrorCode::NoSuchRoom
    );
    server.shutdown().await;
}

#[tokio::test]
async fn public_rooms_are_listed_private_ones_never() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let meta = "%7B%22name%22%3A%22Friday%22%2C%22mode%22%3A%22ctf%22%7D";
    let _open = Client::join(
        addr,
        "friday",
        &format!("public=true&capacity=4&meta={meta}"),
    )
    .await;
    let _full_a = Client::join(addr, "full", "public=true&capacity=2").await;
    let _full_b = Client::join(addr, "full", "").await;
    let _private = Client::join(addr, "secret", "").await;
    let _session = Client::at(addr, "/ws?create=session").await;
    let (_, body) = http_get(addr, "/rooms").await;
    let listing: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = listing["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room"].as_str().unwrap())
        .collect();
    // Newest first; one page holds them all.
    assert_eq!(names, vec!["full", "friday"]);
    assert_eq!(listing["next"], serde_json::Value::Null);
    // Pages of one, by cursor.
    let (_, body) = http_get(addr, "/rooms?limit=1").await;
    let first: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(first["rooms"][0]["room"], "full");
    let next = first["next"].as_u64().expect("a cursor");
    let (_, body) = http_get(addr, &format!("/rooms?limit=1&before={next}")).await;
    let second: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(second["rooms"][0]["room"], "friday");
    let (_, body) = http_get(addr, "/rooms?open=true").await;
    let open: serde_json::Value = serde_json::from_str(&body).unwrap();
    let room = &open["rooms"][0];
    assert_eq!(open["rooms"].as_array().unwrap().len(), 1);
    assert_eq!(
        (room["room"].as_str(), room["players"].as_u64()),
        (Some("friday"), Some(1))
    );
    assert_eq!(room["info"]["capacity"], 4);
    assert_eq!(room["info"]["meta"]["mode"], "ctf");
    server.shutdown().await;
}

fn short_grace() -> switchboard_server::Config {
    let mut config = config();
    config.limits.resume_grace_ms = 600;
    config
}

#[tokio::test]
async fn a_resumed_peer_keeps_its_id_and_the_room_sees_nothing() {
    let server = start(short_grace()).await;
    let addr = server.local_addr();
    let mut ann = Client::join(addr, "r", "resumable=true&user=ann").await;
    let token = ann.welcome.resume_token.clone().expect("a token");
    // The welcome tells the resume window (and the detached life).
    assert_eq!(ann.welcome.resume_grace_ms, 600);
    assert_eq!(ann.welcome.detached_ttl_ms, 3_600_000);
    let ann_id = ann.id();
    let mut bob = Client::join(addr, "r", "").await;
    assert!(bob.welcome.peers[0].resumable);
    ann.recv().await;
    // The connection drops without a goodbye.
    ann.vanish(Vanish::Fin).await;
    bob.expect_silence(Duration::from_millis(200)).await;
    // A message to the suspended peer, by id and by name, is accepted and dropped: no error for
    // the sender (the next thing it hears is the answer to its ping), nothing for the peer later.
    bob.send_json(switchboard_protocol::Target::Peer(ann_id), "\"lost\"")
        .await;
    bob.send_json(switchboard_protocol::Target::Name("ann".into()), "\"lost\"")
        .await;
    bob.send(switchboard_protocol::ClientMessage::Ping { nonce: Some(7) })
        .await;
    assert_eq!(bob.recv().await, ServerMessage::Pong { nonce: Some(7) });
    let mut back = Client::at(addr, &format!("/ws/r?resume={token}")).await;
    assert!(back.welcome.resumed);
    assert_eq!(back.welcome.name.as_deref(), Some("ann"));
    assert_eq!(back.welcome.peers.len(), 1);
    let next = back.welcome.resume_token.clone().unwrap();
    assert_ne!(next, token);
    bob.expect_silence(Duration::from_millis(700)).await;
    // It is the same peer for everyone: bob reaches it by its old id; what was sent while it was
    // suspended never arrives.
    bob.send_json(switchboard_protocol::Target::Peer(back.id()), "1")
        .await;
    match back.recv().await {
        ServerMessage::Message { data, .. } => assert_eq!(data, json("1")),
        other => panic!("expected the message sent after the resume, got {other:?}"),
    }
    // The old token is spent.
    let (code, close, _) = refused(addr, &format!("/ws/r?resume={token}"), Encoding::Json).await;
    assert_eq!((code, close), (ErrorCode::ResumeFailed, 4010));
    server.shutdown().await;
}

/// A lost connection suspends a resumable peer however the TCP connection ends: an orderly
/// close with no WebSocket close frame (what a killed process sends) and a reset alike.
#[tokio::test]
async fn a_resumable_peer_is_suspended_after_a_fin_or_a_reset() {
    let server = start(short_grace()).await;
    let addr = server.local_addr();
    let mut bob = Client::join(addr, "r", "").await;
    for how in [Vanish::Fin, Vanish::Reset] {
        let ann = Client::join(addr, "r", "resumable=true").await;
        let token = ann.welcome.resume_token.clone().expect("a token");
        assert!(matches!(bob.recv().await, ServerMessage::PeerJoined(_)));
        ann.vanish(how).await;
        bob.expect_silence(Duration::from_millis(300)).await;
        let mut back = Client::at(addr, &format!("/ws/r?resume={token}")).await;
        assert!(back.welcome.resumed, "{how:?}");
        back.socket
            .close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await
            .expect("closes");
        assert!(
            matches!(bob.recv().await, ServerMessage::PeerLeft { .. }),
            "{how:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn after_the_grace_period_the_peer_is_gone() {
    let server = start(short_grace()).await;
    let addr = server.local_addr();
    let ann = Client::join(addr, "r", "resumable=true").await;
    let (ann_id, token) = (ann.id(), ann.welcome.resume_token.clone().unwrap());
    let mut bob = Client::join(addr, "r", "").await;
    drop(ann);
    let started = std::time::Instant::now();
    assert_eq!(
        bob.recv().await,
        ServerMessage::PeerLeft {
            id: ann_id,
            reason: LeaveReason::Timeout
        }
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        refused(addr, &format!("/ws/r?resume={token}"), Encoding::Json)
            .await
            .0,
        ErrorCode::ResumeFailed
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_goodbye_is_a_leave_even_for_a_resumable_peer() {
    let server = start(short_grace()).await;
    let addr = server.local_addr();
    let mut ann = Client::join(addr, "r", "resumable=true").await;
    let mut bob = Client::join(addr, "r", "").await;
    ann.socket
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert!(matches!(
        bob.recv().await,
        ServerMessage::PeerLeft {
            reason: LeaveReason::Closed,
            ..
        }
    ));
    assert!(started.elapsed() < Duration::from_millis(400));
    server.shutdown().await;
}

#[tokio::test]
async fn resuming_on_a_second_connection_replaces_the_first() {
    let server = start(short_grace()).await;
    let addr = server.local_addr();
    let mut first = Client::join(addr, "r", "resumable=true").await;
    let mut bob = Client::join(addr, "r", "").await;
    first.recv().await;
    let token = first.welcome.resume_token.clone().unwrap();
    let second = Client::at(addr, &format!("/ws/r?resume={token}")).await;
    assert_eq!(second.id(), first.id());
    assert_eq!(first.closed().await, (4014, "replaced".into()));
    bob.expect_silence(Duration::from_millis(800)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_resume_racing_the_end_of_grace_is_either_seamless_or_refused() {
    let server = start(short_grace()).await;
    let addr = server.local_addr();
    let (mut seamless, mut refused_count) = (0, 0);
    for attempt in 0..8u64 {
        let room = format!("race{attempt}");
        let ann = Client::join(addr, &room, "resumable=true").await;
        let token = ann.welcome.resume_token.clone().unwrap();
        let mut bob = Client::join(addr, &room, "").await;
        drop(ann);
        // Around the 600 ms deadline: from well before to well after.
        tokio::time::sleep(Duration::from_millis(450 + attempt * 40)).await;
        let mut socket = raw(addr, &format!("/ws/{room}?resume={token}")).await;
        match tokio_stream_next(&mut socket).await {
            ServerMessage::Welcome(welcome) => {
                assert!(welcome.resumed);
                bob.expect_silence(Duration::from_millis(700)).await;
                seamless += 1;
            }
            ServerMessage::Error { code, .. } => {
                assert_eq!(code, ErrorCode::ResumeFailed);
                assert!(matches!(
                    bob.recv().await,
                    ServerMessage::PeerLeft {
                        reason: LeaveReason::Timeout,
                        ..
                    }
                ));
                refused_count += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        seamless >= 1 && refused_count >= 1,
        "{seamless} seamless, {refused_count} refused"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_detached_peer_stays_until_reported_gone() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut ann = Client::join(addr, "r", "").await;
    let mut bob = Client::join(addr, "r", "").await;
    let mut cid = Client::join(addr, "r", "").await;
    ann.recv().await;
    ann.recv().await;
    bob.recv().await;
    ann.send(ClientMessage::Detach).await;
    assert_eq!(ann.closed().await, (1000, "detached".into()));
    bob.expect_silence(QUIET).await;
    let late = Client::join(addr, "r", "").await;
    assert!(
        late.welcome.peers.iter().any(|p| p.id == ann.id()),
        "still a member"
    );
    bob.recv().await;
    cid.recv().await;
    bob.send(ClientMessage::Gone { peer: ann.id() }).await;
    for client in [&mut bob, &mut cid] {
        assert_eq!(
            client.recv().await,
            ServerMessage::PeerLeft {
                id: ann.id(),
                reason: LeaveReason::Gone
            }
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_host_kicks_others_cannot() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut host = Client::join(addr, "r", "").await;
    let mut ann = Client::join(addr, "r", "").await;
    let mut bob = Client::join(addr, "r", "").await;
    host.recv().await;
    host.recv().await;
    ann.recv().await;
    ann.send(ClientMessage::Kick { peer: bob.id() }).await;
    assert_eq!(ann.recv_error().await, ErrorCode::NotHost);
    host.send(ClientMessage::Kick { peer: bob.id() }).await;
    assert_eq!(bob.closed().await, (4011, "kicked".into()));
    for client in [&mut host, &mut ann] {
        assert_eq!(
            client.recv().await,
            ServerMessage::PeerLeft {
                id: bob.id(),
                reason: LeaveReason::Kicked
            }
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_host_updates_metadata_and_bad_options_are_refused() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let mut host = Client::join(addr, "r", "public=true").await;
    let mut ann = Client::join(addr, "r", "").await;
    host.recv().await;
    host.send(ClientMessage::SetMeta {
        meta: json(r#"{"round":2}"#),
    })
    .await;
    assert_eq!(
        ann.recv().await,
        ServerMessage::RoomUpdated {
            meta: json(r#"{"round":2}"#)
        }
    );
    let (_, body) = http_get(addr, "/rooms").await;
    assert!(body.contains(r#""round":2"#), "{body}");
    for bad in [
        "capacity=1",
        "capacity=999",
        "topology=ring",
        "host_leaves=never",
        "meta=%5B1%5D",
        "public=maybe",
        "match=1",
    ] {
        let path = if bad.starts_with("match") {
            format!("/ws?{bad}")
        } else {
            format!("/ws/x?{bad}")
        };
        let (code, close, _) = refused(addr, &path, Encoding::Json).await;
        assert_eq!((code, close), (ErrorCode::InvalidOptions, 4013), "{bad}");
    }
    assert_eq!(
        refused(addr, "/ws/missing?create=false", Encoding::Json)
            .await
            .0,
        ErrorCode::NoSuchRoom
    );
    assert_eq!(
        refused(addr, "/ws", Encoding::Json).await.0,
        ErrorCode::InvalidRoom
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_full_capacity_room_refuses_more() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let _a = Client::join(addr, "pair", "capacity=2").await;
    let _b = Client::join(addr, "pair", "").await;
    assert_eq!(
        refused(addr, "/ws/pair", Encoding::Json).await.0,
        ErrorCode::RoomFull
    );
    server.shutdown().await;
}
