//! The WebSocket upgrade over HTTP/1.1 (RFC 6455, 4.2): the request's checks (each refusal with
//! its own status and text), the `101 Switching Protocols` answer, and the task that runs the
//! connection once hyper hands over the socket.

use std::future::Future;

use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::{Config, WebSocket};

/// The GUID every accept key is made with (RFC 6455, 1.3).
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A valid WebSocket upgrade request, ready to be answered.
pub struct WebSocketUpgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
    requested: Vec<HeaderValue>,
    protocol: Option<HeaderValue>,
}

/// Why a request is not a WebSocket upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not a GET, or not HTTP/1.x.
    MethodNotGet,
    /// `Connection` does not include `upgrade`.
    ConnectionHeader,
    /// `Upgrade` is not `websocket`.
    UpgradeHeader,
    /// `Sec-WebSocket-Version` is not 13.
    VersionHeader,
    /// No `Sec-WebSocket-Key`.
    KeyMissing,
    /// The connection cannot be taken over (hyper holds no upgrade for it).
    NotUpgradable,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Self::MethodNotGet => (
                StatusCode::METHOD_NOT_ALLOWED,
                "Request method must be `GET`",
            ),
            Self::ConnectionHeader => (
                StatusCode::BAD_REQUEST,
                "Connection header did not include 'upgrade'",
            ),
            Self::UpgradeHeader => (
                StatusCode::BAD_REQUEST,
                "`Upgrade` header did not include 'websocket'",
            ),
            Self::VersionHeader => (
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Version` header did not include '13'",
            ),
            Self::KeyMissing => (
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Key` header missing",
            ),
            Self::NotUpgradable => (
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket request couldn't be upgraded since no upgrade state was present",
            ),
        };
        (status, body).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if parts.method != Method::GET || parts.version > Version::HTTP_11 {
            return Err(Rejection::MethodNotGet);
        }
        let headers = &parts.headers;
        if !header_has_token(headers, header::CONNECTION, "upgrade") {
            return Err(Rejection::ConnectionHeader);
        }
        if !header_is(headers, header::UPGRADE, "websocket") {
            return Err(Rejection::UpgradeHeader);
        }
        if !header_is(headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(Rejection::VersionHeader);
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or(Rejection::KeyMissing)?
            .clone();
        let requested = headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&b| b == b','))
            .filter_map(|protocol| HeaderValue::from_bytes(protocol.trim_ascii()).ok())
            .collect();
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(Rejection::NotUpgradable)?;
        Ok(Self {
            key,
            on_upgrade,
            requested,
            protocol: None,
        })
    }
}

impl WebSocketUpgrade {
    /// Answers with `protocol` as the subprotocol, if the client asked for it.
    pub fn protocol(mut self, protocol: &str) -> Self {
        self.protocol = self
            .requested
            .iter()
            .find(|requested| requested.as_bytes() == protocol.as_bytes())
            .cloned();
        self
    }

    /// The `101 Switching Protocols` answer; once hyper hands the socket over, `serve` runs
    /// with it (and the limits of `config`) in a task of its own.
    pub fn on_upgrade<F, Fut>(self, config: Config, serve: F) -> Response
    where
        F: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Self {
            key,
            on_upgrade,
            protocol,
            ..
        } = self;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => serve(WebSocket::new(TokioIo::new(upgraded), config)).await,
                Err(error) => tracing::debug!(%error, "WebSocket upgrade failed"),
            }
        });
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept_key(key.as_bytes()));
        if let Some(protocol) = protocol {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        response
    }
}

/// `Sec-WebSocket-Accept` for a client's key: base64 of the SHA-1 of the key and the GUID.
fn accept_key(key: &[u8]) -> HeaderValue {
    let input = [key, ACCEPT_GUID].concat();
    let hash = digest(&SHA1_FOR_LEGACY_USE_ONLY, &input);
    let encoded = base64::engine::general_purpose::STANDARD.encode(hash.as_ref());
    // Base64 is always a valid header value.
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether the header equals `value`, ignoring ASCII case.
fn header_is(headers: &HeaderMap, name: HeaderName, value: &str) -> bool {
    headers
        .get(&name)
        .is_some_and(|h| h.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

/// Whether the comma-separated header lists `token`, ignoring ASCII case.
fn header_has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(&name).iter().any(|h| {
        h.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_the_rfcs_example() {
        // RFC 6455, 1.3.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn connection_tokens_are_matched_whole_in_any_case() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(header_has_token(&headers, header::CONNECTION, "upgrade"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgraded"));
        assert!(!header_has_token(&headers, header::CONNECTION, "upgrade"));
    }
}
