//! `GET /matchbox/{room}`: matchbox_server's endpoint on the hub, for unmodified
//! `matchbox_socket` clients (`?next=N` auto-matches in groups of N). The same checks before the
//! upgrade as `/ws` (auth with `?token=`, connection limits), the same connection task and hub
//! core; only the wire differs (`compat::matchbox`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_protocol::{validate_room_name, Encoding, ErrorCode, ProtocolError};

use crate::access::Denied;
use crate::compat::matchbox::hub_room;
use crate::connection;
use crate::handshake::{Dialect, Entry, Handshake};
use crate::hub::{Destination, Permits, RoomOptions};
use crate::server::{
    authorize_connect, canonical_ip, check_capacity_http, denied, ice_servers, limited, precheck,
    refusal, Shared,
};

/// The query matchbox clients may send.
#[derive(Debug, Default, serde::Deserialize)]
pub struct MatchboxQuery {
    /// Auto-match: groups of this many peers.
    next: Option<String>,
    /// An auth token, when the server requires one.
    token: Option<String>,
}

/// Where a matchbox peer goes: its room, or the next open group of `next` peers in it.
fn entry(room: &str, next: Option<&str>) -> Result<Entry, ProtocolError> {
    validate_room_name(room)
        .map_err(|why| ProtocolError::new(ErrorCode::InvalidRoom, format!("room name {why}")))?;
    let destination = match next {
        None => Destination::Named {
            room: hub_room(room),
            create: true,
            options: RoomOptions::default(),
        },
        Some(next) => Destination::Match {
            players: next.parse().map_err(|_| {
                ProtocolError::new(ErrorCode::InvalidOptions, "next must be a number of peers")
            })?,
            key: hub_room(room),
        },
    };
    Ok(Entry::Join(destination))
}

/// Upgrades a matchbox client and runs its connection.
pub async fn websocket(
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    Path(room): Path<String>,
    query: Result<Query<MatchboxQuery>, QueryRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(shared): State<Arc<Shared>>,
) -> Response {
    if shared.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let granted = match authorize_connect(&shared, query.token.as_deref(), None) {
        Ok(granted) => granted,
        Err(refused) => return *refused,
    };
    let ip = canonical_ip(peer.ip());
    if let Err(refused) = check_capacity_http(&shared, ip) {
        return *refused;
    }
    let entry = match entry(&room, query.next.as_deref()) {
        Ok(entry) => entry,
        Err(error) => {
            shared.metrics.error(error.code);
            return refusal(StatusCode::BAD_REQUEST, &error, None);
        }
    };
    let (permits, name) = match granted {
        Some(granted) => (granted.permits, granted.name),
        None => (Permits::default(), None),
    };
    if let Err(error) = precheck(&shared, &entry, &permits) {
        return denied(&shared, &Denied::forbidden(error));
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let handshake = Handshake {
        encoding: Encoding::Json,
        subprotocol: None,
        entry,
        token_name: name.clone(),
        name,
        resumable: false,
        permits,
        dialect: Dialect::Matchbox,
        origin: String::new(),
    };
    let ice_servers = ice_servers(
        &shared,
        headers.get(header::HOST).and_then(|h| h.to_str().ok()),
    );
    let tasks = shared.tasks.clone();
    limited(upgrade, &shared.config.limits).on_upgrade(move |socket| {
        tasks.track_future(connection::run(socket, shared, handshake, ip, ice_servers))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_and_next_map_onto_the_hub() {
        assert_eq!(
            entry("game", None),
            Ok(Entry::Join(Destination::Named {
                room: "matchbox.game".into(),
                create: true,
                options: RoomOptions::default(),
            }))
        );
        assert_eq!(
            entry("game", Some("2")),
            Ok(Entry::Join(Destination::Match {
                players: 2,
                key: "matchbox.game".into(),
            }))
        );
        assert_eq!(
            entry("game", Some("two")).map_err(|e| e.code),
            Err(ErrorCode::InvalidOptions)
        );
        assert_eq!(
            entry("bad name", None).map_err(|e| e.code),
            Err(ErrorCode::InvalidRoom)
        );
    }
}
