//! Syslog over TLS (RFC 5425, `--tls`): the server side of what rsyslog's
//! `gtls`/`ossl` stream drivers send. The certificate, its key and the
//! optional client CA are read once at start; every error names the file
//! and what to give instead (exit status 2).
//!
//! After the handshake a TLS connection is a TCP one: the same framing
//! (RFC 5425 is octet-counted; LF is accepted as on plain TCP), the same
//! slots, timeouts and back-pressure (net.rs).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

use super::StartError;

/// Where the server's identity and the client CA come from.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Given: a client must present a certificate this CA signed.
    pub client_ca: Option<PathBuf>,
}

/// The acceptor for `--tls` listeners, from the files.
pub fn acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, StartError> {
    let (Some(cert), Some(key_path)) = (&files.cert, &files.key) else {
        return Err(StartError(
            "--tls needs --tls-cert FILE and --tls-key FILE (PEM: the server's certificate \
             chain and its private key)"
                .into(),
        ));
    };
    let chain = certificates("--tls-cert", cert)?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
        StartError(format!(
            "--tls-key {}: {}: give the PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert",
            key_path.display(),
            pem_error(&e)
        ))
    })?;
    // ring, explicitly: the process has no default provider to guess.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError(format!("--tls: {e}")))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certificates("--tls-client-ca", ca)? {
                roots.add(c).map_err(|e| {
                    StartError(format!(
                        "--tls-client-ca {}: {e}: give the PEM certificate of the CA that \
                         signs the senders' certificates",
                        ca.display()
                    ))
                })?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| StartError(format!("--tls-client-ca {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(chain, key).map_err(|e| {
        StartError(format!(
            "--tls-cert {} with --tls-key {}: {e}: the key must be the certificate's own",
            cert.display(),
            key_path.display()
        ))
    })?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Every certificate of a PEM file; none is an error.
fn certificates(flag: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, StartError> {
    let bad = |why: String| {
        StartError(format!(
            "{flag} {}: {why}: give a PEM file of certificates (-----BEGIN CERTIFICATE-----)",
            path.display()
        ))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(pem_error(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(pem_error(&e)))?;
    if certs.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(certs)
}

fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        rustls_pki_types::pem::Error::NoItemsFound => "no such item in it".into(),
        other => format!("not PEM ({other:?})"),
    }
}
