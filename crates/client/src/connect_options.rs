//! Options of a connection outside a room (to a server peer by `POST /connect`, or paired by
//! compact codes), and the URLs of a server peer (pure: shared by every target).

use std::time::Duration;

use crate::channels::{default_channels, ChannelOptions};
use crate::Error;
use switchboard_protocol::PeerId;

/// Options of [`crate::Connection::to_server`] and of pairing ([`crate::PairingOffer`],
/// [`crate::PairingAnswer`]), as the browser client's `PairingOptions`. Every limit has a
/// default (docs/configuration.md, "Rust client").
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Channels (default `reliable` and `unreliable`). Both sides of a pairing declare the same
    /// ones (the codes do not carry them); a server peer has exactly the defaults.
    pub channels: Vec<(String, ChannelOptions)>,
    /// Pairing: a STUN server (`host:port`) to learn our public address from, for a
    /// server-reflexive candidate (default none: host candidates, which work on one network).
    pub stun_server: Option<String>,
    /// Pairing: how long the connection may take to open, the human carrying codes included
    /// (default 300 s).
    pub connect_timeout: Duration,
    /// An auth token (JWT) when the server peer requires one (`PeerConfig::auth`): sent as
    /// `Authorization: Bearer` on the `POST` and as `?token=` to the WebSocket fallback.
    pub token: Option<String>,
    /// Give up on WebRTC when the channels are not open this long after the answer
    /// (default 5 s, as the browser client's `webrtcTimeoutMs`).
    pub webrtc_timeout: Duration,
    /// Then try the WebSocket fallback (`GET /connect/ws`) instead of failing (default on).
    pub websocket_fallback: bool,
    /// Give up on the `POST` (or the fallback's upgrade) after this long (default 10 s); also
    /// the wait for the STUN server's answer when pairing.
    pub request_timeout: Duration,
    /// An ICE connection disconnected this long is closed as `connection_lost` (default 5 s).
    pub disconnect_timeout: Duration,
    /// Largest data channel frame (default 16 KiB); larger reliable messages are chunked.
    pub frame_bytes: usize,
    /// Largest message sent or accepted on the reliable channel (default 16 MiB).
    pub max_message_bytes: usize,
    /// Most bytes waiting in this client before `send` refuses with `send_queue_full`
    /// (default 32 MiB).
    pub max_buffered_bytes: usize,
    /// The kernel buffers of the connection's UDP socket, each way (default 2 MiB; the kernel
    /// caps them at `net.core.rmem_max` / `wmem_max`).
    pub udp_buffer_bytes: usize,
    /// Native, `https://`: root certificates (PEM) trusted besides Mozilla's (webpki-roots)
    /// (default none).
    pub tls_roots_pem: Option<String>,
    /// In the browser (wasm32): frames wait in the client while the browser's send buffer
    /// holds this many bytes or more (default 1 MiB, as the browser client).
    pub buffered_high_bytes: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            channels: default_channels(),
            stun_server: None,
            connect_timeout: Duration::from_secs(300),
            token: None,
            webrtc_timeout: Duration::from_secs(5),
            websocket_fallback: true,
            request_timeout: Duration::from_secs(10),
            disconnect_timeout: Duration::from_secs(5),
            frame_bytes: 16 * 1024,
            max_message_bytes: 16 * 1024 * 1024,
            max_buffered_bytes: 32 * 1024 * 1024,
            udp_buffer_bytes: 2 * 1024 * 1024,
            buffered_high_bytes: 1024 * 1024,
            tls_roots_pem: None,
        }
    }
}

impl ConnectOptions {
    /// Checks the numeric options; `invalid_options` when one is out of range.
    pub fn validate(&self) -> Result<(), Error> {
        if !(64..=256 * 1024).contains(&self.frame_bytes) {
            return Err(Error::new(
                "invalid_options",
                "frame_bytes must be between 64 and 262144",
            ));
        }
        if self.max_message_bytes == 0 || self.max_buffered_bytes == 0 {
            return Err(Error::new(
                "invalid_options",
                "max_message_bytes and max_buffered_bytes must be positive",
            ));
        }
        Ok(())
    }
}

/// Where a connection goes: the `POST` target and the fallback's WebSocket URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrls {
    /// `https://`: TLS, to `host`.
    pub tls: bool,
    /// The host name (for TLS), without the port.
    pub host: String,
    /// `host:port` (port 80, or 443 for `https://`, when the URL has none).
    pub authority: String,
    /// The `POST` target's path and query (`/connect`).
    pub post_path: String,
    /// `ws://host:port/connect/ws` (`wss://` for `https://`), with `?token=` when there is a
    /// token.
    pub socket: String,
}

