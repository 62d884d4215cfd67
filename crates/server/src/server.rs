//! The HTTP front: one listener for the WebSocket endpoint, `/healthz`, `/metrics`, the landing
//! page, the browser client bundle and the demos, in plain HTTP or TLS (rustls), with graceful
//! shutdown; connections are admitted by `admission` before HTTP. Optionally a second, plain
//! listener with only `/healthz` and `/metrics` for operators.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use switchboard_auth::{Verifier, VerifierConfig, VerifyKey};
use switchboard_protocol::{ErrorCode, IceServer, PeerId, ProtocolError};

use crate::access::{authorize, find_token, Denied, Granted};
use crate::admin_api;
use crate::admission::{AdmissionAcceptor, Pending};
use crate::assets;
use crate::cluster::capacity::Sockets;
use crate::cluster::Cluster;
use crate::compat::mailbox::Mailboxes;
use crate::config::{AuthConfig, Config, ConfigError, Limits};
use crate::connection;
use crate::handshake::{negotiate, ConnectQuery, Entry, Handshake, Refusal};
use crate::hub::{Destination, Effects, Hub, PeerMap, Permits, RateTable};
use crate::metrics::Metrics;
use crate::push::Push;
use crate::relay::{lock, Owner, Relay};
use crate::stun::StunServer;
use switchboard_ws::{self as ws, Rejection, WebSocketUpgrade};

/// State shared by every connection of one server.
pub struct Shared {
    /// The configuration the server started with.
    pub config: Config,
    /// Metrics for `/metrics`.
    pub metrics: Metrics,
    /// The hub core and the connections' outboxes.
    pub relay: Mutex<Relay>,
    /// Cancelled when the server shuts down; every connection watches a child of it.
    pub shutdown: CancellationToken,
    /// Tracks connection tasks, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Where the built-in STUN server listens (empty when off).
    pub stun_addrs: Vec<SocketAddr>,
    /// Numbers connections (a resumed peer's new connection differs from its old one).
    pub connections: AtomicU64,
    /// Wakes the reaper when the hub has a new deadline (resume grace, detached TTL).
    pub reaper: Notify,
    /// HTTP connections not yet upgraded, in all and per address.
    pub pending: Arc<Mutex<Pending>>,
    /// Checks tokens when auth is on.
    pub verifier: Option<Verifier>,
    /// Web Push, when `push.vapid_key` is set.
    pub push: Option<Arc<Push>>,
    /// Failed token checks per address (`auth.failed_checks_per_minute`).
    pub auth_failures: Mutex<RateTable<IpAddr>>,
    /// Cluster mode: this node's part in the cluster.
    pub cluster: Option<Arc<Cluster>>,
}

impl Shared {
    /// Checks a token from `ip` for `user` (`Ok(None)` when auth is off). An address past its
    /// failed checks is refused without a check: a flood of bad tokens costs no signature checks.
    pub fn check_token(
        &self,
        ip: IpAddr,
        token: Option<&str>,
        user: Option<&str>,
    ) -> Result<Option<Granted>, Denied> {
        let Some(verifier) = &self.verifier else {
            return Ok(None);
        };
        let now = Instant::now();
        let auth = &self.config.auth;
        let mut failures = self
            .auth_failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !failures.allows(&ip, now) {
            return Err(Denied::throttled(auth.failed_checks_per_minute));
        }
        drop(failures);
        let checked = authorize(verifier, token, user, unix_now());
        if matches!(&checked, Err(denied) if denied.error.code == ErrorCode::Unauthorized) {
            self.auth_failures
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .try_take(&ip, now);
        }
        checked.map(Some)
    }
}

impl Shared {
    /// Carries out the hub's effects (the lock is held) and wakes the reaper if needed.
    pub fn settle(&self, relay: &Relay, effects: Effects) {
        self.settle_from(relay, effects, None);
    }

