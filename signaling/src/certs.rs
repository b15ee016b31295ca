//! Ferry's own certificates: a small local certificate authority, made once and kept in the
//! data directory, and a server certificate it issues for the names the server is reached by.
//!
//! The authority is reused across restarts, so a person who trusted it once (`/ca.crt`) is
//! never asked again; the server certificate is reissued when the names change or its end
//! draws near. Keys are written with mode 0600 into a directory created with 0700.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The authority's certificate, which people may install as trusted.
const CA_CERT: &str = "ca.crt";
/// The authority's private key.
const CA_KEY: &str = "ca.key";
/// The server certificate the authority issued.
const SERVER_CERT: &str = "server.crt";
/// The server certificate's private key.
const SERVER_KEY: &str = "server.key";

/// How long the authority is valid: long, since trusting it again is what people should not
/// have to do.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a server certificate is valid: 397 days, the most browsers accept from public
/// authorities, so the certificate stays acceptable should one apply that rule to local ones.
const SERVER_VALIDITY: Duration = Duration::from_secs(397 * 24 * 3600);
/// A server certificate this close to its end is reissued at start-up.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why the server's certificate could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file or directory could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A PEM file holds no certificate or no key, or one that cannot be read.
    #[error("{path} holds no usable {what}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// "certificate" or "private key".
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// Making or signing a certificate failed.
    #[error("could not make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate and key.
    #[error("the certificate and key cannot be used for TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// A certificate chain and its key, ready for TLS.
#[derive(Debug)]
pub struct Identity {
    /// The server's certificate first, then the authority's, if any.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server certificate's private key.
    pub key: PrivateKeyDer<'static>,
    /// The authority's certificate in PEM, for `/ca.crt`; `None` for certificates from files.
    pub ca_pem: Option<String>,
    /// Whether this start made a new authority (rather than reusing the kept one).
    pub new_ca: bool,
    /// Whether this start issued a new server certificate.
    pub new_server_cert: bool,
}

impl Identity {
    /// The SHA-256 fingerprint of the server's certificate, as browsers show it
    /// (`AB:CD:…`).
    pub fn fingerprint(&self) -> String {
        self.chain
            .first()
            .map_or_else(String::new, |cert| fingerprint(cert))
    }

    /// The SHA-256 fingerprint of the authority's certificate, when Ferry made it.
    pub fn ca_fingerprint(&self) -> Option<String> {
        self.ca_pem.as_ref().and(self.chain.get(1)).map(fingerprint)
    }
}

/// The SHA-256 fingerprint of a certificate, as colon-separated uppercase hex.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads a PEM certificate chain and private key, as `--tls-cert` and `--tls-key` name them.
pub fn from_files(cert: &Path, key: &Path) -> Result<Identity, CertError> {
    let pem_error = |path: &Path, what, reason: String| CertError::Pem {
        path: path.to_owned(),
        what,
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|err| pem_error(cert, "certificate", err.to_string()))?;
    if chain.is_empty() {
        return Err(pem_error(
            cert,
            "certificate",
            "no CERTIFICATE block".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|err| pem_error(key, "private key", err.to_string()))?;
    Ok(Identity {
        chain,
        key,
        ca_pem: None,
        new_ca: false,
        new_server_cert: false,
    })
}

/// The server certificate for `names` from Ferry's authority in `dir`, making the directory,
/// the authority and the certificate as needed and reusing whatever still fits.
pub fn self_signed(dir: &Path, names: &[String], host: &str) -> Result<Identity, CertError> {
    make_private_dir(dir)?;
    let now = OffsetDateTime::now_utc();
    let (ca, new_ca) = match load_ca(dir)? {
        Some(ca) => (ca, false),
        None => (create_ca(dir, host, now)?, true),
    };
    let wanted: BTreeSet<String> = names.iter().map(|name| normalize(name)).collect();
    let kept = if new_ca {
        None
    } else {
        load_server(dir, &ca, &wanted, now)?
    };
    let new_server_cert = kept.is_none();
    let (server_pem, key_pem) = match kept {
        Some(kept) => kept,
        None => issue_server(dir, &ca, &wanted, now)?,
    };
    let der = |pem: &str, path: &str| {
        CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|err| CertError::Pem {
            path: dir.join(path),
            what: "certificate",
            reason: err.to_string(),
        })
    };
    let chain = vec![der(&server_pem, SERVER_CERT)?, der(&ca.pem, CA_CERT)?];
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|err| CertError::Pem {
        path: dir.join(SERVER_KEY),
        what: "private key",
        reason: err.to_string(),
    })?;
    Ok(Identity {
        chain,
        key,
        ca_pem: Some(ca.pem),
        new_ca,
        new_server_cert,
    })
}

