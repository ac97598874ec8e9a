//! Reaching the engine: the channel with the URL it goes to, why a connection failed, and
//! how long to wait before the next attempt.
//!
//! Invariants:
//! - an error from a call that never reached the engine names the address and the cause:
//!   `UNAVAILABLE: cannot reach the Switchyard engine at URL: CAUSE_TEXT`, details `url` and
//!   `cause`; an error the engine sent (it always carries an `ErrorInfo`) is kept verbatim;
//! - the cause is one of a closed set ([`Cause`]), the same words in every SDK's logs;
//! - the n-th consecutive failed attempt (n ≥ 1) waits `uniform(0, min(max, initial ×
//!   2^(n−1)))` (full jitter), so workers that lost the same engine do not come back at the
//!   same instant.
//!
//! The cause is read from the transport error's chain of sources: `std::io::Error` kinds
//! first, then the texts hyper, h2 and the resolver use (they expose no stable kinds for
//! DNS or protocol errors). What matches nothing is `other`, with the error's own text.

use crate::{Error, Reason};
use rand::Rng;
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Why a connection to the engine failed (the `cause` field of the WARN line and of an
/// `UNAVAILABLE` error's details).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    ConnectionRefused,
    DnsFailure,
    TlsFailure,
    WrongProtocol,
    TimedOut,
    ConnectionLost,
    Other,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::ConnectionRefused => "connection_refused",
            Cause::DnsFailure => "dns_failure",
            Cause::TlsFailure => "tls_failure",
            Cause::WrongProtocol => "wrong_protocol",
            Cause::TimedOut => "timed_out",
            Cause::ConnectionLost => "connection_lost",
            Cause::Other => "other",
        }
    }

    fn phrase(self) -> &'static str {
        match self {
            Cause::ConnectionRefused => "connection refused (is the engine running on that port?)",
            Cause::DnsFailure => "the host name does not resolve",
            Cause::TlsFailure => "the TLS handshake failed",
            Cause::WrongProtocol => "the server there does not speak Switchyard's gRPC (wrong port?)",
            Cause::TimedOut => "timed out",
            Cause::ConnectionLost => "the connection was lost",
            Cause::Other => "",
        }
    }
}

/// A failed attempt to reach the engine: its cause and the text for people.
#[derive(Clone, Debug)]
pub(crate) struct Unreachable {
    pub cause: Cause,
    pub text: String,
}

impl Unreachable {
    pub fn new(cause: Cause, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let text = match (cause.phrase(), detail.is_empty()) {
            ("", _) => detail,
            (phrase, true) => phrase.to_string(),
            (phrase, false) => format!("{phrase}: {detail}"),
        };
        Self { cause, text }
    }

    /// The transport error `e` (a status without an `ErrorInfo`, or its source), classified.
    pub fn of(e: &(dyn StdError + 'static)) -> Self {
        let cause = classify(e);
        Self::new(cause, innermost(e))
    }

    /// A status that did not come from the engine's handlers: the transport's error (its
    /// source), a server that is not a Switchyard engine (`UNIMPLEMENTED`), or its text.
    pub fn of_status(status: &tonic::Status) -> Self {
        if let Some(source) = status.source() {
            return Self::of(source);
        }
        if status.code() == tonic::Code::Unimplemented || status.message().starts_with("grpc-status header missing") {
            return Self::new(Cause::WrongProtocol, status.message());
        }
        let text: Box<dyn StdError + Send + Sync> = status.message().into();
        Self::new(classify(&*text), status.message())
    }

    /// The error a call (or a fail-fast worker) returns.
    pub fn error(&self, url: &str) -> Error {
        let mut e =
            Error::local(Reason::Unavailable, format!("cannot reach the Switchyard engine at {url}: {}", self.text));
        e.details.insert("url".into(), url.into());
        e.details.insert("cause".into(), self.cause.as_str().into());
        e
    }
}

fn classify(e: &(dyn StdError + 'static)) -> Cause {
    let mut texts = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused => return Cause::ConnectionRefused,
                TimedOut => return Cause::TimedOut,
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected => {
                    return Cause::ConnectionLost;
                }
                _ => {}
            }
        }
        texts.push(err.to_string().to_ascii_lowercase());
        next = err.source();
    }
    let any = |needles: &[&str]| texts.iter().any(|t| needles.iter().any(|n| t.contains(n)));
    if any(&["dns error", "failed to lookup address", "name or service not known", "no such host"]) {
        Cause::DnsFailure
    } else if any(&["connection refused"]) {
        Cause::ConnectionRefused
    } else if any(&["tls", "certificate", "ssl"]) {
        Cause::TlsFailure
    } else if any(&["timed out", "timeout", "deadline has elapsed"]) {
        Cause::TimedOut
    } else if any(&["frame with invalid size", "invalid preface", "protocol error", "http2 error", "malformed"]) {
        Cause::WrongProtocol
    } else if any(&["connection reset", "broken pipe", "connection closed", "stream closed", "go away", "goaway"]) {
        Cause::ConnectionLost
    } else {
        Cause::Other
    }
}

