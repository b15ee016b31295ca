//! Where received files go: each is written under a partial name in `DIR/.ferry/ID/` until its
//! digest matches, then moved to its place, numbered ("name (2)") rather than overwriting
//! anything; a folder's tree is recreated under a top folder that is also never merged into
//! one already there.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ferry_core::filename::numbered;
use ferry_core::paths::{Arranged, join};
use ferry_protocol::TransferId;

/// The folder the partial files of transfers live in, inside the target folder.
pub const PARTIAL_DIR: &str = ".ferry";

/// Why a file cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {reason}")]
pub struct DiskError {
    /// The file or folder.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

fn disk_error(path: &Path, error: &std::io::Error) -> DiskError {
    DiskError {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

/// One transfer's files on disk.
#[derive(Debug)]
pub struct Landing {
    partial_dir: PathBuf,
    /// Each file's partial file, open for writing at any offset.
    partials: Vec<File>,
    /// Each file's place once whole, relative to nothing: a full path.
    targets: Vec<PathBuf>,
}

impl Landing {
    /// Prepares `arranged` (an offer made safe) to land in `dir`: the partial files at their
    /// sizes, and the empty folders made at once.
    ///
    /// # Errors
    /// When the folder cannot be written.
    pub fn prepare(dir: &Path, id: &TransferId, arranged: &Arranged) -> Result<Self, DiskError> {
        let partial_dir = dir.join(PARTIAL_DIR).join(id.as_str());
        std::fs::create_dir_all(&partial_dir).map_err(|error| disk_error(&partial_dir, &error))?;
        let tops = free_tops(dir, arranged);
        let mut partials = Vec::with_capacity(arranged.files.len());
        let mut targets = Vec::with_capacity(arranged.files.len());
        for (index, meta) in arranged.files.iter().enumerate() {
            let path = partial_dir.join(format!("{index}.part"));
            let file = File::create(&path).map_err(|error| disk_error(&path, &error))?;
            file.set_len(meta.size)
                .map_err(|error| disk_error(&path, &error))?;
            partials.push(file);
            targets.push(dir.join(relocated(&tops, &join(&meta.path, &meta.name))));
        }
        for folder in &arranged.empty_folders {
            let path = dir.join(relocated(&tops, folder));
            std::fs::create_dir_all(&path).map_err(|error| disk_error(&path, &error))?;
        }
        Ok(Self {
            partial_dir,
            partials,
            targets,
        })
    }

    /// Writes a checked block of file `index` at `offset`.
    ///
    /// # Errors
    /// When the disk refuses.
    pub fn write(&self, index: usize, offset: u64, bytes: &[u8]) -> Result<(), DiskError> {
        let path = || self.partial_dir.join(format!("{index}.part"));
        let file = self.partials.get(index).ok_or_else(|| DiskError {
            path: path(),
            reason: "no such file in the offer".into(),
        })?;
        file.write_all_at(bytes, offset)
            .map_err(|error| disk_error(&path(), &error))
    }

    /// File `index` is whole and checked: flushed, then moved to its place (numbered if the
    /// name was taken meanwhile). Returns where it went.
    ///
    /// # Errors
    /// When the disk refuses.
    pub fn finish(&self, index: usize) -> Result<PathBuf, DiskError> {
        let partial = self.partial_dir.join(format!("{index}.part"));
        let target = &self.targets[index];
        self.partials[index]
            .sync_all()
            .map_err(|error| disk_error(&partial, &error))?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|error| disk_error(parent, &error))?;
        }
        let name = target
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let free = (1..)
            .map(|n| target.with_file_name(numbered(&name, n)))
            .find(|candidate| !candidate.exists())
            .unwrap_or_else(|| target.clone());
        // A hard link refuses to replace what is there, where a rename would not; the
        // partial name goes once the file has its place.
        std::fs::hard_link(&partial, &free)
            .or_else(|_| std::fs::rename(&partial, &free))
            .map_err(|error| disk_error(&free, &error))?;
        let _ = std::fs::remove_file(&partial);
        Ok(free)
    }

    /// Everything is in place: the partial folder goes.
    pub fn done(&self) {
        let _ = std::fs::remove_dir_all(&self.partial_dir);
        if let Some(parent) = self.partial_dir.parent() {
            // Only when no other transfer's partials are there.
            let _ = std::fs::remove_dir(parent);
        }
    }

    /// The transfer stopped: its partial files go; files already in place stay.
    pub fn abandon(&self) {
        self.done();
    }
}

/// A free name in `dir` for each top-level name of the offer (a lone file's name, or a
/// folder's), so nothing already there is overwritten or merged into.
fn free_tops(dir: &Path, arranged: &Arranged) -> HashMap<String, String> {
    let mut tops = HashMap::new();
    let names = arranged
        .files
        .iter()
        .map(|meta| join(&meta.path, &meta.name))
        .chain(arranged.empty_folders.iter().cloned());
    for whole in names {
        let top = whole.split('/').next().unwrap_or_default().to_owned();
        if tops.contains_key(&top) {
            continue;
        }
        let taken: Vec<&String> = tops.values().collect();
        let free = (1..)
            .map(|n| numbered(&top, n))
            .find(|candidate| !dir.join(candidate).exists() && !taken.contains(&candidate))
            .unwrap_or_else(|| top.clone());
        tops.insert(top, free);
    }
    tops
}

fn relocated(tops: &HashMap<String, String>, whole: &str) -> String {
    let (top, rest) = whole.split_once('/').unwrap_or((whole, ""));
    let top = tops.get(top).map_or(top, String::as_str);
    if rest.is_empty() {
        top.to_owned()
    } else {
        format!("{top}/{rest}")
    }
}

#[cfg(test)]
mod tests {
    use ferry_protocol::FileMeta;

    use super::*;

    fn meta(path: &str, name: &str, size: u64) -> FileMeta {
        FileMeta {
            name: name.into(),
            path: path.into(),
            size,
            mime: String::new(),
        }
    }

    #[test]
    fn files_land_under_free_names_and_partials_go() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), b"old").unwrap();
        std::fs::create_dir(dir.path().join("trip")).unwrap();
        let arranged = Arranged {
            files: vec![meta("", "a.txt", 3), meta("trip/day", "b.bin", 2)],
            empty_folders: vec!["trip/empty".into()],
        };
        let id = TransferId::from_random_bytes([1; 16]);
        let landing = Landing::prepare(dir.path(), &id, &arranged).unwrap();
        landing.write(0, 0, b"new").unwrap();
        landing.write(1, 1, b"y").unwrap();
        landing.write(1, 0, b"x").unwrap();
        let first = landing.finish(0).unwrap();
        let second = landing.finish(1).unwrap();
        landing.done();
        assert_eq!(first, dir.path().join("a (2).txt"));
        assert_eq!(std::fs::read(&first).unwrap(), b"new");
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"old");
        assert_eq!(second, dir.path().join("trip (2)/day/b.bin"));
        assert_eq!(std::fs::read(&second).unwrap(), b"xy");
        assert!(dir.path().join("trip (2)/empty").is_dir());
        assert!(!dir.path().join(PARTIAL_DIR).exists());
    }
}
