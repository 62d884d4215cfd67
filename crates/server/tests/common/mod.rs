//! Test harness: a real server on a loopback port and real WebSocket clients.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard_protocol::{
    decode_server, encode_client, ClientMessage, Encoded, Encoding, ErrorCode, Frame, Payload,
    PeerId, ServerMessage, Target, Welcome,
};
use switchboard_server::{Config, Server};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod redis;

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);

/// A config for tests: loopback, ephemeral port.
pub fn config() -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    // Every test server gets its own STUN port, so tests can run in parallel.
    config.stun.listen = vec!["127.0.0.1:0".parse().unwrap()];
    config.stun.workers = 1;
    config
}

pub async fn start(config: Config) -> Server {
    Server::start(config).await.expect("server starts")
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A protocol client over a real WebSocket.
pub struct Client {
    pub socket: Socket,
    pub encoding: Encoding,
    pub welcome: Welcome,
}

pub fn url(addr: SocketAddr, path_and_query: &str) -> String {
    format!("ws://{addr}{path_and_query}")
}

/// A TCP connection from `source` (a loopback IP) to the server.
pub async fn tcp_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(format!("{source}:0").parse().expect("an address"))
        .expect("binds");
    socket.connect(addr).await.expect("connects")
}

/// Opens a raw WebSocket from `source` (another loopback address: its own per-address limits).
pub async fn raw_from(source: &str, addr: SocketAddr, path_and_query: &str) -> Socket {
    let stream = MaybeTlsStream::Plain(tcp_from(source, addr).await);
    let (socket, _) = tokio_tungstenite::client_async(url(addr, path_and_query), stream)
        .await
        .expect("connects");
    socket
}

/// Opens a raw WebSocket (no protocol handling).
pub async fn raw(addr: SocketAddr, path_and_query: &str) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(url(addr, path_and_query))
        .await
        .expect("connects");
    socket
}

impl Client {
    /// Joins `room` with the given query string (e.g. `"enc=msgpack&user=ann"`).
    pub async fn join(addr: SocketAddr, room: &str, query: &str) -> Client {
        let encoding = if query.contains("enc=msgpack") {
            Encoding::MsgPack
        } else {
            Encoding::Json
        };
        let socket = raw(addr, &format!("/ws/{room}?{query}")).await;
        Self::from_socket(socket, encoding).await
    }

    /// Joins through any path and query (e.g. `"/ws?match=4"`), in JSON.
    pub async fn at(addr: SocketAddr, path_and_query: &str) -> Client {
        Self::from_socket(raw(addr, path_and_query).await, Encoding::Json).await
    }

    pub async fn from_socket(socket: Socket, encoding: Encoding) -> Client {
        let mut client = Client {
            socket,
            encoding,
            welcome: placeholder_welcome(),
        };
        match client.recv().await {
            ServerMessage::Welcome(welcome) => client.welcome = *welcome,
            other => panic!("expected welcome, got {other:?}"),
        }
        client
    }

    pub fn id(&self) -> PeerId {
        self.welcome.id
    }

    pub async fn send(&mut self, message: ClientMessage) {
        let frame = match encode_client(&message, self.encoding).unwrap() {
            Encoded::Text(t) => Message::Text(t.into()),
            Encoded::Binary(b) => Message::Binary(b.into()),
        };
        self.socket.send(frame).await.expect("send");
    }

    pub async fn send_json(&mut self, to: Target, json: &str) {
        self.send(ClientMessage::Message {
            to,
            data: Payload::from_json(json).unwrap(),
        })
        .await;
    }

    /// The next protocol message (pings are answered by tungstenite and skipped).
    pub async fn recv(&mut self) -> ServerMessage {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("a message within the wait")
                .expect("socket open")
                .expect("no socket error");
            let decoded = match &frame {
                Message::Text(t) => decode_server(Frame::Text(t.as_bytes()), self.encoding),
                Message::Binary(b) => decode_server(Frame::Binary(b), self.encoding),
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Close(c) => panic!("closed: {c:?}"),
                Message::Frame(_) => continue,
            };
            return decoded.expect("server frames decode");
        }
    }

    /// Reads until the server closes; returns the close code and reason (messages before it are
    /// skipped).
    pub async fn closed(&mut self) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("closed within the wait");
            match frame {
                Some(Ok(Message::Close(Some(close)))) => {
                    return (close.code.into(), close.reason.to_string())
                }
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// The next message other than presence events, which must be an error; returns its code.
    pub async fn recv_error(&mut self) -> ErrorCode {
        loop {
            match self.recv().await {
                ServerMessage::Error { code, .. } => return code,
                ServerMessage::PeerJoined(_) | ServerMessage::PeerLeft { .. } => continue,
                other => panic!("expected an error, got {other:?}"),
            }
        }
    }

    /// Ends the connection without a close frame, the way a client that crashes or loses its
    /// network does: with a TCP FIN (`Vanish::Fin`) or a reset (`Vanish::Reset`).
    pub async fn vanish(self, how: Vanish) {
        vanish(self.socket, how).await;
    }

    /// Asserts nothing arrives for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + quiet;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }
}

