//! Protocols of other signaling servers, spoken on the same hub core so their unmodified
//! clients connect: matchbox_server's, peerjs-server's and rustysignal's. Each is a pure
//! translation module and an HTTP module with its endpoint; docs/compat.md says what each
//! supports and how to move.

pub mod mailbox;
pub mod matchbox;
pub mod matchbox_http;
pub mod peerjs;
pub mod peerjs_http;
pub mod rustysignal;
pub mod rustysignal_http;

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use axum::response::Response;
use switchboard_protocol::ProtocolError;

use crate::connection;
use crate::handshake::Handshake;
use crate::hub::Permits;
use crate::server::{ice_servers, origin, ws_config, Shared};
use crate::wire::Wire;
use switchboard_ws::WebSocketUpgrade;

/// Upgrades a compat client: runs its connection, or tells it in its own protocol why not
/// (these clients read errors from the socket, not from an HTTP answer) and closes.
pub(crate) fn upgrade(
    shared: Arc<Shared>,
    upgrade: WebSocketUpgrade,
    headers: &HeaderMap,
    ip: IpAddr,
    wire: Wire,
    mut negotiated: Result<Handshake, ProtocolError>,
) -> Response {
    if let Ok(handshake) = &mut negotiated {
        handshake.origin = origin(&shared, headers);
    }
    let ice_servers = ice_servers(
        &shared,
        headers.get(header::HOST).and_then(|h| h.to_str().ok()),
    );
    let tasks = shared.tasks.clone();
    let config = ws_config(&shared.config.limits);
    let upgraded = Box::new(connection::Upgrade {
        shared,
        outcome: negotiated.map_err(|error| (wire, error)),
        ip,
        ice_servers,
    });
    upgrade.on_upgrade(config, move |socket| {
        tasks.track_future(connection::serve(socket, upgraded))
    })
}

/// With auth on, checks a compat client's token for `user`: what it permits and the user it
/// names (refusals counted and answered in the client's protocol). With auth off, everything.
pub(crate) fn authorize_user(
    shared: &Shared,
    ip: IpAddr,
    token: Option<&str>,
    user: &str,
) -> Result<(Permits, Option<String>), ProtocolError> {
    match shared.check_token(ip, token, Some(user)) {
        Ok(Some(granted)) => Ok((granted.permits, granted.name)),
        Ok(None) => Ok((Permits::default(), None)),
        Err(denied) => {
            shared.metrics.auth_refused(denied.reason);
            Err(denied.error)
        }
    }
}
