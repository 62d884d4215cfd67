//! Auth at connect and TURN credentials, over real sockets: tokens checked before the upgrade
//! (HTTP 401/403 with a JSON reason), the claims the hub enforces, a private room listing, and
//! TURN REST credentials in `welcome`, refreshed before they expire.

mod common;

use std::time::Duration;

use common::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use switchboard_protocol::{ErrorCode, ServerMessage};
use tokio_tungstenite::tungstenite;

const SECRET: &str = "a test secret of reasonable length";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn token(claims: serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("signs")
}

fn auth_config() -> switchboard_server::Config {
    let mut config = config();
    config.auth.jwt_secret = Some(SECRET.into());
    config.auth.audience = Some("game".into());
    config
}

/// Connects and expects an HTTP refusal before the upgrade: (status, JSON body, CORS header).
async fn refused_before_upgrade(
    addr: std::net::SocketAddr,
    path: &str,
) -> (u16, serde_json::Value, Option<String>) {
    match tokio_tungstenite::connect_async(url(addr, path)).await {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            let cors = response
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap_or_default().to_owned());
            (
                response.status().as_u16(),
                serde_json::from_slice(&body).expect("a JSON body"),
                cors,
            )
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade succeeded"),
    }
}

#[tokio::test]
async fn every_bad_token_is_refused_before_the_upgrade_with_its_reason() {
    let server = start(auth_config()).await;
    let addr = server.local_addr();
    let t = now();
    let valid = token(json!({"exp": t + 60, "aud": "game"}));
    let (head, rest) = valid.split_once('.').expect("a JWT");
    let none = {
        use base64::Engine as _;
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.",
            b64(json!({"alg": "none"})),
            b64(json!({"exp": t + 60, "aud": "game"}))
        )
    };
    let other_secret = encode(
        &Header::new(Algorithm::HS256),
        &json!({"exp": t + 60, "aud": "game"}),
        &EncodingKey::from_secret(b"not the secret"),
    )
    .expect("signs");
    let cases: Vec<(&str, String, &str)> = vec![
        ("no token", String::new(), "token_missing"),
        (
            "expired",
            token(json!({"exp": t - 120, "aud": "game"})),
            "token_expired",
        ),
        (
            "not yet valid",
            token(json!({"exp": t + 600, "nbf": t + 300, "aud": "game"})),
            "token_not_yet_valid",
        ),
        (
            "another audience",
            token(json!({"exp": t + 60, "aud": "other"})),
            "token_audience",
        ),
        ("another secret", other_secret, "token_signature"),
        ("alg none", none, "token_algorithm"),
        ("oversized", "a".repeat(5000), "token_too_large"),
        (
            "not a JWT",
            format!("{head}.{rest}.more"),
            "token_malformed",
        ),
        (
            "exp of the wrong type",
            token(json!({"exp": "later", "aud": "game"})),
            "token_claims",
        ),
        (
            "rooms of the wrong type",
            token(json!({"exp": t + 60, "aud": "game", "rooms": 3})),
            "token_claims",
        ),
    ];
    for (what, token, reason) in &cases {
        let path = if token.is_empty() {
            "/ws/lobby".to_owned()
        } else {
            format!("/ws/lobby?token={token}")
        };
        let (status, body, cors) = refused_before_upgrade(addr, &path).await;
        assert_eq!(status, 401, "{what}");
        assert_eq!(body["error"], "unauthorized", "{what}");
        assert_eq!(body["reason"], *reason, "{what}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(cors.as_deref(), Some("*"), "{what}");
    }
    // A plain GET (what a browser's fetch sends to learn why its WebSocket failed) gets the same.
    let (head, body) = http_get(addr, "/ws/lobby?token=nope").await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(body.contains("token_malformed"), "{body}");
    // Refused clients leave no trace but the counter.
    let (_, metrics) = http_get(addr, "/metrics").await;
    assert!(
        metrics.contains("switchboard_auth_refusals_total{reason=\"token_expired\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("switchboard_connections 0"), "{metrics}");
    assert!(metrics.contains("switchboard_rooms 0"), "{metrics}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_valid_token_joins_and_its_sub_is_the_name() {
    let server = start(auth_config()).await;
    let addr = server.local_addr();
    let ann = token(json!({"sub": "ann", "exp": now() + 60, "aud": ["game"], "host": true}));
    let mut first = Client::at(addr, &format!("/ws/lobby?token={ann}")).await;
    assert_eq!(first.welcome.name.as_deref(), Some("ann"));
    // The same name given explicitly is fine; another one is forbidden.
    let (status, body, _) =
        refused_before_upgrade(addr, &format!("/ws/lobby?token={ann}&user=bob")).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    // The token as a subprotocol, for clients that cannot set a query string: the server
    // selects the encoding, never the token.
    let bob = token(json!({"sub": "bob", "exp": now() + 60, "aud": "game"}));
    let (socket, selected) = with_subprotocols(
        addr,
        "/ws/lobby",
        &format!("switchboard.v1.json, switchboard.token.{bob}"),
    )
    .await;
    assert_eq!(selected.as_deref(), Some("switchboard.v1.json"));
    let second = Client::from_socket(socket, switchboard_protocol::Encoding::Json).await;
    assert_eq!(second.welcome.name.as_deref(), Some("bob"));
    assert!(
        matches!(first.recv().await, ServerMessage::PeerJoined(p) if p.name.as_deref() == Some("bob"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn rooms_host_and_max_peers_claims_are_enforced() {
    let server = start(auth_config()).await;
    let addr = server.local_addr();
    let claims = |host: bool| {
        token(json!({
            "exp": now() + 60, "aud": "game", "rooms": ["team-*"], "host": host, "max_peers": 2
        }))
    };
    let (host, player) = (claims(true), claims(false));
    // Outside the patterns, or creating without host: refused before the upgrade.
    let (status, body, _) = refused_before_upgrade(addr, &format!("/ws/lobby?token={host}")).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    // A plain GET of the same URL says the same (how a browser learns why it was refused).
    let (head, body) = http_get(addr, &format!("/ws/lobby?token={host}")).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(body.contains("\"forbidden\""), "{body}");
    let (status, _, _) =
        refused_before_upgrade(addr, &format!("/ws/team-red?token={player}")).await;
    assert_eq!(status, 403);
    let (status, _, _) =
        refused_before_upgrade(addr, &format!("/ws?create=session&token={player}")).await;
    assert_eq!(status, 403);
    // The host creates inside its patterns; a player joins; max_peers (2) capped the room.
    let host_client = Client::at(addr, &format!("/ws/team-red?token={host}&capacity=8")).await;
    assert_eq!(host_client.welcome.room_info.capacity, 2);
    let _player = Client::at(addr, &format!("/ws/team-red?token={player}")).await;
    let (code, close, _) = refused(
        addr,
        &format!("/ws/team-red?token={player}"),
        switchboard_protocol::Encoding::Json,
    )
    .await;
    assert_eq!((code, close), (ErrorCode::RoomFull, 4005));
    // A code room made by a token without room limits cannot be entered by code from a token
    // whose patterns do not include it (refused before the upgrade, hit or miss alike).
    let free_host = token(json!({"exp": now() + 60, "aud": "game", "host": true}));
    let coder = Client::at(addr, &format!("/ws?create=code&token={free_host}")).await;
    let room = coder.welcome.room.clone();
    let (status, _, _) =
        refused_before_upgrade(addr, &format!("/ws?code={room}&token={player}")).await;
    assert_eq!(status, 403);
    // What only the hub can tell (the name of the match room a matcher lands in) is refused at
    // join, after the upgrade, with forbidden (4018).
    let (code, close, _) = refused(
        addr,
        &format!("/ws?match=2&token={player}"),
        switchboard_protocol::Encoding::Json,
    )
    .await;
    assert_eq!((code, close), (ErrorCode::Forbidden, 4018));
    server.shutdown().await;
}

#[tokio::test]
async fn a_private_room_listing_needs_a_token() {
    let mut config = auth_config();
    config.auth.private_rooms = true;
    let server = start(config).await;
    let addr = server.local_addr();
    let (head, body) = http_get(addr, "/rooms").await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(body.contains("token_missing"), "{body}");
    let valid = token(json!({"exp": now() + 60, "aud": "game"}));
    let (head, body) = http_get(addr, &format!("/rooms?token={valid}")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("\"rooms\""), "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn an_ed25519_public_key_verifies_eddsa_tokens() {
    let mut config = config();
    config.auth.jwt_public_key = Some(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../auth/testdata/ed25519.pub.pem"),
    );
    let server = start(config).await;
    let addr = server.local_addr();
    let private =
        EncodingKey::from_ed_pem(include_bytes!("../../auth/testdata/ed25519.pem")).expect("a key");
    let eddsa = encode(
        &Header::new(Algorithm::EdDSA),
        &json!({"sub": "eve", "exp": now() + 60, "host": true}),
        &private,
    )
    .expect("signs");
    let client = Client::at(addr, &format!("/ws/r?token={eddsa}")).await;
    assert_eq!(client.welcome.name.as_deref(), Some("eve"));
    // An HS256 token is refused by this server whatever it is signed with.
    let (status, body, _) = refused_before_upgrade(
        addr,
        &format!("/ws/r?token={}", token(json!({"exp": now() + 60}))),
    )
    .await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (401, Some("token_algorithm"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn turn_credentials_come_in_welcome_and_are_refreshed_before_expiry() {
    let mut config = config();
    config.turn.urls = vec![
        "turn:127.0.0.1:3478".into(),
        "turn:127.0.0.1:3478?transport=tcp".into(),
    ];
    config.turn.secret = Some("north".into());
    config.turn.ttl_s = 2;
    let server = start(config).await;
    let addr = server.local_addr();
    let started = now();
    let mut client = Client::join(addr, "r", "").await;
    let id = client.id().to_string();
    let turn = client
        .welcome
        .ice_servers
        .iter()
        .find(|s| s.urls[0].starts_with("turn:"))
        .expect("a TURN entry")
        .clone();
    // The built-in STUN server is still offered beside it.
    assert!(client
        .welcome
        .ice_servers
        .iter()
        .any(|s| s.urls[0].starts_with("stun:")));
    let check = |server: &switchboard_protocol::IceServer| -> u64 {
        let username = server.username.clone().expect("a user name");
        let (expiry, who) = username.split_once(':').expect("<expiry>:<identity>");
        assert_eq!(who, id);
        let expected = switchboard_auth::turn::credential(b"north", who, expiry.parse().unwrap());
        assert_eq!(
            server.credential.as_deref(),
            Some(expected.credential.as_str())
        );
        expiry.parse().unwrap()
    };
    let first = check(&turn);
    assert!((started + 2..=now() + 2).contains(&first), "{first}");
    // At half the life, fresh credentials for the same peer.
    let fresh = tokio::time::timeout(Duration::from_secs(3), client.recv())
        .await
        .expect("an ice_servers message within the credential's life");
    let ServerMessage::IceServers { ice_servers } = fresh else {
        panic!("expected ice_servers, got {fresh:?}")
    };
    let turn = ice_servers
        .iter()
        .find(|s| s.urls[0].starts_with("turn:"))
        .expect("a TURN entry");
    assert!(check(turn) >= first, "a later expiry");
    server.shutdown().await;
}

#[tokio::test]
async fn a_resume_needs_a_token_for_the_same_user() {
    let mut config = auth_config();
    config.limits.resume_grace_ms = 5_000;
    let server = start(config).await;
    let addr = server.local_addr();
    let ann = token(json!({"sub": "ann", "exp": now() + 60, "aud": "game", "host": true}));
    let bob = token(json!({"sub": "bob", "exp": now() + 60, "aud": "game"}));
    let first = Client::at(addr, &format!("/ws/r?token={ann}&resumable=true")).await;
    let resume = first.welcome.resume_token.clone().expect("a resume token");
    first.vanish(Vanish::Fin).await;
    // No token at all: refused before the upgrade, like any connect.
    let (status, _, _) = refused_before_upgrade(addr, &format!("/ws/r?resume={resume}")).await;
    assert_eq!(status, 401);
    // Another user's token cannot take ann's place; the refusal does not spend the token.
    let (code, close, _) = refused(
        addr,
        &format!("/ws/r?resume={resume}&token={bob}"),
        switchboard_protocol::Encoding::Json,
    )
    .await;
    assert_eq!((code, close), (ErrorCode::Forbidden, 4018));
    let back = Client::at(addr, &format!("/ws/r?resume={resume}&token={ann}")).await;
    assert!(back.welcome.resumed);
    assert_eq!(back.welcome.name.as_deref(), Some("ann"));
    server.shutdown().await;
}

/// A GET of `path` from `source` (a loopback address): the status code.
async fn status_from(source: &str, addr: std::net::SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tcp_from(source, addr).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response[9..12].parse().expect("a status code")
}

#[tokio::test]
async fn an_address_past_its_failed_token_checks_is_refused_unchecked() {
    let mut config = auth_config();
    config.auth.failed_checks_per_minute = 1;
    config.auth.failed_check_burst = 5;
    let server = start(config).await;
    let addr = server.local_addr();
    let good = token(json!({"exp": now() + 600, "aud": "game", "host": true}));
    // A good token does not use up the budget; the fifth bad one does.
    assert_eq!(
        status_from("127.0.0.1", addr, &format!("/ws/lobby?token={good}")).await,
        400
    );
    for _ in 0..5 {
        assert_eq!(
            status_from("127.0.0.1", addr, "/ws/lobby?token=bad").await,
            401
        );
    }
    // Now even a good token from that address is refused without a check...
    assert_eq!(
        status_from("127.0.0.1", addr, &format!("/ws/lobby?token={good}")).await,
        429
    );
    assert_eq!(
        status_from("127.0.0.1", addr, "/matchbox/lobby?token=bad").await,
        429
    );
    // ...and another address is not affected.
    assert_eq!(
        status_from("127.0.0.2", addr, &format!("/ws/lobby?token={good}")).await,
        400
    );
    assert_eq!(
        status_from("127.0.0.2", addr, "/ws/lobby?token=bad").await,
        401
    );
    let (_, metrics) = http_get(addr, "/metrics").await;
    assert!(
        metrics.contains("switchboard_auth_refusals_total{reason=\"throttled\"}"),
        "{metrics}"
    );
    server.shutdown().await;
}
