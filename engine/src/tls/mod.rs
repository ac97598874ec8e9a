//! TLS on the gRPC listener (rustls on the ring backend; no OpenSSL).
//!
//! Invariant: every new connection is handshaken with the certificates most recently loaded
//! *whole* — a reload that fails (a missing file, a key that does not match its
//! certificate) keeps the previous ones and says why; connections already open are never
//! touched by a reload, so connected workers stay connected.
//!
//! With `client_ca_file` set, a client must present a certificate that CA signed (mTLS);
//! the handshake fails otherwise. The ALPN protocol is `h2` (gRPC clients require it).
//!
//! [`dev_certs`] writes a throw-away CA and certificates for local use and tests.

pub mod dev_certs;

use crate::config::TlsSpec;
use arc_swap::ArcSwap;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig, server::WebPkiClientVerifier};

/// A certificate or key file that cannot be used, or a set of files that do not fit.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {why}")]
    File { path: String, why: String },
    #[error("{path}: {why}")]
    Invalid { path: String, why: String },
    #[error("the certificate and key do not fit together: {0}")]
    Config(#[from] rustls::Error),
    #[error("client_ca_file: {0}")]
    ClientVerifier(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file (at least one).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| TlsError::File { path: shown.clone(), why: e.to_string() })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid { path: shown.clone(), why: format!("not a PEM certificate file: {e}") })?;
    if certs.is_empty() {
        return Err(TlsError::Invalid { path: shown, why: "no 'BEGIN CERTIFICATE' block in the file".into() });
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| TlsError::File { path: shown.clone(), why: e.to_string() })?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| TlsError::Invalid { path: shown, why: format!("no usable private key in the file: {e}") })
}

/// The rustls server configuration for `spec`, read from its files now.
pub fn server_config(spec: &TlsSpec) -> Result<ServerConfig, TlsError> {
    let certs = read_certs(&spec.cert_file)?;
    let key = read_key(&spec.key_file)?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let builder = match &spec.client_ca_file {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::Invalid { path: ca.display().to_string(), why: e.to_string() })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::ClientVerifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The listener's TLS configuration, swapped whole by [`Reloadable::reload`].
pub struct Reloadable {
    spec: TlsSpec,
    current: ArcSwap<ServerConfig>,
}

impl Reloadable {
    pub fn load(spec: &TlsSpec) -> Result<Self, TlsError> {
        Ok(Self { spec: spec.clone(), current: ArcSwap::from_pointee(server_config(spec)?) })
    }

    /// The acceptor for the next connection.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.load_full())
    }

    /// Reads the files again; on success new connections use them, on failure nothing
    /// changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.spec)?;
        self.current.store(Arc::new(config));
        Ok(())
    }

    /// Reloads on every SIGHUP until `stop`, logging each outcome.
    pub async fn reload_on_hangup(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hangup = match signal(SignalKind::hangup()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGHUP: certificates will not reload");
                    return;
                }
            };
            loop {
                tokio::select! {
                    got = hangup.recv() => if got.is_none() { return },
                    _ = stop.cancelled() => return,
                }
                match self.reload() {
                    Ok(()) => tracing::info!(
                        cert_file = %self.spec.cert_file.display(),
                        "SIGHUP: TLS certificates reloaded; new connections use them"
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "SIGHUP: TLS reload failed; keeping the certificates loaded before")
                    }
                }
            }
        }
        #[cfg(not(unix))]
        let _ = stop;
    }
}
