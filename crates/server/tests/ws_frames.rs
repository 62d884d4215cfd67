//! The server's WebSocket layer against a client that writes frames by hand: fragmented
//! messages with control frames between the fragments, messages split across reads, the size
//! limit on both sides for whole and fragmented messages, broken fragment sequences and close
//! frames, and the closing handshake. Real sockets, a real server; the relayed messages are read
//! by an ordinary WebSocket client in the same room.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use switchboard_protocol::{Payload, ServerMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// A WebSocket client that writes and reads frames by hand.
struct HandClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl HandClient {
    /// Upgrades a connection to `path` and reads the welcome.
    async fn join(addr: SocketAddr, path: &str) -> HandClient {
        let mut stream = tcp_from("127.0.0.1", addr).await;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("writes");
        let mut client = HandClient {
            stream,
            buf: Vec::new(),
        };
        let head_end = loop {
            if let Some(at) = client.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            client.fill().await;
        };
        let head = String::from_utf8_lossy(&client.buf[..head_end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "the RFC's accept key: {head}"
        );
        client.buf.drain(..head_end);
        let (opcode, welcome) = client.frame().await.expect("the welcome");
        assert_eq!(opcode, TEXT);
        assert!(String::from_utf8_lossy(&welcome).contains("\"welcome\""));
        client
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
            other => panic!("the server sent nothing more: {other:?}"),
        }
    }

    /// The next server frame (`None` when the connection ends first).
    async fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 2 {
                assert_eq!(self.buf[1] & 0x80, 0, "server frames are not masked");
                assert_ne!(self.buf[0] & 0x80, 0, "server frames are final");
                let (head, len) = match self.buf[1] & 0x7F {
                    126 if self.buf.len() >= 4 => (
                        4,
                        usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                    ),
                    127 if self.buf.len() >= 10 => {
                        let mut be = [0u8; 8];
                        be.copy_from_slice(&self.buf[2..10]);
                        (10, u64::from_be_bytes(be) as usize)
                    }
                    126 | 127 => (usize::MAX, 0),
                    n => (2, usize::from(n)),
                };
                if head != usize::MAX && self.buf.len() >= head + len {
                    let opcode = self.buf[0] & 0x0F;
                    let payload = self.buf[head..head + len].to_vec();
                    self.buf.drain(..head + len);
                    return Some((opcode, payload));
                }
            }
            let mut chunk = [0u8; 65536];
            match tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => panic!("no frame within {WAIT:?}"),
            }
        }
    }

    /// The next frame that is not a pong or ping the server sent.
    async fn next_data_or_close(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            match self.frame().await? {
                (PING | PONG, _) => continue,
                other => return Some(other),
            }
        }
    }

    /// The close code the server closes with, after whatever it sent first.
    async fn close_code(&mut self) -> Option<u16> {
        loop {
            let (opcode, payload) = self.frame().await?;
            if opcode == CLOSE {
                return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("writes");
    }
}

/// A masked client frame.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0xA1u8, 0x5C, 0x07, 0xE3];
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

const HEAD: &str = r#"{"type":"message","to":"room","data":""#;
const TAIL: &str = r#""}"#;

/// A room message of exactly `size` bytes of JSON whose data is a string of `x`.
fn message_of(size: usize) -> Vec<u8> {
    let mut out = HEAD.as_bytes().to_vec();
    out.resize(size - TAIL.len(), b'x');
    out.extend_from_slice(TAIL.as_bytes());
    out
}

/// The length of the relayed data (a JSON string, quotes included) of `message_of(size)`.
fn data_len(size: usize) -> usize {
    size - HEAD.len() - TAIL.len() + 2
}

/// The data of the next relayed message `client` receives.
async fn relayed(client: &mut Client) -> String {
    match client.recv().await {
        ServerMessage::Message {
            data: Payload::Json(raw),
            ..
        } => raw.get().to_owned(),
        other => panic!("expected a relayed message, got {other:?}"),
    }
}

/// A hand client and an ordinary client in `room`.
async fn pair(addr: SocketAddr, room: &str) -> (HandClient, Client) {
    let mut hand = HandClient::join(addr, &format!("/ws/{room}")).await;
    let reader = Client::join(addr, room, "").await;
    let (opcode, joined) = hand.next_data_or_close().await.expect("peer_joined");
    assert_eq!(opcode, TEXT);
    assert!(String::from_utf8_lossy(&joined).contains("peer_joined"));
    (hand, reader)
}

#[tokio::test]
async fn fragments_with_control_frames_between_them_make_one_message_and_each_ping_is_answered() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let (mut hand, mut reader) = pair(addr, "fragments").await;
    let message = message_of(3000);
    let mut bytes = frame(false, TEXT, &message[..1000]);
    bytes.extend(frame(true, PING, b"between"));
    bytes.extend(frame(false, CONTINUATION, &message[1000..1001]));
    bytes.extend(frame(true, PONG, b"unasked"));
    bytes.extend(frame(false, CONTINUATION, &[]));
    bytes.extend(frame(true, CONTINUATION, &message[1001..]));
    hand.write(&bytes).await;
    assert_eq!(
        hand.frame().await,
        Some((PONG, b"between".to_vec())),
        "the ping is answered with its payload"
    );
    let data = relayed(&mut reader).await;
    assert_eq!(data.len(), data_len(3000));
    assert!(data.trim_matches('"').bytes().all(|b| b == b'x'));
    server.shutdown().await;
}

