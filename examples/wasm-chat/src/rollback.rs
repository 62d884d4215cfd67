//! GGRS in the browser over a room's unreliable channel (the client's `ggrs` feature): a
//! deterministic toy game of two dots, ticked by the page at 60 Hz, with the checksum of every
//! frame kept so two pages can compare what they simulated.

use std::collections::HashMap;

use ggrs::{DesyncDetection, GgrsEvent, GgrsRequest, P2PSession, PlayerType, SessionBuilder};
use switchboard_client::{PeerId, Room};

use crate::toy_game::{input, Game, Toy};
use wasm_bindgen::prelude::*;

/// One player of the toy rollback game, for JavaScript.
#[wasm_bindgen]
pub struct WasmRollback {
    session: P2PSession<Toy>,
    handle: usize,
    game: Game,
    checksums: HashMap<i32, u128>,
    rollbacks: u32,
    problems: Vec<String>,
}

impl WasmRollback {
    /// A P2P session with `other` over `room`'s unreliable channel (taken out of its events).
    pub(crate) fn start(room: &Room, other: PeerId) -> Result<Self, JsError> {
        let mut ids = [room.id(), other];
        ids.sort();
        let handle = usize::from(ids[0] != room.id());
        let socket = room
            .take_channel("unreliable")
            .map_err(|e| JsError::new(&e.to_string()))?;
        let ggrs = |e: ggrs::GgrsError| JsError::new(&e.to_string());
        let session = SessionBuilder::<Toy>::new()
            .with_num_players(2)
            .map_err(ggrs)?
            .with_desync_detection_mode(DesyncDetection::On { interval: 10 })
            .add_player(PlayerType::Local, handle)
            .map_err(ggrs)?
            .add_player(PlayerType::Remote(other), 1 - handle)
            .map_err(ggrs)?
            .start_p2p_session(socket)
            .map_err(ggrs)?;
        Ok(Self {
            session,
            handle,
            game: Game::default(),
            checksums: HashMap::new(),
            rollbacks: 0,
            problems: Vec::new(),
        })
    }
}

#[wasm_bindgen]
impl WasmRollback {
    /// One frame: the network, our input, and what GGRS asks (save, load, advance).
    pub fn tick(&mut self) {
        self.session.poll_remote_clients();
        for event in self.session.events() {
            match event {
                GgrsEvent::DesyncDetected { frame, .. } => {
                    self.problems.push(format!("desync at frame {frame}"))
                }
                GgrsEvent::Disconnected { addr } => {
                    self.problems.push(format!("{addr} disconnected"))
                }
                _ => {}
            }
        }
        if self.session.current_state() != ggrs::SessionState::Running {
            return;
        }
        let frame = self.session.current_frame();
        if let Err(error) = self
            .session
            .add_local_input(self.handle, input(self.handle, frame))
        {
            self.problems.push(error.to_string());
            return;
        }
        let requests = match self.session.advance_frame() {
            Ok(requests) => requests,
            // Too far ahead of the other player: wait a tick.
            Err(ggrs::GgrsError::PredictionThreshold) => return,
            Err(error) => {
                self.problems.push(error.to_string());
                return;
            }
        };
        for request in requests {
            match request {
                GgrsRequest::SaveGameState { cell, frame } => {
                    cell.save(frame, Some(self.game.clone()), Some(self.game.checksum()));
                }
                GgrsRequest::LoadGameState { cell, .. } => {
                    if let Some(game) = cell.load() {
                        self.game = game;
                        self.rollbacks += 1;
                    }
                }
                GgrsRequest::AdvanceFrame { inputs } => {
                    self.game.advance(&inputs);
                    self.checksums.insert(self.game.frame, self.game.checksum());
                }
            }
        }
    }

    /// The newest frame both players' inputs are known for.
    #[wasm_bindgen(getter)]
    pub fn confirmed(&self) -> i32 {
        self.session.confirmed_frame()
    }

    /// How many times GGRS loaded an earlier state.
    #[wasm_bindgen(getter)]
    pub fn rollbacks(&self) -> u32 {
        self.rollbacks
    }

    /// Desyncs, disconnects and errors seen.
    pub fn problems(&self) -> Vec<String> {
        self.problems.clone()
    }

    /// The checksum (decimal) of every frame from 1 to `last`; empty for a frame never simulated.
    pub fn checksums(&self, last: i32) -> Vec<String> {
        (1..=last)
            .map(|frame| {
                self.checksums
                    .get(&frame)
                    .map_or_else(String::new, u128::to_string)
            })
            .collect()
    }
}
