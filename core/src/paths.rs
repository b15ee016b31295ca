//! Folders on offer, made safe to recreate: each path a sender names is checked (it may not
//! climb out with `..`, start at a root or a drive, or use a name Windows reserves) and each
//! file given a place no other file of the offer takes, ignoring case as Windows and macOS do.

use std::collections::HashSet;

use ferry_protocol::FileMeta;

use super::filename::{numbered, sanitize};

/// Why an offer's folders cannot be recreated: the sender's Ferry would never send these, so
/// the offer is refused rather than repaired.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A part of the path is `..`.
    #[error("the path “{0}” leads out of its folder")]
    Parent(String),
    /// The path starts at the root of a disk.
    #[error("the path “{0}” starts at the root of a disk")]
    Absolute(String),
    /// The path starts with a drive letter (`C:`).
    #[error("the path “{0}” names a drive")]
    Drive(String),
}

/// A folder path's parts, each made a safe name: `.` and empty parts (`a//b`) are dropped,
/// control and forbidden characters replaced as in file names, reserved names renamed.
///
/// # Errors
/// The path climbs out (`..`), or starts at a root (`/x`, `\x`) or a drive (`C:`).
pub fn folder_parts(raw: &str) -> Result<Vec<String>, PathError> {
    if raw.starts_with(['/', '\\']) {
        return Err(PathError::Absolute(raw.to_owned()));
    }
    let mut parts = Vec::new();
    for part in raw.split(['/', '\\']) {
        match part.trim() {
            "" | "." => {}
            ".." => return Err(PathError::Parent(raw.to_owned())),
            drive if parts.is_empty() && is_drive(drive) => {
                return Err(PathError::Drive(raw.to_owned()));
            }
            _ => parts.push(sanitize(part)),
        }
    }
    Ok(parts)
}

/// `C:`, `c:`, and `C:stuff` (a path relative to a drive's current folder, on Windows).
fn is_drive(part: &str) -> bool {
    let bytes = part.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// The offer as it will be written: files with safe names and folder paths, distinct from
/// each other and from every folder, and the empty folders to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arranged {
    /// The offer's files, in order, with [`FileMeta::name`] and [`FileMeta::path`] safe.
    pub files: Vec<FileMeta>,
    /// The empty folders, safe, without duplicates.
    pub empty_folders: Vec<String>,
}

/// Makes an offer's names and folders safe; a file whose place is taken (by an earlier file,
/// or by a folder of the same name) is numbered: "a (2).txt".
///
/// # Errors
/// A path that [`folder_parts`] refuses.
pub fn arrange(files: &[FileMeta], empty_folders: &[String]) -> Result<Arranged, PathError> {
    let mut folders: Vec<(String, &FileMeta)> = Vec::with_capacity(files.len());
    // Every folder, and every folder above one, taken by its lowercase path.
    let mut taken_folders = HashSet::new();
    for meta in files {
        let path = folder_parts(&meta.path)?.join("/");
        taken_folders.extend(ancestors(&path));
        folders.push((path, meta));
    }
    let mut empty = Vec::new();
    for raw in empty_folders {
        let path = folder_parts(raw)?.join("/");
        if !path.is_empty() && taken_folders.insert(path.to_lowercase()) {
            taken_folders.extend(ancestors(&path));
            empty.push(path);
        }
    }
    let mut taken_files = HashSet::new();
    let files = folders
        .into_iter()
        .map(|(path, meta)| {
            let name = sanitize(&meta.name);
            let free = (1..)
                .map(|n| numbered(&name, n))
                .find(|candidate| {
                    let whole = join(&path, candidate).to_lowercase();
                    !taken_files.contains(&whole) && !taken_folders.contains(&whole)
                })
                .unwrap_or(name);
            taken_files.insert(join(&path, &free).to_lowercase());
            FileMeta {
                name: free,
                path,
                size: meta.size,
                mime: meta.mime.clone(),
            }
        })
        .collect();
    Ok(Arranged {
        files,
        empty_folders: empty,
    })
}

/// `path` and every folder above it, lowercase: "a/b" gives "a/b" and "a".
fn ancestors(path: &str) -> Vec<String> {
    let lower = path.to_lowercase();
    let mut all = Vec::new();
    let mut end = lower.len();
    while end > 0 {
        all.push(lower[..end].to_owned());
        end = lower[..end].rfind('/').unwrap_or(0);
    }
    all
}

/// A file's whole path: its folder, then its name.
pub fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}

/// The one folder everything on offer sits in, if there is one: the folder's name is what
/// the offer is called, and what its zip is named after.
/// `paths` are the files' folders and the empty folders.
pub fn top_folder<'a>(paths: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut tops = paths
        .into_iter()
        .map(|path| path.split('/').next().unwrap_or_default());
    let top = tops.next()?;
    (!top.is_empty() && tops.all(|other| other == top)).then(|| top.to_owned())
}

/// What a list of chosen files shows: each top folder once, as "NAME (N files)" with its
/// total size, and each file chosen alone by its name, in the order first seen.
pub fn summary(files: &[FileMeta], empty_folders: &[String]) -> Vec<(String, u64)> {
    // (top folder or file name, whether a folder, files, bytes)
    let mut lines: Vec<(String, bool, usize, u64)> = Vec::new();
    let folders = files
        .iter()
        .map(|file| (file.path.as_str(), Some(file)))
        .chain(empty_folders.iter().map(|path| (path.as_str(), None)));
    for (path, file) in folders {
        let top = path.split('/').next().unwrap_or_default();
        let (count, size) = file.map_or((0, 0), |file| (1, file.size));
        if top.is_empty() {
            let name = file.map(|file| file.name.clone()).unwrap_or_default();
            lines.push((name, false, count, size));
        } else if let Some(line) = lines.iter_mut().find(|line| line.1 && line.0 == top) {
            line.2 += count;
            line.3 += size;
        } else {
            lines.push((top.to_owned(), true, count, size));
        }
    }
    lines
        .into_iter()
        .map(|(name, folder, count, size)| match (folder, count) {
            (false, _) => (name, size),
            (true, 1) => (format!("{name} (1 file)"), size),
            (true, count) => (format!("{name} ({count} files)"), size),
        })
        .collect()
}