/// Ends a socket's connection without a close frame (see `Client::vanish`).
pub async fn vanish(mut socket: Socket, how: Vanish) {
    let MaybeTlsStream::Plain(tcp) = socket.get_mut() else {
        panic!("tests vanish over plain TCP")
    };
    match how {
        Vanish::Fin => tokio::io::AsyncWriteExt::shutdown(tcp)
            .await
            .expect("the FIN is sent"),
        Vanish::Reset => tcp.set_zero_linger().expect("linger set"),
    }
}

/// Reads until the server closes: the text frames it sent last (as they came) and the close
/// frame's code.
pub async fn texts_until_close(socket: &mut Socket) -> (Vec<String>, Option<u16>) {
    let mut texts = Vec::new();
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("the server closes in time");
        match frame {
            Some(Ok(Message::Text(text))) => texts.push(text.to_string()),
            Some(Ok(Message::Close(frame))) => return (texts, frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => return (texts, None),
        }
    }
}

/// How a vanishing client's TCP connection ends.
#[derive(Clone, Copy, Debug)]
pub enum Vanish {
    /// An orderly TCP close with no WebSocket close frame (tungstenite reports a reset without
    /// closing handshake).
    Fin,
    /// A TCP reset (an I/O error on the server's read).
    Reset,
}

/// Reads until the server closes; returns the error code sent before the close and the close
/// frame's code and reason.
pub async fn expect_refusal(socket: &mut Socket, encoding: Encoding) -> (ErrorCode, u16, String) {
    let mut error = None;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("closed within the wait");
        match frame {
            Some(Ok(Message::Close(Some(close)))) => {
                let code: u16 = CloseCode::into(close.code);
                return (
                    error.expect("an error message before the close"),
                    code,
                    close.reason.to_string(),
                );
            }
            Some(Ok(Message::Text(t))) => {
                error = Some(code_of(decode_server(Frame::Text(t.as_bytes()), encoding)))
            }
            Some(Ok(Message::Binary(b))) => {
                error = Some(code_of(decode_server(Frame::Binary(&b), encoding)))
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

fn code_of(message: Result<ServerMessage, switchboard_protocol::ProtocolError>) -> ErrorCode {
    match message {
        Ok(ServerMessage::Error { code, .. }) => code,
        other => panic!("expected an error message, got {other:?}"),
    }
}

/// Connects, expecting to be refused; returns (error code, close code, close reason).
pub async fn refused(
    addr: SocketAddr,
    path_and_query: &str,
    encoding: Encoding,
) -> (ErrorCode, u16, String) {
    let mut socket = raw(addr, path_and_query).await;
    expect_refusal(&mut socket, encoding).await
}

/// Opens a WebSocket offering the given subprotocols; returns the socket and the one selected.
pub async fn with_subprotocols(
    addr: SocketAddr,
    path: &str,
    protocols: &str,
) -> (Socket, Option<String>) {
    let mut request = url(addr, path).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocols.parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    let selected = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    (socket, selected)
}

fn placeholder_welcome() -> Welcome {
    Welcome {
        version: 0,
        id: PeerId::from_u128(0),
        room: String::new(),
        name: None,
        peers: vec![],
        ice_servers: vec![],
        heartbeat_ms: 0,
        idle_timeout_ms: 0,
        max_message_bytes: 0,
        resume_grace_ms: 10_000,
        detached_ttl_ms: 3_600_000,
        room_info: switchboard_protocol::RoomInfo {
            kind: switchboard_protocol::RoomKind::Named,
            topology: switchboard_protocol::Topology::Mesh,
            capacity: 0,
            host: None,
            host_leaves: switchboard_protocol::HostLeaves::Migrate,
            public: false,
            meta: None,
            started: false,
        },
        resume_token: None,
        resumed: false,
    }
}

pub fn json(text: &str) -> Payload {
    Payload::from_json(text).unwrap()
}

/// A minimal HTTP/1.1 GET over a real socket: (status line and headers, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    // Bodies may be chunked: strip chunk-size lines for these small responses.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (head.to_owned(), body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// Reads the next text frame as JSON (pings and pongs skipped).
pub async fn event(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("an event in time")
            .expect("open")
            .expect("a frame");
        match frame {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text event, got {other:?}"),
        }
    }
}

/// Asserts that no text event arrives for `quiet`.
pub async fn silent(socket: &mut Socket, quiet: Duration) {
    let deadline = tokio::time::Instant::now() + quiet;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("expected silence, got {other:?}"),
        }
    }
}

/// Sends a JSON value as a text frame.
pub async fn send_value(socket: &mut Socket, value: Value) {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .expect("sent");
}

/// The next text frame as it came (pings and pongs skipped).
pub async fn next_text(socket: &mut Socket) -> String {
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("a frame");
        match frame {
            Message::Text(text) => return text.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Sends a text frame.
pub async fn send_text(socket: &mut Socket, text: &str) {
    socket
        .send(Message::Text(text.to_owned().into()))
        .await
        .expect("sent");
}

/// One HTTP/1.1 request; returns the status and the body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("reads");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
