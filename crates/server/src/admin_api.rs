//! The admin API for operators: list rooms and peers, remove a peer, close a room. Served on the
//! admin listener (`admin_listen`), and on the main listener only when `admin_token` is set;
//! with `admin_token` set every call needs `Authorization: Bearer <admin_token>`. Every action is
//! logged (`tracing` at info) and carried out like a host's kick or a closing room. In a cluster
//! a call reaches every node: each lists the rooms it owns, the owner of a peer or room acts.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use switchboard_protocol::PeerId;

use crate::cluster::envelope::{AdminAction, AdminAnswer};
use crate::relay::lock;
use crate::server::Shared;

/// The admin routes, under `/admin`.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/admin/rooms", get(rooms))
        .route("/admin/peers/{peer}/kick", post(kick))
        .route("/admin/rooms/{room}/close", post(close))
        .route("/admin/drain", post(drain))
}

/// `POST /admin/drain`: cluster mode: hands this node's rooms to other nodes and sends its peers
/// to connect again elsewhere (docs/cluster.md); the node then refuses new peers until stopped.
/// Answers what it did; 409 outside cluster mode.
async fn drain(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refusal(&shared, &headers) {
        return refusal;
    }
    let Some(cluster) = shared.cluster.clone() else {
        return answer(
            StatusCode::CONFLICT,
            "not_clustered",
            "this server is not in a cluster (no cluster.redis): stop it instead",
        );
    };
    tracing::info!("admin: drain");
    let drained = cluster.drain(&shared).await;
    Json(drained).into_response()
}

/// `{"error": code, "message": ...}` with `status`.
fn answer(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": code, "message": message })),
    )
        .into_response()
}

/// The refusal of a call without the admin token, when one is configured.
fn refusal(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let expected = shared.config.admin_token.as_ref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    // Compared in constant time: the admin token is a password.
    let matches = given.is_some_and(|given| {
        given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    });
    if matches {
        return None;
    }
    shared.metrics.auth_refused("admin_token");
    Some(answer(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "the admin API needs Authorization: Bearer <admin_token>",
    ))
}

async fn rooms(headers: HeaderMap, State(shared): State<Arc<Shared>>) -> Response {
    if let Some(refused) = refusal(&shared, &headers) {
        return refused;
    }
    let mut rooms = local_rooms(&shared);
    // In a cluster each node lists the rooms it owns.
    if let Some(cluster) = &shared.cluster {
        for answer in cluster.admin(AdminAction::List).await {
            if let AdminAnswer::Rooms(listed) = answer {
                rooms.extend(
                    listed
                        .iter()
                        .filter_map(|json| serde_json::from_str(json).ok()),
                );
            }
        }
    }
    Json(serde_json::json!({ "rooms": rooms })).into_response()
}

/// The rooms of this node's hub, as the admin API shows them.
pub(crate) fn local_rooms(shared: &Shared) -> Vec<serde_json::Value> {
    lock(&shared.relay)
        .hub
        .admin_rooms()
        .into_iter()
        .map(|room| {
            let peers: Vec<serde_json::Value> = room
                .peers
                .iter()
                .map(|peer| {
                    serde_json::json!({
                        "id": peer.id.to_string(),
                        "name": peer.name,
                        "ip": peer.ip.to_string(),
                        "state": peer.state,
                    })
                })
                .collect();
            serde_json::json!({ "room": room.room, "info": room.info, "peers": peers })
        })
        .collect()
}

/// Carries out an admin call on this node's hub; whether it had the peer or room.
pub(crate) fn act(shared: &Shared, relay: &mut crate::relay::Relay, action: &AdminAction) -> bool {
    let effects = match action {
        AdminAction::List => return false,
        AdminAction::Kick { peer, reason } => relay.hub.admin_kick(*peer, reason),
        AdminAction::Close { room } => relay.hub.admin_close_room(room),
    };
    let Some(effects) = effects else {
        return false;
    };
    tracing::info!(?action, "admin: done");
    shared.settle(relay, effects);
    shared.update_gauges(relay);
    true
}

/// Carries out an admin call here, else (in a cluster) on the node that has the peer or room.
async fn act_anywhere(shared: &Shared, action: AdminAction) -> bool {
    if act(shared, &mut lock(&shared.relay), &action) {
        return true;
    }
    let Some(cluster) = &shared.cluster else {
        return false;
    };
    cluster
        .admin(action)
        .await
        .contains(&AdminAnswer::Done(true))
}

/// `?reason=` of a kick.
#[derive(Debug, Default, serde::Deserialize)]
struct KickQuery {
    reason: Option<String>,
}

async fn kick(
    headers: HeaderMap,
    Path(peer): Path<String>,
    query: Result<Query<KickQuery>, QueryRejection>,
    State(shared): State<Arc<Shared>>,
) -> Response {
    if let Some(refused) = refusal(&shared, &headers) {
        return refused;
    }
    let Ok(id) = peer.parse::<PeerId>() else {
        return answer(
            StatusCode::BAD_REQUEST,
            "unknown_peer",
            "a peer id is 32 hex digits",
        );
    };
    let reason = query
        .ok()
        .and_then(|Query(q)| q.reason)
        .unwrap_or_else(|| "no reason given".into());
    if !act_anywhere(&shared, AdminAction::Kick { peer: id, reason }).await {
        return answer(StatusCode::NOT_FOUND, "unknown_peer", "no such peer");
    }
    Json(serde_json::json!({ "kicked": id.to_string() })).into_response()
}

async fn close(
    headers: HeaderMap,
    Path(room): Path<String>,
    State(shared): State<Arc<Shared>>,
) -> Response {
    if let Some(refused) = refusal(&shared, &headers) {
        return refused;
    }
    let action = AdminAction::Close { room: room.clone() };
    if !act_anywhere(&shared, action).await {
        return answer(StatusCode::NOT_FOUND, "no_such_room", "no such room");
    }
    Json(serde_json::json!({ "closed": room })).into_response()
}
