//! File bytes on a data channel: each binary message is a chunk that says where it belongs,
//! so chunks may arrive in any order and on any of the connections a transfer is striped over.
//!
//! A chunk is a 12-byte header, the file's position in the offer (`u32`) and the offset of the
//! chunk's first byte in that file (`u64`), both little-endian, followed by the bytes.

/// The length of a chunk's header.
pub const CHUNK_HEADER_BYTES: usize = 12;

/// Where a chunk's bytes belong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChunkHeader {
    /// The file's position in the offer.
    pub file: u32,
    /// The offset of the chunk's first byte in the file.
    pub offset: u64,
}

/// Why a binary message is not a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a binary message of {len} bytes is too short for a chunk header")]
pub struct ChunkError {
    /// The message's length.
    pub len: usize,
}

impl ChunkHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; CHUNK_HEADER_BYTES] {
        let mut header = [0; CHUNK_HEADER_BYTES];
        header[..4].copy_from_slice(&self.file.to_le_bytes());
        header[4..].copy_from_slice(&self.offset.to_le_bytes());
        header
    }

    /// Reads the header at the start of a message; the chunk's bytes follow it.
    ///
    /// # Errors
    /// When the message is shorter than a header.
    pub fn decode(message: &[u8]) -> Result<Self, ChunkError> {
        let header: &[u8; CHUNK_HEADER_BYTES] = message
            .get(..CHUNK_HEADER_BYTES)
            .and_then(|header| header.try_into().ok())
            .ok_or(ChunkError { len: message.len() })?;
        let (file, offset) = header.split_at(4);
        Ok(Self {
            file: u32::from_le_bytes(file.try_into().unwrap_or_default()),
            offset: u64::from_le_bytes(offset.try_into().unwrap_or_default()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_pinned_to_its_bytes_and_round_trips() {
        let header = ChunkHeader {
            file: 2,
            offset: 0x0102_0304_0506_0708,
        };
        let bytes = header.encode();
        assert_eq!(bytes, [2, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]);
        let mut message = bytes.to_vec();
        message.extend_from_slice(b"payload");
        assert_eq!(ChunkHeader::decode(&message), Ok(header));
        assert_eq!(
            ChunkHeader::decode(&bytes),
            Ok(header),
            "an empty chunk is fine"
        );
    }

    #[test]
    fn a_message_shorter_than_a_header_is_no_chunk() {
        assert_eq!(ChunkHeader::decode(&[1, 2, 3]), Err(ChunkError { len: 3 }));
    }
}