/// The URLs of a server peer's `POST /connect` endpoint `url` (`http://host:port/connect` or
/// `https://`).
pub fn server_urls(url: &str, token: Option<&str>) -> Result<ServerUrls, Error> {
    let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => {
            return Err(Error::new(
                "invalid_options",
                format!("{url:?} is not an http:// or https:// URL"),
            ))
        }
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(Error::new(
            "invalid_options",
            format!("{url:?} has no host"),
        ));
    }
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'));
    let host = if has_port {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    } else {
        authority
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let authority = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{}", if tls { 443 } else { 80 })
    };
    let post_path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let (path_only, query) = match post_path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (post_path.as_str(), None),
    };
    let mut params: Vec<String> = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(token) = token {
        params.push(format!("token={}", crate::options::encode(token)));
    }
    let scheme = if tls { "wss" } else { "ws" };
    let mut socket = format!(
        "{scheme}://{authority}{}/ws",
        path_only.trim_end_matches('/')
    );
    if !params.is_empty() {
        socket.push('?');
        socket.push_str(&params.join("&"));
    }
    Ok(ServerUrls {
        tls,
        host,
        authority,
        post_path,
        socket,
    })
}

/// A Switchboard refusal: a response that is not a success with a JSON body
/// `{"error", "message"}`, as the error with the server's code; `None` for anything else.
pub(crate) fn refusal(status: u16, body: &[u8]) -> Option<Error> {
    if (200..300).contains(&status) {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = json.get("error")?.as_str()?;
    let message = json.get("message").and_then(|m| m.as_str()).unwrap_or(code);
    Some(Error::new(code, format!("HTTP {status}: {message}")))
}

/// Reads the server peer's response: `{"peer", "sdp"}` on success, else `{"error", "message"}`.
pub(crate) fn read_answer(status: u16, body: &[u8]) -> Result<(PeerId, String), Error> {
    if status != 200 {
        return Err(refusal(status, body)
            .unwrap_or_else(|| Error::new("connection_failed", format!("HTTP {status}"))));
    }
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let peer = field("peer").and_then(|p| p.parse::<PeerId>().ok());
    match (peer, field("sdp")) {
        (Some(peer), Some(sdp)) => Ok((peer, sdp)),
        _ => Err(Error::new(
            "bad_server_message",
            "the answer is not {\"peer\": ..., \"sdp\": ...}",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_url_is_beside_the_post_target() {
        let urls = server_urls("http://127.0.0.1:8090/connect", None).expect("urls");
        assert_eq!(urls.authority, "127.0.0.1:8090");
        assert_eq!(urls.post_path, "/connect");
        assert_eq!(urls.socket, "ws://127.0.0.1:8090/connect/ws");
        let urls = server_urls("http://game.example/api/connect?x=1", Some("a b")).expect("urls");
        assert_eq!(urls.authority, "game.example:80");
        assert_eq!(urls.post_path, "/api/connect?x=1");
        assert_eq!(
            urls.socket,
            "ws://game.example:80/api/connect/ws?x=1&token=a%20b"
        );
        let urls = server_urls("http://[::1]:9000/connect", None).expect("urls");
        assert_eq!(urls.authority, "[::1]:9000");
        assert_eq!(urls.host, "::1");
        let urls = server_urls("https://game.example/connect", None).expect("urls");
        assert!(urls.tls);
        assert_eq!(urls.host, "game.example");
        assert_eq!(urls.authority, "game.example:443");
        assert_eq!(urls.socket, "wss://game.example:443/connect/ws");
    }

    #[test]
    fn other_schemes_and_bad_options_are_refused() {
        for url in ["ws://h/connect", "h/connect", "http:///connect"] {
            assert_eq!(
                server_urls(url, None).unwrap_err().code,
                "invalid_options",
                "{url}"
            );
        }
        let bad = ConnectOptions {
            frame_bytes: 10,
            ..ConnectOptions::default()
        };
        assert_eq!(bad.validate().unwrap_err().code, "invalid_options");
        assert!(ConnectOptions::default().validate().is_ok());
    }

    #[test]
    fn answers_and_refusals_are_read() {
        let id = "0123456789abcdef0123456789abcdef";
        let ok = format!(r#"{{"peer": "{id}", "sdp": "v=0"}}"#);
        let (peer, sdp) = read_answer(200, ok.as_bytes()).expect("an answer");
        assert_eq!(peer.to_string(), id);
        assert_eq!(sdp, "v=0");
        let refused = read_answer(503, br#"{"error": "server_full", "message": "full"}"#);
        assert_eq!(refused.unwrap_err().code, "server_full");
        assert_eq!(
            read_answer(502, b"<html>").unwrap_err().code,
            "connection_failed"
        );
        assert_eq!(
            read_answer(200, b"{}").unwrap_err().code,
            "bad_server_message"
        );
        assert_eq!(
            read_answer(200, br#"{"peer": "nope", "sdp": "v=0"}"#)
                .unwrap_err()
                .code,
            "bad_server_message"
        );
    }
}