    /// Sets the peer and room gauges from the hub (the lock is held).
    pub fn update_gauges(&self, relay: &Relay) {
        self.metrics.connections.set(relay.hub.peer_count() as i64);
        self.metrics.rooms.set(relay.hub.room_count() as i64);
    }

    /// Like `settle`; errors about unencodable payloads go to `sender`.
    pub fn settle_from(&self, relay: &Relay, effects: Effects, sender: Option<PeerId>) {
        if effects.new_deadline {
            self.reaper.notify_one();
        }
        relay.apply(effects, sender, &self.metrics);
    }
}

/// Removes suspended and detached peers whose time is up, and expires held PeerJS messages,
/// until shutdown.
async fn reap(shared: Arc<Shared>) {
    const IDLE: Duration = Duration::from_secs(3600);
    loop {
        let next = {
            let relay = lock(&shared.relay);
            let (peers, mail) = (relay.hub.next_deadline(), relay.mailboxes.next_deadline());
            peers.into_iter().chain(mail).min()
        };
        let wake = next.unwrap_or_else(|| Instant::now() + IDLE);
        tokio::select! {
            () = tokio::time::sleep_until(wake.into()) => {}
            () = shared.reaper.notified() => continue,
            () = shared.shutdown.cancelled() => return,
        }
        let mut relay = lock(&shared.relay);
        let now = Instant::now();
        let effects = relay.hub.expire_due(now);
        shared.settle(&relay, effects);
        relay.expire_mail(now, &shared.metrics);
        shared.update_gauges(&relay);
    }
}

