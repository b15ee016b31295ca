//! A received folder as one `.zip`, laid out without its files' bytes: the archive is a list
//! of parts, the zip's own records as bytes and each file as a reference to where it already
//! lies (a private file on disk), so the browser can join them into one download without the
//! folder ever being copied, or held in memory.
//!
//! The records are written by `rawzip` (a kept, dependency-free zip writer that streams:
//! sizes and checksums go in data descriptors after each file, and ZIP64 records appear by
//! themselves past 4 GiB or 65,535 entries). Files are stored, not compressed: photos and
//! videos do not shrink, and storing lets the bytes stay where they are.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Write};
use std::rc::Rc;

use rawzip::time::UtcDateTime;
use rawzip::{CompressionMethod, Crc32Option, DataDescriptorOutput, ZipArchiveWriter};

/// One part of the archive, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// The zip's own records: headers, descriptors, the central directory.
    Bytes(Vec<u8>),
    /// The whole content of the offer's file at this index.
    File(usize),
}

/// What goes into the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// An empty folder, by its path ("Top/empty").
    Folder(String),
    /// A file: its path in the archive, its length, the CRC-32 of its bytes, and its index in
    /// the offer.
    File {
        /// "Top/sub/name.txt".
        path: String,
        /// Its length in bytes.
        size: u64,
        /// The CRC-32 of its bytes, which a zip records for each file.
        crc: u32,
        /// Which file of the offer it is.
        index: usize,
    },
}

/// Each file's CRC-32, which a zip records, gathered from the blocks as they are checked (in
/// whatever order) so that zipping a received folder need not read it again.
#[derive(Debug, Default)]
pub struct Checksums {
    /// Per file, each block's CRC-32 and length, once known.
    blocks: HashMap<u32, Vec<Option<(u32, u64)>>>,
}

impl Checksums {
    /// Block `block` (of `count` in the file) of file `file` holds `bytes`.
    pub fn add(&mut self, file: u32, block: u32, count: u32, bytes: &[u8]) {
        let blocks = self
            .blocks
            .entry(file)
            .or_insert_with(|| vec![None; count as usize]);
        if let Some(slot) = blocks.get_mut(block as usize) {
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(bytes);
            *slot = Some((hasher.finalize(), bytes.len() as u64));
        }
    }

    /// File `file`'s CRC-32, when every one of its blocks was added (an empty file has none).
    pub fn of(&self, file: u32, size: u64) -> Option<u32> {
        if size == 0 {
            return Some(0);
        }
        let mut whole = crc32fast::Hasher::new();
        for block in self.blocks.get(&file)? {
            let (crc, len) = (*block)?;
            whole.combine(&crc32fast::Hasher::new_with_initial_len(crc, len));
        }
        Some(whole.finalize())
    }
}

/// Why the archive could not be laid out.
#[derive(Debug, thiserror::Error)]
#[error("could not make the zip: {0}")]
pub struct ZipError(String);

/// The parts of a zip holding `entries`, each dated `modified` (seconds since 1970).
///
/// # Errors
/// A path too long for a zip record.
pub fn layout(entries: &[Entry], modified: i64) -> Result<Vec<Part>, ZipError> {
    let parts = Rc::new(RefCell::new(Parts::default()));
    let mut archive = ZipArchiveWriter::new(Collect(Rc::clone(&parts)));
    let time = UtcDateTime::from_unix(modified);
    let failed = |error: rawzip::Error| ZipError(error.to_string());
    for entry in entries {
        match entry {
            Entry::Folder(path) => {
                archive
                    .new_dir(format!("{path}/").as_str())
                    .last_modified(time)
                    .create()
                    .map_err(failed)?;
            }
            Entry::File {
                path,
                size,
                crc,
                index,
            } => {
                let (mut writer, _) = archive
                    .new_file(path.as_str())
                    .compression_method(CompressionMethod::STORE)
                    .last_modified(time)
                    .crc32(Crc32Option::Custom(*crc))
                    .start()
                    .map_err(failed)?;
                // The writer counts the file's bytes as they pass to the output; these
                // stand in for them, and the output keeps a reference to the file instead.
                parts.borrow_mut().skip_for(*index);
                pass_over(&mut writer, *size).map_err(|error| ZipError(error.to_string()))?;
                parts.borrow_mut().skipping = false;
                writer
                    .finish(DataDescriptorOutput::new(*crc, *size))
                    .map_err(failed)?;
            }
        }
    }
    archive.finish().map_err(failed)?;
    Ok(std::mem::take(&mut parts.borrow_mut().list))
}

/// Writes `size` zero bytes to `writer`, in pieces.
fn pass_over(writer: &mut impl Write, mut size: u64) -> io::Result<()> {
    static PIECE: [u8; 64 * 1024] = [0; 64 * 1024];
    while size > 0 {
        let len = usize::try_from(size).unwrap_or(usize::MAX).min(PIECE.len());
        writer.write_all(&PIECE[..len])?;
        size -= len as u64;
    }
    Ok(())
}

/// The parts so far; while `skipping`, bytes written are a file's and are dropped.
#[derive(Default)]
struct Parts {
    list: Vec<Part>,
    skipping: bool,
}

