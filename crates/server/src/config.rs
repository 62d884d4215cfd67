//! Every setting of the server, with its default. `docs/configuration.md` documents each one;
//! the CLI fills this from flags, `SWITCHBOARD_*` environment variables and a TOML file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use switchboard_protocol::IceServer;

pub use crate::cluster::config::ClusterConfig;
use crate::compat::mailbox::MailLimits;
use crate::hub::HubLimits;

/// Server configuration. `Config::default()` is what `switchboard serve` runs with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the HTTP / WebSocket listener.
    pub listen: SocketAddr,
    /// A second, plain-HTTP listener serving only `/healthz`, `/metrics` and the admin API, so
    /// operators reach them even when the main listener is saturated. `None`: `/healthz` and
    /// `/metrics` are on the main listener only.
    pub admin_listen: Option<SocketAddr>,
    /// With it, the admin API needs `Authorization: Bearer <admin_token>` and is served on the
    /// main listener too. Without it, the admin API is only on `admin_listen`, unauthenticated
    /// (bind that to a private address).
    pub admin_token: Option<String>,
    /// PEM certificate chain; with `tls_key`, the listener speaks HTTPS / WSS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// ICE servers handed to clients in `welcome`. Empty: the built-in STUN server, if on.
    pub ice_servers: Vec<IceServer>,
    /// The built-in STUN server.
    pub stun: StunConfig,
    /// Who may connect: JWT auth, off by default.
    pub auth: AuthConfig,
    /// TURN servers whose short-lived credentials the hub hands out.
    pub turn: TurnConfig,
    /// The PeerJS endpoint (`/peerjs`): discovery and messages held for absent peers.
    pub peerjs: PeerjsConfig,
    /// Web Push to users who are away (off unless `vapid_key` is set).
    pub push: PushConfig,
    /// Cluster mode on Redis (off unless `cluster.redis` is set).
    pub cluster: ClusterConfig,
    /// Limits, all named, all with defaults.
    pub limits: Limits,
}

/// JWT auth at connect. Off unless `jwt_secret` or `jwt_public_key` is set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Shared secret: tokens are HS256.
    pub jwt_secret: Option<String>,
    /// PEM public key file (Ed25519: tokens are EdDSA; RSA: RS256).
    pub jwt_public_key: Option<PathBuf>,
    /// When set, a token's `aud` must contain it.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_s: u64,
    /// Longest token accepted, in bytes.
    pub max_token_bytes: usize,
    /// `GET /rooms` needs a valid token too.
    pub private_rooms: bool,
    /// Sustained failed token checks per minute from one address; past them (and the burst),
    /// its tokens are not checked at all for a while (429 `throttled`).
    pub failed_checks_per_minute: u32,
    /// Failed token checks from one address in a burst above that rate.
    pub failed_check_burst: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwt_public_key: None,
            audience: None,
            leeway_s: 30,
            max_token_bytes: 4096,
            private_rooms: false,
            failed_checks_per_minute: 30,
            failed_check_burst: 30,
        }
    }
}

impl AuthConfig {
    /// Whether tokens are required.
    pub fn enabled(&self) -> bool {
        self.jwt_secret.is_some() || self.jwt_public_key.is_some()
    }
}

/// TURN with REST credentials (coturn's `use-auth-secret`): every peer gets its own user name
/// and password, valid for `ttl_s`, refreshed before they expire.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// `turn:` and `turns:` URLs (`?transport=tcp` allowed), at most `MAX_TURN_URLS`.
    pub urls: Vec<String>,
    /// The secret shared with the TURN server (`static-auth-secret`).
    pub secret: Option<String>,
    /// How long a credential is valid, in seconds; a fresh one is sent at half of it.
    pub ttl_s: u64,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            secret: None,
            ttl_s: 3600,
        }
    }
}

