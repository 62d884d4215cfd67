//! Connection negotiation: protocol version, encoding, user name, and where the peer goes (a
//! named room with its options, a new code room or session, a match, or a resume), from the URL
//! path and query and the WebSocket subprotocols. Pure: the HTTP handler passes the strings in.

use switchboard_protocol::{
    validate_room_name, validate_user_name, Encoding, ErrorCode, HostLeaves, Payload,
    ProtocolError, Topology, PROTOCOL_VERSION,
};

use crate::access::TOKEN_SUBPROTOCOL;
use crate::hub::{check_meta, normalize_code, Destination, Permits, RoomOptions};

/// Subprotocol names the server selects, as `switchboard.v<version>.<encoding>`.
pub const SUBPROTOCOLS: [&str; 2] = ["switchboard.v1.json", "switchboard.v1.msgpack"];

/// Where a connecting peer goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A fresh join.
    Join(Destination),
    /// Taking back an earlier place with a resume token.
    Resume(u128),
    /// Taking back the place this token holds if there is one, else joining with it as the
    /// resume token (a PeerJS id and token: reconnecting is connecting again).
    Claim {
        /// The resume token, derived from the client's own credentials.
        token: u128,
        /// Where to join when the token holds no place.
        destination: Destination,
    },
}

/// What a connecting peer asked for, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Handshake {
    /// The encoding for the whole connection.
    pub encoding: Encoding,
    /// The subprotocol to select in the upgrade response, when the client offered ours.
    pub subprotocol: Option<&'static str>,
    /// Join or resume.
    pub entry: Entry,
    /// The user name from `?user=`.
    pub name: Option<String>,
    /// `?resumable=true`: hand out a resume token.
    pub resumable: bool,
    /// What the connection's token allows (everything when auth is off; set by the shell).
    pub permits: Permits,
    /// With auth: the token's `sub` (a resume must be for the same user).
    pub token_name: Option<String>,
    /// Switchboard's protocol, or a compatible one.
    pub dialect: Dialect,
    /// `ws://host` or `wss://host` as the client reached the server (set by the shell): where a
    /// push tells a user to connect.
    pub origin: String,
}

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Switchboard's protocol v1.
    Switchboard,
    /// matchbox_server's protocol (`/matchbox/{room}`).
    Matchbox,
    /// peerjs-server's protocol (`/peerjs/peerjs`).
    Peerjs,
    /// rustysignal's protocol (`/rustysignal`).
    Rustysignal,
}

/// A refused handshake: the error, and the encoding to send it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What was wrong.
    pub error: ProtocolError,
    /// The encoding the client asked for, or JSON when that was the problem.
    pub encoding: Encoding,
    /// A `switchboard.*` subprotocol the client offered that we do not speak. The upgrade
    /// selects it anyway, because browsers drop a connection whose offered subprotocols were all
    /// ignored before any message arrives; this way the client reads why it was refused.
    pub echo_subprotocol: Option<String>,
}

/// The query parameters the hub reads (docs/protocol.md); the rest are ignored.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ConnectQuery {
    /// Protocol version, `1`.
    pub v: Option<String>,
    /// Encoding, `json` (default) or `msgpack`.
    pub enc: Option<String>,
    /// Optional user name.
    pub user: Option<String>,
    /// `/ws/{room}`: `false` refuses to create the room. `/ws`: `code` or `session` creates one.
    pub create: Option<String>,
    /// `/ws`: join the room with this code.
    pub code: Option<String>,
    /// `/ws`: join the session with this id.
    pub session: Option<String>,
    /// `/ws`: auto-match into a match of this many players.
    #[serde(rename = "match")]
    pub players: Option<String>,
    /// With `match`: the matching key (game mode).
    pub key: Option<String>,
    /// Room option: `mesh` or `star`.
    pub topology: Option<String>,
    /// Room option: most peers.
    pub capacity: Option<String>,
    /// Room option: `migrate` or `close`.
    pub host_leaves: Option<String>,
    /// Room option: `true` lists the room in `/rooms`.
    pub public: Option<String>,
    /// Room option: metadata, a JSON object.
    pub meta: Option<String>,
    /// `true`: get a resume token.
    pub resumable: Option<String>,
    /// A resume token.
    pub resume: Option<String>,
    /// An auth token (JWT), when auth is on.
    pub token: Option<String>,
}

