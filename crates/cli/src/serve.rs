//! `switchboard serve`: configuration from flags, `SWITCHBOARD_*` environment variables and an
//! optional TOML file (in that order of precedence), then run until Ctrl-C / SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use switchboard_server::{Config, Server};

/// Flags of `switchboard serve`. Every limit is documented in `docs/configuration.md`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// HTTP / WebSocket listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "SWITCHBOARD_LISTEN")]
    listen: Option<SocketAddr>,
    /// A second, plain-HTTP listener with only /healthz, /metrics and the admin API (for operators).
    #[arg(long, env = "SWITCHBOARD_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Token for the admin API (Bearer; at least 16 characters): also serves it on --listen.
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Cluster mode: join the nodes sharing this Redis (redis://HOST:PORT/DB; docs/cluster.md).
    #[arg(long, env = "SWITCHBOARD_REDIS", hide_env_values = true)]
    redis: Option<String>,
    /// PEM certificate chain: serve HTTPS / WSS (needs --tls-key).
    #[arg(long, env = "SWITCHBOARD_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "SWITCHBOARD_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// ICE server URL handed to clients (repeatable; replaces the configured list).
    #[arg(
        long = "ice-server",
        env = "SWITCHBOARD_ICE_SERVERS",
        value_delimiter = ','
    )]
    ice_servers: Vec<String>,
    /// UDP address of the built-in STUN server (repeatable) [default: port 3478 on the --listen IP].
    #[arg(
        long = "stun-listen",
        env = "SWITCHBOARD_STUN_LISTEN",
        value_delimiter = ','
    )]
    stun_listen: Vec<SocketAddr>,
    /// Do not run the built-in STUN server.
    #[arg(long, env = "SWITCHBOARD_NO_STUN")]
    no_stun: bool,
    /// STUN worker threads per address [default: one per CPU core].
    #[arg(long, env = "SWITCHBOARD_STUN_WORKERS")]
    stun_workers: Option<usize>,
    /// Log format.
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(flatten)]
    access: AccessArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Auth and TURN (docs/auth.md), the PeerJS endpoint (docs/compat.md) and Web Push.