/// The PeerJS endpoint's settings (peerjs-server's `allow_discovery` and `expire_timeout`, and
/// bounds on what it holds for absent peers).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeerjsConfig {
    /// `GET /peerjs/{key}/peers` lists the ids connected with that key (else 401).
    pub allow_discovery: bool,
    /// How long an offer, answer or candidate for an id that is not connected is held for it,
    /// in ms; then its sender gets `EXPIRE`.
    pub expire_timeout_ms: u64,
    /// Most messages one address may have held for absent peers at once; past it, `EXPIRE` at
    /// once.
    pub max_held_per_address: usize,
    /// Most messages held for one absent id, and at most half of `limits.send_queue_messages`
    /// (they all go into its send queue when it comes); past it, `EXPIRE` at once.
    pub max_held_per_target: usize,
    /// Most bytes held for absent peers in all; past it, `EXPIRE` at once.
    pub max_held_bytes: usize,
}

impl Default for PeerjsConfig {
    fn default() -> Self {
        Self {
            allow_discovery: false,
            expire_timeout_ms: 5_000,
            max_held_per_address: 64,
            max_held_per_target: 64,
            max_held_bytes: 4 * 1024 * 1024,
        }
    }
}

impl PeerjsConfig {
    /// The bounds of the messages held for absent peers. What waits for one id goes into its
    /// send queue at once when it comes, so at most half of `send_queue_messages` waits.
    pub fn mail_limits(&self, send_queue_messages: usize) -> MailLimits {
        MailLimits {
            hold: Duration::from_millis(self.expire_timeout_ms),
            max_per_address: self.max_held_per_address,
            max_per_target: self.max_held_per_target.min(send_queue_messages / 2).max(1),
            max_bytes: self.max_held_bytes,
        }
    }
}

/// Web Push (RFC 8030 with VAPID, RFC 8292): connection requests for users who are away.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// PEM file of the server's VAPID key (P-256, PKCS#8). Push is on when set.
    pub vapid_key: Option<PathBuf>,
    /// The contact push services may reach (`mailto:` or `https:`), VAPID's `sub`; required
    /// with `vapid_key`.
    pub subject: Option<String>,
    /// How long a push service keeps a push for an offline browser, in seconds (`TTL`).
    pub ttl_s: u64,
    /// How long one push may take, connecting included, in ms.
    pub timeout_ms: u64,
    /// Most subscriptions the server holds.
    pub max_subscriptions: usize,
    /// Largest subscription (as JSON), in bytes.
    pub max_subscription_bytes: usize,
    /// Sustained pushes per minute to one user.
    pub pushes_per_target_per_minute: u32,
    /// Pushes to one user in a burst above that rate.
    pub push_burst_per_target: u32,
    /// Push service hosts pushes may go to (`.example.com`: every host under it; `*`: any
    /// public host). Endpoints must be `https:` on port 443 and resolve to public addresses.
    pub allowed_hosts: Vec<String>,
    /// A local push service (tests): `http:`, any host, port and address. Never in production:
    /// clients choose the endpoints.
    pub allow_http_endpoints: bool,
    /// Most subscriptions stored from one address.
    pub max_subscriptions_per_ip: usize,
    /// How long a subscription is kept, in seconds (storing it again renews it).
    pub subscription_ttl_s: u64,
    /// Most pushes under way at once.
    pub max_in_flight: usize,
    /// Where pushes tell users to connect (`wss://games.example.net`); without it, the scheme
    /// and the `Host` header the asker used.
    pub public_url: Option<String>,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            vapid_key: None,
            subject: None,
            ttl_s: 3600,
            timeout_ms: 5_000,
            max_subscriptions: 10_000,
            max_subscription_bytes: 2_048,
            pushes_per_target_per_minute: 6,
            push_burst_per_target: 3,
            allowed_hosts: crate::push::endpoint::DEFAULT_ALLOWED_HOSTS
                .iter()
                .map(|host| (*host).to_owned())
                .collect(),
            allow_http_endpoints: false,
            max_subscriptions_per_ip: 32,
            subscription_ttl_s: 30 * 24 * 3600,
            max_in_flight: 64,
            public_url: None,
        }
    }
}

/// The longest `push.ttl_s` (RFC 8292: a VAPID token lives at most 24 hours).
pub const MAX_PUSH_TTL_S: u64 = 24 * 3600;

/// Most TURN URLs handed out (Firefox warns when given five or more servers).
pub const MAX_TURN_URLS: usize = 4;

/// The shortest `turn.ttl_s`.
pub const MIN_TURN_TTL_S: u64 = 2;