/// A running server.
pub struct Server {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    serving: JoinHandle<std::io::Result<()>>,
    admin: Option<(SocketAddr, axum_server::Handle<SocketAddr>)>,
    stun: Option<StunServer>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Cluster mode: the store (Redis) could not be reached.
    #[error("cannot join the cluster: {0}")]
    Cluster(String),
    /// The listener could not be bound, or the TLS files could not be loaded.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Server {
    /// Binds the listener and starts serving in the background.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        let io = |what: String| move |source| StartError::Io { what, source };
        let listener = TcpListener::bind(config.listen)
            .map_err(io(format!("cannot listen on {}", config.listen)))?;
        listener
            .set_nonblocking(true)
            .map_err(io("cannot configure the listener".into()))?;
        let local_addr = listener
            .local_addr()
            .map_err(io("cannot read the listener address".into()))?;
        // aws-lc-rs, chosen here rather than left to rustls' crate features: with more than one
        // backend compiled in, rustls cannot pick one by itself. A provider already installed by
        // the application (or an earlier server in this process) is kept.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(RustlsConfig::from_pem_file(cert, key).await.map_err(
                io(format!(
                    "cannot load TLS certificate {} and key {}",
                    cert.display(),
                    key.display()
                )),
            )?),
            _ => None,
        };
        let admin_listener = match config.admin_listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .map_err(io(format!("cannot listen on {addr} (admin)")))?;
                listener
                    .set_nonblocking(true)
                    .map_err(io("cannot configure the admin listener".into()))?;
                Some(listener)
            }
            None => None,
        };
        let verifier = verifier(&config.auth)?;
        let mut metrics = Metrics::new();
        let cluster = if config.cluster.enabled() {
            let series = metrics.register_cluster();
            let limits = &config.limits;
            let sockets = Sockets::new(limits.max_connections, limits.max_connections_per_ip);
            Some(
                Cluster::connect(&config.cluster, sockets, series)
                    .await
                    .map_err(|error| StartError::Cluster(error.to_string()))?,
            )
        } else {
            None
        };
        let push = Push::new(&config.push, &metrics)
            .map_err(ConfigError::Invalid)?
            .map(Arc::new);
        let stun_addrs = config.stun_addrs();
        let stun = if stun_addrs.is_empty() {
            None
        } else {
            // No SOFTWARE attribute: smaller answers for anyone reflecting traffic off us.
            let software = String::new();
            Some(
                StunServer::start(
                    &stun_addrs,
                    config.stun_workers(),
                    software,
                    metrics.stun.clone(),
                )
                .map_err(io("cannot start the STUN server".into()))?,
            )
        };
        if let Some(stun) = &stun {
            tracing::info!(addrs = ?stun.local_addrs(), "STUN server listening");
        }
        let shared = Arc::new(Shared {
            stun_addrs: stun
                .as_ref()
                .map(|s| s.local_addrs().to_vec())
                .unwrap_or_default(),
            relay: Mutex::new(Relay {
                hub: Hub::new(config.limits.hub()),
                outboxes: PeerMap::default(),
                mailboxes: Mailboxes::new(
                    config.peerjs.mail_limits(config.limits.send_queue_messages),
                ),
                cluster: cluster
                    .as_ref()
                    .map(|(cluster, _)| Owner::new(cluster.out.clone())),
            }),
            metrics,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            // In a cluster, connection numbers are unique across nodes: each node starts at a
            // random multiple of 2^32.
            connections: AtomicU64::new(if cluster.is_some() {
                u64::from(rand::random::<u32>()) << 32
            } else {
                0
            }),
            cluster: cluster.as_ref().map(|(cluster, _)| cluster.clone()),
            reaper: Notify::new(),
            pending: Arc::new(Mutex::new(Pending::new(
                config.limits.max_pending_connections,
                config.limits.max_pending_per_ip,
            ))),
            verifier,
            push,
            auth_failures: Mutex::new(RateTable::new(
                f64::from(config.auth.failed_checks_per_minute) / 60.0,
                config.auth.failed_check_burst,
            )),
            config,
        });
        tokio::spawn(reap(shared.clone()));
        if let Some((cluster, subscription)) = cluster {
            cluster.start(&shared, subscription);
        }
        let app = router(shared.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let handle = axum_server::Handle::new();
        let limits = &shared.config.limits;
        let admission = AdmissionAcceptor::new(shared.pending.clone(), limits.http_idle_timeout());
        let serving = match tls {
            Some(tls) => {
                let mut server = axum_server::from_tcp_rustls(listener, tls)
                    .map_err(io("cannot start TLS".into()))?
                    .map(|tls| tls.acceptor(admission));
                server
                    .http_builder()
                    .http1()
                    .max_buf_size(limits.max_header_bytes);
                tokio::spawn(server.handle(handle.clone()).serve(app))
            }
            None => {
                let mut server = axum_server::from_tcp(listener)
                    .map_err(io("cannot start".into()))?
                    .acceptor(admission);
                server
                    .http_builder()
                    .http1()
                    .max_buf_size(limits.max_header_bytes);
                tokio::spawn(server.handle(handle.clone()).serve(app))
            }
        };
        let admin = match admin_listener {
            Some(listener) => {
                let addr = listener
                    .local_addr()
                    .map_err(io("cannot read the admin listener address".into()))?;
                let admin_handle = axum_server::Handle::new();
                let server =
                    axum_server::from_tcp(listener).map_err(io("cannot start (admin)".into()))?;
                let app = admin_router(shared.clone()).into_make_service();
                tokio::spawn(server.handle(admin_handle.clone()).serve(app));
                tracing::info!(%addr, "admin listener (healthz, metrics)");
                Some((addr, admin_handle))
            }
            None => None,
        };
        Ok(Self {
            shared,
            local_addr,
            handle,
            serving,
            admin,
            stun,
        })
    }

    /// The address the server listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the built-in STUN server listens (empty when it is off).
    pub fn stun_addrs(&self) -> &[SocketAddr] {
        &self.shared.stun_addrs
    }

    /// The admin listener's address (`/healthz`, `/metrics`), if configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(addr, _)| *addr)
    }

    /// Whether the listener uses TLS.
    pub fn is_tls(&self) -> bool {
        self.shared.config.tls_cert.is_some()
    }

    /// Stops accepting, closes every WebSocket with `1001 shutdown`, and waits (up to
    /// `limits.shutdown_grace_ms`) for connections to finish.
    pub async fn shutdown(self) {
        let grace = Duration::from_millis(self.shared.config.limits.shutdown_grace_ms);
        // In a cluster the rooms go to other nodes and the peers resume there.
        if let Some(cluster) = &self.shared.cluster {
            let _ = tokio::time::timeout(grace, cluster.drain(&self.shared)).await;
        }
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
        let _ = tokio::time::timeout(grace, self.shared.tasks.wait()).await;
        self.handle.graceful_shutdown(Some(grace));
        if let Some((_, admin)) = &self.admin {
            admin.graceful_shutdown(Some(grace));
        }
        let _ = self.serving.await;
        if let Some(stun) = self.stun {
            let _ = tokio::task::spawn_blocking(move || stun.stop()).await;
        }
    }
}

