//! `POST /connect`: our offer out, the server peer's answer back (docs/server-peer.md,
//! "Connecting"), over one HTTP/1.1 request (TLS for `https://`).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use switchboard_protocol::PeerId;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::tls;

use crate::connect_options::{read_answer, ServerUrls};
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
    tls_roots_pem: Option<&str>,
) -> Result<(PeerId, String), Error> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        Error::new("connection_failed", format!("{what}: {e}"))
    };
    let stream = TcpStream::connect(&urls.authority)
        .await
        .map_err(|e| failed(&format!("cannot reach {}", urls.authority), &e))?;
    if !urls.tls {
        return exchange(TokioIo::new(stream), urls, offer, token).await;
    }
    let name = ServerName::try_from(urls.host.clone())
        .map_err(|e| Error::new("invalid_options", format!("{}: {e}", urls.host)))?;
    let tls = TlsConnector::from(tls::client_config(tls_roots_pem)?)
        .connect(name, stream)
        .await
        .map_err(|e| failed("TLS handshake", &e))?;
    exchange(TokioIo::new(tls), urls, offer, token).await
}

/// The `POST` and its answer over `io` (plain TCP or TLS).
async fn exchange<IO>(
    io: TokioIo<IO>,
    urls: &ServerUrls,
    offer: String,
    token: Option<&str>,
) -> Result<(PeerId, String), Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        Error::new("connection_failed", format!("{what}: {e}"))
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
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
    read_answer(status.as_u16(), &body)
}