impl TurnConfig {
    /// The TURN entry for `identity`, valid from `now_unix` for `ttl_s`; `None` when TURN is off.
    pub fn ice_server(&self, identity: &str, now_unix: u64) -> Option<IceServer> {
        let secret = self.secret.as_ref().filter(|_| !self.urls.is_empty())?;
        let credential = switchboard_auth::turn::credential(
            secret.as_bytes(),
            identity,
            now_unix.saturating_add(self.ttl_s),
        );
        Some(IceServer {
            urls: self.urls.clone(),
            username: Some(credential.username),
            credential: Some(credential.credential),
        })
    }

    /// How often a connection gets fresh credentials: half the credential's life.
    pub fn refresh_interval(&self) -> Duration {
        Duration::from_secs(self.ttl_s / 2)
    }
}

/// The built-in STUN server (RFC 8489 Binding over UDP).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StunConfig {
    /// Whether to run it.
    pub enabled: bool,
    /// UDP addresses; empty means port 3478 on the IP of `listen`.
    pub listen: Vec<SocketAddr>,
    /// Worker threads (one socket each, `SO_REUSEPORT`) per address; 0 means one per CPU core.
    pub workers: usize,
}

impl Default for StunConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: Vec::new(),
            workers: 0,
        }
    }
}

/// The smallest `max_header_bytes` the HTTP stack accepts.
pub const MIN_HEADER_BYTES: usize = 8 * 1024;

/// The STUN port used when `stun.listen` is empty.
pub const DEFAULT_STUN_PORT: u16 = 3478;

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: None,
            admin_token: None,
            tls_cert: None,
            tls_key: None,
            ice_servers: Vec::new(),
            stun: StunConfig::default(),
            auth: AuthConfig::default(),
            turn: TurnConfig::default(),
            peerjs: PeerjsConfig::default(),
            push: PushConfig::default(),
            cluster: ClusterConfig::default(),
            limits: Limits::default(),
        }
    }
}

