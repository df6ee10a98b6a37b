//! The agent's TLS: rustls (TLS 1.2 and 1.3) from the PEM certificate
//! chain and key of `[tls]`, and the certificate's SHA-256 that hubs pin.
//! Connections are served by `ingest::serve_connections`, with the limits
//! the hub's listener has (a connection cap, a time limit for the headers
//! and the handshake); the routes are `api`'s.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use super::config::TlsSpec;

/// A loaded certificate: the acceptor and the certificate's SHA-256 (what
/// a hub pins, printed at start).
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub fingerprint: String,
}

/// Reads the PEM certificate chain and private key.
pub fn load(spec: &TlsSpec) -> Result<Tls, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&spec.cert)
        .map_err(|e| format!("tls.cert {}: {e}", spec.cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.cert {}: {e}", spec.cert.display()))?;
    let Some(leaf) = certs.first() else {
        return Err(format!(
            "tls.cert {}: no certificate in it (expected PEM)",
            spec.cert.display()
        ));
    };
    let fingerprint = hex::encode(Sha256::digest(leaf.as_ref()));
    let key = PrivateKeyDer::from_pem_file(&spec.key)
        .map_err(|e| format!("tls.key {}: {e}", spec.key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "tls: {} and {} do not make a usable pair: {e}",
                spec.cert.display(),
                spec.key.display()
            )
        })?;
    Ok(Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        fingerprint,
    })
}
