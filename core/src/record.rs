//! What a receiver keeps of an unfinished transfer so that it outlives a reload of the page:
//! the offer, who sent it, and each file's checked blocks with their digests. The bytes stay
//! in the origin-private file system; this record says which of them can be trusted, and is
//! what the receiver answers with when the sender asks to go on.

use ferry_protocol::{DigestHex, FileMeta, TransferId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How long a paused transfer is kept before start-up clears it: a week, in seconds.
pub const KEEP_SECS: u64 = 7 * 24 * 3600;

/// A record one tab keeps in the browser's storage so that a transfer outlives a reload.
pub trait Kept: Serialize + DeserializeOwned {
    /// The tab that wrote it.
    fn tab(&self) -> &str;

    /// When it was written, in Unix seconds.
    fn saved_at(&self) -> u64;

    /// Whether it is older than [`KEEP_SECS`] at `now` (Unix seconds).
    fn is_stale(&self, now: u64) -> bool {
        now.saturating_sub(self.saved_at()) > KEEP_SECS
    }
}

/// One unfinished incoming transfer, as kept in the browser's storage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The transfer.
    pub id: TransferId,
    /// The tab whose private folder holds the partial files.
    pub tab: String,
    /// The sender's nick.
    pub from: String,
    /// The files, as offered (names and paths already made safe).
    pub files: Vec<FileMeta>,
    /// The offer's empty folders, made safe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub empty_folders: Vec<String>,
    /// What is held of each file, in the offer's order.
    pub held: Vec<RecordedFile>,
    /// When the record was written, in Unix seconds.
    pub saved_at: u64,
}

/// What is held of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFile {
    /// The file arrived whole and checked.
    pub complete: bool,
    /// The checked blocks, as sorted half-open ranges of block indexes.
    pub blocks: Vec<[u32; 2]>,
    /// Their digests, in order.
    pub digests: Vec<DigestHex>,
}

impl Kept for Record {
    fn tab(&self) -> &str {
        &self.tab
    }

    fn saved_at(&self) -> u64 {
        self.saved_at
    }
}

/// One unfinished outgoing transfer, as kept in the browser's storage: enough to show after a
/// reload which files it needs again, and to recognise them when they are picked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentRecord {
    /// The transfer.
    pub id: TransferId,
    /// The tab that sent it.
    pub tab: String,
    /// The receiver's nick.
    pub to: String,
    /// The files, in the offer's order.
    pub files: Vec<SentFile>,
    /// When the record was written, in Unix seconds.
    pub saved_at: u64,
}

/// One file of an outgoing transfer, and how to know it again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentFile {
    /// Its name, size and type, as offered.
    pub meta: FileMeta,
    /// When it was last modified, in milliseconds since 1970, as the browser reported it.
    pub last_modified: f64,
}

/// Why the files picked to resume a transfer are not the ones it sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    /// A file of the transfer is not among those picked.
    #[error("{0} was not picked")]
    Missing(String),
    /// A file of that name was picked, but its size or date differ: another file, or this
    /// one changed since it was sent.
    #[error("the {0} picked is not the one that was being sent (its size or date differ)")]
    Changed(String),
}

impl Kept for SentRecord {
    fn tab(&self) -> &str {
        &self.tab
    }

    fn saved_at(&self) -> u64 {
        self.saved_at
    }
}

impl SentRecord {
    /// Finds each of the transfer's files among `picked` (name, size, last modified): the
    /// position in `picked` of each, in the offer's order.
    ///
    /// # Errors
    /// When a file is missing, or one of its name differs in size or date.
    pub fn find(&self, picked: &[(String, u64, f64)]) -> Result<Vec<usize>, PickError> {
        self.files
            .iter()
            .map(|wanted| {
                let named: Vec<usize> = picked
                    .iter()
                    .enumerate()
                    .filter(|(_, (name, _, _))| *name == wanted.meta.name)
                    .map(|(index, _)| index)
                    .collect();
                if named.is_empty() {
                    return Err(PickError::Missing(wanted.meta.name.clone()));
                }
                named
                    .into_iter()
                    .find(|&index| {
                        let (_, size, modified) = &picked[index];
                        *size == wanted.meta.size && *modified == wanted.last_modified
                    })
                    .ok_or_else(|| PickError::Changed(wanted.meta.name.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(files: &[(&str, u64, f64)]) -> SentRecord {
        SentRecord {
            id: TransferId::from_random_bytes([2; 16]),
            tab: "tab".into(),
            to: "bo".into(),
            files: files
                .iter()
                .map(|&(name, size, last_modified)| SentFile {
                    meta: FileMeta {
                        name: name.into(),
                        path: String::new(),
                        size,
                        mime: String::new(),
                    },
                    last_modified,
                })
                .collect(),
            saved_at: 100,
        }
    }

    fn picked(files: &[(&str, u64, f64)]) -> Vec<(String, u64, f64)> {
        files
            .iter()
            .map(|&(name, size, modified)| (name.to_owned(), size, modified))
            .collect()
    }

    #[test]
    fn the_same_files_are_known_again_in_any_order() {
        let record = sent(&[("holiday.mov", 4_000, 1.5e12), ("notes.txt", 10, 1.6e12)]);
        let found = record.find(&picked(&[
            ("other.txt", 10, 1.6e12),
            ("notes.txt", 10, 1.6e12),
            ("holiday.mov", 4_000, 1.5e12),
        ]));
        assert_eq!(found, Ok(vec![2, 1]));
    }

    #[test]
    fn another_file_of_the_same_name_is_refused_and_a_missing_one_named() {
        let record = sent(&[("holiday.mov", 4_000, 1.5e12)]);
        assert_eq!(
            record.find(&picked(&[("holiday.mov", 4_001, 1.5e12)])),
            Err(PickError::Changed("holiday.mov".into()))
        );
        assert_eq!(
            record.find(&picked(&[("holiday.mov", 4_000, 1.7e12)])),
            Err(PickError::Changed("holiday.mov".into()))
        );
        assert_eq!(
            record.find(&picked(&[("other.mov", 4_000, 1.5e12)])),
            Err(PickError::Missing("holiday.mov".into()))
        );
        assert!(record.is_stale(100 + 8 * 24 * 3600) && !record.is_stale(200));
    }
}