/// The deepest error's text: the specific one (`Connection refused (os error 111)`).
fn innermost(e: &(dyn StdError + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// What every call goes through: the channel, with the bearer token added.
pub(crate) type Transport = InterceptedService<Channel, BearerToken>;

/// Adds `authorization: Bearer <token>` to every call when there is a token.
#[derive(Clone)]
pub(crate) struct BearerToken(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The channel to the engine and the URL it goes to (`http://HOST:PORT` or
/// `https://HOST:PORT`).
#[derive(Clone)]
pub(crate) struct Connection {
    pub channel: Transport,
    pub url: Arc<str>,
}

/// A lazily connecting channel to `url` (already parsed by [`crate::url`]): TLS for
/// `https://` (system roots unless `tls.ca_file`; `tls.cert_file` + `tls.key_file` as the
/// client identity for mTLS), the token from the options, else `SWITCHYARD_TOKEN`.
pub(crate) fn open(url: String, options: &crate::InitOptions) -> Result<Connection, Error> {
    let mut endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| Error::local(Reason::InvalidUrl, format!("unsupported URL '{url}': {e}")))?
        .tcp_nodelay(true)
        .connect_timeout(options.connect_timeout)
        .http2_keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true);
    let https = url.starts_with("https://");
    match (&options.tls, https) {
        (Some(_), false) => {
            return Err(Error::local(
                Reason::InvalidArgument,
                format!("tls options are set but '{url}' is plaintext: use https://HOST:PORT"),
            ));
        }
        (tls, true) => {
            let read = |what: &str, path: &std::path::Path| {
                std::fs::read(path).map_err(|e| {
                    Error::local(Reason::InvalidArgument, format!("tls.{what}: cannot read {}: {e}", path.display()))
                })
            };
            let tls = tls.clone().unwrap_or_default();
            let mut config = ClientTlsConfig::new();
            config = match &tls.ca_file {
                Some(ca) => config.ca_certificate(Certificate::from_pem(read("ca_file", ca)?)),
                None => config.with_native_roots(),
            };
            config = match (&tls.cert_file, &tls.key_file) {
                (Some(cert), Some(key)) => {
                    config.identity(Identity::from_pem(read("cert_file", cert)?, read("key_file", key)?))
                }
                (None, None) => config,
                _ => {
                    return Err(Error::local(
                        Reason::InvalidArgument,
                        "tls: cert_file and key_file go together (the client identity for mTLS)",
                    ));
                }
            };
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| Error::local(Reason::InvalidArgument, format!("tls: {}", innermost(&e))))?;
        }
        (None, false) => {}
    }
    let token = options
        .token
        .clone()
        .or_else(|| std::env::var("SWITCHYARD_TOKEN").ok())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let header = match token {
        Some(t) => Some(format!("Bearer {t}").parse::<MetadataValue<Ascii>>().map_err(|_| {
            Error::local(Reason::InvalidArgument, "token: must be printable ASCII without line breaks")
        })?),
        None => None,
    };
    let channel = InterceptedService::new(endpoint.connect_lazy(), BearerToken(header));
    Ok(Connection { channel, url: url.into() })
}

impl Connection {
    /// A failed call's status as the SDK's error: the engine's own, or "cannot reach".
    pub fn error(&self, status: tonic::Status) -> Error {
        status_error(&self.url, status)
    }
}

/// See [`Connection::error`]. A status the engine sent has an `ErrorInfo` and no source; one
/// the transport made has no `ErrorInfo` and the transport error as its source.
pub(crate) fn status_error(url: &str, status: tonic::Status) -> Error {
    use tonic_types::StatusExt;
    // A server that is not a Switchyard engine answers a plain HTTP error.
    let not_grpc = status.message().starts_with("grpc-status header missing");
    if status.get_details_error_info().is_none() && (status.source().is_some() || not_grpc) {
        return Unreachable::of_status(&status).error(url);
    }
    Error::from(status)
}

/// How long to wait after the `n`-th consecutive failed attempt (n ≥ 1): full jitter,
/// `uniform(0, min(max, initial × 2^(n−1)))`.
pub(crate) fn reconnect_delay(n: u32, initial: Duration, max: Duration, rng: &mut impl Rng) -> Duration {
    let ceiling = initial.saturating_mul(1u32 << n.saturating_sub(1).min(30)).min(max);
    rng.random_range(Duration::ZERO..=ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const INITIAL: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    #[test]
    fn reconnect_delays_stay_within_the_doubling_ceiling_capped_at_the_max() {
        let mut rng = StdRng::seed_from_u64(7);
        for n in 1..=40u32 {
            let ceiling = Duration::from_millis((100u64 << (n - 1).min(20)).min(5000));
            for _ in 0..200 {
                let d = reconnect_delay(n, INITIAL, MAX, &mut rng);
                assert!(d <= ceiling, "attempt {n}: {d:?} over {ceiling:?}");
            }
        }
    }

    #[test]
    fn reconnect_delays_are_jittered_over_the_whole_range() {
        let mut rng = StdRng::seed_from_u64(11);
        let delays: Vec<Duration> = (0..200).map(|_| reconnect_delay(6, INITIAL, MAX, &mut rng)).collect();
        let mut distinct = delays.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 150, "delays barely differ: {} distinct of 200", distinct.len());
        // Full jitter: both ends of [0, 3.2 s] are reached, not a band around the ceiling.
        assert!(delays.iter().any(|d| *d < Duration::from_millis(400)), "no short delay");
        assert!(delays.iter().any(|d| *d > Duration::from_millis(2800)), "no long delay");
    }

    #[test]
    fn io_error_kinds_and_transport_texts_name_the_cause() {
        use std::io::{Error as Io, ErrorKind};
        let io = |k: ErrorKind| Io::new(k, "x");
        assert_eq!(classify(&io(ErrorKind::ConnectionRefused)), Cause::ConnectionRefused);
        assert_eq!(classify(&io(ErrorKind::TimedOut)), Cause::TimedOut);
        assert_eq!(classify(&io(ErrorKind::ConnectionReset)), Cause::ConnectionLost);
        assert_eq!(classify(&Io::other("dns error: failed to lookup address information")), Cause::DnsFailure);
        assert_eq!(classify(&Io::other("h2 protocol error: frame with invalid size")), Cause::WrongProtocol);
        assert_eq!(classify(&Io::other("something else")), Cause::Other);
        #[derive(Debug)]
        struct Wrapper(Io);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("tcp connect error")
            }
        }
        impl StdError for Wrapper {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let wrapped = Wrapper(io(ErrorKind::ConnectionRefused));
        assert_eq!(classify(&wrapped), Cause::ConnectionRefused, "found in the chain of sources");
    }

    #[test]
    fn an_unreachable_engine_is_unavailable_naming_the_url_and_cause() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
        let e = Unreachable::of(&refused).error("http://127.0.0.1:1");
        assert_eq!(e.reason, Reason::Unavailable);
        assert!(
            e.message.starts_with(
                "UNAVAILABLE: cannot reach the Switchyard engine at http://127.0.0.1:1: connection refused"
            ),
            "{}",
            e.message
        );
        assert!(e.message.ends_with("Connection refused (os error 111)"), "{}", e.message);
        assert_eq!(e.details["cause"], "connection_refused");
        assert_eq!(e.details["url"], "http://127.0.0.1:1");
    }
}