#[derive(Args, Debug)]
struct AccessArgs {
    /// Require a JWT on every connect, HS256 with this shared secret.
    #[arg(long, env = "SWITCHBOARD_AUTH_JWT_SECRET", hide_env_values = true)]
    auth_jwt_secret: Option<String>,
    /// Require a JWT on every connect, verified with this PEM public key (Ed25519: EdDSA; RSA: RS256).
    #[arg(long, env = "SWITCHBOARD_AUTH_JWT_PUBLIC_KEY")]
    auth_jwt_public_key: Option<PathBuf>,
    /// A token's aud must contain this.
    #[arg(long, env = "SWITCHBOARD_AUTH_AUDIENCE")]
    auth_audience: Option<String>,
    /// Clock skew allowed on exp and nbf, seconds [default: 30].
    #[arg(long, env = "SWITCHBOARD_AUTH_LEEWAY_S")]
    auth_leeway_s: Option<u64>,
    /// Longest token accepted, bytes [default: 4096].
    #[arg(long, env = "SWITCHBOARD_AUTH_MAX_TOKEN_BYTES")]
    auth_max_token_bytes: Option<usize>,
    /// GET /rooms needs a valid token too.
    #[arg(long, env = "SWITCHBOARD_AUTH_PRIVATE_ROOMS")]
    auth_private_rooms: bool,
    /// Failed token checks per minute from one address before its tokens are refused unchecked [default: 30].
    #[arg(long, env = "SWITCHBOARD_AUTH_FAILED_CHECKS_PER_MINUTE")]
    auth_failed_checks_per_minute: Option<u32>,
    /// Failed token checks from one address in a burst [default: 30].
    #[arg(long, env = "SWITCHBOARD_AUTH_FAILED_CHECK_BURST")]
    auth_failed_check_burst: Option<u32>,
    /// TURN URL handed out with fresh credentials (repeatable, at most 4: turn:, turns:, ?transport=tcp).
    #[arg(
        long = "turn-url",
        env = "SWITCHBOARD_TURN_URLS",
        value_delimiter = ','
    )]
    turn_urls: Vec<String>,
    /// The secret shared with the TURN server (coturn's static-auth-secret).
    #[arg(long, env = "SWITCHBOARD_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// How long a TURN credential is valid, seconds; refreshed at half [default: 3600].
    #[arg(long, env = "SWITCHBOARD_TURN_TTL")]
    turn_ttl: Option<u64>,
    /// GET /peerjs/{key}/peers lists the connected ids.
    #[arg(long, env = "SWITCHBOARD_PEERJS_ALLOW_DISCOVERY")]
    peerjs_allow_discovery: bool,
    /// How long PeerJS messages for an absent id are held, ms [default: 5000].
    #[arg(long, env = "SWITCHBOARD_PEERJS_EXPIRE_TIMEOUT_MS")]
    peerjs_expire_timeout_ms: Option<u64>,
    /// Most PeerJS messages one address may have held for absent ids [default: 64].
    #[arg(long, env = "SWITCHBOARD_PEERJS_MAX_HELD_PER_ADDRESS")]
    peerjs_max_held_per_address: Option<usize>,
    /// Most PeerJS messages held for one absent id [default: 64].
    #[arg(long, env = "SWITCHBOARD_PEERJS_MAX_HELD_PER_TARGET")]
    peerjs_max_held_per_target: Option<usize>,
    /// Most bytes of PeerJS messages held in all [default: 4194304].
    #[arg(long, env = "SWITCHBOARD_PEERJS_MAX_HELD_BYTES")]
    peerjs_max_held_bytes: Option<usize>,
    /// Web Push: PEM file of the server's VAPID key (P-256, PKCS#8); turns push on.
    #[arg(long, env = "SWITCHBOARD_PUSH_VAPID_KEY")]
    push_vapid_key: Option<PathBuf>,
    /// Web Push: the contact push services may reach (mailto: or https:).
    #[arg(long, env = "SWITCHBOARD_PUSH_SUBJECT")]
    push_subject: Option<String>,
    /// Web Push: how long a push service keeps a push, seconds [default: 3600].
    #[arg(long, env = "SWITCHBOARD_PUSH_TTL_S")]
    push_ttl_s: Option<u64>,
    /// Web Push: deadline of one push, ms [default: 5000].
    #[arg(long, env = "SWITCHBOARD_PUSH_TIMEOUT_MS")]
    push_timeout_ms: Option<u64>,
    /// Web Push: most subscriptions held [default: 10000].
    #[arg(long, env = "SWITCHBOARD_PUSH_MAX_SUBSCRIPTIONS")]
    push_max_subscriptions: Option<usize>,
    /// Web Push: largest subscription, bytes [default: 2048].
    #[arg(long, env = "SWITCHBOARD_PUSH_MAX_SUBSCRIPTION_BYTES")]
    push_max_subscription_bytes: Option<usize>,
    /// Web Push: sustained pushes per minute to one user [default: 6].
    #[arg(long, env = "SWITCHBOARD_PUSH_PER_TARGET_PER_MINUTE")]
    push_per_target_per_minute: Option<u32>,
    /// Web Push: burst of pushes to one user [default: 3].
    #[arg(long, env = "SWITCHBOARD_PUSH_BURST_PER_TARGET")]
    push_burst_per_target: Option<u32>,
    /// Web Push: accept a local push service (http:, any host and address; tests only).
    #[arg(long, env = "SWITCHBOARD_PUSH_ALLOW_HTTP_ENDPOINTS")]
    push_allow_http_endpoints: bool,
    /// Web Push: a push service host pushes may go to (repeatable; .example.com for every
    /// host under it; * for any public host) [default: the browsers' push services].
    #[arg(
        long = "push-allowed-host",
        env = "SWITCHBOARD_PUSH_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    push_allowed_hosts: Vec<String>,
    /// Web Push: most subscriptions from one address [default: 32].
    #[arg(long, env = "SWITCHBOARD_PUSH_MAX_SUBSCRIPTIONS_PER_IP")]
    push_max_subscriptions_per_ip: Option<usize>,
    /// Web Push: how long a subscription is kept, seconds [default: 2592000].
    #[arg(long, env = "SWITCHBOARD_PUSH_SUBSCRIPTION_TTL_S")]
    push_subscription_ttl_s: Option<u64>,
    /// Web Push: most pushes under way at once [default: 64].
    #[arg(long, env = "SWITCHBOARD_PUSH_MAX_IN_FLIGHT")]
    push_max_in_flight: Option<usize>,
    /// Web Push: where pushes tell users to connect (wss://host) [default: the Host header].
    #[arg(long, env = "SWITCHBOARD_PUSH_PUBLIC_URL")]
    push_public_url: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// One flag and one environment variable per limit.
