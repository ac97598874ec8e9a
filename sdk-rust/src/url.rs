//! The engine URL grammar, the same in every Switchyard SDK.
//!
//! Invariant: a URL is accepted or refused here, when the worker is built, before any I/O;
//! an accepted URL is kept as `http://HOST:PORT` (plaintext) or `https://HOST:PORT` (TLS),
//! the form every log line and error names.
//!
//! 1. `http://HOST:PORT` and bare `HOST:PORT` are plaintext gRPC; a missing port is
//!    [`DEFAULT_PORT`]; one trailing `/` is allowed. `HOST` is a name, an IPv4 address or a
//!    bracketed IPv6 address.
//! 2. `https://HOST:PORT` (same rules) is gRPC over TLS: the engine's certificate is checked
//!    against the system's roots, or the CA of `tls.ca_file` when one is given.
//! 3. Everything else is refused with `INVALID_URL` and a message naming the URL and the
//!    supported forms: `ws://` and `wss://` (iii's form), other schemes, an empty string, no
//!    host, a bad port, a path, a query, user info.
//!
//! Deliberately not done: resolving the host (that is I/O; a name that does not resolve is a
//! connection error naming the address, `dns_failure`).

use crate::{Error, Reason};

/// The port a URL without one means.
pub const DEFAULT_PORT: u16 = 49134;

/// The URL used when none is given and `SWITCHYARD_URL` is not set.
pub const DEFAULT_URL: &str = "http://127.0.0.1:49134";

/// The engine URL to use when the application names none: `SWITCHYARD_URL`, else
/// [`DEFAULT_URL`].
pub fn url_from_env() -> String {
    std::env::var("SWITCHYARD_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// `url` checked against the grammar (module doc), as `http://HOST:PORT` or
/// `https://HOST:PORT`.
pub(crate) fn parse(url: &str) -> Result<String, Error> {
    let unsupported =
        || invalid(url, format!("unsupported URL '{url}': use http://HOST:PORT, https://HOST:PORT or HOST:PORT"));
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => ("http", rest),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => ("https", rest),
        Some(_) => return Err(unsupported()),
        None => ("http", url),
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(unsupported());
    }
    // HOST[:PORT], HOST bracketed when it is an IPv6 address.
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']').ok_or_else(unsupported)?;
        if authority[1..close].parse::<std::net::Ipv6Addr>().is_err() {
            return Err(unsupported());
        }
        let (host, after) = authority.split_at(close + 1);
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(unsupported)?)),
        }
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) {
            return Err(unsupported());
        }
        (host, port)
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(unsupported()),
        },
        Some(_) => return Err(unsupported()),
    };
    Ok(format!("{scheme}://{host}:{port}"))
}

fn invalid(url: &str, message: String) -> Error {
    let mut e = Error::local(Reason::InvalidUrl, message);
    e.details.insert("url".into(), url.into());
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_forms_are_accepted_and_normalized() {
        for (url, want) in [
            ("http://127.0.0.1:49300", "http://127.0.0.1:49300"),
            ("http://127.0.0.1:49300/", "http://127.0.0.1:49300"),
            ("HTTP://engine.internal:1", "http://engine.internal:1"),
            ("127.0.0.1:49300", "http://127.0.0.1:49300"),
            ("localhost:49300", "http://localhost:49300"),
            ("localhost", "http://localhost:49134"),
            ("http://my-engine", "http://my-engine:49134"),
            ("[::1]:49300", "http://[::1]:49300"),
            ("http://[::1]", "http://[::1]:49134"),
            ("https://engine.internal", "https://engine.internal:49134"),
            ("HTTPS://127.0.0.1:49300/", "https://127.0.0.1:49300"),
            ("https://[::1]:1", "https://[::1]:1"),
        ] {
            assert_eq!(parse(url).unwrap(), want, "{url}");
        }
    }

    #[test]
    fn other_schemes_and_malformed_urls_are_invalid_url_naming_the_supported_forms() {
        for url in [
            "ws://127.0.0.1:49134",
            "wss://127.0.0.1:49134",
            "ftp://127.0.0.1:49134",
            "grpc://host:1",
            "",
            "http://",
            "http://:49134",
            ":49134",
            "host:",
            "host:port",
            "host:0",
            "host:65536",
            "host:+1",
            "http://host:1/path",
            "http://host:1?x=1",
            "http://user@host:1",
            "host name:1",
            "[::1",
            "[zz]:1",
            "[::1]x",
            "https://",
            "https://host:1/path",
        ] {
            let e = parse(url).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidUrl, "{url}");
            assert_eq!(
                e.message,
                format!("INVALID_URL: unsupported URL '{url}': use http://HOST:PORT, https://HOST:PORT or HOST:PORT"),
                "{url}"
            );
            assert_eq!(e.details["url"], url);
        }
    }
}