/// The token verifier for `auth`, or `None` when auth is off.
fn verifier(auth: &AuthConfig) -> Result<Option<Verifier>, StartError> {
    let key = match (&auth.jwt_secret, &auth.jwt_public_key) {
        (Some(secret), _) => VerifyKey::Secret(secret.as_bytes().to_vec()),
        (None, Some(path)) => {
            VerifyKey::PublicPem(std::fs::read(path).map_err(|source| StartError::Io {
                what: format!("cannot read the JWT public key {}", path.display()),
                source,
            })?)
        }
        (None, None) => return Ok(None),
    };
    let verifier = Verifier::new(VerifierConfig {
        key,
        audience: auth.audience.clone(),
        leeway_s: auth.leeway_s,
        max_token_bytes: auth.max_token_bytes,
    })
    .map_err(|error| ConfigError::Invalid(format!("auth: {error}")))?;
    Ok(Some(verifier))
}

/// Seconds since the Unix epoch, for token and credential times.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// A refusal before the upgrade: the status and the JSON error (with the exact `reason` for
/// auth refusals). Readable cross-origin, so a browser client can fetch why its WebSocket failed.
pub(crate) fn refusal(status: StatusCode, error: &ProtocolError, reason: Option<&str>) -> Response {
    let mut body = serde_json::json!({ "error": error.code.as_str(), "message": error.message });
    if let Some(reason) = reason {
        body["reason"] = reason.into();
    }
    (
        status,
        [(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        )],
        axum::Json(body),
    )
        .into_response()
}

/// Counts and answers an auth refusal.
pub(crate) fn denied(shared: &Shared, denied: &Denied) -> Response {
    shared.metrics.auth_refused(denied.reason);
    let status = StatusCode::from_u16(denied.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    refusal(status, &denied.error, Some(denied.reason))
}

fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new();
    for (path, handler) in assets::routes() {
        router = router.route(path, handler);
    }
    router = router
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/ws", get(websocket_without_room))
        .route("/ws/{room}", get(websocket))
        .route("/rooms", get(rooms))
        .route(
            "/matchbox/{room}",
            get(crate::compat::matchbox_http::websocket),
        )
        .route("/peerjs", get(crate::compat::peerjs_http::info))
        .route("/peerjs/peerjs", get(crate::compat::peerjs_http::websocket))
        .route("/peerjs/{key}/id", get(crate::compat::peerjs_http::id))
        .route(
            "/peerjs/{key}/peers",
            get(crate::compat::peerjs_http::peers),
        )
        .route("/push/vapid-public-key", get(vapid_public_key))
        .route(
            "/rustysignal",
            get(crate::compat::rustysignal_http::websocket),
        )
        .route(
            "/rustysignal/{network}",
            get(crate::compat::rustysignal_http::websocket_in),
        );
    // The admin API is on the main listener only behind a token.
    if shared.config.admin_token.is_some() {
        router = router.merge(admin_api::routes());
    }
    router.with_state(shared)
}

