//! The agent's listener: plain TCP on loopback, or TLS (rustls, TLS 1.2
//! and 1.3) when `[tls] cert` and `key` are configured. Each connection is
//! served by hyper with the listener limits the hub uses (a connection
//! cap, a time limit for the headers and, here, for the TLS handshake).
//!
//! Owns loading the certificate and key and the accept loop; the routes
//! are `api`'s.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::ingest::{HEADER_TIMEOUT, connection_cap};

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

/// Serves `app` until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(connection_cap()));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = super::stopped(&mut stop) => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = super::stopped(&mut stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = hyper_util::service::TowerToHyperService::new(app.clone());
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            match tls {
                None => {
                    let _ = b
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                }
                Some(acceptor) => {
                    let Ok(Ok(s)) =
                        tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let _ = b
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                        .await;
                }
            }
        });
    }
}