/// Negotiates a connection to `/ws/{room}` (`room` given) or `/ws`. A subprotocol of ours
/// (`switchboard.v1.json` or `switchboard.v1.msgpack`) wins over `?v=` and `?enc=`.
pub fn negotiate<'a>(
    room: Option<&str>,
    query: &ConnectQuery,
    requested_subprotocols: impl IntoIterator<Item = &'a str>,
    max_meta_bytes: usize,
) -> Result<Handshake, Refusal> {
    let (encoding, subprotocol) =
        pick_encoding(query, requested_subprotocols).map_err(|(error, echo)| Refusal {
            error,
            encoding: Encoding::Json,
            echo_subprotocol: echo,
        })?;
    let refuse = |error: ProtocolError| Refusal {
        error,
        encoding,
        echo_subprotocol: None,
    };
    if let Some(name) = &query.user {
        validate_user_name(name).map_err(|why| {
            refuse(ProtocolError::new(
                ErrorCode::InvalidName,
                format!("user name {why}"),
            ))
        })?;
    }
    let resumable = flag(query.resumable.as_deref(), "resumable").map_err(refuse)?;
    let entry = match &query.resume {
        Some(token) => Entry::Resume(parse_token(token).map_err(refuse)?),
        None => Entry::Join(destination(room, query, max_meta_bytes).map_err(refuse)?),
    };
    Ok(Handshake {
        encoding,
        subprotocol,
        entry,
        name: query.user.clone(),
        resumable,
        permits: Permits::default(),
        token_name: None,
        dialect: Dialect::Switchboard,
        origin: String::new(),
    })
}

fn options_error(message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidOptions, message)
}

fn flag(value: Option<&str>, name: &str) -> Result<bool, ProtocolError> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(options_error(format!(
            "{name} must be true or false, not {other:?}"
        ))),
    }
}

fn parse_token(text: &str) -> Result<u128, ProtocolError> {
    let valid = text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit());
    valid
        .then(|| u128::from_str_radix(text, 16).ok())
        .flatten()
        .ok_or_else(|| {
            ProtocolError::new(ErrorCode::ResumeFailed, "a resume token is 32 hex digits")
        })
}

fn room_options(query: &ConnectQuery, max_meta_bytes: usize) -> Result<RoomOptions, ProtocolError> {
    let topology = match query.topology.as_deref() {
        None | Some("mesh") => Topology::Mesh,
        Some("star") => Topology::Star,
        Some(other) => {
            return Err(options_error(format!(
                "topology must be mesh or star, not {other:?}"
            )))
        }
    };
    let host_leaves = match query.host_leaves.as_deref() {
        None | Some("migrate") => HostLeaves::Migrate,
        Some("close") => HostLeaves::Close,
        Some(other) => {
            return Err(options_error(format!(
                "host_leaves must be migrate or close, not {other:?}"
            )))
        }
    };
    let capacity = query
        .capacity
        .as_deref()
        .map(|text| {
            text.parse::<usize>()
                .map_err(|_| options_error("capacity must be a number"))
        })
        .transpose()?;
    let meta = query
        .meta
        .as_deref()
        .map(|text| {
            let meta = Payload::from_json(text).map_err(|_| options_error("meta must be JSON"))?;
            check_meta(&meta, max_meta_bytes).map_err(options_error)?;
            Ok::<_, ProtocolError>(meta)
        })
        .transpose()?;
    Ok(RoomOptions {
        topology,
        capacity,
        host_leaves,
        public: flag(query.public.as_deref(), "public")?,
        meta,
        directory: false,
        host_only: false,
    })
}