impl Config {
    /// Reads a TOML file; unknown keys are an error, missing keys keep their defaults.
    pub fn from_toml_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.into(), e))?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse(path.into(), e))
    }

    /// The UDP addresses the STUN server binds (none when it is off).
    pub fn stun_addrs(&self) -> Vec<SocketAddr> {
        match (self.stun.enabled, self.stun.listen.is_empty()) {
            (false, _) => Vec::new(),
            (true, true) => vec![SocketAddr::new(self.listen.ip(), DEFAULT_STUN_PORT)],
            (true, false) => self.stun.listen.clone(),
        }
    }

    /// STUN worker threads per address.
    pub fn stun_workers(&self) -> usize {
        match self.stun.workers {
            0 => std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1),
            n => n,
        }
    }

    /// Checks values that would make the server misbehave.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let positive = [
            ("max_message_bytes", l.max_message_bytes),
            (
                "auth.failed_check_burst",
                self.auth.failed_check_burst as usize,
            ),
            ("max_peers_per_room", l.max_peers_per_room),
            ("max_peers_per_directory", l.max_peers_per_directory),
            (
                "directory_broadcasts_per_second",
                l.directory_broadcasts_per_second as usize,
            ),
            (
                "directory_broadcast_burst",
                l.directory_broadcast_burst as usize,
            ),
            ("max_connections", l.max_connections),
            ("max_connections_per_ip", l.max_connections_per_ip),
            ("send_queue_messages", l.send_queue_messages),
            ("messages_per_second", l.messages_per_second as usize),
            ("message_burst", l.message_burst as usize),
            ("heartbeat_interval_ms", l.heartbeat_interval_ms as usize),
            ("idle_timeout_ms", l.idle_timeout_ms as usize),
            ("resume_grace_ms", l.resume_grace_ms as usize),
            ("detached_ttl_ms", l.detached_ttl_ms as usize),
            ("max_room_meta_bytes", l.max_room_meta_bytes),
            ("max_listed_rooms", l.max_listed_rooms),
            ("max_pending_connections", l.max_pending_connections),
            ("max_pending_per_ip", l.max_pending_per_ip),
            ("http_idle_timeout_ms", l.http_idle_timeout_ms as usize),
            ("write_timeout_ms", l.write_timeout_ms as usize),
            (
                "control_frames_per_second",
                l.control_frames_per_second as usize,
            ),
            ("control_burst", l.control_burst as usize),
            (
                "joins_per_ip_per_second",
                l.joins_per_ip_per_second as usize,
            ),
            ("join_burst_per_ip", l.join_burst_per_ip as usize),
            (
                "joins_per_room_per_second",
                l.joins_per_room_per_second as usize,
            ),
            ("join_burst_per_room", l.join_burst_per_room as usize),
            (
                "code_lookups_per_minute",
                l.code_lookups_per_minute as usize,
            ),
            ("code_lookup_burst", l.code_lookup_burst as usize),
            ("bytes_per_second", l.bytes_per_second),
            ("byte_burst", l.byte_burst),
            ("max_public_rooms_per_ip", l.max_public_rooms_per_ip),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Invalid(format!(
                "limits.{name} must be greater than 0"
            )));
        }
        if l.idle_timeout_ms <= l.heartbeat_interval_ms {
            return Err(ConfigError::Invalid(
                "limits.idle_timeout_ms must be greater than limits.heartbeat_interval_ms".into(),
            ));
        }
        if l.busy_read_buffer_bytes < l.read_buffer_bytes {
            return Err(ConfigError::Invalid(
                "limits.busy_read_buffer_bytes must be at least limits.read_buffer_bytes".into(),
            ));
        }
        if l.max_write_buffer_bytes <= l.write_buffer_bytes {
            return Err(ConfigError::Invalid(
                "limits.max_write_buffer_bytes must be greater than limits.write_buffer_bytes"
                    .into(),
            ));
        }
        if l.max_header_bytes < MIN_HEADER_BYTES {
            return Err(ConfigError::Invalid(format!(
                "limits.max_header_bytes must be at least {MIN_HEADER_BYTES}"
            )));
        }
        let invalid = |why: String| Err(ConfigError::Invalid(why));
        if self.auth.jwt_secret.is_some() && self.auth.jwt_public_key.is_some() {
            return invalid("auth.jwt_secret and auth.jwt_public_key exclude each other".into());
        }
        if self
            .admin_token
            .as_ref()
            .is_some_and(|token| token.len() < 16)
        {
            return invalid("admin_token must be at least 16 characters".into());
        }
        if self.auth.private_rooms && !self.auth.enabled() {
            return invalid(
                "auth.private_rooms needs auth.jwt_secret or auth.jwt_public_key".into(),
            );
        }
        if self.auth.max_token_bytes == 0 {
            return invalid("auth.max_token_bytes must be greater than 0".into());
        }
        let turn = &self.turn;
        if turn.urls.len() > MAX_TURN_URLS {
            return invalid(format!("at most {MAX_TURN_URLS} turn.urls"));
        }
        if let Some(url) = turn
            .urls
            .iter()
            .find(|url| !(url.starts_with("turn:") || url.starts_with("turns:")))
        {
            return invalid(format!("turn.urls: {url:?} is not a turn: or turns: URL"));
        }
        if turn.urls.is_empty() != turn.secret.is_none() {
            return invalid("turn.urls and turn.secret go together".into());
        }
        if turn.ttl_s < MIN_TURN_TTL_S {
            return invalid(format!("turn.ttl_s must be at least {MIN_TURN_TTL_S}"));
        }
        self.cluster.validate().map_err(ConfigError::Invalid)?;
        let push = &self.push;
        if push.vapid_key.is_some() {
            let subject = push.subject.as_deref().unwrap_or_default();
            if !(subject.starts_with("mailto:") || subject.starts_with("https:")) {
                return invalid(
                    "push.subject (a mailto: or https: contact) goes with push.vapid_key".into(),
                );
            }
        }
        if push.timeout_ms == 0
            || push.max_subscriptions == 0
            || push.max_subscription_bytes == 0
            || push.pushes_per_target_per_minute == 0
            || push.push_burst_per_target == 0
            || push.max_subscriptions_per_ip == 0
            || push.subscription_ttl_s == 0
            || push.max_in_flight == 0
        {
            return invalid("push limits must be positive".into());
        }
        // RFC 8292: a VAPID token lives at most 24 hours; the TTL sets its life.
        if !(1..=MAX_PUSH_TTL_S).contains(&push.ttl_s) {
            return invalid(format!("push.ttl_s must be 1 to {MAX_PUSH_TTL_S}"));
        }
        if let Some(url) = &push.public_url {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) || url.ends_with('/') {
                return invalid(
                    "push.public_url is ws://host or wss://host (no path, no trailing /)".into(),
                );
            }
        }
        let peerjs = &self.peerjs;
        if peerjs.expire_timeout_ms == 0
            || peerjs.max_held_per_address == 0
            || peerjs.max_held_per_target == 0
            || peerjs.max_held_bytes == 0
        {
            return invalid(
                "peerjs.expire_timeout_ms, max_held_per_address, max_held_per_target and max_held_bytes must be positive"
                    .into(),
            );
        }

        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "tls_cert and tls_key go together".into(),
            ));
        }
        Ok(())
    }
}

