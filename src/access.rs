//! Who is asking, and what they may do (safety rule 10).
//!
//! An identity comes from the connection, never from a request body: the OS
//! user behind the hub's unix socket (peer credentials), or the operator a
//! bearer token belongs to over TCP. Roles are ordered: a `viewer` reads
//! and watches, an `operator` also approves, rejects, silences and runs, an
//! `admin` also freezes, leaves dry-run and resets breakers.
//!
//! This module resolves identities and roles; it never decides what an
//! action does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The shortest token an operator may have, in bytes.
pub const MIN_TOKEN_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an identity was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The OS user behind the unix socket.
    Socket,
    /// An operator's bearer token over TCP.
    Token,
    /// The listener's delivery token (`[listener] token_env`): deliveries
    /// and reads, no intents.
    Listener,
    /// No credentials (loopback reads only).
    Anonymous,
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub name: String,
    pub role: Role,
    pub via: Via,
}

impl Identity {
    /// This identity, asking for no more than `cap` (a read-only console
    /// attaches as a viewer whatever its user may do).
    pub fn capped(mut self, cap: Option<Role>) -> Identity {
        if let Some(c) = cap {
            self.role = self.role.min(c);
        }
        self
    }
}

/// `[[operators]]`: a person with a token (for consoles and tools over TCP).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSpec {
    pub name: String,
    pub role: Option<Role>,
    /// The environment variable that holds the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Or the token's SHA-256, hex (the token itself never sits in a file).
    #[serde(default)]
    pub token_sha256: Option<String>,
}

/// `[access]`: the unix socket and the roles of OS users on it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSpec {
    /// The group that may connect to `DATA_DIR/vigil.sock` (mode 0660).
    #[serde(default)]
    pub socket_group: Option<String>,
    /// OS user name -> role. The hub's own user (and root) is admin; an
    /// unlisted user is a viewer.
    #[serde(default)]
    pub users: BTreeMap<String, Role>,
}

/// A token, kept only as its SHA-256.
#[derive(Clone)]
struct Digest32([u8; 32]);

impl Digest32 {
    fn matches(&self, presented: &[u8]) -> bool {
        let h: [u8; 32] = Sha256::digest(presented).into();
        h.ct_eq(&self.0).into()
    }
}

/// Resolved access rules, ready for the listener.
#[derive(Clone, Default)]
pub struct Access {
    operators: Vec<(String, Role, Digest32)>,
    users: BTreeMap<String, Role>,
    hub_uid: u32,
    /// The name recorded for the hub's own OS user (the config's
    /// `operator`), when it has one.
    hub_name: Option<String>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field(
                "operators",
                &self.operators.iter().map(|o| &o.0).collect::<Vec<_>>(),
            )
            .field("users", &self.users)
            .field("hub_uid", &self.hub_uid)
            .finish()
    }
}

/// What a config's access section says that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("[[operators]] {name:?}: {message}")]
pub struct AccessError {
    pub name: String,
    pub message: String,
}

impl Access {
    /// Resolves tokens from the environment. Every problem is reported.
    pub fn resolve(
        operators: &[OperatorSpec],
        spec: &AccessSpec,
    ) -> Result<Access, Vec<AccessError>> {
        let mut errors = Vec::new();
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for o in operators {
            let err = |m: String| AccessError {
                name: o.name.clone(),
                message: m,
            };
            if o.name.trim().is_empty() || o.name.chars().any(char::is_control) {
                errors.push(err("the name is empty or has control characters".into()));
                continue;
            }
            if !seen.insert(o.name.clone()) {
                errors.push(err("the name appears twice".into()));
                continue;
            }
            let role = o.role.unwrap_or(Role::Operator);
            let digest = match (&o.token_env, &o.token_sha256) {
                (Some(var), None) => match std::env::var(var) {
                    Ok(v) if v.trim().len() >= MIN_TOKEN_BYTES => {
                        Digest32(Sha256::digest(v.trim().as_bytes()).into())
                    }
                    Ok(v) if !v.trim().is_empty() => {
                        errors.push(err(format!(
                            "the token in {var} has {} bytes; at least {MIN_TOKEN_BYTES} are accepted (e.g. `openssl rand -hex 32`)",
                            v.trim().len()
                        )));
                        continue;
                    }
                    _ => {
                        errors.push(err(format!(
                            "token_env names {var}, which is not set or empty"
                        )));
                        continue;
                    }
                },
                (None, Some(hexed)) => match hex::decode(hexed.trim()) {
                    Ok(b) if b.len() == 32 => {
                        let mut d = [0u8; 32];
                        d.copy_from_slice(&b);
                        Digest32(d)
                    }
                    _ => {
                        errors.push(err(
                            "token_sha256 is not 64 hex digits (sha256sum of the token)".into(),
                        ));
                        continue;
                    }
                },
                _ => {
                    errors.push(err(
                        "exactly one of token_env or token_sha256 is accepted".into()
                    ));
                    continue;
                }
            };
            out.push((o.name.clone(), role, digest));
        }
        if errors.is_empty() {
            Ok(Access {
                operators: out,
                users: spec.users.clone(),
                // SAFETY: getuid cannot fail.
                hub_uid: unsafe { libc::getuid() },
                hub_name: None,
            })
        } else {
            Err(errors)
        }
    }