fn destination(
    room: Option<&str>,
    query: &ConnectQuery,
    max_meta_bytes: usize,
) -> Result<Destination, ProtocolError> {
    let invalid_room = |why: String| ProtocolError::new(ErrorCode::InvalidRoom, why);
    if let Some(room) = room {
        validate_room_name(room).map_err(|why| invalid_room(format!("room name {why}")))?;
        if room.len() == 32 && room.bytes().all(|b| b.is_ascii_hexdigit()) {
            // 32 hex digits name sessions, which only `create=session` makes.
            return Ok(Destination::Named {
                room: room.to_ascii_lowercase(),
                create: false,
                options: RoomOptions::default(),
            });
        }
        let create = !matches!(query.create.as_deref(), Some("false"));
        return Ok(Destination::Named {
            room: room.to_owned(),
            create,
            options: room_options(query, max_meta_bytes)?,
        });
    }
    if let Some(code) = &query.code {
        let room = normalize_code(code).ok_or_else(|| {
            ProtocolError::new(
                ErrorCode::NoSuchRoom,
                format!("{code:?} is not a room code"),
            )
        })?;
        return Ok(Destination::Named {
            room,
            create: false,
            options: RoomOptions::default(),
        });
    }
    if let Some(session) = &query.session {
        let valid = session.len() == 32 && session.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return Err(ProtocolError::new(
                ErrorCode::NoSuchRoom,
                "a session id is 32 hex digits",
            ));
        }
        return Ok(Destination::Named {
            room: session.to_ascii_lowercase(),
            create: false,
            options: RoomOptions::default(),
        });
    }
    if let Some(players) = &query.players {
        let players = players
            .parse()
            .map_err(|_| options_error("match must be a number of players"))?;
        let key = query.key.clone().unwrap_or_default();
        if !key.is_empty() {
            validate_room_name(&key).map_err(|why| options_error(format!("key {why}")))?;
        }
        return Ok(Destination::Match { players, key });
    }
    match query.create.as_deref() {
        Some("code") => Ok(Destination::NewCode { options: room_options(query, max_meta_bytes)? }),
        Some("session") => Ok(Destination::NewSession),
        _ => Err(invalid_room("no room: use /ws/{room}, or /ws with create=code, create=session, code=, session= or match=".into())),
    }
}

/// A refused encoding choice, with the unsupported `switchboard.*` subprotocol to echo, if any.
type EncodingRefusal = (ProtocolError, Option<String>);

fn pick_encoding<'a>(
    query: &ConnectQuery,
    requested: impl IntoIterator<Item = &'a str>,
) -> Result<(Encoding, Option<&'static str>), EncodingRefusal> {
    let mut ours_unsupported = None;
    for offered in requested {
        let offered = offered.trim();
        if let Some(known) = SUBPROTOCOLS.iter().find(|p| **p == offered) {
            let encoding = if known.ends_with("json") {
                Encoding::Json
            } else {
                Encoding::MsgPack
            };
            return Ok((encoding, Some(*known)));
        }
        // A token rides as a subprotocol for clients that cannot set a query string.
        if offered.starts_with(TOKEN_SUBPROTOCOL) {
            continue;
        }
        if offered.starts_with("switchboard.") && ours_unsupported.is_none() {
            ours_unsupported = Some(offered.to_owned());
        }
    }
    if let Some(offered) = ours_unsupported {
        let error = ProtocolError::new(
            ErrorCode::UnsupportedVersion,
            format!(
                "subprotocol {offered:?} is not supported; this server speaks {}",
                SUBPROTOCOLS.join(", ")
            ),
        );
        return Err((error, Some(offered)));
    }
    let version = query.v.as_deref().unwrap_or("1");
    if version != PROTOCOL_VERSION.to_string() {
        let error = ProtocolError::new(
            ErrorCode::UnsupportedVersion,
            format!("protocol version {version:?} is not supported; this server speaks version {PROTOCOL_VERSION}"),
        );
        return Err((error, None));
    }
    let encoding_name = query.enc.as_deref().unwrap_or("json");
    let encoding = Encoding::from_name(encoding_name).ok_or_else(|| {
        let error = ProtocolError::new(
            ErrorCode::UnsupportedEncoding,
            format!("encoding {encoding_name:?} is not supported; use json or msgpack"),
        );
        (error, None)
    })?;
    Ok((encoding, None))
}

#[cfg(test)]
mod tests;