/// Named limits. See `docs/configuration.md` for what each protects against.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest WebSocket message (and frame) accepted, in bytes.
    pub max_message_bytes: usize,
    /// Sustained messages per second per connection.
    pub messages_per_second: u32,
    /// Burst of messages per connection above the sustained rate.
    pub message_burst: u32,
    /// Most peers in one room.
    pub max_peers_per_room: usize,
    /// Most peers in one directory: a PeerJS key, a rustysignal network (docs/compat.md).
    pub max_peers_per_directory: usize,
    /// Most connections in all.
    pub max_connections: usize,
    /// Most connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Messages queued for one connection before it is closed as a slow reader.
    pub send_queue_messages: usize,
    /// How often the server pings each connection, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// A connection silent for this long is closed and announced as left, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Per-connection WebSocket read buffer, in bytes (grows for larger messages, then shrinks).
    pub read_buffer_bytes: usize,
    /// Largest read of a busy WebSocket, in bytes: a connection whose reads fill its buffer
    /// reads up to this much per system call, and returns to `read_buffer_bytes` once its reads
    /// come up short again. At least `read_buffer_bytes`.
    pub busy_read_buffer_bytes: usize,
    /// Per-connection WebSocket write buffer, in bytes: frames queued together are written
    /// with one system call up to this size.
    pub write_buffer_bytes: usize,
    /// How long shutdown waits for connections to close, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// How long a resumable peer whose connection dropped keeps its id and place, in ms.
    pub resume_grace_ms: u64,
    /// How long a detached peer (close-after-connect) stays in its room at most, in ms.
    pub detached_ttl_ms: u64,
    /// Largest room metadata (JSON), in bytes.
    pub max_room_meta_bytes: usize,
    /// Most rooms one `/rooms` listing returns.
    pub max_listed_rooms: usize,
    /// Most bytes a WebSocket may hold unsent (frames, and pongs owed to the client) before a
    /// write fails and the connection is closed as a slow reader. Greater than `write_buffer_bytes`.
    pub max_write_buffer_bytes: usize,
    /// A write to a WebSocket that does not complete in this long closes it as a slow reader
    /// (announced), in milliseconds.
    pub write_timeout_ms: u64,
    /// Sustained WebSocket control frames (pings, pongs) a client may send per second.
    pub control_frames_per_second: u32,
    /// Burst of control frames above that rate; past it the connection is closed (`flooding`).
    pub control_burst: u32,
    /// Most HTTP connections not (yet) upgraded to a WebSocket, from all addresses; more are
    /// closed as soon as they are accepted.
    pub max_pending_connections: usize,
    /// Most such connections from one IP address.
    pub max_pending_per_ip: usize,
    /// An HTTP connection not upgraded to a WebSocket must send a whole request within this long
    /// of opening, or of its previous response, or it is closed (slowloris, idle keep-alive), in ms.
    pub http_idle_timeout_ms: u64,
    /// Largest HTTP request head (request line and headers), in bytes (at least 8192).
    pub max_header_bytes: usize,
    /// Sustained joins per second from one IP address (resumes are not counted).
    pub joins_per_ip_per_second: u32,
    /// Joins from one IP address in a burst above that rate.
    pub join_burst_per_ip: u32,
    /// Sustained joins per second into one room that has members.
    pub joins_per_room_per_second: u32,
    /// Joins into one room in a burst above that rate.
    pub join_burst_per_room: u32,
    /// Sustained missed lookups of rooms by code (or session id, or a code-shaped name) per
    /// minute from one IP address; with none left, every lookup from it is refused for a while.
    pub code_lookups_per_minute: u32,
    /// Missed lookups from one IP address in a burst above that rate.
    pub code_lookup_burst: u32,
    /// Sustained bytes per second one connection may send (frames as received).
    pub bytes_per_second: usize,
    /// Bytes one connection may send in a burst above that rate (at least `max_message_bytes`
    /// is allowed in one go).
    pub byte_burst: usize,
    /// Most public rooms created from one IP address that exist at once.
    pub max_public_rooms_per_ip: usize,
    /// Sustained messages per second to everyone in one directory (rustysignal's one-to-all;
    /// each reaches up to `max_peers_per_directory` users), from all its users together.
    pub directory_broadcasts_per_second: u32,
    /// Such messages in a burst above that rate.
    pub directory_broadcast_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 * 1024,
            messages_per_second: 50,
            message_burst: 200,
            max_peers_per_room: 128,
            max_peers_per_directory: 10_000,
            max_connections: 100_000,
            max_connections_per_ip: 1_000,
            send_queue_messages: 256,
            heartbeat_interval_ms: 5_000,
            idle_timeout_ms: 15_000,
            read_buffer_bytes: 2_048,
            busy_read_buffer_bytes: 16_384,
            write_buffer_bytes: 8_192,
            shutdown_grace_ms: 2_000,
            resume_grace_ms: 10_000,
            detached_ttl_ms: 3_600_000,
            max_room_meta_bytes: 1_024,
            max_listed_rooms: 100,
            max_write_buffer_bytes: 256 * 1024,
            write_timeout_ms: 5_000,
            control_frames_per_second: 10,
            control_burst: 50,
            max_pending_connections: 4_096,
            max_pending_per_ip: 256,
            http_idle_timeout_ms: 10_000,
            max_header_bytes: 16 * 1024,
            joins_per_ip_per_second: 10,
            join_burst_per_ip: 50,
            joins_per_room_per_second: 20,
            join_burst_per_room: 100,
            code_lookups_per_minute: 20,
            code_lookup_burst: 20,
            bytes_per_second: 256 * 1024,
            byte_burst: 1024 * 1024,
            max_public_rooms_per_ip: 10,
            directory_broadcasts_per_second: 20,
            directory_broadcast_burst: 40,
        }
    }
}

