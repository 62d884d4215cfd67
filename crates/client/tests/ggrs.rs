//! GGRS over rooms (the `ggrs` feature): two native clients run a P2P rollback session of a
//! deterministic toy game over the unreliable channel, with sends dropped on purpose, and end
//! with identical states on every confirmed frame.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ggrs::{
    DesyncDetection, GgrsEvent, GgrsRequest, Message, NonBlockingSocket, P2PSession, PlayerType,
    SessionBuilder, SessionState,
};
use switchboard_client::{ChannelSocket, Event, JoinOptions, Lobby, PeerId, Room};
use switchboard_server::{Config, Server};

const FRAMES: i32 = 300;
const WAIT: Duration = Duration::from_secs(20);

// The same toy game the browser demo runs.
#[path = "../../../examples/wasm-chat/src/toy_game.rs"]
mod toy_game;
use toy_game::{input, Game, Toy};

/// Drops every `1 / every`-th send (deterministic), on top of the real channel.
struct Lossy {
    inner: ChannelSocket,
    state: u64,
    every: u64,
    dropped: Arc<AtomicUsize>,
}

impl NonBlockingSocket<PeerId> for Lossy {
    fn send_to(&mut self, message: &Message, peer: &PeerId) {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        if self.state.is_multiple_of(self.every) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.inner.send_to(message, peer);
    }

    fn receive_all_messages(&mut self) -> Vec<(PeerId, Message)> {
        self.inner.receive_all_messages()
    }
}

/// One player: its session, its game, the checksum of every frame it simulated (the last
/// simulation of a frame wins, as after a rollback), and how often it rolled back.
struct Player {
    session: P2PSession<Toy>,
    handle: usize,
    game: Game,
    checksums: HashMap<i32, u128>,
    rollbacks: usize,
}

impl Player {
    fn tick(&mut self) {
        self.session.poll_remote_clients();
        for event in self.session.events() {
            match event {
                GgrsEvent::DesyncDetected { frame, .. } => panic!("desync at frame {frame}"),
                GgrsEvent::Disconnected { addr } => panic!("{addr} disconnected"),
                _ => {}
            }
        }
        if self.session.current_state() != SessionState::Running {
            return;
        }
        let frame = self.session.current_frame();
        self.session
            .add_local_input(self.handle, input(self.handle, frame))
            .expect("local input");
        let requests = match self.session.advance_frame() {
            Ok(requests) => requests,
            // Too far ahead of the other player: wait a tick.
            Err(ggrs::GgrsError::PredictionThreshold) => return,
            Err(error) => panic!("advance: {error}"),
        };
        for request in requests {
            match request {
                GgrsRequest::SaveGameState { cell, frame } => {
                    assert_eq!(frame, self.game.frame);
                    let checksum = self.game.checksum();
                    cell.save(frame, Some(self.game.clone()), Some(checksum));
                }
                GgrsRequest::LoadGameState { cell, .. } => {
                    self.game = cell.load().expect("a saved state");
                    self.rollbacks += 1;
                }
                GgrsRequest::AdvanceFrame { inputs } => {
                    self.game.advance(&inputs);
                    self.checksums.insert(self.game.frame, self.game.checksum());
                }
            }
        }
    }
}

async fn connected(room: &mut Room) -> PeerId {
    let wait = async {
        while let Some(event) = room.next_event().await {
            if let Event::PeerConnected(peer) = event {
                return peer.id;
            }
        }
        panic!("room closed before a connection");
    };
    tokio::time::timeout(WAIT, wait).await.expect("connected")
}

fn player(room: &Room, other: PeerId, seed: u64, dropped: Arc<AtomicUsize>) -> Player {
    let mut ids = [room.id(), other];
    ids.sort();
    let handle = usize::from(ids[0] != room.id());
    let socket = Lossy {
        inner: room.take_channel("unreliable").expect("channel"),
        state: seed,
        every: 7,
        dropped,
    };
    let session = SessionBuilder::<Toy>::new()
        .with_num_players(2)
        .expect("players")
        .with_desync_detection_mode(DesyncDetection::On { interval: 10 })
        .add_player(PlayerType::Local, handle)
        .expect("local")
        .add_player(PlayerType::Remote(other), 1 - handle)
        .expect("remote")
        .start_p2p_session(socket)
        .expect("p2p session");
    Player {
        session,
        handle,
        game: Game::default(),
        checksums: HashMap::new(),
        rollbacks: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_native_peers_roll_back_to_identical_states_under_loss() {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..Config::default()
    };
    config.stun.listen = vec!["127.0.0.1:0".parse().expect("address")];
    config.stun.workers = 1;
    let server = Server::start(config).await.expect("server starts");
    // As a rollback game meets: auto-match for two players of one game mode.
    let url = Lobby::Match {
        players: 2,
        key: Some("toy".into()),
    }
    .url(&format!("ws://{}", server.local_addr()));
    let mut a = Room::join(&url, JoinOptions::default())
        .await
        .expect("a joins");
    let mut b = Room::join(&url, JoinOptions::default())
        .await
        .expect("b joins");
    let (b_id, a_id) = (connected(&mut a).await, connected(&mut b).await);
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut players = [
        player(&a, b_id, 0x9e3779b97f4a7c15, dropped.clone()),
        player(&b, a_id, 0xd1b54a32d192ed03, dropped.clone()),
    ];

    // 60 frames a second until both confirmed every frame of the game well before their
    // current one (so a correction of any of them has been simulated since).
    let mut tick = tokio::time::interval(Duration::from_millis(16));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        tick.tick().await;
        for player in &mut players {
            player.tick();
        }
        let confirmed = players
            .iter()
            .map(|p| p.session.confirmed_frame())
            .min()
            .unwrap_or(0);
        if confirmed >= FRAMES + 10 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck: frames {:?}, confirmed {confirmed}",
            players.iter().map(|p| p.game.frame).collect::<Vec<_>>()
        );
    }

    for frame in 1..=FRAMES {
        let checksum = players[0].checksums.get(&frame);
        assert!(checksum.is_some(), "frame {frame} simulated");
        assert_eq!(checksum, players[1].checksums.get(&frame), "frame {frame}");
    }
    eprintln!(
        "{} sends dropped; rollbacks {:?}",
        dropped.load(Ordering::Relaxed),
        players.iter().map(|p| p.rollbacks).collect::<Vec<_>>()
    );
    assert!(dropped.load(Ordering::Relaxed) > 20, "loss was simulated");
    assert!(
        players.iter().any(|p| p.rollbacks > 0),
        "predictions missed and GGRS rolled back"
    );
    drop(players);
    a.close();
    b.close();
}
