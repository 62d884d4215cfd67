//! The admin API over real HTTP: rooms and peers listed, a peer removed (it is told, its room
//! hears it left), a room closed (everyone told), on the admin listener; on the main listener
//! only behind the admin token.

mod common;

use common::*;
use switchboard_protocol::{ErrorCode, LeaveReason, ServerMessage};

const ADMIN_TOKEN: &str = "an admin token long enough";

fn json_body(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

#[tokio::test]
async fn operators_list_kick_and_close_on_the_admin_listener() {
    let mut config = config();
    config.admin_listen = Some("127.0.0.1:0".parse().expect("an address"));
    let server = start(config).await;
    let (addr, admin) = (
        server.local_addr(),
        server.admin_addr().expect("admin listener"),
    );
    let mut ann = Client::join(addr, "arena", "user=ann").await;
    let mut bob = Client::join(addr, "arena", "user=bob").await;
    ann.recv().await;
    // Not on the main listener without an admin token.
    assert_eq!(request(addr, "GET", "/admin/rooms", None).await.0, 404);
    let (status, body) = request(admin, "GET", "/admin/rooms", None).await;
    assert_eq!(status, 200, "{body}");
    let listed = json_body(&body);
    let room = &listed["rooms"][0];
    assert_eq!(room["room"], "arena");
    assert_eq!(room["info"]["host"], ann.id().to_string());
    let names: Vec<&str> = room["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["ann", "bob"]);
    assert_eq!(room["peers"][1]["state"], "connected");
    assert_eq!(room["peers"][1]["ip"], "127.0.0.1");
    // Remove bob: he is told why and closed; ann hears he left, kicked.
    let path = format!("/admin/peers/{}/kick?reason=cheating", bob.id());
    let (status, body) = request(admin, "POST", &path, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(bob.recv_error().await, ErrorCode::Kicked);
    assert_eq!(bob.closed().await.0, 4011);
    assert_eq!(
        ann.recv().await,
        ServerMessage::PeerLeft {
            id: bob.id(),
            reason: LeaveReason::Kicked
        }
    );
    // A second kick, an unknown id, a malformed one.
    assert_eq!(request(admin, "POST", &path, None).await.0, 404);
    assert_eq!(
        request(admin, "POST", "/admin/peers/xyz/kick", None)
            .await
            .0,
        400
    );
    // Close the room: ann is told and closed; the room is gone.
    let (status, body) = request(admin, "POST", "/admin/rooms/arena/close", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ann.recv_error().await, ErrorCode::RoomClosed);
    assert_eq!(ann.closed().await.0, 4012);
    let (_, body) = request(admin, "GET", "/admin/rooms", None).await;
    assert_eq!(json_body(&body)["rooms"], serde_json::json!([]));
    assert_eq!(
        request(admin, "POST", "/admin/rooms/arena/close", None)
            .await
            .0,
        404
    );
    let (_, metrics) = http_get(addr, "/metrics").await;
    assert!(metrics.contains("switchboard_connections 0"), "{metrics}");
    server.shutdown().await;
}

#[tokio::test]
async fn with_an_admin_token_the_main_listener_serves_it_behind_the_token() {
    let mut config = config();
    config.admin_token = Some(ADMIN_TOKEN.into());
    let server = start(config).await;
    let addr = server.local_addr();
    let _ann = Client::join(addr, "r", "").await;
    let (status, body) = request(addr, "GET", "/admin/rooms", None).await;
    assert_eq!(
        (status, json_body(&body)["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _) = request(
        addr,
        "GET",
        "/admin/rooms",
        Some("an admin token long enougH"),
    )
    .await;
    assert_eq!(status, 401, "one character off");
    let (status, body) = request(addr, "GET", "/admin/rooms", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_body(&body)["rooms"][0]["room"], "r");
    server.shutdown().await;
    // A short admin token is refused at start.
    let mut short = common::config();
    short.admin_token = Some("short".into());
    assert!(switchboard_server::Server::start(short).await.is_err());
}
