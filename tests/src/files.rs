//! Files to send and files received: seeded random content written fast, a byte-for-byte check
//! of what arrived, and a reader for a browser's downloads folder that waits for a download.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::wait::{DEADLINE, wait_for};

/// A file made for a test, with what a receiver must end up with.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Where it is, absolute.
    pub path: PathBuf,
    /// Its name, as the receiver must save it.
    pub name: String,
    /// Its length in bytes.
    pub len: u64,
}

impl SourceFile {
    /// Fails unless the file at `received` has exactly this file's bytes.
    ///
    /// Comparing the bytes themselves is what a matching SHA-256 stands for, is stricter, and
    /// runs at memory speed where hashing in a debug build manages some 40 MB/s; a mismatch is
    /// reported with the first differing offset, which says more than two digests would.
    pub async fn check_received(&self, received: &Path) -> Result<()> {
        let (sent, got) = (self.path.clone(), received.to_owned());
        let verdict = tokio::task::spawn_blocking(move || first_difference(&sent, &got)).await??;
        if let Some(offset) = verdict {
            let received_len = fs::metadata(received)?.len();
            bail!(
                "{:?} arrived with {received_len} bytes that differ from the {} sent, first at \
                 byte {offset}",
                self.name,
                self.len
            );
        }
        Ok(())
    }
}

/// Writes `len` bytes of pseudo-random content derived from `seed` to `dir/name`.
///
/// Real bytes on disk (no sparse holes, nothing a transport could compress), made fast even
/// in a debug build: one mebibyte of splitmix64 output is generated, and every mebibyte of the
/// file is that block with its own index stamped over its first bytes, so no two blocks are
/// equal and a chunk delivered twice or out of order changes the digest.
pub async fn random_file(dir: &Path, name: &str, len: u64, seed: u64) -> Result<SourceFile> {
    let path = dir.join(name);
    let file = SourceFile {
        path: path.clone(),
        name: name.to_owned(),
        len,
    };
    tokio::task::spawn_blocking(move || write_random(&path, len, seed)).await??;
    Ok(file)
}

/// Makes `dir/name` a sparse file of `len` bytes: as large as a browser sees it, yet taking no
/// disk space, for offers too large to fit anywhere. Its bytes are never meant to be read.
pub fn sparse_file(dir: &Path, name: &str, len: u64) -> Result<SourceFile> {
    let path = dir.join(name);
    File::create(&path)
        .and_then(|file| file.set_len(len))
        .with_context(|| path.display().to_string())?;
    Ok(SourceFile {
        path,
        name: name.to_owned(),
        len,
    })
}

fn write_random(path: &Path, len: u64, seed: u64) -> Result<()> {
    const BLOCK: u64 = 1 << 20;
    let mut state = seed;
    let mut block = vec![0u8; BLOCK as usize];
    for word in block.chunks_exact_mut(8) {
        word.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    let mut out = BufWriter::new(File::create(path).with_context(|| path.display().to_string())?);
    for index in 0..len.div_ceil(BLOCK) {
        block[..8].copy_from_slice(&index.to_le_bytes());
        let take = BLOCK.min(len - index * BLOCK) as usize;
        out.write_all(&block[..take])?;
    }
    out.into_inner()?.sync_all()?;
    Ok(())
}

/// The offset of the first byte where two files differ (the shorter one's length if one is a
/// prefix of the other), or `None` if they are equal.
fn first_difference(a: &Path, b: &Path) -> Result<Option<u64>> {
    const BUFFER: usize = 1 << 20;
    let open = |path: &Path| File::open(path).with_context(|| path.display().to_string());
    let (mut a, mut b) = (open(a)?, open(b)?);
    let (mut left, mut right) = (vec![0u8; BUFFER], vec![0u8; BUFFER]);
    let mut offset = 0u64;
    loop {
        let read = read_full(&mut a, &mut left)?;
        let other = read_full(&mut b, &mut right)?;
        if left[..read] != right[..other] {
            let same = left[..read]
                .iter()
                .zip(&right[..other])
                .take_while(|(x, y)| x == y)
                .count();
            return Ok(Some(offset + same as u64));
        }
        if read == 0 {
            return Ok(None);
        }
        offset += read as u64;
    }
}

/// Reads until `buffer` is full or the file ends, so two files are compared in equal steps.
fn read_full(file: &mut File, buffer: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            read => filled += read,
        }
    }
    Ok(filled)
}

/// Every entry in `dir`, by name, sorted — including partial downloads (Chromium's
/// `*.crdownload` and hidden temporary files, Firefox's `*.part`), so "nothing was saved" is
/// checked strictly.
pub fn listing(dir: &Path) -> Result<Vec<String>> {
    let mut names = fs::read_dir(dir)?
        .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

/// Waits until the browser has finished saving `name` into `dir` and returns its path.
///
/// Chromium writes a download under a temporary name (a hidden `.org.chromium.*` file or a
/// `*.crdownload`), Firefox into `NAME.part` beside an empty `NAME`, and both rename it to the
/// final one when it is complete; the final name being there with no temporary file beside it
/// means every download so far is whole.
pub async fn finished_download(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    wait_for(
        &format!("the download {name:?} in {}", dir.display()),
        DEADLINE,
        || async {
            let partial = listing(dir)?.iter().any(|entry| {
                entry.starts_with('.') || entry.ends_with(".crdownload") || entry.ends_with(".part")
            });
            Ok((path.exists() && !partial).then(|| path.clone()))
        },
    )
    .await
    .with_context(|| {
        format!(
            "the downloads folder holds {:?}",
            listing(dir).unwrap_or_default()
        )
    })
}

/// One step of splitmix64 (Steele, Lea and Flood), a tiny generator whose output passes
/// BigCrush: plenty for test data.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte check must catch what a broken transfer produces, and say where: a changed byte,
    /// a missing tail, an extra tail, and a block delivered twice.
    #[tokio::test]
    async fn check_received_catches_every_kind_of_damage() -> Result<()> {
        const BLOCK: usize = 1 << 20;
        let dir = tempfile::tempdir()?;
        let sent = random_file(dir.path(), "sent.bin", 3 * BLOCK as u64 + 5, 1).await?;
        let bytes = fs::read(&sent.path)?;
        let len = bytes.len();

        let mut flipped = bytes.clone();
        flipped[2 * BLOCK + 3] ^= 1;
        // Blocks differ by the index stamped at their start, so a repeat differs right there.
        let mut repeated = bytes.clone();
        repeated.copy_within(..BLOCK, BLOCK);
        let damaged = [
            ("flipped", flipped, 2 * BLOCK + 3),
            ("short", bytes[..len - 1].to_vec(), len - 1),
            ("long", [&bytes[..], b"!"].concat(), len),
            ("repeated", repeated, BLOCK),
        ];
        for (what, content, first) in damaged {
            let path = dir.path().join(what);
            fs::write(&path, content)?;
            assert_eq!(
                first_difference(&sent.path, &path)?,
                Some(first as u64),
                "{what}"
            );
            assert!(sent.check_received(&path).await.is_err(), "{what}");
        }
        let copy = dir.path().join("copy");
        fs::copy(&sent.path, &copy)?;
        sent.check_received(&copy).await
    }
}