/// `GET /push/vapid-public-key`: the key pages pass as `applicationServerKey` when they
/// subscribe (base64url, uncompressed P-256), with CORS; 404 when push is off.
async fn vapid_public_key(State(shared): State<Arc<Shared>>) -> Response {
    let cors = [(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    )];
    match &shared.push {
        Some(push) => (cors, push.public_key().to_owned()).into_response(),
        None => (StatusCode::NOT_FOUND, cors, "push is off on this server\n").into_response(),
    }
}

/// The operators' listener: `/healthz`, `/metrics` and the admin API.
fn admin_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(admin_api::routes())
        .with_state(shared)
}

/// `GET /healthz`: `ok`; 503 `shutting down` once the server is stopping, and in cluster mode
/// 503 `draining` while this node drains (a balancer's health check then sends new peers, and
/// the moving ones, elsewhere) and `redis unreachable` while the store does not answer (peers on
/// this node keep talking to each other meanwhile).
async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let unavailable = |why: &'static str| (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    if shared.shutdown.is_cancelled() {
        return unavailable("shutting down\n");
    }
    match &shared.cluster {
        Some(cluster) if cluster.is_draining() => unavailable("draining\n"),
        Some(cluster) if !cluster.reachable() => unavailable("redis unreachable\n"),
        _ => "ok\n".into_response(),
    }
}

/// Query of `/rooms`.
#[derive(Debug, Default, serde::Deserialize)]
struct RoomsQuery {
    /// `true`: only rooms a peer could join now (not full, not started).
    open: Option<bool>,
    /// The page after this cursor (the `next` of the previous page).
    before: Option<u64>,
    /// At most this many rooms (capped at `max_listed_rooms`).
    limit: Option<usize>,
    /// An auth token, when the listing is private.
    token: Option<String>,
}

/// The public room list, as JSON. With `auth.private_rooms`, only for a valid token
/// (`?token=` or `Authorization: Bearer`).
async fn rooms(
    headers: HeaderMap,
    query: Result<Query<RoomsQuery>, QueryRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(shared): State<Arc<Shared>>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    if shared.config.auth.private_rooms {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let token = query.token.as_deref().or(bearer);
        if let Err(refused) = shared.check_token(canonical_ip(peer.ip()), token, None) {
            return denied(&shared, &refused);
        }
    }
    let max = shared.config.limits.max_listed_rooms;
    let limit = query.limit.unwrap_or(max).clamp(1, max);
    let open_only = query.open.unwrap_or(false);
    if let Some(cluster) = &shared.cluster {
        // The whole cluster's listing, from Redis.
        return match cluster.public_rooms(open_only, limit, query.before).await {
            Ok((rooms, next)) => {
                axum::Json(serde_json::json!({ "rooms": rooms, "next": next })).into_response()
            }
            Err(error) => (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({
                    "error": "unavailable",
                    "message": format!("the cluster's listing cannot be read: {error}"),
                })),
            )
                .into_response(),
        };
    }
    let (listed, next) = lock(&shared.relay)
        .hub
        .public_rooms(open_only, limit, query.before);
    let rooms: Vec<serde_json::Value> = listed
        .into_iter()
        .map(|listing| {
            serde_json::json!({
                "room": listing.room,
                "players": listing.players,
                "info": listing.info,
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "rooms": rooms, "next": next })).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        shared.metrics.render(),
    )
        .into_response()
}

async fn websocket_without_room(
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, Rejection>,
    query: Result<Query<ConnectQuery>, QueryRejection>,
    connect_info: ConnectInfo<SocketAddr>,
    state: State<Arc<Shared>>,
) -> Response {
    accept(headers, upgrade, None, query, connect_info, state)
}

async fn websocket(
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, Rejection>,
    Path(room): Path<String>,
    query: Result<Query<ConnectQuery>, QueryRejection>,
    connect_info: ConnectInfo<SocketAddr>,
    state: State<Arc<Shared>>,
) -> Response {
    accept(headers, upgrade, Some(room), query, connect_info, state)
}

