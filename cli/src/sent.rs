//! The sender's record of a transfer that is under way: its id, who gets it and which files
//! (where on disk, as offered, last changed when), kept in the config folder so that the same
//! `ferry send` run again after Ctrl-C or a broken connection resumes it rather than starting
//! over.

use std::path::{Path, PathBuf};

use ferry_protocol::{FileMeta, TransferId};
use serde::{Deserialize, Serialize};

use crate::sources::Sources;

/// What a sender keeps of a transfer under way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentRecord {
    /// The transfer.
    pub id: TransferId,
    /// Who gets it, by nick (the receiver resumes with whoever comes back under it).
    pub to: String,
    /// The files, in offer order.
    pub files: Vec<SentFile>,
    /// The offer's empty folders.
    pub empty_folders: Vec<String>,
}

/// One file of a [`SentRecord`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentFile {
    /// Where it is.
    pub disk: PathBuf,
    /// How it was offered.
    pub meta: FileMeta,
    /// When it last changed, in nanoseconds since 1970: a changed file starts over.
    pub modified: u64,
}

impl SentRecord {
    /// The record of transfer `id` of `sources` to `to`.
    pub fn new(id: TransferId, to: &str, sources: &Sources) -> Self {
        Self {
            id,
            to: to.to_owned(),
            files: sources
                .files
                .iter()
                .map(|source| SentFile {
                    disk: source.disk.clone(),
                    meta: source.meta.clone(),
                    modified: source.modified,
                })
                .collect(),
            empty_folders: sources.empty_folders.clone(),
        }
    }

    /// Whether this record is of sending exactly `sources` to `to`, none of them changed.
    pub fn is_of(&self, to: &str, sources: &Sources) -> bool {
        self.to.to_lowercase() == to.to_lowercase()
            && *self == Self::new(self.id.clone(), &self.to, sources)
    }
}

/// The records kept in `dir`.
#[derive(Debug)]
pub struct SentRecords {
    dir: PathBuf,
}

impl SentRecords {
    /// The records in `dir` (made when first needed).
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    /// The record of sending `sources` to `to`, if one is kept.
    pub fn find(&self, to: &str, sources: &Sources) -> Option<SentRecord> {
        let entries = std::fs::read_dir(&self.dir).ok()?;
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .filter_map(|text| serde_json::from_str::<SentRecord>(&text).ok())
            .find(|record| record.is_of(to, sources))
    }

    /// Keeps `record`, replacing an earlier one of the same transfer.
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn keep(&self, record: &SentRecord) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(&record.id);
        let partial = path.with_extension("partial");
        std::fs::write(&partial, serde_json::to_string(record).unwrap_or_default())?;
        std::fs::rename(partial, path)
    }

    /// Forgets the record of transfer `id` (it ended, for good or not).
    pub fn forget(&self, id: &TransferId) {
        let _ = std::fs::remove_file(self.path(id));
    }

    fn path(&self, id: &TransferId) -> PathBuf {
        self.dir.join(format!("{}.json", id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_found_for_the_same_files_to_the_same_nick_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.bin");
        std::fs::write(&file, b"abc").unwrap();
        let sources = Sources::gather(std::slice::from_ref(&file)).unwrap();
        let records = SentRecords::in_dir(&dir.path().join("sent"));
        let id = TransferId::from_random_bytes([3; 16]);
        records
            .keep(&SentRecord::new(id.clone(), "bo", &sources))
            .unwrap();

        assert_eq!(
            records.find("BO", &sources).map(|record| record.id),
            Some(id.clone())
        );
        assert!(records.find("cy", &sources).is_none(), "another nick");
        std::fs::write(&file, b"abcd").unwrap();
        let changed = Sources::gather(&[file]).unwrap();
        assert!(records.find("bo", &changed).is_none(), "a changed file");
        records.forget(&id);
        assert!(records.find("bo", &sources).is_none(), "forgotten");
    }
}