/// The authority: its certificate in PEM and what it signs with.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn load_ca(dir: &Path) -> Result<Option<Ca>, CertError> {
    let (Some(pem), Some(key)) = (
        read_if_there(&dir.join(CA_CERT))?,
        read_if_there(&dir.join(CA_KEY))?,
    ) else {
        return Ok(None);
    };
    let key = KeyPair::from_pem(&key)?;
    let issuer = Issuer::from_ca_cert_pem(&pem, key)?;
    Ok(Some(Ca { pem, issuer }))
}

fn create_ca(dir: &Path, host: &str, now: OffsetDateTime) -> Result<Ca, CertError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    // The name people see when they look at what they trusted.
    name.push(DnType::CommonName, format!("Ferry local CA ({host})"));
    name.push(DnType::OrganizationName, "Ferry");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - Duration::from_secs(24 * 3600);
    params.not_after = now + CA_VALIDITY;
    let cert = params.self_signed(&key)?;
    write_file(&dir.join(CA_KEY), &key.serialize_pem(), 0o600)?;
    write_file(&dir.join(CA_CERT), &cert.pem(), 0o644)?;
    Ok(Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    })
}

/// The kept server certificate and key, if they name exactly `wanted`, were issued by `ca`
/// and are far enough from their end.
fn load_server(
    dir: &Path,
    ca: &Ca,
    wanted: &BTreeSet<String>,
    now: OffsetDateTime,
) -> Result<Option<(String, String)>, CertError> {
    let (Some(cert), Some(key)) = (
        read_if_there(&dir.join(SERVER_CERT))?,
        read_if_there(&dir.join(SERVER_KEY))?,
    ) else {
        return Ok(None);
    };
    let fits = || -> Option<bool> {
        let (_, ca_pem) = x509_parser::pem::parse_x509_pem(ca.pem.as_bytes()).ok()?;
        let ca_cert = ca_pem.parse_x509().ok()?;
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert.as_bytes()).ok()?;
        let parsed = pem.parse_x509().ok()?;
        let signed = parsed.verify_signature(Some(ca_cert.public_key())).is_ok();
        let ends = parsed.validity().not_after.timestamp();
        let fresh = ends > (now + RENEW_BEFORE).unix_timestamp();
        let names = san_names(&parsed)?;
        Some(signed && fresh && names == *wanted)
    };
    Ok(fits().unwrap_or(false).then_some((cert, key)))
}

/// The subject alternative names of `cert`, normalised like [`normalize`].
fn san_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> Option<BTreeSet<String>> {
    use x509_parser::extensions::GeneralName;
    let san = cert.subject_alternative_name().ok()??;
    san.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => Some(normalize(dns)),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => Some(IpAddr::from(<[u8; 4]>::try_from(*bytes).ok()?).to_string()),
                16 => Some(IpAddr::from(<[u8; 16]>::try_from(*bytes).ok()?).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn issue_server(
    dir: &Path,
    ca: &Ca,
    names: &BTreeSet<String>,
    now: OffsetDateTime,
) -> Result<(String, String), CertError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.iter().cloned().collect::<Vec<_>>())?;
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_else(|| "Ferry".into()),
    );
    params.distinguished_name = name;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::from_secs(24 * 3600);
    params.not_after = now + SERVER_VALIDITY;
    let cert = params.signed_by(&key, &ca.issuer)?;
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    write_file(&dir.join(SERVER_KEY), &key_pem, 0o600)?;
    write_file(&dir.join(SERVER_CERT), &cert_pem, 0o644)?;
    Ok((cert_pem, key_pem))
}

