//! `GET /matchbox/{room}`: matchbox_server's endpoint on the hub, for unmodified
//! `matchbox_socket` clients (`?next=N` auto-matches in groups of N; `?topology=client_server` is
//! matchbox_signaling's client/server topology: the first peer hosts, the others meet only it).
//! The same checks before the
//! upgrade as `/ws` (auth with `?token=`, connection limits), the same connection task and hub
//! core; only the wire differs (`compat::matchbox`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use switchboard_protocol::{
    validate_room_name, Encoding, ErrorCode, HostLeaves, ProtocolError, Topology,
};

use crate::access::Denied;
use crate::compat::matchbox::{client_server_room, hub_room};
use crate::handshake::{Dialect, Entry, Handshake};
use crate::hub::{Destination, Permits, RoomOptions};
use crate::server::{
    authorize_connect, canonical_ip, check_capacity_http, denied, precheck, refusal, Shared,
};
use crate::wire::Wire;
use switchboard_ws::{Rejection, WebSocketUpgrade};

/// The query matchbox clients may send.
#[derive(Debug, Default, serde::Deserialize)]
pub struct MatchboxQuery {
    /// Auto-match: groups of this many peers.
    next: Option<String>,
    /// An auth token, when the server requires one.
    token: Option<String>,
    /// `full_mesh` (the default) or `client_server`.
    topology: Option<String>,
}

/// Where a matchbox peer goes: its room, the next open group of `next` peers in it, or its room
/// in the client/server topology.
fn entry(room: &str, next: Option<&str>, topology: Option<&str>) -> Result<Entry, ProtocolError> {
    validate_room_name(room)
        .map_err(|why| ProtocolError::new(ErrorCode::InvalidRoom, format!("room name {why}")))?;
    let options = |what: &str| ProtocolError::new(ErrorCode::InvalidOptions, what.to_owned());
    let client_server = match topology {
        None | Some("full_mesh") => false,
        Some("client_server") => true,
        Some(_) => return Err(options("topology must be full_mesh or client_server")),
    };
    let destination = match (next, client_server) {
        (None, false) => Destination::Named {
            room: hub_room(room),
            create: true,
            options: RoomOptions::default(),
        },
        (None, true) => Destination::Named {
            room: client_server_room(room),
            create: true,
            options: RoomOptions {
                topology: Topology::Star,
                host_leaves: HostLeaves::Close,
                host_only: true,
                ..RoomOptions::default()
            },
        },
        (Some(next), false) => Destination::Match {
            players: next
                .parse()
                .map_err(|_| options("next must be a number of peers"))?,
            key: hub_room(room),
        },
        (Some(_), true) => {
            return Err(options(
                "next and topology=client_server do not go together: matches are full mesh",
            ))
        }
    };
    Ok(Entry::Join(destination))
}

/// Upgrades a matchbox client and runs its connection.
pub async fn websocket(
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, Rejection>,
    Path(room): Path<String>,
    query: Result<Query<MatchboxQuery>, QueryRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(shared): State<Arc<Shared>>,
) -> Response {
    if shared.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let ip = canonical_ip(peer.ip());
    let granted = match authorize_connect(&shared, ip, query.token.as_deref(), None) {
        Ok(granted) => granted,
        Err(refused) => return *refused,
    };
    if let Err(refused) = check_capacity_http(&shared, ip) {
        return *refused;
    }
    let entry = match entry(&room, query.next.as_deref(), query.topology.as_deref()) {
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
    super::upgrade(shared, upgrade, &headers, ip, Wire::Matchbox, Ok(handshake))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_next_and_topology_map_onto_the_hub() {
        assert_eq!(
            entry("game", None, None),
            Ok(Entry::Join(Destination::Named {
                room: "matchbox:game".into(),
                create: true,
                options: RoomOptions::default(),
            }))
        );
        assert_eq!(
            entry("game", None, Some("full_mesh")),
            entry("game", None, None)
        );
        assert_eq!(
            entry("game", Some("2"), None),
            Ok(Entry::Join(Destination::Match {
                players: 2,
                key: "matchbox:game".into(),
            }))
        );
        match entry("game", None, Some("client_server")) {
            Ok(Entry::Join(Destination::Named { room, options, .. })) => {
                assert_eq!(room, "matchbox-client-server:game");
                assert!(options.host_only);
                assert_eq!(options.topology, Topology::Star);
                assert_eq!(options.host_leaves, HostLeaves::Close);
            }
            other => panic!("{other:?}"),
        }
        for (next, topology, code) in [
            (Some("two"), None, ErrorCode::InvalidOptions),
            (None, Some("ring"), ErrorCode::InvalidOptions),
            (Some("2"), Some("client_server"), ErrorCode::InvalidOptions),
        ] {
            assert_eq!(entry("game", next, topology).map_err(|e| e.code), Err(code));
        }
        assert_eq!(
            entry("bad name", None, None).map_err(|e| e.code),
            Err(ErrorCode::InvalidRoom)
        );
    }
}
