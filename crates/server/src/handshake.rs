//! Connection negotiation: protocol version, encoding, room and user name, from the URL query
//! and the WebSocket subprotocols. Pure: the HTTP handler passes the strings in.

use switchboard_protocol::{
    validate_room_name, validate_user_name, Encoding, ErrorCode, ProtocolError, PROTOCOL_VERSION,
};

/// Subprotocol names the server selects, as `switchboard.v<version>.<encoding>`.
pub const SUBPROTOCOLS: [&str; 2] = ["switchboard.v1.json", "switchboard.v1.msgpack"];

/// What a connecting peer asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The encoding for the whole connection.
    pub encoding: Encoding,
    /// The subprotocol to select in the upgrade response, when the client offered ours.
    pub subprotocol: Option<&'static str>,
    /// The room from the URL path.
    pub room: String,
    /// The user name from `?user=`.
    pub name: Option<String>,
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

/// The query parameters the hub reads; the rest are ignored.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ConnectQuery {
    /// Protocol version, `1`.
    pub v: Option<String>,
    /// Encoding, `json` (default) or `msgpack`.
    pub enc: Option<String>,
    /// Optional user name.
    pub user: Option<String>,
}

/// Negotiates a connection. A subprotocol of ours (`switchboard.v1.json` or
/// `switchboard.v1.msgpack`) wins over `?v=` and `?enc=`.
pub fn negotiate<'a>(
    room: &str,
    query: &ConnectQuery,
    requested_subprotocols: impl IntoIterator<Item = &'a str>,
) -> Result<Handshake, Refusal> {
    let (encoding, subprotocol) =
        pick_encoding(query, requested_subprotocols).map_err(|(error, echo)| Refusal {
            error,
            encoding: Encoding::Json,
            echo_subprotocol: echo,
        })?;
    let refuse = |code, message: String| Refusal {
        error: ProtocolError::new(code, message),
        encoding,
        echo_subprotocol: None,
    };
    validate_room_name(room)
        .map_err(|why| refuse(ErrorCode::InvalidRoom, format!("room name {why}")))?;
    if let Some(name) = &query.user {
        validate_user_name(name)
            .map_err(|why| refuse(ErrorCode::InvalidName, format!("user name {why}")))?;
    }
    Ok(Handshake {
        encoding,
        subprotocol,
        room: room.to_owned(),
        name: query.user.clone(),
    })
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
mod tests {
    use super::*;

    fn query(v: Option<&str>, enc: Option<&str>, user: Option<&str>) -> ConnectQuery {
        ConnectQuery {
            v: v.map(Into::into),
            enc: enc.map(Into::into),
            user: user.map(Into::into),
        }
    }

    fn refusal(room: &str, q: ConnectQuery, protocols: &[&str]) -> ErrorCode {
        negotiate(room, &q, protocols.iter().copied())
            .unwrap_err()
            .error
            .code
    }

    #[test]
    fn defaults_to_json_v1() {
        let hs = negotiate("lobby", &ConnectQuery::default(), []).unwrap();
        assert_eq!(
            (hs.encoding, hs.subprotocol, hs.name),
            (Encoding::Json, None, None)
        );
    }

    #[test]
    fn reads_query_and_subprotocols() {
        let hs = negotiate("r", &query(Some("1"), Some("msgpack"), Some("ann")), []).unwrap();
        assert_eq!(
            (hs.encoding, hs.name.as_deref()),
            (Encoding::MsgPack, Some("ann"))
        );
        let hs = negotiate(
            "r",
            &query(None, Some("json"), None),
            ["chat", "switchboard.v1.msgpack"],
        )
        .unwrap();
        assert_eq!(
            (hs.encoding, hs.subprotocol),
            (Encoding::MsgPack, Some("switchboard.v1.msgpack"))
        );
    }

    #[test]
    fn refuses_what_it_does_not_speak() {
        assert_eq!(
            refusal("r", query(Some("2"), None, None), &[]),
            ErrorCode::UnsupportedVersion
        );
        assert_eq!(
            refusal("r", query(None, None, None), &["switchboard.v9.json"]),
            ErrorCode::UnsupportedVersion
        );
        assert_eq!(
            refusal("r", query(None, Some("xml"), None), &[]),
            ErrorCode::UnsupportedEncoding
        );
        assert_eq!(
            refusal("bad room", query(None, None, None), &[]),
            ErrorCode::InvalidRoom
        );
        assert_eq!(
            refusal("r", query(None, None, Some("a/b")), &[]),
            ErrorCode::InvalidName
        );
    }

    #[test]
    fn refusal_uses_the_requested_encoding_when_known() {
        let r = negotiate("bad room", &query(None, Some("msgpack"), None), []).unwrap_err();
        assert_eq!(r.encoding, Encoding::MsgPack);
    }
}