/// Whether an offer holds folders, rather than files alone.
/// `paths` are the files' folders and the empty folders.
pub fn has_folders<'a>(paths: impl IntoIterator<Item = &'a str>) -> bool {
    paths.into_iter().any(|path| !path.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(path: &str, name: &str) -> FileMeta {
        FileMeta {
            name: name.into(),
            path: path.into(),
            size: 1,
            mime: String::new(),
        }
    }

    fn places(arranged: &Arranged) -> Vec<String> {
        arranged
            .files
            .iter()
            .map(|file| join(&file.path, &file.name))
            .collect()
    }

    #[test]
    fn keeps_ordinary_folders() {
        assert_eq!(
            folder_parts("Holiday/día 1 🚢").unwrap(),
            ["Holiday", "día 1 🚢"]
        );
        assert_eq!(folder_parts("").unwrap(), Vec::<String>::new());
        assert_eq!(folder_parts("a//./b\\c").unwrap(), ["a", "b", "c"]);
    }

    #[test]
    fn refuses_paths_that_leave_their_folder() {
        assert_eq!(
            folder_parts("a/../../etc"),
            Err(PathError::Parent("a/../../etc".into()))
        );
        assert_eq!(folder_parts(".."), Err(PathError::Parent("..".into())));
        assert_eq!(
            folder_parts("/etc"),
            Err(PathError::Absolute("/etc".into()))
        );
        assert_eq!(
            folder_parts("\\\\server\\share"),
            Err(PathError::Absolute("\\\\server\\share".into()))
        );
        assert_eq!(
            folder_parts("C:\\Windows"),
            Err(PathError::Drive("C:\\Windows".into()))
        );
        assert_eq!(folder_parts("c:x"), Err(PathError::Drive("c:x".into())));
        // A colon further in is only a forbidden character, and replaced.
        assert_eq!(folder_parts("notes/ab:c").unwrap(), ["notes", "ab_c"]);
    }

    #[test]
    fn renames_reserved_and_forbidden_parts() {
        assert_eq!(
            folder_parts("CON/aux.d/x?").unwrap(),
            ["CON_", "aux_.d", "x_"]
        );
    }

    #[test]
    fn an_unsafe_path_refuses_the_offer() {
        let offer = vec![meta("ok", "a"), meta("../up", "b")];
        assert_eq!(arrange(&offer, &[]), Err(PathError::Parent("../up".into())));
        assert_eq!(
            arrange(&[meta("ok", "a")], &["/abs".into()]),
            Err(PathError::Absolute("/abs".into()))
        );
    }

    #[test]
    fn files_that_would_collide_are_numbered() {
        let offer = vec![
            meta("Top/sub", "a.txt"),
            meta("top/SUB", "A.txt"),
            meta("Top", "sub"),
            meta("Top", "n?.txt"),
            meta("Top", "n_.txt"),
        ];
        let arranged = arrange(&offer, &[]).unwrap();
        assert_eq!(
            places(&arranged),
            [
                "Top/sub/a.txt",
                "top/SUB/A (2).txt",
                "Top/sub (2)",
                "Top/n_.txt",
                "Top/n_ (2).txt"
            ]
        );
    }

    #[test]
    fn namesakes_chosen_alone_get_distinct_names() {
        let offer = ["a.txt", "b.txt", "a.txt", "A.TXT", "a (2).txt"].map(|name| meta("", name));
        let arranged = arrange(&offer, &[]).unwrap();
        assert_eq!(
            places(&arranged),
            ["a.txt", "b.txt", "a (2).txt", "A (3).TXT", "a (2) (2).txt"]
        );
    }

    #[test]
    fn empty_folders_are_kept_once_and_made_safe() {
        let arranged = arrange(
            &[meta("Top/full", "a")],
            &[
                "Top/empty".into(),
                "Top/EMPTY".into(),
                "Top/full".into(),
                "Top/x:y".into(),
            ],
        )
        .unwrap();
        assert_eq!(arranged.empty_folders, ["Top/empty", "Top/x_y"]);
    }

    #[test]
    fn a_chosen_folder_is_one_line() {
        let files = [
            meta("Top/a", "x"),
            meta("", "alone.txt"),
            meta("Top", "y"),
            meta("Other", "z"),
        ];
        assert_eq!(
            summary(&files, &["Top/empty".into(), "Bare".into()]),
            [
                ("Top (2 files)".to_owned(), 2),
                ("alone.txt".to_owned(), 1),
                ("Other (1 file)".to_owned(), 1),
                ("Bare (0 files)".to_owned(), 0),
            ]
        );
    }

    #[test]
    fn the_top_folder_names_the_offer() {
        let files = [meta("Top/a", "x"), meta("Top", "y")];
        let paths = files.iter().map(|file| file.path.as_str());
        assert_eq!(
            top_folder(paths.clone().chain(["Top/e"])),
            Some("Top".into())
        );
        assert_eq!(top_folder(paths.chain(["Other"])), None);
        assert_eq!(top_folder([""]), None);
        assert_eq!(top_folder([]), None);
        assert!(has_folders(files.iter().map(|file| file.path.as_str())));
        assert!(!has_folders(["", ""]));
        assert!(has_folders(["", "Empty"]));
    }
}
