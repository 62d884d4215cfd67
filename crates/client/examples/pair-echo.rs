//! A Rust peer that pairs by compact codes (no server) and sends every message back on the
//! channel it came on; prints one line per event (for trying pairing, and for the browser tests).
//!
//! `cargo run -p switchboard-client --example pair-echo -- offer` prints `offer <code>` and
//! waits for the line `answer <code>` on stdin; `... -- answer <offer-code>` prints
//! `answer <code>`. Then: `open`, `message <channel> text|binary <bytes>`, `closed <code>`.
//! The line `close` on stdin closes the connection.

use std::io::Write;

use switchboard_client::{
    ConnectOptions, Connection, ConnectionEvent, PairingAnswer, PairingOffer,
};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() {
    let code = match run().await {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("Error: {error}");
            1
        }
    };
    // tokio reads stdin on a blocking thread that would keep the runtime (and so the process)
    // alive until the next line: exit now.
    std::process::exit(code);
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut connection = match (args.next().as_deref(), args.next()) {
        (Some("offer"), None) => {
            let offer = PairingOffer::create(ConnectOptions::default()).await?;
            say(&format!("offer {}", offer.code().code()));
            let line = stdin.next_line().await?.unwrap_or_default();
            let code = line
                .strip_prefix("answer ")
                .ok_or("expected `answer <code>`")?;
            offer.accept(code.trim()).await?
        }
        (Some("answer"), Some(code)) => {
            let answer = PairingAnswer::answer(&code, ConnectOptions::default()).await?;
            say(&format!("answer {}", answer.code().code()));
            answer.connected().await?
        }
        _ => return Err("usage: pair-echo offer | pair-echo answer <offer-code>".into()),
    };
    say("open");
    echo(&mut connection, &mut stdin).await
}

async fn echo(
    connection: &mut Connection,
    stdin: &mut tokio::io::Lines<BufReader<tokio::io::Stdin>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = stdin.next_line(), if stdin_open => {
                if matches!(line?.as_deref(), None | Some("close")) {
                    stdin_open = false;
                    connection.close();
                }
            }
            event = connection.next_event() => match event {
                Some(ConnectionEvent::Message { channel, data }) => {
                    let kind = if data.is_text() { "text" } else { "binary" };
                    say(&format!("message {channel} {kind} {}", data.as_bytes().len()));
                    if let Err(error) = connection.send(&channel, data) {
                        say(&format!("error {} {}", error.code, error.message));
                    }
                }
                Some(ConnectionEvent::Error(error)) => say(&format!("error {} {}", error.code, error.message)),
                Some(ConnectionEvent::Closed { code, .. }) => {
                    say(&format!("closed {code}"));
                    return Ok(());
                }
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