/// Host names compare without case, and addresses in their canonical form.
fn normalize(name: &str) -> String {
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name.to_ascii_lowercase(),
    }
}

/// Creates `dir` (and missing parents) readable by its owner only. A directory that already
/// exists keeps its mode: it may be one the user chose and shares with other things.
fn make_private_dir(dir: &Path) -> Result<(), CertError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| CertError::Io {
            action: "creating",
            path: dir.to_owned(),
            source,
        })
}

fn read_if_there(path: &Path) -> Result<Option<String>, CertError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CertError::Io {
            action: "reading",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Writes `text` to `path` with `mode`, through a temporary file renamed into place, so a
/// crash never leaves half a key behind and the key is never readable by others, not even
/// for a moment.
fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), CertError> {
    let temporary = path.with_extension("new");
    let io = |action, source| CertError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    let _ = fs::remove_file(&temporary);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(|err| io("creating", err))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|err| io("writing", err))?;
    fs::rename(&temporary, path).map_err(|err| io("saving", err))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn makes_a_private_directory_and_private_keys() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("share/ferry");
        let made = self_signed(&dir, &names(&["10.0.0.2", "localhost"]), "box").unwrap();
        assert!(made.new_ca && made.new_server_cert);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(CA_KEY)), 0o600);
        assert_eq!(mode(&dir.join(SERVER_KEY)), 0o600);
        assert_eq!(made.chain.len(), 2);
        assert!(
            made.ca_pem
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
    }

    #[test]
    fn keeps_the_authority_and_reissues_only_for_new_names() {
        let dir = tempfile::tempdir().unwrap();
        let first = self_signed(dir.path(), &names(&["10.0.0.2", "localhost"]), "box").unwrap();
        let again = self_signed(dir.path(), &names(&["LOCALHOST", "10.0.0.2"]), "box").unwrap();
        assert!(!again.new_ca && !again.new_server_cert);
        assert_eq!(again.ca_fingerprint(), first.ca_fingerprint());
        assert_eq!(again.fingerprint(), first.fingerprint());

        let moved = self_signed(dir.path(), &names(&["10.0.0.3", "localhost"]), "box").unwrap();
        assert!(!moved.new_ca && moved.new_server_cert);
        assert_eq!(moved.ca_fingerprint(), first.ca_fingerprint());
        assert_ne!(moved.fingerprint(), first.fingerprint());
    }

    #[test]
    fn a_new_authority_gets_a_new_server_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let first = self_signed(dir.path(), &names(&["localhost"]), "box").unwrap();
        fs::remove_file(dir.path().join(CA_KEY)).unwrap();
        let second = self_signed(dir.path(), &names(&["localhost"]), "box").unwrap();
        assert!(second.new_ca && second.new_server_cert);
        assert_ne!(second.ca_fingerprint(), first.ca_fingerprint());
    }

    #[test]
    fn the_server_certificate_names_every_address_and_host() {
        let dir = tempfile::tempdir().unwrap();
        let made =
            self_signed(dir.path(), &names(&["10.0.0.2", "::1", "box.local"]), "box").unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&made.chain[0]).unwrap();
        let expected: BTreeSet<String> = names(&["10.0.0.2", "::1", "box.local"])
            .into_iter()
            .collect();
        assert_eq!(san_names(&parsed), Some(expected));
        assert!(!parsed.is_ca());
    }

    #[test]
    fn files_without_a_certificate_or_key_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        fs::write(&empty, "nothing here\n").unwrap();
        let error = from_files(&empty, &empty).unwrap_err().to_string();
        assert!(
            error.contains("empty.pem holds no usable certificate"),
            "{error}"
        );
        let missing = dir.path().join("missing.pem");
        let error = from_files(&missing, &empty).unwrap_err().to_string();
        assert!(error.contains("missing.pem"), "{error}");
    }
}
