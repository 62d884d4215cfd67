//! `switchboard`: the command-line front of Switchboard.

mod sdp;
mod serve;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: frames are allocated on one worker thread and freed on
/// another, which glibc serialises on its arena locks (bench/README.md has the figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Compact SDP codes for pairing without a server: encode, decode, QR codes.
    #[command(subcommand)]
    Sdp(sdp::SdpCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Sdp(command) => sdp::run(command),
    }
}
