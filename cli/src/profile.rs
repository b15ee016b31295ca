//! What `ferry` keeps between runs, in its config folder: the nick (browsers resume a paused
//! transfer with whoever comes back under the same nick), each server's session token (which
//! reclaims the nick after a drop), and the device key (the DTLS certificate browsers verify
//! and remember).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ferry_protocol::{Nick, SessionToken};
use webrtc::peer_connection::RTCCertificate;

/// A device key is made for a year, and renewed a month before it ends.
const KEY_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why the profile cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A file in the config folder.
    #[error("cannot use {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// No home to keep it in.
    #[error("no config folder to keep the nick and device key in: give --config-dir")]
    NoConfigDir,
    /// The nick cannot be used.
    #[error("the nick {nick:?} cannot be used: {reason}")]
    Nick {
        /// The nick.
        nick: String,
        /// Why.
        reason: String,
    },
    /// The device key cannot be made.
    #[error("cannot make the device key: {0}")]
    Key(String),
}

/// The config folder and what it holds.
#[derive(Debug)]
pub struct Profile {
    dir: PathBuf,
}

impl Profile {
    /// The profile in `dir`, or in the user's config folder.
    ///
    /// # Errors
    /// When there is neither.
    pub fn open(dir: Option<&Path>) -> Result<Self, ProfileError> {
        let dir = match dir {
            Some(dir) => dir.to_owned(),
            None => dirs::config_dir()
                .ok_or(ProfileError::NoConfigDir)?
                .join("ferry"),
        };
        std::fs::create_dir_all(&dir).map_err(|error| file_error(&dir, &error))?;
        Ok(Self { dir })
    }

    /// The nick to join with: `given` (kept for next time), else the one kept, else a new
    /// one from the login name.
    ///
    /// # Errors
    /// When the given nick is not a nick, or it cannot be kept.
    pub fn nick(&self, given: Option<&str>) -> Result<String, ProfileError> {
        let path = self.dir.join("nick");
        if let Some(given) = given {
            let nick = Nick::new(given).map_err(|error| ProfileError::Nick {
                nick: given.to_owned(),
                reason: error.to_string(),
            })?;
            write_private(&path, nick.as_str())?;
            return Ok(nick.as_str().to_owned());
        }
        if let Ok(kept) = std::fs::read_to_string(&path)
            && let Ok(nick) = Nick::new(&kept)
        {
            return Ok(nick.as_str().to_owned());
        }
        let login = std::env::var("USER").unwrap_or_default();
        let mut suffix = [0; 2];
        // Without randomness the suffix is only less likely to be unique.
        let _ = getrandom::fill(&mut suffix);
        let made = format!("{}-{:04x}", login.trim(), u16::from_le_bytes(suffix));
        let made = Nick::new(made.trim_start_matches('-'))
            .map_or_else(|_| "ferry".to_owned(), |nick| nick.as_str().to_owned());
        write_private(&path, &made)?;
        Ok(made)
    }

    /// Where the records of sends under way are kept.
    pub fn sent_dir(&self) -> PathBuf {
        self.dir.join("sent")
    }

    /// The session token kept for the server at `origin`.
    pub fn token(&self, origin: &str) -> Option<SessionToken> {
        self.tokens().get(origin).cloned()
    }

    /// Keeps `token` for the server at `origin`.
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn keep_token(&self, origin: &str, token: &SessionToken) -> Result<(), ProfileError> {
        let mut tokens = self.tokens();
        tokens.insert(origin.to_owned(), token.clone());
        let text = serde_json::to_string_pretty(&tokens).unwrap_or_default();
        write_private(&self.dir.join("sessions.json"), &text)
    }

    fn tokens(&self) -> BTreeMap<String, SessionToken> {
        std::fs::read_to_string(self.dir.join("sessions.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// The device key: the one kept while it has a month left, else a new one (kept).
    ///
    /// # Errors
    /// When none can be made or kept.
    pub fn device_key(&self) -> Result<RTCCertificate, ProfileError> {
        let path = self.dir.join("device.pem");
        let provider = rtc::crypto::default_provider()
            .map_err(|error| ProfileError::Key(error.to_string()))?;
        if let Ok(pem) = std::fs::read_to_string(&path)
            && let Ok(key) = RTCCertificate::from_pem(&pem, provider.crypto())
            && key.expires > SystemTime::now() + RENEW_BEFORE
        {
            return Ok(key);
        }
        let mut params =
            rtc::peer_connection::certificate::CertificateParams::new(vec!["ferry".to_owned()])
                .map_err(|error| ProfileError::Key(error.to_string()))?;
        params.not_after = (SystemTime::now() + KEY_LIFETIME).into();
        let key = RTCCertificate::generate(
            provider.crypto(),
            rtc::crypto::SignatureScheme::EcdsaP256Sha256,
            params,
        )
        .map_err(|error| ProfileError::Key(error.to_string()))?;
        let pem = key
            .serialize_pem()
            .map_err(|error| ProfileError::Key(error.to_string()))?;
        write_private(&path, &pem)?;
        Ok(key)
    }
}

/// Writes `text` to `path` readable by this user alone, whole or not at all.
fn write_private(path: &Path, text: &str) -> Result<(), ProfileError> {
    let partial = path.with_extension("partial");
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&partial)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&partial, path)
    })();
    written.map_err(|error| file_error(path, &error))
}

fn file_error(path: &Path, error: &std::io::Error) -> ProfileError {
    ProfileError::File {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nick_given_is_kept_and_used_next_time() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::open(Some(dir.path())).unwrap();
        let made = profile.nick(None).unwrap();
        assert_eq!(profile.nick(None).unwrap(), made, "a made nick is kept");
        assert_eq!(profile.nick(Some("  cara ")).unwrap(), "cara");
        assert_eq!(profile.nick(None).unwrap(), "cara");
        let error = profile.nick(Some("   ")).unwrap_err().to_string();
        assert!(error.contains("cannot be used"), "{error}");
    }

    #[test]
    fn tokens_are_kept_per_server() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::open(Some(dir.path())).unwrap();
        let token = SessionToken::parse(&"ab".repeat(32)).unwrap();
        profile.keep_token("https://a/", &token).unwrap();
        assert_eq!(profile.token("https://a/"), Some(token));
        assert_eq!(profile.token("https://b/"), None);
    }

    #[test]
    fn the_device_key_stays_the_same_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let profile = Profile::open(Some(dir.path())).unwrap();
        let first = profile.device_key().unwrap();
        let again = Profile::open(Some(dir.path()))
            .unwrap()
            .device_key()
            .unwrap();
        assert!(first == again, "the kept key is used again");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("device.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "the key is readable by its owner alone"
            );
        }
    }
}
