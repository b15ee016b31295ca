//! Control messages longer than one data-channel message may be: Chromium refuses to send a
//! message over 256 KiB, and an offer of ten thousand files (or the answer to resuming it) is
//! larger. Such a message goes as [`TransferMessage::Piece`]s, each well under the limit, and
//! the receiver joins them; short messages go as they are.

use crate::TransferMessage;
use crate::codec::{DecodeError, Wire};

/// The longest text sent as one message; longer messages go in pieces.
pub const MESSAGE_LIMIT: usize = 64 * 1024;

/// The most text one piece carries, in bytes: escaped inside a piece's JSON, it may grow to
/// twice this, which stays under [`MESSAGE_LIMIT`].
pub const PIECE_BYTES: usize = 30 * 1024;

/// The longest message joined from pieces; a peer that sends more is refused.
pub const JOINED_LIMIT: usize = 32 * 1024 * 1024;

/// Why received pieces make no message.
#[derive(Debug, thiserror::Error)]
pub enum PieceError {
    /// The pieces add up to more than [`JOINED_LIMIT`].
    #[error("a message in pieces longer than {JOINED_LIMIT} bytes")]
    TooLong,
    /// A text, or the pieces joined, are not a message.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// The texts that send `message`: its JSON when short enough, else its pieces in order.
pub fn texts(message: &TransferMessage) -> Vec<String> {
    let json = message.to_json();
    if json.len() <= MESSAGE_LIMIT {
        return vec![json];
    }
    let mut pieces = Vec::new();
    let mut rest = json.as_str();
    while !rest.is_empty() {
        let mut end = rest.len().min(PIECE_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (text, after) = rest.split_at(end);
        rest = after;
        let piece = TransferMessage::Piece {
            text: text.to_owned(),
            last: rest.is_empty(),
        };
        pieces.push(piece.to_json());
    }
    pieces
}

/// Joins pieces as they arrive, and passes whole messages through.
#[derive(Debug, Default)]
pub struct Joiner {
    joined: String,
}

impl Joiner {
    /// Reads one received text: a message (whole, or the last of its pieces), or `None` while
    /// pieces are still coming.
    ///
    /// # Errors
    /// A text that is no message, pieces that join into none, or too many pieces.
    pub fn read(&mut self, text: &str) -> Result<Option<TransferMessage>, PieceError> {
        match TransferMessage::from_json(text)? {
            TransferMessage::Piece { text, last } => {
                if self.joined.len() + text.len() > JOINED_LIMIT {
                    self.joined = String::new();
                    return Err(PieceError::TooLong);
                }
                self.joined.push_str(&text);
                if !last {
                    return Ok(None);
                }
                let joined = std::mem::take(&mut self.joined);
                Ok(Some(TransferMessage::from_json(&joined)?))
            }
            message => Ok(Some(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileMeta, TRANSFER_VERSION, TransferId};

    fn offer(files: usize) -> TransferMessage {
        TransferMessage::Offer {
            id: TransferId::from_random_bytes([7; 16]),
            files: (0..files)
                .map(|index| FileMeta {
                    name: format!("IMG_{index:05} “ü🚢”.jpg"),
                    path: "photos/día \"1\"".into(),
                    size: 1024,
                    mime: "image/jpeg".into(),
                })
                .collect(),
            version: TRANSFER_VERSION,
            empty_folders: vec!["photos/vacío".into()],
        }
    }

    #[test]
    fn a_short_message_goes_whole() {
        let message = TransferMessage::Resend { file: 1, block: 2 };
        let texts = texts(&message);
        assert_eq!(texts, [message.to_json()]);
        assert_eq!(Joiner::default().read(&texts[0]).unwrap(), Some(message));
    }

    #[test]
    fn a_long_message_goes_in_pieces_under_the_limit_and_joins_again() {
        let message = offer(10_000);
        let texts = texts(&message);
        assert!(texts.len() > 10, "{} pieces", texts.len());
        assert!(texts.iter().all(|text| text.len() <= MESSAGE_LIMIT));
        let mut joiner = Joiner::default();
        let (last, first) = texts.split_last().unwrap();
        for text in first {
            assert_eq!(joiner.read(text).unwrap(), None);
        }
        assert_eq!(joiner.read(last).unwrap(), Some(message));
        // The joiner is ready for the next message.
        let short = TransferMessage::Cancel;
        assert_eq!(joiner.read(&short.to_json()).unwrap(), Some(short));
    }

    #[test]
    fn endless_or_broken_pieces_are_refused() {
        let mut joiner = Joiner::default();
        let piece = TransferMessage::Piece {
            text: "x".repeat(PIECE_BYTES),
            last: false,
        }
        .to_json();
        let refused = (0..JOINED_LIMIT / PIECE_BYTES + 2).find_map(|_| joiner.read(&piece).err());
        assert!(matches!(refused, Some(PieceError::TooLong)));
        let broken = TransferMessage::Piece {
            text: "{\"type\":".into(),
            last: true,
        };
        assert!(matches!(
            Joiner::default().read(&broken.to_json()),
            Err(PieceError::Decode(_))
        ));
    }
}
