//! rustysignal's endpoint: `GET /rustysignal?user=NAME` (and `/rustysignal/{network}` for a
//! separate network) is the WebSocket. The same connection limits, auth (`?token=`), connection
//! task and hub core as `/ws`; only the wire differs (`compat::rustysignal`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_protocol::{
    validate_room_name, validate_user_name, Encoding, ErrorCode, ProtocolError,
};

use crate::compat::rustysignal::{hub_room, DEFAULT_NETWORK};
use crate::handshake::{Dialect, Entry, Handshake};
use crate::hub::{Destination, RoomOptions};
use crate::server::{canonical_ip, check_capacity_http, Shared};
use crate::wire::Wire;
use switchboard_ws::{Rejection, WebSocketUpgrade};

/// The query of a rustysignal client.
#[derive(Debug, Default, serde::Deserialize)]
pub struct RustysignalQuery {
    user: Option<String>,
    token: Option<String>,
}

/// Checks a network name and a user name.
fn check(network: &str, user: Option<&str>) -> Result<(String, String), ProtocolError> {
    validate_room_name(network).map_err(|why| {
        ProtocolError::new(ErrorCode::InvalidRoom, format!("the network name {why}"))
    })?;
    let user = user.filter(|u| !u.is_empty()).ok_or_else(|| {
        ProtocolError::new(
            ErrorCode::InvalidName,
            "connect with a user name: ?user=yourname",
        )
    })?;
    validate_user_name(user).map_err(|why| {
        ProtocolError::new(ErrorCode::InvalidName, format!("the user name {why}"))
    })?;
    Ok((hub_room(network), user.to_owned()))
}

fn negotiate(
    shared: &Shared,
    network: &str,
    ip: IpAddr,
    query: &RustysignalQuery,
) -> Result<Handshake, ProtocolError> {
    let (room, user) = check(network, query.user.as_deref())?;
    let (permits, token_name) = super::authorize_user(shared, ip, query.token.as_deref(), &user)?;
    Ok(Handshake {
        encoding: Encoding::Json,
        subprotocol: None,
        entry: Entry::Join(Destination::Named {
            room,
            create: true,
            options: RoomOptions {
                directory: true,
                ..RoomOptions::default()
            },
        }),
        name: Some(user),
        resumable: false,
        permits,
        token_name,
        dialect: Dialect::Rustysignal,
        origin: String::new(),
    })
}

async fn serve(
    network: &str,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, Rejection>,
    query: Result<Query<RustysignalQuery>, QueryRejection>,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> Response {
    if shared.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let ip = canonical_ip(peer.ip());
    if let Err(refused) = check_capacity_http(&shared, ip) {
        return *refused;
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let negotiated = negotiate(&shared, network, ip, &query);
    super::upgrade(shared, upgrade, &headers, ip, Wire::Rustysignal, negotiated)
}

/// `GET /rustysignal`: the default network.
pub async fn websocket(
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, Rejection>,
    query: Result<Query<RustysignalQuery>, QueryRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(shared): State<Arc<Shared>>,
) -> Response {
    serve(DEFAULT_NETWORK, headers, upgrade, query, peer, shared).await
}

/// `GET /rustysignal/{network}`: a network of its own.
pub async fn websocket_in(
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, Rejection>,
    Path(network): Path<String>,
    query: Result<Query<RustysignalQuery>, QueryRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(shared): State<Arc<Shared>>,
) -> Response {
    serve(&network, headers, upgrade, query, peer, shared).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_name_is_required_and_checked() {
        assert_eq!(
            check("default", Some("ann")),
            Ok(("rustysignal:default".into(), "ann".into()))
        );
        for user in [None, Some(""), Some("a b"), Some("ä")] {
            assert_eq!(
                check("default", user).map_err(|e| e.code),
                Err(ErrorCode::InvalidName),
                "{user:?}"
            );
        }
        assert_eq!(
            check("a/b", Some("ann")).map_err(|e| e.code),
            Err(ErrorCode::InvalidRoom)
        );
    }
}
