//! The game itself, as a pure state machine: players push balls around a walled arena. Inputs in,
//! `tick` advances the world by a fixed step, `snapshot` is what every browser draws.

use std::collections::HashMap;

use serde::Serialize;

/// Arena size in world units.
pub const WIDTH: f32 = 800.0;
/// Arena size in world units.
pub const HEIGHT: f32 = 500.0;
const PLAYER_RADIUS: f32 = 16.0;
const BALL_RADIUS: f32 = 12.0;
const ACCELERATION: f32 = 900.0;
const FRICTION: f32 = 3.0;
const BALLS: usize = 6;

/// Who a player is (the server peer's id, shortened for the wire).
pub type PlayerId = String;

#[derive(Debug, Clone, Copy, Default)]
struct Body {
    x: f32,
    y: f32,
    vx: f32,
    vy: f32,
}

#[derive(Debug, Clone)]
struct Player {
    body: Body,
    hue: u16,
    /// Direction the player pushes, each component in -1..=1.
    push: (f32, f32),
    /// Sequence number of the newest input applied (unreliable inputs arrive out of order).
    last_seq: u64,
    score: u32,
}

/// One player's input: a direction and a sequence number.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct Input {
    /// Horizontal push, -1 to 1.
    pub x: f32,
    /// Vertical push, -1 to 1.
    pub y: f32,
    /// Increases with every input the browser sends.
    pub seq: u64,
}

/// What browsers draw: `[id, x, y, hue, score]` per player and `[x, y]` per ball.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// Tick number.
    pub t: u64,
    /// Players.
    pub p: Vec<(PlayerId, i32, i32, u16, u32)>,
    /// Balls.
    pub b: Vec<(i32, i32)>,
}

/// The whole world.
pub struct World {
    players: HashMap<PlayerId, Player>,
    balls: Vec<Body>,
    tick: u64,
}

impl Default for World {
    fn default() -> Self {
        let balls = (0..BALLS)
            .map(|i| Body {
                x: WIDTH * (i as f32 + 1.0) / (BALLS as f32 + 1.0),
                y: HEIGHT / 2.0,
                ..Body::default()
            })
            .collect();
        Self {
            players: HashMap::new(),
            balls,
            tick: 0,
        }
    }
}

impl World {
    /// A player arrives, at a spot and colour derived from its id.
    pub fn join(&mut self, id: PlayerId) {
        let seed = id
            .bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let body = Body {
            x: 40.0 + (seed % 700) as f32,
            y: 40.0 + (seed / 700 % 400) as f32,
            ..Body::default()
        };
        self.players.insert(
            id,
            Player {
                body,
                hue: (seed % 360) as u16,
                push: (0.0, 0.0),
                last_seq: 0,
                score: 0,
            },
        );
    }

    /// A player leaves.
    pub fn leave(&mut self, id: &str) {
        self.players.remove(id);
    }

    /// Applies an input unless a newer one was already applied; clamps it.
    pub fn input(&mut self, id: &str, input: Input) {
        let Some(player) = self.players.get_mut(id) else {
            return;
        };
        if input.seq <= player.last_seq || !input.x.is_finite() || !input.y.is_finite() {
            return;
        }
        player.last_seq = input.seq;
        player.push = (input.x.clamp(-1.0, 1.0), input.y.clamp(-1.0, 1.0));
    }

    /// Number of players.
    pub fn players(&self) -> usize {
        self.players.len()
    }

    /// Advances the world by `dt` seconds.
    pub fn tick(&mut self, dt: f32) {
        self.tick += 1;
        for player in self.players.values_mut() {
            let b = &mut player.body;
            b.vx += player.push.0 * ACCELERATION * dt;
            b.vy += player.push.1 * ACCELERATION * dt;
            step(b, dt, PLAYER_RADIUS);
        }
        for ball in &mut self.balls {
            step(ball, dt, BALL_RADIUS);
        }
        for player in self.players.values_mut() {
            for ball in &mut self.balls {
                if collide(&mut player.body, ball, PLAYER_RADIUS + BALL_RADIUS) {
                    player.score += 1;
                }
            }
        }
    }

