//! Shared by the binary's tests: starting `switchboard serve`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// Starts the binary and reads the HTTP address it prints.
pub fn serve(args: &[&str], env: &[(&str, &str)]) -> (Child, SocketAddr, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    // The banner is one line, plus one line per STUN address unless STUN is off.
    let banner_lines = if args.contains(&"--no-stun") { 1 } else { 2 };
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut banner = String::new();
    for _ in 0..banner_lines {
        out.read_line(&mut banner).expect("reads stdout");
    }
    let addr = banner
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("an address in the banner:\n{banner}"));
    (child, addr, banner)
}
