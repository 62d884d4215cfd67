//! Join options, their defaults, and the URLs they become (pure: shared by every target).

use std::time::Duration;

use switchboard_protocol::{Encoding, HostLeaves, Topology};

use crate::channels::{default_channels, ChannelOptions};
use crate::Error;

/// Options of a join. Every limit has a default (docs/configuration.md, "Rust client").
#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// Channels every peer of the room declares (default: `reliable` and `unreliable`).
    pub channels: Vec<(String, ChannelOptions)>,
    /// A user name, unique in the room.
    pub user: Option<String>,
    /// An auth token (JWT) when the server requires one.
    pub token: Option<String>,
    /// Signaling encoding (default JSON).
    pub encoding: Encoding,
    /// When this join creates the room: its topology (`mesh` by default).
    pub topology: Option<Topology>,
    /// When this join creates the room: most peers.
    pub capacity: Option<usize>,
    /// When this join creates the room: what happens when the host leaves.
    pub host_leaves: Option<HostLeaves>,
    /// When this join creates the room: list it in `/rooms`.
    pub public: Option<bool>,
    /// When this join creates the room: metadata for the listing (a JSON object, as text).
    pub meta: Option<String>,
    /// Ask for a resume token (`Room::resume_token`), for `JoinOptions::resume`.
    pub resumable: bool,
    /// Take an earlier place back with this resume token.
    pub resume: Option<String>,
    /// Give up joining when no `welcome` arrives within this time (default 10 s).
    pub join_timeout: Duration,
    /// A peer whose channels are not all open this long after it appeared is dropped as
    /// `connection_failed` (default 20 s).
    pub connect_timeout: Duration,
    /// A connection whose ICE stays disconnected this long is dropped as `connection_lost`
    /// (default 5 s).
    pub disconnect_timeout: Duration,
    /// Largest data channel frame (default 16 KiB, as browsers); larger reliable messages are
    /// chunked.
    pub frame_bytes: usize,
    /// Largest message sent or accepted on an ordered reliable channel (default 16 MiB).
    pub max_message_bytes: usize,
    /// Most bytes waiting in this client per peer before `send` refuses with
    /// `send_queue_full` (default 32 MiB).
    pub max_buffered_bytes: usize,
    /// In the browser (wasm32): a channel's frames wait in this client while the browser's
    /// send buffer holds this many bytes or more (default 1 MiB, as the browser client).
    pub buffered_high_bytes: usize,
    /// Candidates kept per peer while its description is pending (default 64).
    pub max_queued_candidates: usize,
    /// Native, `wss://`: root certificates (PEM) trusted besides Mozilla's (webpki-roots), for
    /// a hub whose certificate a private CA signed (default none).
    pub tls_roots_pem: Option<String>,
    /// Native: the kernel buffers of the room's UDP socket, each way (default 2 MiB; the
    /// kernel caps them at `net.core.rmem_max` / `wmem_max`).
    pub udp_buffer_bytes: usize,
    /// How long to wait for the STUN server's answer when learning our public address
    /// (default 1 s; without an answer only host candidates are used).
    pub stun_timeout: Duration,
}

impl Default for JoinOptions {
    fn default() -> Self {
        Self {
            channels: default_channels(),
            user: None,
            token: None,
            encoding: Encoding::Json,
            topology: None,
            capacity: None,
            host_leaves: None,
            public: None,
            meta: None,
            resumable: false,
            resume: None,
            join_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(20),
            disconnect_timeout: Duration::from_secs(5),
            frame_bytes: 16 * 1024,
            max_message_bytes: 16 * 1024 * 1024,
            max_buffered_bytes: 32 * 1024 * 1024,
            buffered_high_bytes: 1024 * 1024,
            max_queued_candidates: 64,
            tls_roots_pem: None,
            udp_buffer_bytes: 2 * 1024 * 1024,
            stun_timeout: Duration::from_secs(1),
        }
    }
}

