//! peerjs-server's endpoints under `/peerjs` (a PeerJS client's `path: "/peerjs"`): `GET
//! /peerjs/{key}/id` hands out a fresh id, `GET /peerjs/{key}/peers` lists the connected ids when
//! `peerjs.allow_discovery` is on, and `GET /peerjs/peerjs?key=&id=&token=` is the WebSocket.
//! The same connection limits, auth (the PeerJS `token` is then the JWT), connection task and
//! hub core as `/ws`; only the wire differs (`compat::peerjs`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_protocol::{
    validate_room_name, validate_user_name, Encoding, ErrorCode, ProtocolError,
};

use crate::compat::peerjs::{claim_token, hub_room, random_id};
use crate::handshake::{Dialect, Entry, Handshake};
use crate::hub::{Destination, RoomOptions};
use crate::relay::lock;
use crate::server::{canonical_ip, check_capacity_http, Shared};
use crate::wire::Wire;
use switchboard_ws::{Rejection, WebSocketUpgrade};

/// The query of a PeerJS client's WebSocket.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PeerjsQuery {
    key: Option<String>,
    id: Option<String>,
    token: Option<String>,
}

/// peerjs-server's words for a connect without its parameters.
const MISSING_PARAMETERS: &str = "No id, token, or key supplied to websocket server";

fn refused(code: ErrorCode, message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(code, message)
}

/// Checks a PeerJS connect's key, id and token (at most `max_token_bytes`).
fn check_query(
    query: &PeerjsQuery,
    max_token_bytes: usize,
) -> Result<(String, String, String), ProtocolError> {
    let nonempty = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let (Some(key), Some(id), Some(token)) = (
        nonempty(&query.key),
        nonempty(&query.id),
        nonempty(&query.token),
    ) else {
        return Err(refused(ErrorCode::InvalidOptions, MISSING_PARAMETERS));
    };
    validate_room_name(&key).map_err(|why| {
        refused(
            ErrorCode::InvalidRoom,
            format!("Invalid key provided: {why}"),
        )
    })?;
    validate_user_name(&id)
        .map_err(|why| refused(ErrorCode::InvalidName, format!("Invalid id: it {why}")))?;
    if token.len() > max_token_bytes {
        return Err(refused(
            ErrorCode::InvalidOptions,
            format!("Invalid token provided: longer than {max_token_bytes} bytes"),
        ));
    }
    Ok((key, id, token))
}

/// Checks a PeerJS connect, and with auth its token as a JWT.
fn negotiate(shared: &Shared, ip: IpAddr, query: &PeerjsQuery) -> Result<Handshake, ProtocolError> {
    let (key, id, token) = check_query(query, shared.config.auth.max_token_bytes)?;
    let (permits, token_name) = super::authorize_user(shared, ip, Some(&token), &id)?;
    Ok(Handshake {
        encoding: Encoding::Json,
        subprotocol: None,
        entry: Entry::Claim {
            token: claim_token(&key, &id, &token),
            destination: Destination::Named {
                room: hub_room(&key),
                create: true,
                options: RoomOptions {
                    directory: true,
                    ..RoomOptions::default()
                },
            },
        },
        name: Some(id),
        resumable: true,
        permits,
        token_name,
        dialect: Dialect::Peerjs,
        origin: String::new(),
    })
}

/// Upgrades a PeerJS client and runs its connection.
pub async fn websocket(
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, Rejection>,
    query: Result<Query<PeerjsQuery>, QueryRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(shared): State<Arc<Shared>>,
) -> Response {
    if shared.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let ip = canonical_ip(peer.ip());
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let negotiated = negotiate(&shared, ip, &query);
    // A peer taking its id back keeps its place: no connection limits for it (as for a resume).
    let reclaims = match &negotiated {
        Ok(Handshake {
            entry: Entry::Claim { token, .. },
            ..
        }) => lock(&shared.relay).hub.holds_token(*token),
        _ => false,
    };
    if !reclaims {
        if let Err(refused) = check_capacity_http(&shared, ip) {
            return *refused;
        }
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    super::upgrade(shared, upgrade, &headers, ip, Wire::Peerjs, negotiated)
}

fn cors(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// `GET /peerjs`: what this endpoint is, as peerjs-server answers at its root.
pub async fn info() -> Response {
    cors(axum::Json(serde_json::json!({
        "name": "PeerJS Server (Switchboard)",
        "description": "peerjs-server's protocol on a Switchboard hub: see docs/compat.md",
        "website": "https://peerjs.com/",
    })))
}

/// `GET /peerjs/{key}/id`: a fresh random id (a UUID), as text.
pub async fn id(Path(_key): Path<String>) -> Response {
    cors((
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        random_id(rand::random()),
    ))
}

/// `GET /peerjs/{key}/peers`: the ids connected with `key`, when discovery is allowed.
pub async fn peers(Path(key): Path<String>, State(shared): State<Arc<Shared>>) -> Response {
    if !shared.config.peerjs.allow_discovery {
        return cors(StatusCode::UNAUTHORIZED);
    }
    let room = hub_room(&key);
    let mut names = lock(&shared.relay).hub.names_in(&room);
    // In a cluster the key may be held by another node: its last snapshot names its ids.
    if let (true, Some(cluster)) = (names.is_empty(), &shared.cluster) {
        names = cluster.names_in(&room).await;
    }
    cors(axum::Json(names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_parameters_are_named_as_peerjs_server_names_them() {
        let query = |key: &str, id: &str, token: &str| PeerjsQuery {
            key: Some(key.into()),
            id: Some(id.into()),
            token: Some(token.into()),
        };
        let check = |q: &PeerjsQuery| check_query(q, 4096).map_err(|e| (e.code, e.message));
        for missing in [
            query("", "a", "t"),
            query("k", "", "t"),
            query("k", "a", ""),
        ] {
            let error = check(&missing).unwrap_err();
            assert_eq!(error.1, MISSING_PARAMETERS);
        }
        assert_eq!(
            check(&PeerjsQuery::default()).unwrap_err().1,
            MISSING_PARAMETERS
        );
        assert_eq!(
            check(&query("k", "a b", "t")).unwrap_err().0,
            ErrorCode::InvalidName
        );
        assert_eq!(
            check(&query("k k", "a", "t")).unwrap_err().0,
            ErrorCode::InvalidRoom
        );
        let long = "t".repeat(4097);
        assert_eq!(
            check(&query("k", "a", &long)).unwrap_err().0,
            ErrorCode::InvalidOptions
        );
        let exact = "t".repeat(4096);
        assert_eq!(
            check(&query("k", "a", &exact)),
            Ok(("k".into(), "a".into(), exact.clone()))
        );
    }
}
