//! The `tls`, `auth` and `allow_plaintext` settings, validated.
//!
//! Invariant: a secret never sits in the config text and is never printed: it is read from
//! its `secret_env` variable or `secret_file` when the config loads (a missing, empty or
//! unreadable one is a problem naming the token and the variable or file), and [`Secret`]'s
//! `Debug` shows only `***`.

use std::net::SocketAddr;
use std::path::PathBuf;

/// The `tls` block: the listener's certificate, and optionally the CA client certificates
/// must be signed by (mTLS). Paths are relative to the engine's working directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSpec {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
}

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// `Trigger` (sync call, void, enqueue) and `EnqueueBatch`.
    Producer,
    /// `Connect` and registering functions.
    Worker,
    /// The `Queues` service.
    Admin,
}

impl Role {
    pub const ALL: &[&str] = &["producer", "worker", "admin"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "producer" => Some(Role::Producer),
            "worker" => Some(Role::Worker),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Worker => "worker",
            Role::Admin => "admin",
        }
    }
}

/// A token's secret, as read from its variable or file (surrounding whitespace trimmed).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// One entry of `auth.tokens`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSpec {
    /// Unique; the name logs and errors show.
    pub name: String,
    pub secret: Secret,
    /// At least one, sorted, without repeats.
    pub roles: Vec<Role>,
    /// Globs over queue names (`*` any run, `?` one character); `None` = every queue.
    pub queues: Option<Vec<String>>,
    /// Globs over function ids; `None` = every function.
    pub functions: Option<Vec<String>>,
}

/// The `auth` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSpec {
    pub tokens: Vec<TokenSpec>,
}

/// What serving on `listen` with these settings means: `Err` is a refusal to start,
/// `Ok(Some)` a warning to say loudly, `Ok(None)` fine.
pub fn plaintext_check(
    listen: SocketAddr,
    tls: Option<&TlsSpec>,
    auth: Option<&AuthSpec>,
    allow_plaintext: bool,
) -> Result<Option<String>, String> {
    if listen.ip().is_loopback() {
        return Ok(None);
    }
    match (auth, tls, allow_plaintext) {
        (Some(_), Some(_), _) => Ok(None),
        (Some(_), None, false) => Err(format!(
            "listen: {listen} is not a loopback address and there is no tls block: tokens would cross the \
             network in clear text; add tls (cert_file, key_file) or set allow_plaintext: true"
        )),
        (Some(_), None, true) => Ok(Some(format!(
            "listening on {listen} without TLS (allow_plaintext: true): tokens cross the network in clear text"
        ))),
        // mTLS alone already admits only clients holding a certificate the CA signed.
        (None, Some(TlsSpec { client_ca_file: Some(_), .. }), _) => Ok(None),
        (None, _, _) => Ok(Some(format!(
            "listening on {listen}, not a loopback address, with no auth block: anyone who can reach this port \
             can enqueue, register as a worker for any function and redrive or discard dead letters; \
             add auth.tokens (and tls)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> AuthSpec {
        AuthSpec { tokens: vec![] }
    }

    #[test]
    fn plaintext_guard() {
        let lo: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:1".parse().unwrap();
        let tls = TlsSpec { cert_file: "c".into(), key_file: "k".into(), client_ca_file: None };
        assert_eq!(plaintext_check(lo, None, Some(&auth()), false), Ok(None));
        assert!(plaintext_check(any, None, Some(&auth()), false).unwrap_err().contains("allow_plaintext"));
        assert!(plaintext_check(any, None, Some(&auth()), true).unwrap().is_some());
        assert!(plaintext_check(any, None, None, false).unwrap().unwrap().contains("no auth block"));
        assert_eq!(plaintext_check(any, Some(&tls), Some(&auth()), false), Ok(None));
        assert!(plaintext_check(any, Some(&tls), None, false).unwrap().is_some());
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "***");
    }
}
