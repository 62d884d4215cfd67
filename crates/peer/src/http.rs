//! `POST /connect`: one HTTP request instead of a signaling socket. The browser posts its offer
//! (every candidate gathered, or mDNS names only: the server learns the real address from the
//! browser's checks) and gets the answer with the server's candidates. Beside it,
//! `GET /connect/ws`: the WebSocket fallback for browsers whose UDP is blocked (see `socket`).

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::api::ConnectError;
use crate::Server;

/// A router with `POST /connect` and, unless `websocket_fallback` is off, `GET /connect/ws`, to
/// merge into the application's HTTP server.
/// The body is the offer's SDP (`application/sdp`), or JSON `{"sdp": "..."}`; the answer is
/// `{"peer": "<id>", "sdp": "..."}`; every error is `{"error": "<code>", "message": "..."}`: 400
/// `invalid_offer`, 413 `too_large` (over `max_offer_bytes`), 503 `server_full` or `shutdown`.
pub fn router(server: Server, max_offer_bytes: usize) -> Router {
    // The body is read (and bounded) by the handler, so every refusal is the documented JSON
    // rather than the framework's text/plain answers.
    let mut router = Router::new()
        .route(
            "/connect",
            post(move |state, authorized, ip, body| {
                connect(state, authorized, ip, body, max_offer_bytes)
            }),
        )
        .layer(DefaultBodyLimit::disable());
    if server.config().websocket_fallback {
        router = router.route("/connect/ws", get(crate::socket::upgrade));
    }
    router.with_state(server)
}

/// The client's IP address, when the application serves the router with
/// `into_make_service_with_connect_info::<SocketAddr>()` (IPv4-mapped IPv6 as IPv4).
pub(crate) struct PeerIp(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| match addr.ip() {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
                v4 => v4,
            });
        Ok(Self(ip))
    }
}

/// Passes when the server needs no token or the request carries a valid one (`?token=` or
/// `Authorization: Bearer`); otherwise the rejection is 401 `unauthorized` with the reason.
pub(crate) struct Authorized;

/// The query parameter that carries a token.
#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

impl FromRequestParts<Server> for Authorized {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, server: &Server) -> Result<Self, Response> {
        let Some(verifier) = &server.config().auth else {
            return Ok(Self);
        };
        let query = axum::extract::Query::<TokenQuery>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|query| query.0.token);
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let token = query.as_deref().or(bearer).unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        match verifier.verify(token, now) {
            Ok(_) => Ok(Self),
            Err(error) => {
                server.stats().auth_refused.inc();
                let body = serde_json::json!({
                    "error": "unauthorized",
                    "reason": error.code(),
                    "message": error.to_string(),
                });
                let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
                response.headers_mut().insert(
                    axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    axum::http::HeaderValue::from_static("*"),
                );
                Err(response)
            }
        }
    }
}

async fn connect(
    State(server): State<Server>,
    _: Authorized,
    PeerIp(ip): PeerIp,
    body: Body,
    max_offer_bytes: usize,
) -> Response {
    let Ok(bytes) = axum::body::to_bytes(body, max_offer_bytes).await else {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!("the offer is over {max_offer_bytes} bytes"),
        );
    };
    let Ok(body) = String::from_utf8(bytes.to_vec()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_offer",
            "the body is not UTF-8 text",
        );
    };
    let offer = match body.trim_start().starts_with('{') {
        true => match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(value) => value.get("sdp").and_then(|s| s.as_str()).map(str::to_owned),
            Err(_) => None,
        },
        false => Some(body),
    };
    let Some(offer) = offer else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_offer",
            "expected an SDP offer or {\"sdp\": ...}",
        );
    };
    match server.connect_from(offer, ip).await {
        Ok((peer, sdp)) => {
            Json(serde_json::json!({ "peer": peer.to_string(), "sdp": sdp })).into_response()
        }
        Err(error) => {
            let status = match error {
                ConnectError::InvalidOffer(_) => StatusCode::BAD_REQUEST,
                ConnectError::TooManyFromAddress(_) => StatusCode::TOO_MANY_REQUESTS,
                ConnectError::Full(_) | ConnectError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            };
            refuse(status, error.code(), &error.to_string())
        }
    }
}

/// An error answer: `{"error": code, "message": ...}` with `status`.
pub(crate) fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": code, "message": message })),
    )
        .into_response()
}
