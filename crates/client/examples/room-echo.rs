//! A Rust peer that joins a room and sends every message back to its sender on the channel it
//! came on; prints one line per event (for trying the client, and for the browser tests).
//!
//! `cargo run -p switchboard-client --example room-echo -- ws://127.0.0.1:8080/ws/lobby`
//!
//! Lines: `joined <id>`, `join <peer>`, `connect <peer>`, `message <peer> <channel> text|binary
//! <bytes>`, `leave <peer> <reason>`, `error <code> <message>`, `closed <code>`. The line
//! `close` on stdin leaves the room; `hello <channel> <count> <bytes>` sends `count` messages of
//! `bytes` bytes to every connected peer (message `i` starts with its number, big endian u32).

use std::io::Write;

use switchboard_client::{Event, JoinOptions, Room};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws/lobby".into());
    let mut room = Room::join(&url, JoinOptions::default()).await?;
    say(&format!("joined {}", room.id()));
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = stdin.next_line(), if stdin_open => match line?.as_deref().map(str::split_whitespace).map(Iterator::collect::<Vec<_>>).as_deref() {
                None | Some(["close"]) => {
                    stdin_open = false;
                    room.close();
                }
                Some(["hello", channel, count, bytes]) => {
                    let (count, bytes): (u32, usize) = (count.parse()?, bytes.parse()?);
                    for i in 0..count {
                        let mut message = vec![(i % 251) as u8; bytes.max(4)];
                        message[..4].copy_from_slice(&i.to_be_bytes());
                        if let Err(error) = room.broadcast(channel, message) {
                            say(&format!("error {} {}", error.code, error.message));
                        }
                    }
                }
                Some(other) => say(&format!("error bad_command {other:?}")),
            },
            event = room.next_event() => match event {
                Some(Event::PeerJoined(peer)) => say(&format!("join {}", peer.id)),
                Some(Event::PeerConnected(peer)) => say(&format!("connect {}", peer.id)),
                Some(Event::PeerLeft { peer, reason }) => say(&format!("leave {} {reason}", peer.id)),
                Some(Event::Message { peer, channel, data }) => {
                    let kind = if data.is_text() { "text" } else { "binary" };
                    say(&format!("message {peer} {channel} {kind} {}", data.as_bytes().len()));
                    if let Err(error) = room.send(peer, &channel, data) {
                        say(&format!("error {} {}", error.code, error.message));
                    }
                }
                Some(Event::Error { error, .. }) => say(&format!("error {} {}", error.code, error.message)),
                Some(Event::Closed { code, .. }) => {
                    say(&format!("closed {code}"));
                    return Ok(());
                }
                Some(_) => {}
                None => return Ok(()),
            },
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
