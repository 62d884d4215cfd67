//! Sends one Web Push message: encrypted for the browser (RFC 8291, aes128gcm), signed by the
//! server's VAPID key (RFC 8292), POSTed to the push service (RFC 8030) over HTTPS (or HTTP when
//! allowed) with a deadline. `web-push-native` builds the request; this module only moves it.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256KeyPair};
use web_push_native::{p256, Auth, WebPushBuilder};

use super::endpoint::{check_url, is_public};
use super::registry::Subscription;

/// What the push service said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted (2xx).
    Sent,
    /// The subscription is gone (404, 410): forget it.
    Gone,
    /// Anything else: an error status, a connection that failed, the deadline.
    Failed(String),
}

/// The server's VAPID identity and how it sends.
pub struct Sender {
    key: ES256KeyPair,
    public_key: String,
    subject: String,
    ttl: Duration,
    timeout: Duration,
    tls: TlsConnector,
    allowed_hosts: Vec<String>,
    local: bool,
}

/// How a sender sends.
pub struct SenderConfig {
    /// VAPID's `sub`: a `mailto:` or `https:` contact.
    pub subject: String,
    /// How long a push service keeps a push (`TTL`), and the VAPID token's life.
    pub ttl: Duration,
    /// Deadline of one push.
    pub timeout: Duration,
    /// Hosts pushes may go to (`push.allowed_hosts`).
    pub allowed_hosts: Vec<String>,
    /// A local push service: http, any host and port, private addresses.
    pub local: bool,
}

impl Sender {
    /// A sender with this VAPID key (a PEM P-256 private key, PKCS#8).
    pub fn new(pem: &str, config: SenderConfig) -> Result<Self, String> {
        let key = ES256KeyPair::from_pem(pem).map_err(|e| {
            format!("push.vapid_key is not a P-256 private key in PEM (PKCS#8): {e}")
        })?;
        let public_key =
            URL_SAFE_NO_PAD.encode(key.public_key().public_key().to_bytes_uncompressed());
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            key,
            public_key,
            subject: config.subject,
            ttl: config.ttl,
            timeout: config.timeout,
            tls: TlsConnector::from(Arc::new(tls)),
            allowed_hosts: config.allowed_hosts,
            local: config.local,
        })
    }

    /// The VAPID public key (uncompressed, base64url): a page's `applicationServerKey`.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// Encrypts `payload` for `subscription` and posts it.
    pub async fn send(&self, subscription: &Subscription, payload: &[u8]) -> Outcome {
        match tokio::time::timeout(self.timeout, self.try_send(subscription, payload)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(why)) => Outcome::Failed(why),
            Err(_) => Outcome::Failed(format!(
                "no answer within push.timeout_ms ({})",
                self.timeout.as_millis()
            )),
        }
    }

    async fn try_send(
        &self,
        subscription: &Subscription,
        payload: &[u8],
    ) -> Result<Outcome, String> {
        let endpoint: http::Uri = subscription.endpoint.parse().map_err(|e| format!("{e}"))?;
        let browser_key =
            p256::PublicKey::from_sec1_bytes(&subscription.p256dh).map_err(|e| e.to_string())?;
        let request = WebPushBuilder::new(
            endpoint.clone(),
            browser_key,
            Auth::clone_from_slice(&subscription.auth),
        )
        .with_valid_duration(self.ttl)
        .with_vapid(&self.key, &self.subject)
        .build(payload.to_vec())
        .map_err(|e| e.to_string())?;
        check_url(&endpoint, &self.allowed_hosts, self.local)?;
        let host = endpoint.host().ok_or("the endpoint has no host")?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let secure = endpoint.scheme_str() == Some("https");
        let port = endpoint.port_u16().unwrap_or(if secure { 443 } else { 80 });
        // Connect to the address that was checked, not to the name again (DNS rebinding).
        let address = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("resolving {host}: {e}"))?
            .find(|address| self.local || is_public(address.ip()))
            .ok_or_else(|| format!("{host} resolves to no public address"))?;
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| format!("connecting to {host} ({address}): {e}"))?;
        let status = if secure {
            let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}: {e}"))?;
            exchange(tls, request, &host).await?
        } else {
            exchange(tcp, request, &host).await?
        };
        Ok(match status {
            s if s.is_success() => Outcome::Sent,
            http::StatusCode::NOT_FOUND | http::StatusCode::GONE => Outcome::Gone,
            other => Outcome::Failed(format!("the push service answered {other}")),
        })
    }
}

/// One HTTP/1.1 request on a fresh connection; the answer's status.
async fn exchange<S>(
    stream: S,
    request: http::Request<Vec<u8>>,
    host: &str,
) -> Result<http::StatusCode, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let (mut parts, body) = request.into_parts();
    // HTTP/1.1 to an origin server: the path in the request line, the host in a header.
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    parts.uri = path.parse().map_err(|e| format!("{e}"))?;
    let host = http::HeaderValue::from_str(host).map_err(|e| e.to_string())?;
    parts.headers.insert(http::header::HOST, host);
    let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(response.status())
}