impl Limits {
    /// The part of the limits the hub core enforces.
    pub fn hub(&self) -> HubLimits {
        HubLimits {
            max_peers_per_room: self.max_peers_per_room,
            max_peers_per_directory: self.max_peers_per_directory,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            messages_per_second: self.messages_per_second,
            message_burst: self.message_burst,
            resume_grace: Duration::from_millis(self.resume_grace_ms),
            detached_ttl: Duration::from_millis(self.detached_ttl_ms),
            max_room_meta_bytes: self.max_room_meta_bytes,
            joins_per_ip: (
                f64::from(self.joins_per_ip_per_second),
                self.join_burst_per_ip,
            ),
            joins_per_room: (
                f64::from(self.joins_per_room_per_second),
                self.join_burst_per_room,
            ),
            code_lookups_per_ip: (
                f64::from(self.code_lookups_per_minute) / 60.0,
                self.code_lookup_burst,
            ),
            max_public_rooms_per_ip: self.max_public_rooms_per_ip,
            directory_broadcasts: (
                f64::from(self.directory_broadcasts_per_second),
                self.directory_broadcast_burst,
            ),
        }
    }

    /// `heartbeat_interval_ms` as a duration.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    /// `idle_timeout_ms` as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// `write_timeout_ms` as a duration.
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    /// `http_idle_timeout_ms` as a duration.
    pub fn http_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.http_idle_timeout_ms)
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// The file is not valid TOML for this configuration.
    #[error("invalid config file {0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn held_peerjs_messages_per_target_stay_under_half_the_send_queue() {
        let peerjs = PeerjsConfig::default();
        assert_eq!(peerjs.max_held_per_target, 64);
        assert_eq!(peerjs.mail_limits(256).max_per_target, 64);
        assert_eq!(peerjs.mail_limits(129).max_per_target, 64);
        assert_eq!(peerjs.mail_limits(127).max_per_target, 63);
        assert_eq!(peerjs.mail_limits(1).max_per_target, 1, "never zero");
    }

    #[test]
    fn push_settings_are_checked_at_their_bounds() {
        let with_push = |edit: &dyn Fn(&mut PushConfig)| {
            let mut config = Config::default();
            config.push.vapid_key = Some("vapid.pem".into());
            config.push.subject = Some("mailto:ops@example.net".into());
            edit(&mut config.push);
            config.validate()
        };
        assert!(with_push(&|_| {}).is_ok());
        assert!(with_push(&|p| p.ttl_s = MAX_PUSH_TTL_S).is_ok());
        assert!(with_push(&|p| p.ttl_s = MAX_PUSH_TTL_S + 1).is_err());
        assert!(with_push(&|p| p.ttl_s = 1).is_ok());
        assert!(with_push(&|p| p.ttl_s = 0).is_err());
        assert!(
            with_push(&|p| p.subject = None).is_err(),
            "a contact is required"
        );
        assert!(with_push(&|p| p.subject = Some("ops@example.net".into())).is_err());
        assert!(with_push(&|p| p.max_in_flight = 0).is_err());
        assert!(with_push(&|p| p.public_url = Some("wss://games.example.net".into())).is_ok());
        assert!(with_push(&|p| p.public_url = Some("wss://games.example.net/".into())).is_err());
        assert!(with_push(&|p| p.public_url = Some("https://games.example.net".into())).is_err());
    }

    #[test]
    fn toml_overrides_only_what_it_names() {
        let config: Config = toml::from_str(
            "listen = \"127.0.0.1:9000\"\n[limits]\nmax_peers_per_room = 8\n[[ice_servers]]\nurls = [\"stun:example.test:3478\"]\n",
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.limits.max_peers_per_room, 8);
        assert_eq!(
            config.limits.idle_timeout_ms,
            Limits::default().idle_timeout_ms
        );
        assert_eq!(config.ice_servers.len(), 1);
    }

    #[test]
    fn turn_admin_and_auth_settings_are_checked_on_both_sides_of_each_limit() {
        let check = |edit: &dyn Fn(&mut Config)| {
            let mut config = Config::default();
            edit(&mut config);
            config.validate().is_ok()
        };
        let turn = |urls: usize, ttl_s: u64| {
            move |c: &mut Config| {
                c.turn.urls = vec!["turn:127.0.0.1:3478".into(); urls];
                c.turn.secret = Some("s".into());
                c.turn.ttl_s = ttl_s;
            }
        };
        assert!(check(&turn(MAX_TURN_URLS, MIN_TURN_TTL_S)));
        assert!(!check(&turn(MAX_TURN_URLS + 1, MIN_TURN_TTL_S)));
        assert!(!check(&turn(1, MIN_TURN_TTL_S - 1)));
        assert!(!check(&|c| c.turn.urls = vec!["stun:127.0.0.1:3478".into()]));
        assert!(
            !check(&|c| c.turn.urls = vec!["turn:127.0.0.1:3478".into()]),
            "no secret"
        );
        assert!(!check(&|c| c.turn.secret = Some("s".into())), "no URL");
        assert!(check(&|c| c.admin_token = Some("x".repeat(16))));
        assert!(!check(&|c| c.admin_token = Some("x".repeat(15))));
        assert!(!check(&|c| c.auth.private_rooms = true), "no key");
        assert!(check(&|c| {
            c.auth.private_rooms = true;
            c.auth.jwt_secret = Some("k".into());
        }));
        assert!(!check(&|c| {
            c.auth.jwt_secret = Some("k".into());
            c.auth.jwt_public_key = Some("k.pem".into());
        }));
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        assert!(toml::from_str::<Config>("[limits]\nmax_peer = 1\n").is_err());
        let mut config = Config::default();
        config.limits.idle_timeout_ms = config.limits.heartbeat_interval_ms;
        assert!(config.validate().is_err());
        config = Config::default();
        config.limits.max_message_bytes = 0;
        assert!(config.validate().is_err());
        config = Config::default();
        config.tls_cert = Some("cert.pem".into());
        assert!(config.validate().is_err());
    }
}
