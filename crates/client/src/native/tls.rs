//! TLS for the native client (`wss://` rooms, `https://` server peers): a rustls configuration with an explicit crypto provider
//! (aws-lc-rs; rustls cannot pick one itself when the dependency tree holds two), Mozilla's root
//! certificates and the application's own.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::Connector;

use crate::Error;

/// The connector for `wss://`: see [`client_config`].
pub(crate) fn connector(extra_roots_pem: Option<&str>) -> Result<Connector, Error> {
    Ok(Connector::Rustls(client_config(extra_roots_pem)?))
}

/// The client configuration for TLS: Mozilla's roots, plus `extra_roots_pem` (PEM
/// certificates) when given. `invalid_options` when those are not PEM certificates.
pub(crate) fn client_config(extra_roots_pem: Option<&str>) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_roots_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| bad_roots(&e.to_string()))?;
            roots.add(cert).map_err(|e| bad_roots(&e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad_roots("no certificate in it"));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new("invalid_options", e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn bad_roots(why: &str) -> Error {
    Error::new("invalid_options", format!("tls_roots_pem: {why}"))
}