    /// The state every browser draws.
    pub fn snapshot(&self) -> Snapshot {
        let mut p: Vec<_> = self
            .players
            .iter()
            .map(|(id, pl)| {
                (
                    id.clone(),
                    pl.body.x as i32,
                    pl.body.y as i32,
                    pl.hue,
                    pl.score,
                )
            })
            .collect();
        p.sort_by(|a, b| a.0.cmp(&b.0));
        Snapshot {
            t: self.tick,
            p,
            b: self
                .balls
                .iter()
                .map(|b| (b.x as i32, b.y as i32))
                .collect(),
        }
    }
}

fn step(body: &mut Body, dt: f32, radius: f32) {
    let damping = (1.0 - FRICTION * dt).max(0.0);
    body.vx *= damping;
    body.vy *= damping;
    body.x += body.vx * dt;
    body.y += body.vy * dt;
    if body.x < radius || body.x > WIDTH - radius {
        body.vx = -body.vx;
        body.x = body.x.clamp(radius, WIDTH - radius);
    }
    if body.y < radius || body.y > HEIGHT - radius {
        body.vy = -body.vy;
        body.y = body.y.clamp(radius, HEIGHT - radius);
    }
}

/// Pushes a ball out of a player and gives it the player's speed plus a kick; true on contact.
fn collide(player: &mut Body, ball: &mut Body, distance: f32) -> bool {
    let (dx, dy) = (ball.x - player.x, ball.y - player.y);
    let d = (dx * dx + dy * dy).sqrt();
    if d >= distance || d == 0.0 {
        return false;
    }
    let (nx, ny) = (dx / d, dy / d);
    ball.x = player.x + nx * distance;
    ball.y = player.y + ny * distance;
    let speed = (player.vx * nx + player.vy * ny).max(0.0) + 60.0;
    ball.vx = nx * speed * 1.5;
    ball.vy = ny * speed * 1.5;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_move_players_and_stale_inputs_are_ignored() {
        let mut world = World::default();
        world.join("a".into());
        let start = world.snapshot().p[0].1;
        world.input(
            "a",
            Input {
                x: 1.0,
                y: 0.0,
                seq: 2,
            },
        );
        world.input(
            "a",
            Input {
                x: -1.0,
                y: 0.0,
                seq: 1,
            },
        );
        for _ in 0..30 {
            world.tick(1.0 / 30.0);
        }
        assert!(
            world.snapshot().p[0].1 > start,
            "moved right; the late input was ignored"
        );
        world.input(
            "a",
            Input {
                x: f32::NAN,
                y: 0.0,
                seq: 3,
            },
        );
        world.tick(1.0 / 30.0);
        assert_eq!(world.snapshot().t, 31);
    }

    #[test]
    fn everything_stays_in_the_arena() {
        let mut world = World::default();
        for i in 0..8 {
            world.join(format!("p{i}"));
            world.input(
                &format!("p{i}"),
                Input {
                    x: if i % 2 == 0 { 1.0 } else { -1.0 },
                    y: 1.0,
                    seq: 1,
                },
            );
        }
        for _ in 0..600 {
            world.tick(1.0 / 30.0);
        }
        let snapshot = world.snapshot();
        assert!(snapshot
            .p
            .iter()
            .all(|p| (0..=WIDTH as i32).contains(&p.1) && (0..=HEIGHT as i32).contains(&p.2)));
        assert!(snapshot
            .b
            .iter()
            .all(|b| (0..=WIDTH as i32).contains(&b.0) && (0..=HEIGHT as i32).contains(&b.1)));
        world.leave("p0");
        assert_eq!(world.players(), 7);
    }
}