#[derive(Args, Debug)]
struct LimitArgs {
    /// Largest WebSocket message accepted, bytes [default: 65536].
    #[arg(long, env = "SWITCHBOARD_MAX_MESSAGE_BYTES")]
    max_message_bytes: Option<usize>,
    /// Sustained messages per second per connection [default: 50].
    #[arg(long, env = "SWITCHBOARD_MESSAGES_PER_SECOND")]
    messages_per_second: Option<u32>,
    /// Message burst per connection [default: 200].
    #[arg(long, env = "SWITCHBOARD_MESSAGE_BURST")]
    message_burst: Option<u32>,
    /// Most peers in one room [default: 128].
    #[arg(long, env = "SWITCHBOARD_MAX_PEERS_PER_ROOM")]
    max_peers_per_room: Option<usize>,
    /// Most peers in one PeerJS key or rustysignal network [default: 10000].
    #[arg(long, env = "SWITCHBOARD_MAX_PEERS_PER_DIRECTORY")]
    max_peers_per_directory: Option<usize>,
    /// Messages per second to everyone in one rustysignal network [default: 20].
    #[arg(long, env = "SWITCHBOARD_DIRECTORY_BROADCASTS_PER_SECOND")]
    directory_broadcasts_per_second: Option<u32>,
    /// Burst of messages to everyone in one rustysignal network [default: 40].
    #[arg(long, env = "SWITCHBOARD_DIRECTORY_BROADCAST_BURST")]
    directory_broadcast_burst: Option<u32>,
    /// Most connections in all [default: 100000].
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Most connections from one IP address [default: 1000].
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Queued messages per connection before it is closed as a slow reader [default: 256].
    #[arg(long, env = "SWITCHBOARD_SEND_QUEUE_MESSAGES")]
    send_queue_messages: Option<usize>,
    /// Server ping interval, ms [default: 5000].
    #[arg(long, env = "SWITCHBOARD_HEARTBEAT_INTERVAL_MS")]
    heartbeat_interval_ms: Option<u64>,
    /// Close and announce a connection silent this long, ms [default: 15000].
    #[arg(long, env = "SWITCHBOARD_IDLE_TIMEOUT_MS")]
    idle_timeout_ms: Option<u64>,
    /// WebSocket read buffer per connection, bytes [default: 2048].
    #[arg(long, env = "SWITCHBOARD_READ_BUFFER_BYTES")]
    read_buffer_bytes: Option<usize>,
    /// Largest read of a busy WebSocket, bytes [default: 16384].
    #[arg(long, env = "SWITCHBOARD_BUSY_READ_BUFFER_BYTES")]
    busy_read_buffer_bytes: Option<usize>,
    /// WebSocket write buffer per connection, bytes [default: 8192].
    #[arg(long, env = "SWITCHBOARD_WRITE_BUFFER_BYTES")]
    write_buffer_bytes: Option<usize>,
    /// How long shutdown waits for connections to close, ms [default: 2000].
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_GRACE_MS")]
    shutdown_grace_ms: Option<u64>,
    /// How long a resumable peer whose connection dropped keeps its place, ms [default: 10000].
    #[arg(long, env = "SWITCHBOARD_RESUME_GRACE_MS")]
    resume_grace_ms: Option<u64>,
    /// How long a detached peer stays in its room at most, ms [default: 3600000].
    #[arg(long, env = "SWITCHBOARD_DETACHED_TTL_MS")]
    detached_ttl_ms: Option<u64>,
    /// Largest room metadata (JSON), bytes [default: 1024].
    #[arg(long, env = "SWITCHBOARD_MAX_ROOM_META_BYTES")]
    max_room_meta_bytes: Option<usize>,
    /// Most rooms in one /rooms listing [default: 100].
    #[arg(long, env = "SWITCHBOARD_MAX_LISTED_ROOMS")]
    max_listed_rooms: Option<usize>,
    /// Most unsent bytes a WebSocket may hold before it is closed as a slow reader [default: 262144].
    #[arg(long, env = "SWITCHBOARD_MAX_WRITE_BUFFER_BYTES")]
    max_write_buffer_bytes: Option<usize>,
    /// A WebSocket write that takes longer closes it as a slow reader, ms [default: 5000].
    #[arg(long, env = "SWITCHBOARD_WRITE_TIMEOUT_MS")]
    write_timeout_ms: Option<u64>,
    /// Sustained control frames (pings) a client may send per second [default: 10].
    #[arg(long, env = "SWITCHBOARD_CONTROL_FRAMES_PER_SECOND")]
    control_frames_per_second: Option<u32>,
    /// Control frame burst; past it the connection is closed as flooding [default: 50].
    #[arg(long, env = "SWITCHBOARD_CONTROL_BURST")]
    control_burst: Option<u32>,
    /// Most HTTP connections not yet upgraded, all addresses [default: 4096].
    #[arg(long, env = "SWITCHBOARD_MAX_PENDING_CONNECTIONS")]
    max_pending_connections: Option<usize>,
    /// Most HTTP connections not yet upgraded from one IP address [default: 256].
    #[arg(long, env = "SWITCHBOARD_MAX_PENDING_PER_IP")]
    max_pending_per_ip: Option<usize>,
    /// Time for a not-upgraded HTTP connection to send a whole request, ms [default: 10000].
    #[arg(long, env = "SWITCHBOARD_HTTP_IDLE_TIMEOUT_MS")]
    http_idle_timeout_ms: Option<u64>,
    /// Largest HTTP request head, bytes [default: 16384].
    #[arg(long, env = "SWITCHBOARD_MAX_HEADER_BYTES")]
    max_header_bytes: Option<usize>,
    /// Sustained joins per second from one IP address [default: 10].
    #[arg(long, env = "SWITCHBOARD_JOINS_PER_IP_PER_SECOND")]
    joins_per_ip_per_second: Option<u32>,
    /// Join burst from one IP address [default: 50].
    #[arg(long, env = "SWITCHBOARD_JOIN_BURST_PER_IP")]
    join_burst_per_ip: Option<u32>,
    /// Sustained joins per second into one room [default: 20].
    #[arg(long, env = "SWITCHBOARD_JOINS_PER_ROOM_PER_SECOND")]
    joins_per_room_per_second: Option<u32>,
    /// Join burst into one room [default: 100].
    #[arg(long, env = "SWITCHBOARD_JOIN_BURST_PER_ROOM")]
    join_burst_per_room: Option<u32>,
    /// Missed room-code lookups per minute from one IP address [default: 20].
    #[arg(long, env = "SWITCHBOARD_CODE_LOOKUPS_PER_MINUTE")]
    code_lookups_per_minute: Option<u32>,
    /// Missed room-code lookup burst from one IP address [default: 20].
    #[arg(long, env = "SWITCHBOARD_CODE_LOOKUP_BURST")]
    code_lookup_burst: Option<u32>,
    /// Sustained bytes per second one connection may send [default: 262144].
    #[arg(long, env = "SWITCHBOARD_BYTES_PER_SECOND")]
    bytes_per_second: Option<usize>,
    /// Bytes one connection may send in a burst [default: 1048576].
    #[arg(long, env = "SWITCHBOARD_BYTE_BURST")]
    byte_burst: Option<usize>,
    /// Most public rooms created from one IP address at once [default: 10].
    #[arg(long, env = "SWITCHBOARD_MAX_PUBLIC_ROOMS_PER_IP")]
    max_public_rooms_per_ip: Option<usize>,
}

