//! Where received files go: each is written under a partial name in `DIR/.ferry/ID/` until its
//! digest matches, then moved to its place, numbered ("name (2)") rather than overwriting
//! anything; a folder's tree is recreated under a top folder that is also never merged into
//! one already there. Beside the partial files, `DIR/.ferry/ID.json` keeps what arrived and
//! where each file goes, so a paused transfer goes on after `ferry receive` itself restarts.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ferry_core::filename::numbered;
use ferry_core::paths::{Arranged, join};
use ferry_core::record::Record;
use ferry_protocol::TransferId;
use serde::{Deserialize, Serialize};

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
    dir: PathBuf,
    partial_dir: PathBuf,
    /// Each file's partial file, open for writing at any offset (`None` once it is in place).
    partials: Vec<Option<File>>,
    /// Each file's place once whole, relative to the target folder.
    targets: Vec<String>,
}

/// What the target folder keeps of a transfer under way.
#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    /// What arrived, as the shared record says it.
    record: Record,
    /// Where each file goes, relative to the target folder.
    targets: Vec<String>,
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
            partials.push(Some(file));
            targets.push(relocated(&tops, &join(&meta.path, &meta.name)));
        }
        for folder in &arranged.empty_folders {
            let path = dir.join(relocated(&tops, folder));
            std::fs::create_dir_all(&path).map_err(|error| disk_error(&path, &error))?;
        }
        Ok(Self {
            dir: dir.to_owned(),
            partial_dir,
            partials,
            targets,
        })
    }

    /// The transfer `id` kept in `dir` by an earlier run: its record and its files, open
    /// again where they are still partial.
    ///
    /// # Errors
    /// When there is no such record, or its files cannot be opened.
    pub fn reopen(dir: &Path, id: &TransferId) -> Result<(Self, Record), DiskError> {
        let path = kept_path(dir, id);
        let refused = |reason: String| DiskError {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|error| refused(error.to_string()))?;
        let kept: Kept = serde_json::from_str(&text).map_err(|error| refused(error.to_string()))?;
        if kept.targets.len() != kept.record.files.len() {
            return Err(refused("it does not hold together".into()));
        }
        let partial_dir = dir.join(PARTIAL_DIR).join(id.as_str());
        let mut partials = Vec::with_capacity(kept.targets.len());
        for (index, held) in kept.record.held.iter().enumerate() {
            if held.complete {
                partials.push(None);
                continue;
            }
            let path = partial_dir.join(format!("{index}.part"));
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|error| disk_error(&path, &error))?;
            partials.push(Some(file));
        }
        let landing = Self {
            dir: dir.to_owned(),
            partial_dir,
            partials,
            targets: kept.targets,
        };
        Ok((landing, kept.record))
    }

    /// Keeps `record` (what arrived so far) beside the partial files, whole or not at all.
    ///
    /// # Errors
    /// When the disk refuses.
    pub fn keep(&self, record: Record) -> Result<(), DiskError> {
        let id = record.id.clone();
        let kept = Kept {
            record,
            targets: self.targets.clone(),
        };
        let path = kept_path(&self.dir, &id);
        let partial = path.with_extension("partial");
        let text = serde_json::to_string(&kept).unwrap_or_default();
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|error| disk_error(&path, &error))
    }

    /// Writes a checked block of file `index` at `offset`.
    ///
    /// # Errors
    /// When the disk refuses.
    pub fn write(&self, index: usize, offset: u64, bytes: &[u8]) -> Result<(), DiskError> {
        let path = || self.partial_dir.join(format!("{index}.part"));
        let file = self.partials.get(index).and_then(Option::as_ref);
        let file = file.ok_or_else(|| DiskError {
            path: path(),
            reason: "no such partial file".into(),
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
        let target = self.dir.join(&self.targets[index]);
        if let Some(Some(file)) = self.partials.get(index) {
            file.sync_all()
                .map_err(|error| disk_error(&partial, &error))?;
        }
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

    /// The transfer is over, whole or given up: the partial folder and the record go; files
    /// already in place stay.
    pub fn done(&self) {
        let _ = std::fs::remove_dir_all(&self.partial_dir);
        let _ = std::fs::remove_file(self.partial_dir.with_extension("json"));
        if let Some(parent) = self.partial_dir.parent() {
            // Only when no other transfer's partials are there.
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// Where the record of transfer `id` is kept in the target folder `dir`.
fn kept_path(dir: &Path, id: &TransferId) -> PathBuf {
    dir.join(PARTIAL_DIR).join(format!("{}.json", id.as_str()))
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

    #[test]
    fn a_kept_transfer_reopens_with_its_record_and_its_places() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), b"taken").unwrap();
        let arranged = Arranged {
            files: vec![meta("", "a.txt", 4), meta("", "b.txt", 2)],
            empty_folders: Vec::new(),
        };
        let id = TransferId::from_random_bytes([2; 16]);
        let landing = Landing::prepare(dir.path(), &id, &arranged).unwrap();
        landing.write(0, 0, b"wx").unwrap();
        landing.write(1, 0, b"ok").unwrap();
        let mut transfer =
            ferry_core::transfer::Transfer::incoming(id.clone(), "ana", arranged.files.clone());
        transfer.accept();
        landing.keep(transfer.record("ferry", 1)).unwrap();
        drop(landing);

        let (again, record) = Landing::reopen(dir.path(), &id).unwrap();
        assert_eq!(record.from, "ana");
        again.write(0, 2, b"yz").unwrap();
        let placed = again.finish(0).unwrap();
        assert_eq!(
            placed,
            dir.path().join("a (2).txt"),
            "the place chosen first is kept"
        );
        assert_eq!(std::fs::read(placed).unwrap(), b"wxyz");
        assert_eq!(std::fs::read(again.finish(1).unwrap()).unwrap(), b"ok");
        again.done();
        assert!(
            Landing::reopen(dir.path(), &id).is_err(),
            "nothing is kept once done"
        );
        assert!(!dir.path().join(PARTIAL_DIR).exists());
    }
}
