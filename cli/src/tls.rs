//! Which server certificates `ferry` trusts: the public authorities by default, Ferry's own
//! authority when given its PEM (`--ca`), or exactly the certificate whose fingerprint was
//! given (`--fingerprint`). Never any certificate blindly.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

/// Why the trust settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The CA file cannot be read or holds no certificate.
    #[error("cannot use {path} as the server's certificate authority: {reason}")]
    Ca {
        /// The file given.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The fingerprint is not 32 bytes of hex.
    #[error(
        "--fingerprint {0:?} is not a SHA-256 fingerprint: it has 32 pairs of hex digits, \
         as the server prints it (AB:CD:…)"
    )]
    Fingerprint(String),
}

/// How the server's certificate is to be checked.
#[derive(Clone, Debug)]
pub enum Trust {
    /// The public web's authorities.
    Public,
    /// The authorities in this PEM file (Ferry's own, usually).
    Ca(std::path::PathBuf),
    /// Exactly the certificate (or authority) with this SHA-256 fingerprint.
    Fingerprint([u8; 32]),
}

impl Trust {
    /// The trust the options name.
    ///
    /// # Errors
    /// When the fingerprint cannot be read.
    pub fn from_options(ca: Option<&Path>, fingerprint: Option<&str>) -> Result<Self, TrustError> {
        if let Some(print) = fingerprint {
            return parse_fingerprint(print)
                .map(Self::Fingerprint)
                .ok_or_else(|| TrustError::Fingerprint(print.to_owned()));
        }
        Ok(ca.map_or(Self::Public, |path| Self::Ca(path.to_owned())))
    }

    /// The TLS client settings for this trust.
    ///
    /// # Errors
    /// When the CA file cannot be read.
    pub fn client_config(&self) -> Result<ClientConfig, TrustError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|error| TrustError::Ca {
                path: String::new(),
                reason: error.to_string(),
            })?;
        let config = match self {
            Self::Public => {
                let roots = RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Self::Ca(path) => {
                let refused = |reason: String| TrustError::Ca {
                    path: path.display().to_string(),
                    reason,
                };
                let mut roots = RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|error| refused(error.to_string()))?;
                for cert in certs {
                    let cert = cert.map_err(|error| refused(error.to_string()))?;
                    roots
                        .add(cert)
                        .map_err(|error| refused(error.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(refused("it holds no certificate".into()));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Self::Fingerprint(print) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    print: *print,
                    provider,
                }))
                .with_no_client_auth(),
        };
        Ok(config)
    }
}

/// Reads `AB:CD:…` (or the same without colons, any case) as 32 bytes.
fn parse_fingerprint(raw: &str) -> Option<[u8; 32]> {
    let hex: String = raw.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut print = [0; 32];
    for (byte, pair) in print.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(print)
}

/// Accepts a chain when its leaf or one of its authorities has the pinned fingerprint, and
/// still checks that the server holds the key (the handshake's signatures).
#[derive(Debug)]
struct Pinned {
    print: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let pinned = std::iter::once(end_entity)
            .chain(intermediates)
            .any(|cert| Sha256::digest(cert.as_ref()).as_slice() == self.print);
        if pinned {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server's certificate does not have the fingerprint given with \
                 --fingerprint"
                    .into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_read_with_or_without_colons_in_any_case() {
        let upper = "AB:".repeat(31) + "CD";
        let print = parse_fingerprint(&upper).unwrap();
        assert_eq!(print[0], 0xab);
        assert_eq!(print[31], 0xcd);
        assert_eq!(
            parse_fingerprint(&upper.replace(':', "").to_lowercase()),
            Some(print)
        );
        assert_eq!(parse_fingerprint("AB:CD"), None);
        assert_eq!(parse_fingerprint(&"ZZ".repeat(32)), None);
    }

    #[test]
    fn a_bad_fingerprint_or_ca_file_is_refused_by_name() {
        let error = Trust::from_options(None, Some("12:34")).unwrap_err();
        assert!(error.to_string().contains("\"12:34\""), "{error}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "no certificate here").unwrap();
        let trust = Trust::from_options(Some(&empty), None).unwrap();
        let error = trust.client_config().unwrap_err().to_string();
        assert!(
            error.contains("ca.pem") && error.contains("no certificate"),
            "{error}"
        );
    }
}
