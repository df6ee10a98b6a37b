//! Certificate pinning for the http executor (`[hosts.http] pin_sha256`):
//! the job API's certificate is trusted when the SHA-256 of its DER
//! encoding equals the pin, whatever signed it and whatever name it
//! carries (an agent's self-signed certificate is the usual case). The
//! TLS handshake's signatures are still checked with the certificate's key.
//!
//! Owns parsing the pin and building the pinned client; never falls back
//! to an unpinned connection.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A pinned certificate and the client that checks it.
#[derive(Clone)]
pub struct Pin {
    pub sha256: [u8; 32],
    pub client: reqwest::Client,
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pin(sha256 {})", hex::encode(self.sha256))
    }
}

impl PartialEq for Pin {
    fn eq(&self, other: &Pin) -> bool {
        self.sha256 == other.sha256
    }
}

/// Parses 64 hex digits, optionally in colon-separated pairs (as
/// `openssl x509 -fingerprint -sha256` prints them).
pub fn parse_pin(text: &str) -> Result<[u8; 32], String> {
    let hexed: String = text.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(&hexed).ok().filter(|b| b.len() == 32);
    bytes.and_then(|b| b.try_into().ok()).ok_or_else(|| {
        format!(
            "{:?} is not a SHA-256 fingerprint; expected 64 hex digits (colons allowed), \
             as `vigil agent` prints at start",
            text.escape_debug().to_string()
        )
    })
}

#[derive(Debug)]
struct PinnedVerifier {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if bool::from(got.ct_eq(&self.pin)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the certificate's SHA-256 is {}, not the pinned {}",
                hex::encode(got),
                hex::encode(self.pin)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client that accepts only the pinned certificate.
pub fn pinned(sha256: [u8; 32]) -> Result<Pin, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
            pin: sha256,
            provider,
        }))
        .with_no_client_auth();
    let client = crate::net::client(crate::net::HttpOptions {
        tls: Some(config),
        ..super::http_options()
    })
    .map_err(|e| format!("TLS client: {e}"))?;
    Ok(Pin { sha256, client })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_with_or_without_colons() {
        let hexed = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_pin(&hexed).unwrap(), [0xab; 32]);
        assert_eq!(parse_pin(&colons).unwrap(), [0xab; 32]);
        for bad in ["", "abcd", &"zz".repeat(32), &"ab".repeat(33)] {
            assert!(parse_pin(bad).unwrap_err().contains("64 hex digits"));
        }
    }
}
