//! Outbound HTTP: the one place an HTTP client is built, for every module
//! that makes requests (sources, notify, probes, executors, the console's
//! hub client, the LLM analyser). A leaf: it imports nothing from the crate.
//!
//! A client always has a connect time limit, and a whole-request limit
//! unless the caller bounds a long-lived stream itself. A client that
//! cannot be built is an error, never a default client without limits.

use std::path::PathBuf;
use std::time::Duration;

/// How a client is built.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The limit on connecting.
    pub connect_timeout: Duration,
    /// The limit on a whole request; `None` only for a client whose
    /// requests are long-lived streams the caller bounds (per request or
    /// per read).
    pub timeout: Option<Duration>,
    /// How long an idle pooled connection is kept, when not reqwest's own.
    pub pool_idle_timeout: Option<Duration>,
    /// Talk to a unix socket instead of the URL's host.
    pub unix_socket: Option<PathBuf>,
    /// A TLS set-up of the caller's own (certificate pinning).
    pub tls: Option<rustls::ClientConfig>,
}

impl HttpOptions {
    /// `timeout` for the whole request, at most 5 s of it to connect.
    pub fn with_timeout(timeout: Duration) -> HttpOptions {
        HttpOptions {
            connect_timeout: timeout.min(Duration::from_secs(5)),
            timeout: Some(timeout),
            pool_idle_timeout: None,
            unix_socket: None,
            tls: None,
        }
    }
}

/// Builds a client (rustls, no proxy surprises) with the options' limits.
pub fn client(o: HttpOptions) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder().connect_timeout(o.connect_timeout);
    if let Some(t) = o.timeout {
        b = b.timeout(t);
    }
    if let Some(t) = o.pool_idle_timeout {
        b = b.pool_idle_timeout(t);
    }
    if let Some(p) = o.unix_socket {
        b = b.unix_socket(p);
    }
    if let Some(tls) = o.tls {
        b = b.tls_backend_preconfigured(tls);
    }
    b.build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// A client whose every request ends within `timeout` (at most 5 s of it
/// to connect).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    client(HttpOptions::with_timeout(timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_build_with_their_limits() {
        assert!(http_client(Duration::from_secs(1)).is_ok());
        let o = HttpOptions::with_timeout(Duration::from_secs(30));
        assert_eq!(o.connect_timeout, Duration::from_secs(5));
        assert_eq!(o.timeout, Some(Duration::from_secs(30)));
        let o = HttpOptions {
            timeout: None,
            pool_idle_timeout: Some(Duration::from_secs(5)),
            unix_socket: Some("/nonexistent/vigil.sock".into()),
            ..HttpOptions::with_timeout(Duration::from_secs(3))
        };
        assert!(client(o).is_ok());
    }
}
