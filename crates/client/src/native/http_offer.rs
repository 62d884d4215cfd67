//! `POST /connect`: our offer out, the server peer's answer back (docs/server-peer.md,
//! "Connecting"), over one HTTP/1.1 request.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use switchboard_protocol::PeerId;
use tokio::net::TcpStream;

use crate::connect_options::ServerUrls;
use crate::Error;

/// Largest answer read: an SDP answer is a few KiB.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Posts `offer` and returns our id on the server peer and its answer. A refusal comes back
/// with the server's code (`unauthorized`, `server_full`, `too_many_connections`,
/// `invalid_offer`, ...).
pub(crate) async fn post_offer(
    urls: &ServerUrls,
    offer: String,
    token: Option<&str>,
) -> Result<(PeerId, String), Error> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        Error::new("connection_failed", format!("{what}: {e}"))
    };
    let stream = TcpStream::connect(&urls.authority)
        .await
        .map_err(|e| failed(&format!("cannot reach {}", urls.authority), &e))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| failed("HTTP handshake", &e))?;
    let connection = tokio::spawn(connection);
    let mut request = hyper::Request::post(urls.post_path.as_str())
        .header(hyper::header::HOST, urls.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/sdp");
    if let Some(token) = token {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(Bytes::from(offer)))
        .map_err(|e| Error::new("invalid_options", e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| failed("POST", &e))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| failed("reading the answer", &e))?
        .to_bytes();
    connection.abort();
    answer(status.as_u16(), &body)
}

/// Reads the server peer's response: `{"peer", "sdp"}` on success, else `{"error", "message"}`.
fn answer(status: u16, body: &[u8]) -> Result<(PeerId, String), Error> {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    if status != 200 {
        let code = field("error").unwrap_or_else(|| "connection_failed".into());
        let message = field("message").unwrap_or_default();
        return Err(Error::new(code, format!("HTTP {status}: {message}")));
    }
    let peer = field("peer").and_then(|p| p.parse::<PeerId>().ok());
    match (peer, field("sdp")) {
        (Some(peer), Some(sdp)) => Ok((peer, sdp)),
        _ => Err(Error::new(
            "bad_server_message",
            "the answer is not {\"peer\": ..., \"sdp\": ...}",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_refusals_are_read() {
        let id = "0123456789abcdef0123456789abcdef";
        let ok = format!(r#"{{"peer": "{id}", "sdp": "v=0"}}"#);
        let (peer, sdp) = answer(200, ok.as_bytes()).expect("an answer");
        assert_eq!(peer.to_string(), id);
        assert_eq!(sdp, "v=0");
        let refused = answer(503, br#"{"error": "server_full", "message": "full"}"#);
        assert_eq!(refused.unwrap_err().code, "server_full");
        assert_eq!(
            answer(502, b"<html>").unwrap_err().code,
            "connection_failed"
        );
        assert_eq!(answer(200, b"{}").unwrap_err().code, "bad_server_message");
        assert_eq!(
            answer(200, br#"{"peer": "nope", "sdp": "v=0"}"#)
                .unwrap_err()
                .code,
            "bad_server_message"
        );
    }
}
