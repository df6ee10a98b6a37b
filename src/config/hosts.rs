//! `[[hosts]]`: a host as the config file writes it. Its executor settings
//! (`[hosts.ssh]`, `[hosts.http]`) are typed when the file is read, as
//! exec's own spec types; the engine gets the rest as a `HostSpec`.

use serde::{Deserialize, Serialize};

use crate::engine::HostSpec;
use crate::exec::HostSettings;
use crate::exec::http::HttpSpec;
use crate::exec::ssh::SshSpec;
use crate::model::Labels;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    pub name: String,
    /// Facts about the host: `group`, `role`, `env`, `service_manager`...
    #[serde(default)]
    pub labels: Labels,
    /// Services that run there (preconditions check against it).
    #[serde(default)]
    pub services: Vec<String>,
    /// How Vigil reaches it: `local`, `ssh`, `http`, `sim`.
    #[serde(default)]
    pub executor: Option<String>,
    /// `[hosts.ssh]`: address, user, port, key...
    #[serde(default)]
    pub ssh: Option<SshSpec>,
    /// `[hosts.http]`: the job API's url, token...
    #[serde(default)]
    pub http: Option<HttpSpec>,
    /// Other addresses and names the host is known by (what Prometheus'
    /// `instance` label holds, without the port).
    #[serde(default)]
    pub addresses: Vec<String>,
}

impl HostEntry {
    /// The host as the engine sees it.
    pub fn spec(&self) -> HostSpec {
        HostSpec {
            name: self.name.clone(),
            labels: self.labels.clone(),
            services: self.services.clone(),
            executor: self.executor.clone(),
            ssh_host: self.ssh.as_ref().and_then(|s| s.host.clone()),
            addresses: self.addresses.clone(),
        }
    }
}

/// An entry for a host given in code (the demo fleet's, a scenario's): no
/// settings beyond the ssh address it names.
impl From<HostSpec> for HostEntry {
    fn from(h: HostSpec) -> Self {
        HostEntry {
            ssh: h.ssh_host.map(|host| SshSpec {
                host: Some(host),
                ..SshSpec::default()
            }),
            name: h.name,
            labels: h.labels,
            services: h.services,
            executor: h.executor,
            http: None,
            addresses: h.addresses,
        }
    }
}

impl HostSettings for HostEntry {
    fn name(&self) -> &str {
        &self.name
    }

    fn executor(&self) -> Option<&str> {
        self.executor.as_deref()
    }

    fn ssh(&self) -> Option<&SshSpec> {
        self.ssh.as_ref()
    }

    fn http(&self) -> Option<&HttpSpec> {
        self.http.as_ref()
    }
}
