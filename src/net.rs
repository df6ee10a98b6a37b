//! Outbound HTTP: the client every effect module (sources, notify, probes)
//! builds its requests on. A leaf: it imports nothing from the crate.

use std::time::Duration;

/// A shared HTTP client (rustls, no proxy surprises).
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .build()
        .unwrap_or_default()
}