    /// The operator whose token this is. Every token is compared, in
    /// constant time each, so the answer's timing does not say which.
    pub fn by_token(&self, presented: &[u8]) -> Option<Identity> {
        let mut found = None;
        for (name, role, d) in &self.operators {
            if d.matches(presented) && found.is_none() {
                found = Some(Identity {
                    name: name.clone(),
                    role: *role,
                    via: Via::Token,
                });
            }
        }
        found
    }

    /// Records the hub's own OS user under `name` (the config's
    /// `operator`): only connections from that same uid get it.
    pub fn with_hub_name(mut self, name: Option<String>) -> Access {
        self.hub_name = name.filter(|n| !n.trim().is_empty() && !n.chars().any(char::is_control));
        self
    }

    /// The OS user behind a socket peer, with its role.
    pub fn by_uid(&self, uid: u32) -> Identity {
        let name = match &self.hub_name {
            Some(n) if uid == self.hub_uid => n.clone(),
            _ => user_name(uid).unwrap_or_else(|| format!("uid:{uid}")),
        };
        let role = if uid == self.hub_uid || uid == 0 {
            Role::Admin
        } else {
            self.users.get(&name).copied().unwrap_or(Role::Viewer)
        };
        Identity {
            name,
            role,
            via: Via::Socket,
        }
    }
}

/// The login name of `uid`, from the system's user database.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r writes into `pwd` and `buf`, both owned and sized
    // here; `result` is null or points at `pwd`.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name points into `buf`, NUL-terminated by getpwuid_r.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// The id of group `name`.
pub fn group_id(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 16384];
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in `user_name`.
    let rc = unsafe {
        libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    Some(grp.gr_gid)
}

/// What each intent needs.
pub fn needed(intent: &str) -> Role {
    match intent {
        "freeze" | "unfreeze" | "dry_run_off" | "reset_breaker" => Role::Admin,
        "approve" | "reject" | "silence" | "unsilence" | "run" | "repropose" | "dry_run_on" => {
            Role::Operator
        }
        _ => Role::Viewer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_resolve_to_their_operator_and_short_ones_are_refused() {
        let long = "a".repeat(40);
        let hexed = hex::encode(Sha256::digest(b"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"));
        let access = Access::resolve(
            &[
                OperatorSpec {
                    name: "ana".into(),
                    role: Some(Role::Operator),
                    token_sha256: Some(hex::encode(Sha256::digest(long.as_bytes()))),
                    ..Default::default()
                },
                OperatorSpec {
                    name: "ben".into(),
                    role: Some(Role::Admin),
                    token_sha256: Some(hexed),
                    ..Default::default()
                },
            ],
            &AccessSpec::default(),
        )
        .unwrap();
        let ana = access.by_token(long.as_bytes()).unwrap();
        assert_eq!((ana.name.as_str(), ana.role), ("ana", Role::Operator));
        let ben = access
            .by_token(b"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
            .unwrap();
        assert_eq!(ben.role, Role::Admin);
        assert!(access.by_token(b"nope").is_none());

        // SAFETY of the test: a variable name no other test uses.
        unsafe { std::env::set_var("VIGIL_TEST_SHORT_TOKEN", "x") };
        let e = Access::resolve(
            &[OperatorSpec {
                name: "cy".into(),
                token_env: Some("VIGIL_TEST_SHORT_TOKEN".into()),
                ..Default::default()
            }],
            &AccessSpec::default(),
        )
        .unwrap_err();
        assert!(e[0].message.contains("at least 32"), "{e:?}");
    }

    #[test]
    fn the_hub_user_is_admin_a_listed_user_has_its_role_others_view() {
        let mut users = BTreeMap::new();
        users.insert("nobody".to_string(), Role::Operator);
        let access = Access::resolve(
            &[],
            &AccessSpec {
                users,
                ..Default::default()
            },
        )
        .unwrap();
        let me = unsafe { libc::getuid() };
        assert_eq!(access.by_uid(me).role, Role::Admin);
        assert_eq!(access.by_uid(65534).role, Role::Operator);
        assert_eq!(access.by_uid(65534).name, "nobody");
        let stranger = access.by_uid(4_000_000);
        assert_eq!(stranger.role, Role::Viewer);
        assert_eq!(stranger.name, "uid:4000000");
        assert_eq!(
            access.by_uid(me).capped(Some(Role::Viewer)).role,
            Role::Viewer
        );
    }
}
