//! `switchyard dev-certs`: a fresh certificate authority and the server and client
//! certificates it signs, for trying TLS and mTLS locally and for tests in every language.
//!
//! Invariant: every run makes a new CA key, so two runs into two directories give two CAs
//! that do not trust each other's certificates (the "wrong CA" case of the tests). Nothing
//! is meant for production: the keys are written unencrypted and the validity is long.
//!
//! Files written into `--out` (created if missing): `ca.pem`, `ca-key.pem`, `server.pem`,
//! `server-key.pem`, `client.pem`, `client-key.pem`. The server certificate names
//! `localhost`, `127.0.0.1`, `::1` and each `--host`; the client certificate's common name
//! is [`CLIENT_CN`]. Key files are created with mode 0600.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// The common name of the client certificate.
pub const CLIENT_CN: &str = "switchyard-client";

/// The names every server certificate carries.
pub const DEFAULT_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];

#[derive(Debug, thiserror::Error)]
pub enum DevCertsError {
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("--host '{0}': must not be empty or contain spaces")]
    BadHost(String),
}

/// Writes the six files into `out`; returns their paths in the order listed above.
pub fn write(out: &Path, hosts: &[String]) -> Result<Vec<PathBuf>, DevCertsError> {
    for h in hosts {
        if h.trim().is_empty() || h.chars().any(char::is_whitespace) {
            return Err(DevCertsError::BadHost(h.clone()));
        }
    }
    let mut names: Vec<String> = DEFAULT_HOSTS.iter().map(|s| s.to_string()).collect();
    for h in hosts {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Switchyard dev CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(names)?;
    server.distinguished_name.push(DnType::CommonName, "switchyard-server");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    let server_cert = server.signed_by(&server_key, &issuer)?;

    let client_key = KeyPair::generate()?;
    let mut client = CertificateParams::new(Vec::<String>::new())?;
    client.distinguished_name.push(DnType::CommonName, CLIENT_CN);
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client.use_authority_key_identifier_extension = true;
    let client_cert = client.signed_by(&client_key, &issuer)?;

    std::fs::create_dir_all(out).map_err(|source| DevCertsError::Write { path: out.to_path_buf(), source })?;
    let files = [
        ("ca.pem", ca_cert.pem(), false),
        ("ca-key.pem", issuer.key().serialize_pem(), true),
        ("server.pem", server_cert.pem(), false),
        ("server-key.pem", server_key.serialize_pem(), true),
        ("client.pem", client_cert.pem(), false),
        ("client-key.pem", client_key.serialize_pem(), true),
    ];
    let mut written = Vec::with_capacity(files.len());
    for (name, text, secret) in files {
        let path = out.join(name);
        write_file(&path, text.as_bytes(), secret)
            .map_err(|source| DevCertsError::Write { path: path.clone(), source })?;
        written.push(path);
    }
    Ok(written)
}

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_six_pem_files_and_a_new_ca_each_run() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let files = write(a.path(), &["engine.internal".into()]).unwrap();
        assert_eq!(files.len(), 6);
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            assert!(text.starts_with("-----BEGIN "), "{} is not PEM", f.display());
        }
        write(b.path(), &[]).unwrap();
        let ca = |d: &Path| std::fs::read_to_string(d.join("ca.pem")).unwrap();
        assert_ne!(ca(a.path()), ca(b.path()));
    }

    #[test]
    fn a_host_with_spaces_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(write(dir.path(), &["a b".into()]), Err(DevCertsError::BadHost(_))));
    }
}
