//! A deterministic toy game for GGRS: two dots that accelerate by their player's input. Shared
//! by the browser demo (`rollback`) and the native GGRS test (which includes this file), so both
//! run the same game.

use switchboard_client::PeerId;

/// The game's types for GGRS.
pub struct Toy;

impl ggrs::Config for Toy {
    type Input = u8;
    type InputPredictor = ggrs::PredictRepeatLast;
    type State = Game;
    type Address = PeerId;
}

/// The game's state: two dots that accelerate by their player's input each frame.
#[derive(Clone, Default)]
pub struct Game {
    /// Frames simulated.
    pub frame: i32,
    /// Each dot's position.
    pub position: [i64; 2],
    /// Each dot's velocity.
    pub velocity: [i64; 2],
}

impl Game {
    /// One frame with both players' inputs.
    pub fn advance(&mut self, inputs: &[(u8, ggrs::InputStatus)]) {
        for (player, (input, _)) in inputs.iter().enumerate() {
            self.velocity[player] += i64::from(*input) - 1;
            self.position[player] = (self.position[player] + self.velocity[player]) % 1_000_003;
        }
        self.frame += 1;
    }

    /// FNV-1a over the state: the same on every machine.
    pub fn checksum(&self) -> u128 {
        let mut hash: u128 = 0x6c62272e07bb014262b821756295c58d;
        let fields = [
            i64::from(self.frame),
            self.position[0],
            self.position[1],
            self.velocity[0],
            self.velocity[1],
        ];
        for byte in fields.iter().flat_map(|f| f.to_le_bytes()) {
            hash ^= u128::from(byte);
            hash = hash.wrapping_mul(0x0000000001000000000000000000013B);
        }
        hash
    }
}

/// A player's input at a frame: changes every few frames, so predictions miss and GGRS rolls
/// back.
pub fn input(handle: usize, frame: i32) -> u8 {
    ((frame / 5 + handle as i32 * 3) % 3) as u8
}