#[tokio::test]
async fn frames_split_across_reads_arrive_whole_and_in_order() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let (mut hand, mut reader) = pair(addr, "split").await;
    let mut bytes = Vec::new();
    for i in 0..20 {
        let text = format!(r#"{{"type":"message","to":"room","data":{i}}}"#);
        bytes.extend(frame(true, TEXT, text.as_bytes()));
    }
    // A frame whose header and payload come in many reads, then the rest at odd boundaries.
    let big = message_of(20_000);
    bytes.extend(frame(true, TEXT, &big));
    hand.stream.set_nodelay(true).expect("nodelay");
    for chunk in bytes
        .chunks(997)
        .flat_map(|c| c.chunks(if c.len() > 500 { 13 } else { 1 }))
    {
        hand.write(chunk).await;
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    for i in 0..20 {
        assert_eq!(relayed(&mut reader).await, i.to_string());
    }
    assert_eq!(relayed(&mut reader).await.len(), data_len(20_000));
    server.shutdown().await;
}

#[tokio::test]
async fn the_size_limit_holds_at_the_limit_and_one_byte_past_it_whole_or_in_fragments() {
    let mut config = config();
    config.limits.max_message_bytes = 4096;
    let server = start(config).await;
    let addr = server.local_addr();
    let (mut hand, mut reader) = pair(addr, "limit").await;
    // Exactly the limit: whole, then in two fragments.
    let at_limit = message_of(4096);
    hand.write(&frame(true, TEXT, &at_limit)).await;
    let mut fragments = frame(false, TEXT, &at_limit[..4000]);
    fragments.extend(frame(true, CONTINUATION, &at_limit[4000..]));
    hand.write(&fragments).await;
    for _ in 0..2 {
        assert_eq!(relayed(&mut reader).await.len(), data_len(4096));
    }
    // One byte past it, in fragments: refused before the last fragment is read whole.
    let past = message_of(4097);
    let mut fragments = frame(false, TEXT, &past[..4000]);
    fragments.extend(frame(true, CONTINUATION, &past[4000..]));
    hand.write(&fragments).await;
    assert_eq!(hand.close_code().await, Some(1009));
    match reader.recv().await {
        ServerMessage::PeerLeft { .. } => {}
        other => panic!("expected peer_left, got {other:?}"),
    }
    // A whole frame one byte past it.
    let (mut hand, mut reader) = pair(addr, "limit2").await;
    hand.write(&frame(true, TEXT, &past)).await;
    assert_eq!(hand.close_code().await, Some(1009));
    assert!(matches!(
        reader.recv().await,
        ServerMessage::PeerLeft { .. }
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn broken_fragment_sequences_and_close_frames_are_answered_with_1002_or_1007() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let text = br#"{"type":"message","to":"room","data":1}"#;
    let mut two_starts = frame(false, TEXT, &text[..5]);
    two_starts.extend(frame(true, TEXT, text));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "a continuation with nothing to continue",
            frame(true, CONTINUATION, text),
            1002,
        ),
        ("a new message inside a fragmented one", two_starts, 1002),
        ("a fragmented ping", frame(false, PING, b""), 1002),
        ("an unknown opcode", frame(true, 0x3, b""), 1002),
        ("a close of one byte", frame(true, CLOSE, &[3]), 1002),
        (
            "close code 1005",
            frame(true, CLOSE, &1005u16.to_be_bytes()),
            1002,
        ),
        (
            "a close reason that is not UTF-8",
            frame(true, CLOSE, &[3, 232, 0xFF]),
            1007,
        ),
        (
            "a 64-bit length with its top bit set",
            {
                let mut f = vec![0x82, 0xFF];
                f.extend_from_slice(&(1u64 << 63).to_be_bytes());
                f.extend_from_slice(&[1, 2, 3, 4]);
                f
            },
            1002,
        ),
    ];
    for (what, bytes, expected) in cases {
        let (mut hand, mut reader) = pair(addr, "broken").await;
        hand.write(&bytes).await;
        assert_eq!(hand.close_code().await, Some(expected), "{what}");
        // The connection is gone after the close, and the room heard it leave.
        assert_eq!(hand.frame().await, None, "{what}");
        assert!(
            matches!(reader.recv().await, ServerMessage::PeerLeft { .. }),
            "{what}"
        );
        reader.socket.close(None).await.expect("closes");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_close_is_answered_with_its_code_and_the_room_hears_the_leave() {
    let server = start(config()).await;
    let addr = server.local_addr();
    let (mut hand, mut reader) = pair(addr, "bye").await;
    // A message, then the close right behind it: the message is relayed, the close answered.
    let mut bytes = frame(
        true,
        TEXT,
        br#"{"type":"message","to":"room","data":"last"}"#,
    );
    bytes.extend(frame(true, CLOSE, &[0x0F, 0xA0, b'b', b'y', b'e']));
    hand.write(&bytes).await;
    assert_eq!(hand.close_code().await, Some(4000));
    assert_eq!(
        hand.frame().await,
        None,
        "the server ends the TCP connection"
    );
    assert_eq!(relayed(&mut reader).await, "\"last\"");
    assert!(matches!(
        reader.recv().await,
        ServerMessage::PeerLeft { .. }
    ));
    server.shutdown().await;
}