impl JoinOptions {
    /// Checks the numeric options; `invalid_options` when one is out of range.
    pub fn validate(&self) -> Result<(), Error> {
        if !(64..=256 * 1024).contains(&self.frame_bytes) {
            return Err(Error::new(
                "invalid_options",
                "frame_bytes must be between 64 and 262144",
            ));
        }
        if self.max_message_bytes == 0
            || self.max_buffered_bytes == 0
            || self.buffered_high_bytes == 0
        {
            return Err(Error::new(
                "invalid_options",
                "max_message_bytes, max_buffered_bytes and buffered_high_bytes must be positive",
            ));
        }
        Ok(())
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The WebSocket URL of a join: `url` (`ws(s)://` or `http(s)://`, a room path such as
/// `/ws/lobby` or `/ws?code=...`) with the options as query parameters.
pub fn join_url(url: &str, options: &JoinOptions) -> Result<String, Error> {
    let mut target = if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if url.starts_with("ws://") || url.starts_with("wss://") {
        url.to_owned()
    } else {
        return Err(Error::new(
            "invalid_options",
            format!("{url:?} is not a ws://, wss://, http:// or https:// URL"),
        ));
    };
    let mut params: Vec<(&str, String)> = vec![("v", "1".into())];
    params.push((
        "enc",
        match options.encoding {
            Encoding::Json => "json".into(),
            Encoding::MsgPack => "msgpack".into(),
        },
    ));
    if let Some(token) = &options.resume {
        params.push(("resume", token.clone()));
    }
    if let Some(user) = &options.user {
        params.push(("user", user.clone()));
    }
    if let Some(topology) = options.topology {
        let name = match topology {
            Topology::Mesh => "mesh",
            Topology::Star => "star",
        };
        params.push(("topology", name.into()));
    }
    if let Some(capacity) = options.capacity {
        params.push(("capacity", capacity.to_string()));
    }
    if let Some(host_leaves) = options.host_leaves {
        let name = match host_leaves {
            HostLeaves::Migrate => "migrate",
            HostLeaves::Close => "close",
        };
        params.push(("host_leaves", name.into()));
    }
    if let Some(public) = options.public {
        params.push(("public", public.to_string()));
    }
    if let Some(meta) = &options.meta {
        params.push(("meta", meta.clone()));
    }
    if options.resumable {
        params.push(("resumable", "true".into()));
    }
    if let Some(token) = &options.token {
        params.push(("token", token.clone()));
    }
    let query: Vec<String> = params
        .into_iter()
        .map(|(k, v)| format!("{k}={}", encode(&v)))
        .collect();
    target.push(if target.contains('?') { '&' } else { '?' });
    target.push_str(&query.join("&"));
    Ok(target)
}

/// The lobby entry points as URLs under a server's base URL (`ws://host:port` or
/// `http://host:port`), as the browser client's `createRoom`, `joinByCode`... build them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lobby {
    /// A named room (created if needed).
    Room(String),
    /// A new room named by a fresh short code.
    CreateCode,
    /// The room with this code.
    Code(String),
    /// A new one-to-one session.
    CreateSession,
    /// The session with this id.
    Session(String),
    /// The next match of this many players for this key.
    Match {
        /// Players per match.
        players: usize,
        /// The match key (a game mode), or none.
        key: Option<String>,
    },
}

impl Lobby {
    /// The room URL under `server`.
    pub fn url(&self, server: &str) -> String {
        let base = server.trim_end_matches('/');
        match self {
            Self::Room(name) => format!("{base}/ws/{}", encode(name)),
            Self::CreateCode => format!("{base}/ws?create=code"),
            Self::Code(code) => format!("{base}/ws?code={}", encode(code)),
            Self::CreateSession => format!("{base}/ws?create=session"),
            Self::Session(id) => format!("{base}/ws?session={}", encode(id)),
            Self::Match { players, key } => match key {
                Some(key) => format!("{base}/ws?match={players}&key={}", encode(key)),
                None => format!("{base}/ws?match={players}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_become_query_parameters() {
        let options = JoinOptions {
            user: Some("ann".into()),
            topology: Some(Topology::Star),
            capacity: Some(4),
            meta: Some(r#"{"mode":"ctf"}"#.into()),
            resumable: true,
            ..JoinOptions::default()
        };
        let url = join_url("http://127.0.0.1:8080/ws/lobby", &options).expect("valid");
        assert_eq!(
            url,
            "ws://127.0.0.1:8080/ws/lobby?v=1&enc=json&user=ann&topology=star&capacity=4&meta=%7B%22mode%22%3A%22ctf%22%7D&resumable=true"
        );
        let code = join_url(
            &Lobby::Code("K7P-X3Q".into()).url("ws://h/"),
            &JoinOptions::default(),
        );
        assert_eq!(code.as_deref(), Ok("ws://h/ws?code=K7P-X3Q&v=1&enc=json"));
        assert!(join_url("ftp://h/ws/x", &options).is_err());
    }

    #[test]
    fn lobby_urls_match_the_browser_clients() {
        let server = "ws://h:1";
        assert_eq!(Lobby::Room("a b".into()).url(server), "ws://h:1/ws/a%20b");
        assert_eq!(Lobby::CreateCode.url(server), "ws://h:1/ws?create=code");
        assert_eq!(
            Lobby::CreateSession.url(server),
            "ws://h:1/ws?create=session"
        );
        assert_eq!(
            Lobby::Session("ab".into()).url(server),
            "ws://h:1/ws?session=ab"
        );
        let game = Lobby::Match {
            players: 4,
            key: Some("ctf".into()),
        };
        assert_eq!(game.url(server), "ws://h:1/ws?match=4&key=ctf");
    }

    #[test]
    fn frame_size_is_checked_at_both_ends() {
        let with = |frame_bytes| JoinOptions {
            frame_bytes,
            ..JoinOptions::default()
        };
        assert!(with(63).validate().is_err());
        assert!(with(64).validate().is_ok());
        assert!(with(256 * 1024).validate().is_ok());
        assert!(with(256 * 1024 + 1).validate().is_err());
    }
}
