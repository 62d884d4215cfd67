//! `switchboard serve` as a user runs it: the real binary, its flags, environment and config
//! file, and a real SIGTERM.

use std::process::{Child, Command};
use std::time::Duration;

use futures_util::StreamExt;

mod common;
use common::serve;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects and returns the socket (kept open by the caller) and the first text frame.
async fn first_frame(url: &str) -> (Socket, String) {
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connects");
    let frame = socket.next().await.expect("a frame").expect("no error");
    let text = frame.into_text().expect("text").to_string();
    (socket, text)
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test]
async fn sigterm_closes_peers_with_a_reason_and_exits_cleanly() {
    let (mut child, addr, banner) = serve(
        &["--listen", "127.0.0.1:0", "--stun-listen", "127.0.0.1:0"],
        &[],
    );
    assert!(banner.contains("STUN (UDP): 127.0.0.1:"), "{banner}");
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/lobby"))
        .await
        .expect("connects");
    let welcome = socket.next().await.expect("a frame").expect("no error");
    assert!(welcome
        .to_text()
        .expect("text")
        .contains(r#""type":"welcome""#));

    sigterm(&child);
    let mut close = None;
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(Duration::from_secs(5), socket.next()).await
    {
        if let Message::Close(Some(frame)) = frame {
            close = Some((u16::from(frame.code), frame.reason.to_string()));
            break;
        }
    }
    assert_eq!(
        close,
        Some((u16::from(CloseCode::Away), "shutdown".to_owned()))
    );
    drop(socket);
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn flags_beat_environment_which_beats_the_config_file() {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("switchboard.toml");
    std::fs::write(
        &file,
        "[limits]\nmax_peers_per_room = 1\nmax_message_bytes = 1000\nidle_timeout_ms = 9000\n",
    )
    .unwrap();
    let file = file.to_str().unwrap().to_owned();
    // File says 1000 bytes and 1 peer per room; the environment raises the room to 2; the flag
    // sets the idle timeout.
    let (mut child, addr, _) = serve(
        &[
            "--config",
            &file,
            "--listen",
            "127.0.0.1:0",
            "--no-stun",
            "--idle-timeout-ms",
            "7000",
        ],
        &[("SWITCHBOARD_MAX_PEERS_PER_ROOM", "2")],
    );
    let url = format!("ws://{addr}/ws/r");
    let (_first, welcome) = first_frame(&url).await;
    assert!(welcome.contains(r#""max_message_bytes":1000"#), "{welcome}");
    assert!(welcome.contains(r#""idle_timeout_ms":7000"#), "{welcome}");
    let (_second, welcome) = first_frame(&url).await;
    assert!(welcome.contains("welcome"), "{welcome}");
    let (_third, refusal) = first_frame(&url).await;
    assert!(refusal.contains("room_full"), "{refusal}");
    sigterm(&child);
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn invalid_configuration_is_refused_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--idle-timeout-ms",
            "10",
            "--heartbeat-interval-ms",
            "50",
        ])
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("idle_timeout_ms must be greater than"),
        "{stderr}"
    );
}
