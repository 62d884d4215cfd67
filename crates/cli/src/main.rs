//! `switchboard`: the command-line front of Switchboard.

mod serve;

use clap::{Parser, Subcommand};

/// Real-time networking for browser games: signaling hub with rooms.
#[derive(Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (HTTP + WebSocket signaling) until Ctrl-C or SIGTERM.
    Serve(Box<serve::ServeArgs>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(*args),
    }
}
