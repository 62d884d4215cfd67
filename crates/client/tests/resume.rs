//! Resume and detach with native clients, as the browser client does them: a resumable peer
//! whose process dies takes its place back (same id) with its token within the grace period,
//! and the others never see it leave; a peer that detaches (close-after-connect) keeps talking over its data
//! channels, and leaves once, when it closes.

use std::time::Duration;

use switchboard_client::{Data, Event, JoinOptions, PeerId, Room};
use switchboard_server::{Config, Server};

const WAIT: Duration = Duration::from_secs(20);

async fn server() -> Server {
    server_with_grace(Duration::from_secs(10)).await
}

async fn server_with_grace(resume_grace: Duration) -> Server {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..Config::default()
    };
    config.limits.resume_grace_ms = resume_grace.as_millis() as u64;
    config.stun.listen = vec!["127.0.0.1:0".parse().expect("address")];
    config.stun.workers = 1;
    Server::start(config).await.expect("server starts")
}

/// Waits for the first event that `pick` accepts, failing on a leave of anyone in `no_leave`.
async fn expect<T>(
    room: &mut Room,
    what: &str,
    no_leave: &[PeerId],
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    let wait = async {
        while let Some(event) = room.next_event().await {
            if let Event::PeerLeft { peer, reason } = &event {
                assert!(
                    !no_leave.contains(&peer.id),
                    "{} left ({reason}) while waiting for {what}",
                    peer.id
                );
            }
            if let Some(found) = pick(&event) {
                return found;
            }
        }
        panic!("events ended before {what}");
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
}

fn connected(event: &Event) -> Option<PeerId> {
    match event {
        Event::PeerConnected(peer) => Some(peer.id),
        _ => None,
    }
}

fn text_on(channel: &'static str) -> impl FnMut(&Event) -> Option<String> {
    move |event| match event {
        Event::Message {
            channel: c,
            data: Data::Text(text),
            ..
        } if c == channel => Some(text.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumable_peer_whose_process_dies_comes_back_with_its_id_and_nobody_saw_it_leave() {
    let server = server().await;
    let url = format!("ws://{}/ws/resume", server.local_addr());
    let resumable = JoinOptions {
        resumable: true,
        ..JoinOptions::default()
    };
    // The peer that will die runs on its own runtime: shutting that down drops its sockets
    // without a close, as a killed process would.
    let (doomed, room, token) = doomed_peer(&url);
    let id = room.id();
    let mut other = Room::join(&url, JoinOptions::default())
        .await
        .expect("the other joins");
    let other_id = other.id();
    assert_eq!(
        expect(&mut other, "the first connect", &[id], connected).await,
        id
    );

    // The process dies: no close frame, no goodbye. The server suspends it (nobody is told)
    // for its resume grace period.
    doomed.shutdown_background();
    std::mem::forget(room);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // It comes back with its token: the same id, resumed, and a fresh token; the others see it
    // connect again, never leave.
    let mut back = Room::join(
        &url,
        JoinOptions {
            resume: Some(token.clone()),
            ..resumable.clone()
        },
    )
    .await
    .expect("resumes");
    assert_eq!(back.id(), id);
    assert!(back.resumed());
    assert_ne!(back.resume_token().as_deref(), Some(token.as_str()));
    assert_eq!(
        expect(&mut other, "the reconnect", &[id], connected).await,
        id
    );
    assert_eq!(
        expect(&mut back, "its connect", &[other_id], connected).await,
        other_id
    );
    other.send(id, "reliable", "welcome back").expect("sent");
    assert_eq!(
        expect(&mut back, "a message", &[other_id], text_on("reliable")).await,
        "welcome back"
    );

    // A token works once.
    let again = Room::join(
        &url,
        JoinOptions {
            resume: Some(token),
            ..resumable
        },
    )
    .await;
    assert_eq!(again.err().map(|e| e.code), Some("resume_failed".into()));
    back.close();
    other.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_peer_keeps_talking_over_its_channels_and_leaves_once_when_it_closes() {
    let server = server().await;
    let url = format!("ws://{}/ws/detach", server.local_addr());
    let mut a = Room::join(&url, JoinOptions::default())
        .await
        .expect("a joins");
    let mut b = Room::join(&url, JoinOptions::default())
        .await
        .expect("b joins");
    let (a_id, b_id) = (a.id(), b.id());
    expect(&mut a, "a connects", &[b_id], connected).await;
    expect(&mut b, "b connects", &[a_id], connected).await;

    // a detaches: the server closes its socket on purpose; its room goes on.
    a.detach().expect("detach sent");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!a.is_closed(), "detaching does not close the room");
    assert!(a.poll().iter().all(|e| !matches!(e, Event::Closed { .. })));
    a.send(b_id, "reliable", "still here").expect("sent");
    assert_eq!(
        expect(&mut b, "a's message", &[a_id], text_on("reliable")).await,
        "still here"
    );
    b.send(a_id, "reliable", "I hear you").expect("sent");
    assert_eq!(
        expect(&mut a, "b's message", &[b_id], text_on("reliable")).await,
        "I hear you"
    );

    // a closes: b sees it leave once (its goodbye over the data channel), and reports it gone
    // to the server, which has it leave the room: a newcomer does not see it.
    a.close();
    let reason = expect(&mut b, "a's leave", &[], |e| match e {
        Event::PeerLeft { peer, reason } if peer.id == a_id => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, "goodbye");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(b
        .poll()
        .iter()
        .all(|e| !matches!(e, Event::PeerLeft { peer, .. } if peer.id == a_id)));
    let mut c = Room::join(&url, JoinOptions::default())
        .await
        .expect("c joins");
    expect(&mut c, "c connects to b", &[], connected).await;
    assert!(c.peers().iter().all(|(p, _)| p.id != a_id), "a is gone");
    b.close();
    c.close();
}

/// Joins `url` resumable on a runtime of its own; returns it, the room and its resume token.
fn doomed_peer(url: &str) -> (tokio::runtime::Runtime, Room, String) {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let options = JoinOptions {
            resumable: true,
            ..JoinOptions::default()
        };
        let room = runtime.block_on(Room::join(&url, options)).expect("joins");
        let token = room.resume_token().expect("a resume token");
        (runtime, room, token)
    })
    .join()
    .expect("the thread ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumable_peer_that_does_not_come_back_within_the_grace_period_leaves_once() {
    let grace = Duration::from_millis(1500);
    let server = server_with_grace(grace).await;
    let url = format!("ws://{}/ws/grace", server.local_addr());
    let (doomed, room, token) = doomed_peer(&url);
    let id = room.id();
    let mut other = Room::join(&url, JoinOptions::default())
        .await
        .expect("the other joins");
    expect(&mut other, "the connect", &[id], connected).await;
    doomed.shutdown_background();
    std::mem::forget(room);
    let died = std::time::Instant::now();
    let (reason, after) = expect(&mut other, "the leave", &[], |e| match e {
        Event::PeerLeft { peer, reason } if peer.id == id => Some((reason.clone(), died.elapsed())),
        _ => None,
    })
    .await;
    // Only the hub can say a resumable peer left (a lost connection to one is a disconnect),
    // and only once the grace period is over.
    assert_eq!(reason, "timeout");
    assert!(
        after >= grace,
        "left after {after:?}, before the {grace:?} grace ended"
    );
    tokio::time::sleep(grace).await;
    assert!(other
        .poll()
        .iter()
        .all(|e| !matches!(e, Event::PeerLeft { peer, .. } if peer.id == id)));
    let late = Room::join(
        &url,
        JoinOptions {
            resume: Some(token),
            resumable: true,
            ..JoinOptions::default()
        },
    )
    .await;
    assert_eq!(late.err().map(|e| e.code), Some("resume_failed".into()));
    other.close();
}
