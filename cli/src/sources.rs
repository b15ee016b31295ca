//! What a send offers: the files named on the command line, and every file in the folders
//! named, with their paths inside each folder kept (`/`-joined, from the folder's own name).

use std::path::{Path, PathBuf};

use ferry_protocol::FileMeta;

/// One file on offer and where it is on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Where to read it (an absolute path).
    pub disk: PathBuf,
    /// How it is offered.
    pub meta: FileMeta,
    /// When it last changed, in nanoseconds since 1970.
    pub modified: u64,
}

/// Everything on offer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// The files, in offer order.
    pub files: Vec<Source>,
    /// Folders that hold no file, as offered.
    pub empty_folders: Vec<String>,
}

/// Why the paths cannot be offered.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A path that cannot be read.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A name that is not Unicode, which the other side could not show.
    #[error("{0} has a name that is not valid Unicode")]
    NotUnicode(PathBuf),
    /// Nothing to send.
    #[error("there is nothing to send: the folders named hold no file")]
    Nothing,
}

impl Sources {
    /// Gathers `paths`: files as they are, folders with everything in them, sorted by name.
    ///
    /// # Errors
    /// A path that cannot be read, or none that holds a file or folder.
    pub fn gather(paths: &[PathBuf]) -> Result<Self, SourceError> {
        let mut sources = Self::default();
        for path in paths {
            let meta = std::fs::metadata(path).map_err(|error| unreadable(path, &error))?;
            let name = base_name(path)?;
            if meta.is_dir() {
                sources.walk(path, &name)?;
            } else {
                sources.files.push(Source {
                    disk: std::fs::canonicalize(path).map_err(|error| unreadable(path, &error))?,
                    meta: FileMeta {
                        name,
                        path: String::new(),
                        size: meta.len(),
                        mime: String::new(),
                    },
                    modified: modified(&meta),
                });
            }
        }
        if sources.files.is_empty() && sources.empty_folders.is_empty() {
            return Err(SourceError::Nothing);
        }
        Ok(sources)
    }

    /// The files offered, in order.
    pub fn metas(&self) -> Vec<FileMeta> {
        self.files
            .iter()
            .map(|source| source.meta.clone())
            .collect()
    }

    fn walk(&mut self, dir: &Path, folder: &str) -> Result<(), SourceError> {
        let mut entries = std::fs::read_dir(dir)
            .map_err(|error| unreadable(dir, &error))?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| unreadable(dir, &error))?;
        entries.sort();
        if entries.is_empty() {
            self.empty_folders.push(folder.to_owned());
        }
        for path in entries {
            let meta = std::fs::metadata(&path).map_err(|error| unreadable(&path, &error))?;
            let name = base_name(&path)?;
            if meta.is_dir() {
                self.walk(&path, &format!("{folder}/{name}"))?;
            } else {
                self.files.push(Source {
                    disk: std::fs::canonicalize(&path)
                        .map_err(|error| unreadable(&path, &error))?,
                    meta: FileMeta {
                        name,
                        path: folder.to_owned(),
                        size: meta.len(),
                        mime: String::new(),
                    },
                    modified: modified(&meta),
                });
            }
        }
        Ok(())
    }
}

/// When a file last changed, in nanoseconds since 1970 (0 where the system does not say).
fn modified(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|since| u64::try_from(since.as_nanos()).ok())
        .unwrap_or(0)
}

fn base_name(path: &Path) -> Result<String, SourceError> {
    // `dir/.` and `dir/` name the folder itself.
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let name = path
        .file_name()
        .ok_or_else(|| SourceError::NotUnicode(path.clone()))?;
    name.to_str()
        .map(str::to_owned)
        .ok_or_else(|| SourceError::NotUnicode(path.clone()))
}

fn unreadable(path: &Path, error: &std::io::Error) -> SourceError {
    SourceError::Unreadable {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_keep_their_paths_and_empty_folders_are_offered() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("trip");
        std::fs::create_dir_all(root.join("day 1/raw")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("day 1/a.jpg"), b"aaa").unwrap();
        std::fs::write(root.join("day 1/raw/b.raw"), b"bb").unwrap();
        std::fs::write(root.join("notes.txt"), b"n").unwrap();
        let lone = dir.path().join("lone.bin");
        std::fs::write(&lone, b"12345").unwrap();

        let sources = Sources::gather(&[root.clone(), lone]).unwrap();
        let offered: Vec<(&str, &str, u64)> = sources
            .files
            .iter()
            .map(|s| (s.meta.path.as_str(), s.meta.name.as_str(), s.meta.size))
            .collect();
        assert_eq!(
            offered,
            [
                ("trip/day 1", "a.jpg", 3),
                ("trip/day 1/raw", "b.raw", 2),
                ("trip", "notes.txt", 1),
                ("", "lone.bin", 5),
            ]
        );
        assert_eq!(sources.empty_folders, ["trip/empty"]);
    }

    #[test]
    fn a_missing_path_is_named() {
        let error = Sources::gather(&[PathBuf::from("/no/such/file")]).unwrap_err();
        assert!(error.to_string().contains("/no/such/file"), "{error}");
    }
}
