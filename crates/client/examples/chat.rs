//! A terminal chat that talks with the browser's `/demo/chat`: every line you type goes to the
//! room on the `reliable` channel; what others say is printed.
//!
//! `cargo run -p switchboard-client --example chat -- ws://127.0.0.1:8080 lobby [NAME]`
//! (then open `http://127.0.0.1:8080/demo/chat?room=lobby` in a browser).

use switchboard_client::{Data, Event, JoinOptions, Lobby, Room};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let server = args.next().unwrap_or_else(|| "ws://127.0.0.1:8080".into());
    let room_name = args.next().unwrap_or_else(|| "lobby".into());
    let options = JoinOptions {
        user: args.next(),
        ..JoinOptions::default()
    };
    let mut room = Room::join(&Lobby::Room(room_name).url(&server), options).await?;
    println!(
        "joined {} as {}; type a line to send it, Ctrl-D to leave",
        room.room(),
        room.id()
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(text) if !text.is_empty() => {
                    let sent = room.broadcast("reliable", text.as_str())?;
                    println!("(sent to {sent})");
                }
                Some(_) => {}
                None => break,
            },
            event = room.next_event() => match event {
                Some(Event::PeerConnected(peer)) => println!("* {} connected", short(&peer.id.to_string())),
                Some(Event::PeerLeft { peer, reason }) => println!("* {} left ({reason})", short(&peer.id.to_string())),
                Some(Event::Message { peer, data: Data::Text(text), .. }) => println!("{}: {text}", short(&peer.to_string())),
                Some(Event::Error { error, .. }) => eprintln!("! {error}"),
                Some(Event::Closed { code, reason }) => {
                    println!("room closed: {code} ({reason})");
                    return Ok(());
                }
                Some(_) => {}
                None => return Ok(()),
            },
        }
    }
    room.close();
    while let Some(event) = room.next_event().await {
        if matches!(event, Event::Closed { .. }) {
            break;
        }
    }
    Ok(())
}

fn short(id: &str) -> &str {
    &id[..id.len().min(6)]
}
