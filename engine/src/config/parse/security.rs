//! The `tls` and `auth` blocks and `allow_plaintext`: certificate files are read and
//! checked now (so `check-config` finds a bad one), secrets are read from their variable
//! or file now, and every problem names its path and line.

use super::{Walker, join, line_of};
use crate::config::Problem;
use crate::config::security::{AuthSpec, Role, Secret, TlsSpec, TokenSpec};
use marked_yaml::Node;
use std::path::PathBuf;

const TLS_KEYS: &[&str] = &["cert_file", "key_file", "client_ca_file"];
const AUTH_KEYS: &[&str] = &["tokens"];
const TOKEN_KEYS: &[&str] = &["name", "secret_env", "secret_file", "roles", "queues", "functions"];

impl Walker<'_> {
    pub(super) fn tls(&mut self, path: &str, node: &Node) -> Option<TlsSpec> {
        let map = self.mapping(path, node)?;
        self.unknown_keys(path, map, TLS_KEYS);
        let before = self.problems.len();
        let file = |w: &mut Self, key: &str, required: bool| -> Option<(PathBuf, usize)> {
            let p = join(path, key);
            match map.get_node(key) {
                Some(n) => match w.string(&p, n) {
                    Some(s) if s.trim().is_empty() => {
                        w.problem(&p, n, "must not be empty");
                        None
                    }
                    Some(s) => Some((PathBuf::from(s.trim()), line_of(n))),
                    None => None,
                },
                None if required => {
                    w.problem(&p, node, "required in a tls block");
                    None
                }
                None => None,
            }
        };
        let cert = file(self, "cert_file", true);
        let key = file(self, "key_file", true);
        let ca = file(self, "client_ca_file", false);
        for (name, found, read) in [("cert_file", &cert, 0u8), ("key_file", &key, 1), ("client_ca_file", &ca, 0)] {
            if let Some((p, line)) = found {
                let checked = match read {
                    0 => crate::tls::read_certs(p).map(drop),
                    _ => crate::tls::read_key(p).map(drop),
                };
                if let Err(e) = checked {
                    self.problems.push(Problem::at(join(path, name), *line, e.to_string()));
                }
            }
        }
        if self.problems.len() != before {
            return None;
        }
        let spec = TlsSpec { cert_file: cert?.0, key_file: key?.0, client_ca_file: ca.map(|(p, _)| p) };
        if let Err(e) = crate::tls::server_config(&spec) {
            self.problem(path, node, e.to_string());
            return None;
        }
        Some(spec)
    }

    pub(super) fn auth(&mut self, path: &str, node: &Node) -> Option<AuthSpec> {
        let map = self.mapping(path, node)?;
        self.unknown_keys(path, map, AUTH_KEYS);
        let tpath = join(path, "tokens");
        let Some(list) = map.get_node("tokens") else {
            self.problem(&tpath, node, "required: at least one token (without an auth block, no token is needed)");
            return None;
        };
        let Some(seq) = list.as_sequence() else {
            self.problem(&tpath, list, "expected a list of tokens");
            return None;
        };
        if seq.is_empty() {
            self.problem(&tpath, list, "at least one token (an empty list would refuse every call)");
            return None;
        }
        let before = self.problems.len();
        let mut tokens: Vec<(TokenSpec, usize)> = Vec::new();
        for (i, entry) in seq.iter().enumerate() {
            let epath = format!("{tpath}[{i}]");
            if let Some(token) = self.token(&epath, entry) {
                if let Some((first, line)) = tokens.iter().find(|(t, _)| t.name == token.name) {
                    let message = format!("token name '{}' is used twice (first on line {line})", first.name);
                    self.problem(&join(&epath, "name"), entry, message);
                } else if let Some((first, _)) = tokens.iter().find(|(t, _)| t.secret == token.secret) {
                    let message = format!("has the same secret as token '{}': each token needs its own", first.name);
                    self.problem(&epath, entry, message);
                } else {
                    tokens.push((token, line_of(entry)));
                }
            }
        }
        (self.problems.len() == before).then(|| AuthSpec { tokens: tokens.into_iter().map(|(t, _)| t).collect() })
    }

    fn token(&mut self, path: &str, node: &Node) -> Option<TokenSpec> {
        let map = self.mapping(path, node)?;
        let before = self.problems.len();
        if let Some((key, _)) = map.iter().find(|(k, _)| k.as_str() == "secret") {
            let line = key.span().start().map(|m| m.line()).unwrap_or_else(|| line_of(node));
            self.problems.push(Problem::at(
                join(path, "secret"),
                line,
                "unknown key: a secret never sits in the config; use secret_env (an environment variable) \
                 or secret_file (a file holding it)",
            ));
        }
        let known: Vec<&str> = TOKEN_KEYS.iter().copied().chain(["secret"]).collect();
        self.unknown_keys(path, map, &known);
        let name = match map.get_node("name") {
            Some(n) => match self.string(&join(path, "name"), n) {
                Some(s) if s.trim().is_empty() || s.chars().any(char::is_whitespace) => {
                    self.problem(&join(path, "name"), n, "must be non-empty and without spaces");
                    None
                }
                other => other,
            },
            None => {
                self.problem(&join(path, "name"), node, "required: the token's name, shown in logs and errors");
                None
            }
        };
        let shown = name.clone().unwrap_or_else(|| path.to_string());
        let secret = match (map.get_node("secret_env"), map.get_node("secret_file")) {
            (Some(_), Some(n)) => {
                self.problem(&join(path, "secret_file"), n, "give secret_env or secret_file, not both");
                None
            }
            (None, None) if map.get_node("secret").is_none() => {
                self.problem(path, node, format!("token '{shown}' needs secret_env or secret_file"));
                None
            }
            (None, None) => None,
            (Some(n), None) => {
                let p = join(path, "secret_env");
                let var = self.string(&p, n)?;
                let value = self.env.and_then(|env| env(var.trim()));
                match value.as_deref().map(str::trim) {
                    Some(v) if !v.is_empty() => Some(Secret::new(v)),
                    Some(_) => {
                        self.problem(&p, n, format!("token '{shown}': environment variable '{var}' is empty"));
                        None
                    }
                    None => {
                        self.problem(&p, n, format!("token '{shown}': environment variable '{var}' is not set"));
                        None
                    }
                }
            }
            (None, Some(n)) => {
                let p = join(path, "secret_file");
                let file = self.string(&p, n)?;
                match std::fs::read_to_string(file.trim()) {
                    Ok(v) if !v.trim().is_empty() => Some(Secret::new(v.trim())),
                    Ok(_) => {
                        self.problem(&p, n, format!("token '{shown}': secret file '{file}' is empty"));
                        None
                    }
                    Err(e) => {
                        self.problem(&p, n, format!("token '{shown}': cannot read secret file '{file}': {e}"));
                        None
                    }
                }
            }
        };
        let roles = match map.get_node("roles") {
            Some(n) => self.roles(&join(path, "roles"), n),
            None => {
                self.problem(&join(path, "roles"), node, format!("required: at least one of {}", Role::ALL.join(", ")));
                None
            }
        };
        let queues = map.get_node("queues").and_then(|n| self.globs(&join(path, "queues"), n, "queue"));
        let functions = map.get_node("functions").and_then(|n| self.globs(&join(path, "functions"), n, "function"));
        if self.problems.len() != before {
            return None;
        }
        Some(TokenSpec { name: name?, secret: secret?, roles: roles?, queues, functions })
    }

    fn strings(&mut self, path: &str, node: &Node) -> Option<Vec<(String, usize)>> {
        let Some(seq) = node.as_sequence() else {
            self.problem(path, node, "expected a list, e.g. [a, b]");
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in seq.iter().enumerate() {
            out.push((self.string(&format!("{path}[{i}]"), item)?, line_of(item)));
        }
        Some(out)
    }

    fn roles(&mut self, path: &str, node: &Node) -> Option<Vec<Role>> {
        let items = self.strings(path, node)?;
        if items.is_empty() {
            self.problem(path, node, format!("at least one of {}", Role::ALL.join(", ")));
            return None;
        }
        let mut roles = Vec::new();
        for (i, (s, line)) in items.iter().enumerate() {
            match Role::parse(s) {
                Some(r) => roles.push(r),
                None => {
                    let hint = match crate::suggest::closest(s, Role::ALL.iter().copied()) {
                        Some(near) => format!("; did you mean '{near}'?"),
                        None => String::new(),
                    };
                    let message = format!("unknown role '{s}'{hint} (expected one of: {})", Role::ALL.join(", "));
                    self.problems.push(Problem::at(format!("{path}[{i}]"), *line, message));
                }
            }
        }
        roles.sort();
        roles.dedup();
        (roles.len() == items.len() || !roles.is_empty()).then_some(roles)
    }

    fn globs(&mut self, path: &str, node: &Node, what: &str) -> Option<Vec<String>> {
        let items = self.strings(path, node)?;
        if items.is_empty() {
            let message = format!("an empty list allows no {what}; remove the key to allow every {what}");
            self.problem(path, node, message);
            return None;
        }
        let mut globs = Vec::new();
        for (i, (s, line)) in items.into_iter().enumerate() {
            if s.trim().is_empty() {
                self.problems.push(Problem::at(format!("{path}[{i}]"), line, "must not be empty"));
            } else {
                globs.push(s.trim().to_string());
            }
        }
        Some(globs)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{EngineConfig, Role};

    fn env(name: &str) -> Option<String> {
        match name {
            "ORDERS_TOKEN" => Some("orders-secret".into()),
            "EMPTY" => Some("  ".into()),
            _ => None,
        }
    }

    fn problems(text: &str) -> Vec<String> {
        EngineConfig::parse_with_env(text, env).unwrap_err().problems.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_token_loads_with_its_secret_from_the_environment() {
        let text = "auth:\n  tokens:\n    - name: orders-producer\n      secret_env: ORDERS_TOKEN\n      roles: [producer]\n      queues: [\"orders*\"]\n      functions: [\"orders::*\"]\n";
        let config = EngineConfig::parse_with_env(text, env).unwrap();
        let token = &config.auth.unwrap().tokens[0];
        assert_eq!(token.name, "orders-producer");
        assert_eq!(token.secret.expose(), b"orders-secret");
        assert_eq!(token.roles, vec![Role::Producer]);
        assert_eq!(token.queues.as_deref(), Some(&["orders*".to_string()][..]));
    }

    #[test]
    fn an_inline_secret_is_an_unknown_key_with_a_hint() {
        let p = problems("auth:\n  tokens:\n    - name: a\n      secret: hunter2\n      roles: [admin]\n");
        assert!(
            p.iter().any(|p| p.starts_with("auth.tokens[0].secret: unknown key") && p.contains("secret_env")),
            "{p:?}"
        );
        assert!(p.iter().all(|p| !p.contains("hunter2")), "{p:?}");
    }

    #[test]
    fn unset_or_empty_variables_and_unreadable_files_name_token_and_source() {
        let p = problems(
            "auth:\n  tokens:\n    - name: a\n      secret_env: NOPE\n      roles: [admin]\n    - name: b\n      secret_env: EMPTY\n      roles: [admin]\n    - name: c\n      secret_file: /nonexistent/secret\n      roles: [admin]\n",
        );
        assert!(p[0].contains("token 'a': environment variable 'NOPE' is not set (line 4)"), "{p:?}");
        assert!(p[1].contains("token 'b': environment variable 'EMPTY' is empty (line 7)"), "{p:?}");
        assert!(
            p[2].starts_with("auth.tokens[2].secret_file: token 'c': cannot read secret file '/nonexistent/secret'"),
            "{p:?}"
        );
    }

    #[test]
    fn roles_names_and_globs_are_checked() {
        let p = problems(
            "auth:\n  tokens:\n    - name: a\n      secret_env: ORDERS_TOKEN\n      roles: [prodcer]\n      queues: []\n    - name: a\n      secret_env: ORDERS_TOKEN\n      roles: [admin]\n",
        );
        assert!(p.iter().any(|p| p.contains("unknown role 'prodcer'; did you mean 'producer'?")), "{p:?}");
        assert!(p.iter().any(|p| p.starts_with("auth.tokens[0].queues: an empty list allows no queue")), "{p:?}");
        assert!(problems("auth: {}\n")[0].starts_with("auth.tokens: required"));
        assert!(problems("auth:\n  tokenz: []\n")[0].contains("did you mean 'tokens'"));
    }

    #[test]
    fn tls_files_are_read_at_load_and_named_with_their_line() {
        let p = problems("tls:\n  cert_file: /nonexistent/server.pem\n  key_file: /nonexistent/key.pem\n");
        assert!(p[0].starts_with("tls.cert_file: cannot read /nonexistent/server.pem"), "{p:?}");
        assert!(p[0].ends_with("(line 2)"), "{p:?}");
        assert!(p[1].starts_with("tls.key_file:"), "{p:?}");
        assert!(problems("tls:\n  key_file: k.pem\n").iter().any(|p| p.starts_with("tls.cert_file: required")));
    }

    #[test]
    fn dev_certs_make_a_valid_tls_block() {
        let dir = tempfile::tempdir().unwrap();
        crate::tls::dev_certs::write(dir.path(), &[]).unwrap();
        let d = dir.path().display();
        let text = format!(
            "listen: 0.0.0.0:49134\ntls:\n  cert_file: {d}/server.pem\n  key_file: {d}/server-key.pem\n  client_ca_file: {d}/ca.pem\n"
        );
        let config = EngineConfig::parse_with_env(&text, env).unwrap();
        assert!(config.tls.unwrap().client_ca_file.is_some());
        // A key that is not the certificate's: the block as a whole is refused.
        let text = format!("tls:\n  cert_file: {d}/server.pem\n  key_file: {d}/client-key.pem\n");
        assert!(problems(&text)[0].starts_with("tls: "), "{:?}", problems(&text));
    }
}