impl ServeArgs {
    /// The configuration: defaults, then the file, then environment and flags.
    fn config(&self) -> Result<Config, switchboard_server::ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::from_toml_file(path)?,
            None => Config::default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if self.admin_listen.is_some() {
            config.admin_listen = self.admin_listen;
        }
        if self.admin_token.is_some() {
            config.admin_token.clone_from(&self.admin_token);
        }
        if self.redis.is_some() {
            config.cluster.redis.clone_from(&self.redis);
        }
        if self.tls_cert.is_some() {
            config.tls_cert.clone_from(&self.tls_cert);
        }
        if self.tls_key.is_some() {
            config.tls_key.clone_from(&self.tls_key);
        }
        if !self.ice_servers.is_empty() {
            config.ice_servers = vec![ice_server_from_urls(&self.ice_servers)];
        }
        if !self.stun_listen.is_empty() {
            config.stun.listen.clone_from(&self.stun_listen);
        }
        if self.no_stun {
            config.stun.enabled = false;
        }
        if let Some(workers) = self.stun_workers {
            config.stun.workers = workers;
        }
        let a = &self.access;
        if a.auth_jwt_secret.is_some() {
            config.auth.jwt_secret.clone_from(&a.auth_jwt_secret);
        }
        if a.auth_jwt_public_key.is_some() {
            config
                .auth
                .jwt_public_key
                .clone_from(&a.auth_jwt_public_key);
        }
        if a.auth_audience.is_some() {
            config.auth.audience.clone_from(&a.auth_audience);
        }
        if let Some(leeway) = a.auth_leeway_s {
            config.auth.leeway_s = leeway;
        }
        if let Some(max) = a.auth_max_token_bytes {
            config.auth.max_token_bytes = max;
        }
        if a.auth_private_rooms {
            config.auth.private_rooms = true;
        }
        if let Some(v) = a.auth_failed_checks_per_minute {
            config.auth.failed_checks_per_minute = v;
        }
        if let Some(v) = a.auth_failed_check_burst {
            config.auth.failed_check_burst = v;
        }
        if !a.turn_urls.is_empty() {
            config.turn.urls.clone_from(&a.turn_urls);
        }
        if a.turn_secret.is_some() {
            config.turn.secret.clone_from(&a.turn_secret);
        }
        if let Some(ttl) = a.turn_ttl {
            config.turn.ttl_s = ttl;
        }
        if a.peerjs_allow_discovery {
            config.peerjs.allow_discovery = true;
        }
        if let Some(ms) = a.peerjs_expire_timeout_ms {
            config.peerjs.expire_timeout_ms = ms;
        }
        if let Some(n) = a.peerjs_max_held_per_address {
            config.peerjs.max_held_per_address = n;
        }
        if let Some(n) = a.peerjs_max_held_per_target {
            config.peerjs.max_held_per_target = n;
        }
        if let Some(n) = a.peerjs_max_held_bytes {
            config.peerjs.max_held_bytes = n;
        }
        let push = &mut config.push;
        if a.push_vapid_key.is_some() {
            push.vapid_key.clone_from(&a.push_vapid_key);
        }
        if a.push_subject.is_some() {
            push.subject.clone_from(&a.push_subject);
        }
        if let Some(v) = a.push_ttl_s {
            push.ttl_s = v;
        }
        if let Some(v) = a.push_timeout_ms {
            push.timeout_ms = v;
        }
        if let Some(v) = a.push_max_subscriptions {
            push.max_subscriptions = v;
        }
        if let Some(v) = a.push_max_subscription_bytes {
            push.max_subscription_bytes = v;
        }
        if let Some(v) = a.push_per_target_per_minute {
            push.pushes_per_target_per_minute = v;
        }
        if let Some(v) = a.push_burst_per_target {
            push.push_burst_per_target = v;
        }
        if a.push_allow_http_endpoints {
            push.allow_http_endpoints = true;
        }
        if !a.push_allowed_hosts.is_empty() {
            push.allowed_hosts.clone_from(&a.push_allowed_hosts);
        }
        if let Some(v) = a.push_max_subscriptions_per_ip {
            push.max_subscriptions_per_ip = v;
        }
        if let Some(v) = a.push_subscription_ttl_s {
            push.subscription_ttl_s = v;
        }
        if let Some(v) = a.push_max_in_flight {
            push.max_in_flight = v;
        }
        if a.push_public_url.is_some() {
            push.public_url.clone_from(&a.push_public_url);
        }
        let l = &self.limits;
        let c = &mut config.limits;
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = l.$field { c.$field = v; } )* };
        }
        set!(
            max_message_bytes,
            messages_per_second,
            message_burst,
            max_peers_per_room,
            max_peers_per_directory,
            directory_broadcasts_per_second,
            directory_broadcast_burst,
            max_connections,
            max_connections_per_ip,
            send_queue_messages,
            heartbeat_interval_ms,
            idle_timeout_ms,
            read_buffer_bytes,
            busy_read_buffer_bytes,
            write_buffer_bytes,
            shutdown_grace_ms,
            resume_grace_ms,
            detached_ttl_ms,
            max_room_meta_bytes,
            max_listed_rooms,
            max_write_buffer_bytes,
            write_timeout_ms,
            control_frames_per_second,
            control_burst,
            max_pending_connections,
            max_pending_per_ip,
            http_idle_timeout_ms,
            max_header_bytes,
            joins_per_ip_per_second,
            join_burst_per_ip,
            joins_per_room_per_second,
            join_burst_per_room,
            code_lookups_per_minute,
            code_lookup_burst,
            bytes_per_second,
            byte_burst,
            max_public_rooms_per_ip
        );
        config.validate()?;
        Ok(config)
    }
}

fn ice_server_from_urls(urls: &[String]) -> switchboard_server::IceServer {
    switchboard_server::IceServer {
        urls: urls.to_vec(),
        username: None,
        credential: None,
    }
}

/// Runs `switchboard serve`.
pub fn run(args: ServeArgs) -> ExitCode {
    init_logging(args.log_format);
    let config = match args.config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("switchboard: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match Server::start(config).await {
            Ok(server) => server,
            Err(error) => {
                eprintln!("switchboard: {error}");
                return ExitCode::FAILURE;
            }
        };
        let (http, ws) = if server.is_tls() { ("https", "wss") } else { ("http", "ws") };
        let addr = server.local_addr();
        tracing::info!(%addr, tls = server.is_tls(), stun = ?server.stun_addrs(), "switchboard listening");
        println!("Switchboard is running: {http}://{addr}/  (signaling: {ws}://{addr}/ws/{{room}}; Ctrl-C stops)");
        for stun in server.stun_addrs() {
            println!("STUN (UDP): {stun}");
        }
        wait_for_stop_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn wait_for_stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