impl Parts {
    fn skip_for(&mut self, index: usize) {
        self.list.push(Part::File(index));
        self.skipping = true;
    }
}

/// The archive's output: appends records to the parts, and drops the stand-in bytes.
struct Collect(Rc<RefCell<Parts>>);

impl Write for Collect {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut parts = self.0.borrow_mut();
        if !parts.skipping {
            match parts.list.last_mut() {
                Some(Part::Bytes(last)) => last.extend_from_slice(bytes),
                _ => parts.list.push(Part::Bytes(bytes.to_vec())),
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use super::*;

    /// The archive's bytes, with each file's part replaced by `contents[index]`.
    fn assemble(parts: &[Part], contents: &[&[u8]]) -> Vec<u8> {
        parts
            .iter()
            .flat_map(|part| match part {
                Part::Bytes(bytes) => bytes.clone(),
                Part::File(index) => contents[*index].to_vec(),
            })
            .collect()
    }

    fn file(path: &str, bytes: &[u8], index: usize) -> Entry {
        Entry::File {
            path: path.into(),
            size: bytes.len() as u64,
            crc: rawzip::crc32(bytes),
            index,
        }
    }

    #[test]
    fn another_zip_reader_finds_every_entry_and_byte() {
        let contents: [&[u8]; 3] = [b"hello", b"", "día 🚢".as_bytes()];
        let entries = [
            file("Top/a.txt", contents[0], 0),
            file("Top/empty.txt", contents[1], 1),
            Entry::Folder("Top/nothing".into()),
            file("Top/sub/día 🚢.txt", contents[2], 2),
        ];
        let parts = layout(&entries, 1_790_000_000).unwrap();
        // Each file appears once, by reference, in order.
        let files: Vec<usize> = parts
            .iter()
            .filter_map(|part| match part {
                Part::File(index) => Some(*index),
                Part::Bytes(_) => None,
            })
            .collect();
        assert_eq!(files, [0, 1, 2]);
        let bytes = assemble(&parts, &contents);
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let names: Vec<String> = archive.file_names().map(String::from).collect();
        assert_eq!(
            names,
            [
                "Top/a.txt",
                "Top/empty.txt",
                "Top/nothing/",
                "Top/sub/día 🚢.txt"
            ]
        );
        for (name, expected) in [
            ("Top/a.txt", contents[0]),
            ("Top/empty.txt", contents[1]),
            ("Top/sub/día 🚢.txt", contents[2]),
        ] {
            let mut entry = archive.by_name(name).unwrap();
            assert_eq!(entry.compression(), zip::CompressionMethod::Stored);
            let mut read = Vec::new();
            // Reading to the end checks the CRC-32 the archive recorded.
            entry.read_to_end(&mut read).unwrap();
            assert_eq!(read, expected, "{name}");
        }
        assert!(archive.by_name("Top/nothing/").unwrap().is_dir());
    }

    #[test]
    fn a_files_checksum_is_combined_from_its_blocks_in_any_order() {
        let bytes: Vec<u8> = (0..2500u32).map(|i| (i * 7) as u8).collect();
        let mut checksums = Checksums::default();
        checksums.add(3, 2, 3, &bytes[2000..]);
        assert_eq!(checksums.of(3, 2500), None, "blocks are missing");
        checksums.add(3, 0, 3, &bytes[..1000]);
        checksums.add(3, 1, 3, &bytes[1000..2000]);
        assert_eq!(checksums.of(3, 2500), Some(rawzip::crc32(&bytes)));
        assert_eq!(checksums.of(4, 0), Some(rawzip::crc32(b"")));
        assert_eq!(checksums.of(5, 1), None, "never seen");
    }

    #[test]
    fn a_wrong_checksum_is_caught_by_the_reader() {
        let entries = [Entry::File {
            path: "a".into(),
            size: 3,
            crc: rawzip::crc32(b"abc") ^ 1,
            index: 0,
        }];
        let bytes = assemble(&layout(&entries, 0).unwrap(), &[b"abc"]);
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut read = Vec::new();
        assert!(archive.by_index(0).unwrap().read_to_end(&mut read).is_err());
    }

    #[test]
    fn files_past_four_gibibytes_get_zip64_records() {
        let size = 5 * 1024 * 1024 * 1024;
        let entries = [Entry::File {
            path: "big.iso".into(),
            size,
            crc: 7,
            index: 0,
        }];
        let parts = layout(&entries, 0).unwrap();
        let records: usize = parts
            .iter()
            .map(|part| match part {
                Part::Bytes(bytes) => bytes.len(),
                Part::File(_) => 0,
            })
            .sum();
        // Records only: the file itself is a reference, however large.
        assert!(records < 1024, "{records}");
        // The end of the archive holds a ZIP64 end-of-central-directory record.
        let Some(Part::Bytes(tail)) = parts.last() else {
            panic!("the archive ends with records");
        };
        assert!(tail.windows(4).any(|w| w == [0x50, 0x4b, 0x06, 0x06]));
        // And the central directory says how large the file is, in a ZIP64 field.
        let size_bytes = size.to_le_bytes();
        assert!(tail.windows(8).any(|w| w == size_bytes));
    }
}