fn accept(
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, Rejection>,
    room: Option<String>,
    query: Result<Query<ConnectQuery>, QueryRejection>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(shared): State<Arc<Shared>>,
) -> Response {
    if shared.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let mut query = query.map(|Query(q)| q).unwrap_or_default();
    let requested: Vec<String> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|p| p.trim().to_owned())
        .collect();
    // Auth first: a refused token costs no WebSocket. A plain GET (no upgrade) with the same URL
    // gets the same answer, which is how a browser learns why its WebSocket failed.
    let token = find_token(query.token.as_deref(), &requested);
    let ip = canonical_ip(peer.ip());
    let granted = match authorize_connect(&shared, ip, token, query.user.as_deref()) {
        Ok(granted) => granted,
        Err(refused) => return *refused,
    };
    if let Some(Granted {
        name: Some(name), ..
    }) = &granted
    {
        query.user = Some(name.clone());
    }
    // A resume keeps its place: no connection limits for it.
    if query.resume.is_none() {
        if let Err(refused) = check_capacity_http(&shared, ip) {
            return *refused;
        }
    }
    let limits = &shared.config.limits;
    let mut negotiated = negotiate(
        room.as_deref(),
        &query,
        requested.iter().map(String::as_str),
        limits.max_room_meta_bytes,
    );
    if let Ok(handshake) = &mut negotiated {
        handshake.origin = origin(&shared, &headers);
    }
    if let (Some(granted), Ok(handshake)) = (granted, &mut negotiated) {
        if let Err(error) = precheck(&shared, &handshake.entry, &granted.permits) {
            return denied(&shared, &Denied::forbidden(error));
        }
        handshake.permits = granted.permits;
        handshake.token_name = granted.name;
    }
    // Past the refusals a plain GET can learn from: the rest needs the upgrade.
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let upgrade = match &negotiated {
        Ok(Handshake {
            subprotocol: Some(protocol),
            ..
        }) => upgrade.protocol(protocol),
        Err(Refusal {
            echo_subprotocol: Some(protocol),
            ..
        }) => upgrade.protocol(protocol),
        _ => upgrade,
    };
    let ice_servers = ice_servers(
        &shared,
        headers.get(header::HOST).and_then(|h| h.to_str().ok()),
    );
    let config = ws_config(limits);
    let tasks = shared.tasks.clone();
    let upgraded = Box::new(connection::Upgrade {
        shared,
        outcome: negotiated.map_err(|r| (crate::wire::Wire::Switchboard(r.encoding), r.error)),
        ip,
        ice_servers,
    });
    upgrade.on_upgrade(config, move |socket| {
        tasks.track_future(connection::serve(socket, upgraded))
    })
}

/// Auth before the upgrade: what the token grants (`None` when auth is off), or the refusal.
pub(crate) fn authorize_connect(
    shared: &Shared,
    ip: IpAddr,
    token: Option<&str>,
    user: Option<&str>,
) -> Result<Option<Granted>, Box<Response>> {
    shared
        .check_token(ip, token, user)
        .map_err(|refused| Box::new(denied(shared, &refused)))
}

/// Connection limits before the upgrade, so a refusal costs no WebSocket and reads as a plain
/// HTTP answer (the join checks again, and decides): 503 when the server is full, 429 when this
/// address's share is used up.
pub(crate) fn check_capacity_http(shared: &Shared, ip: IpAddr) -> Result<(), Box<Response>> {
    // In a cluster this node's own sockets count too (their rooms may be owned elsewhere).
    if let Some(cluster) = &shared.cluster {
        if let Err(error) = cluster.sockets.check(ip) {
            let status = if cluster.sockets.is_full() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::TOO_MANY_REQUESTS
            };
            shared.metrics.error(error.code);
            return Err(Box::new(refusal(status, &error, None)));
        }
    }
    let relay = lock(&shared.relay);
    let Err(error) = relay.hub.check_capacity(ip) else {
        return Ok(());
    };
    let status = if relay.hub.peer_count() >= shared.config.limits.max_connections {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::TOO_MANY_REQUESTS
    };
    drop(relay);
    shared.metrics.error(error.code);
    Err(Box::new(refusal(status, &error, None)))
}

