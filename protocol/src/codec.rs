//! The one codec of the wire: every message is a JSON text, written and read here and nowhere
//! else, so the server, the app's signaling client and its data channels cannot disagree.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ClientMessage, ServerMessage, TransferMessage};

/// Why a text is not a message of this protocol; the text says why, for logs and for error
/// replies (which quote it briefly).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DecodeError(#[from] serde_json::Error);

/// A message that goes on the wire as JSON text.
pub trait Wire: Serialize + DeserializeOwned + Sized {
    /// The message as JSON text.
    fn to_json(&self) -> String {
        // Every message type is plain data with string keys: serializing cannot fail.
        serde_json::to_string(self).expect("wire messages always serialize")
    }

    /// Reads a message from JSON text.
    ///
    /// # Errors
    /// When the text is not JSON or not a message of this type.
    fn from_json(text: &str) -> Result<Self, DecodeError> {
        Ok(serde_json::from_str(text)?)
    }
}

impl Wire for ClientMessage {}
impl Wire for ServerMessage {}
impl Wire for TransferMessage {}
impl Wire for crate::ClusterMessage {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_the_codec() {
        let message = TransferMessage::Resend { file: 0, block: 7 };
        let text = message.to_json();
        assert_eq!(text, r#"{"type":"resend","file":0,"block":7}"#);
        assert_eq!(TransferMessage::from_json(&text).unwrap(), message);
        let error = ClientMessage::from_json(r#"{"type":"dance"}"#).unwrap_err();
        assert!(error.to_string().contains("dance"), "{error}");
    }
}