/// A WebSocket's limits (buffers, message and frame sizes).
pub(crate) fn ws_config(limits: &Limits) -> ws::Config {
    ws::Config {
        read_buffer_bytes: limits.read_buffer_bytes,
        busy_read_buffer_bytes: limits.busy_read_buffer_bytes,
        write_buffer_bytes: limits.write_buffer_bytes,
        max_write_buffer_bytes: limits.max_write_buffer_bytes,
        max_message_bytes: limits.max_message_bytes,
    }
}

/// What a token's permits refuse that is known before the upgrade (the hub decides at join):
/// a named room outside its `rooms`, creating a room without `host`.
pub(crate) fn precheck(
    shared: &Shared,
    entry: &Entry,
    permits: &Permits,
) -> Result<(), ProtocolError> {
    match entry {
        Entry::Join(Destination::Named { room, create, .. }) => {
            permits.check_room(room)?;
            if *create && !lock(&shared.relay).hub.has_room(room) {
                permits.check_may_create()?;
            }
            Ok(())
        }
        Entry::Join(Destination::NewCode { .. } | Destination::NewSession) => {
            permits.check_may_create()
        }
        Entry::Join(Destination::Match { .. }) | Entry::Resume(_) | Entry::Claim { .. } => Ok(()),
    }
}

/// `push.public_url`, else `ws://host` or `wss://host` as the client reached us (its `Host`
/// header, else the listen address).
pub(crate) fn origin(shared: &Shared, headers: &HeaderMap) -> String {
    if let Some(url) = &shared.config.push.public_url {
        return url.clone();
    }
    let scheme = if shared.config.tls_cert.is_some() {
        "wss"
    } else {
        "ws"
    };
    // A host name is at most 255 bytes (and a port); anything else is not a host.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.len() <= 261 && !h.contains(['/', '@', ' ']))
        .map_or_else(|| shared.config.listen.to_string(), str::to_owned);
    format!("{scheme}://{host}")
}

/// The ICE servers for a client: the configured list, or else the built-in STUN server, named by
/// its bound address when specific, or by the host the client used to reach us when the STUN
/// server listens on a wildcard address.
pub(crate) fn ice_servers(shared: &Shared, host_header: Option<&str>) -> Vec<IceServer> {
    if !shared.config.ice_servers.is_empty() {
        return shared.config.ice_servers.clone();
    }
    let urls: Vec<String> = shared
        .stun_addrs
        .iter()
        .filter_map(|addr| {
            let host = if addr.ip().is_unspecified() {
                host_of(host_header?)?.to_owned()
            } else {
                match addr.ip() {
                    IpAddr::V6(v6) => format!("[{v6}]"),
                    v4 => v4.to_string(),
                }
            };
            Some(format!("stun:{host}:{}", addr.port()))
        })
        .collect();
    if urls.is_empty() {
        Vec::new()
    } else {
        vec![IceServer {
            urls,
            username: None,
            credential: None,
        }]
    }
}

/// The host part of a `Host` header: `example.com:8080` gives `example.com`, `[::1]:80` gives `[::1]`.
fn host_of(host_header: &str) -> Option<&str> {
    if host_header.starts_with('[') {
        return host_header.find(']').map(|end| &host_header[..=end]);
    }
    let host = host_header
        .rsplit_once(':')
        .map_or(host_header, |(host, _)| host);
    (!host.is_empty()).then_some(host)
}

/// IPv4-mapped IPv6 addresses count as the IPv4 address, for per-IP limits.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}
