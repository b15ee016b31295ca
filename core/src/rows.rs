//! What the transfers list shows: one row per file, or one row for a transfer of folders
//! (thousands of rows would bury the list, and cost the page more than the transfer), projected
//! from a transfer and what the engine knows around it (speeds, saved copies, dismissed rows,
//! the route and lanes).

use std::collections::HashSet;

use ferry_protocol::TransferId;

use crate::rate::RateEstimator;
use crate::route::Route;
use crate::transfer::{Direction, Status, Transfer};

/// One file of one transfer, as a row shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct FileRow {
    /// Unique per row: transfer id and file index.
    pub key: String,
    /// The transfer it belongs to.
    pub transfer: TransferId,
    /// Its position in the offer.
    pub index: usize,
    /// Which way it goes.
    pub direction: Direction,
    /// The other user's nick.
    pub peer: String,
    /// The file's name, or the folder's.
    pub name: String,
    /// How many files the row stands for: 1, or a folder's files.
    pub files: usize,
    /// Its size in bytes.
    pub size: u64,
    /// Bytes checked and written so far.
    pub done: u64,
    /// What the row says.
    pub status: Status,
    /// Current speed, while moving.
    pub bytes_per_sec: Option<f64>,
    /// Estimated seconds left, while moving.
    pub seconds_left: Option<f64>,
    /// Whether a "Save NAME" button can offer the file again.
    pub can_save: bool,
    /// The name it is saved under: the file's, or a received folder's zip ("Holiday.zip").
    pub saved_as: String,
    /// How the bytes travel, once the connection is up.
    pub route: Option<Route>,
    /// Over how many peer connections the bytes travel.
    pub lanes: usize,
    /// The file's digest (BLAKE3 over its block digests), once the file is checked.
    pub digest: Option<String>,
}

/// What the engine knows about a transfer beyond its state machine.
#[derive(Clone, Copy, Debug)]
pub struct Around<'a> {
    /// Each file's speed estimate.
    pub rates: &'a [RateEstimator],
    /// Which files have a received copy that "Save NAME" can offer again.
    pub saved: &'a [bool],
    /// The files whose rows the user cleared.
    pub dismissed: &'a HashSet<usize>,
    /// How the bytes travel.
    pub route: Option<Route>,
    /// Over how many peer connections.
    pub lanes: usize,
}

/// The key of a file's row: its transfer and its position there.
pub fn row_key(id: &TransferId, index: usize) -> String {
    format!("{id}-{index}")
}

/// Whether `transfer` has rows at all. An offer to this user shows only as the offer until
/// it is accepted: a row saying "Receiving" before then reads as bytes already arriving on the
/// user's machine. One this user declined leaves no row either; one that failed or was
/// withdrawn before the answer has one, which says so.
pub fn is_listed(transfer: &Transfer) -> bool {
    if transfer.direction == Direction::Outgoing {
        return true;
    }
    let declined = transfer
        .files
        .iter()
        .all(|file| file.status == Status::Declined);
    !transfer.is_offered() && !declined
}

/// The rows of `transfer`, without those the user dismissed; none while it is not listed
/// ([`is_listed`]).
pub fn rows(transfer: &Transfer, around: Around<'_>) -> Vec<FileRow> {
    if !is_listed(transfer) {
        return Vec::new();
    }
    if transfer.has_folders() {
        return folder_row(transfer, around).into_iter().collect();
    }
    transfer
        .files
        .iter()
        .enumerate()
        // A dismissed row stays gone, even when a later file of its transfer moves on.
        .filter(|(index, _)| !around.dismissed.contains(index))
        .map(|(index, file)| {
            let status = transfer.shown(index);
            let moving = matches!(status, Status::Sending | Status::Receiving);
            let rate = around.rates.get(index).filter(|_| moving);
            FileRow {
                key: row_key(&transfer.id, index),
                transfer: transfer.id.clone(),
                index,
                direction: transfer.direction,
                peer: transfer.peer.clone(),
                name: file.meta.name.clone(),
                files: 1,
                size: file.meta.size,
                done: file.done,
                status,
                bytes_per_sec: rate.and_then(RateEstimator::bytes_per_sec),
                seconds_left: rate.and_then(|rate| rate.seconds_left(file.meta.size - file.done)),
                can_save: around.saved.get(index).copied().unwrap_or(false),
                saved_as: file.meta.name.clone(),
                route: around.route,
                lanes: around.lanes,
                digest: (file.status == Status::Complete)
                    .then(|| {
                        file.digest
                            .as_ref()
                            .map(|digest| digest.as_str().to_owned())
                    })
                    .flatten(),
            }
        })
        .collect()
}

/// The one row of a transfer of folders, as row 0: named after its folder, with all its
/// bytes, and the status that says most (a failure, else the first file not complete).
/// Its speed is `around.rates[0]`, which measures the whole transfer; "Save" offers the folder.
fn folder_row(transfer: &Transfer, around: Around<'_>) -> Option<FileRow> {
    if around.dismissed.contains(&0) {
        return None;
    }
    let name = transfer
        .top_folder()
        .unwrap_or_else(|| format!("{} files", transfer.files.len()));
    let statuses: Vec<Status> = (0..transfer.files.len())
        .map(|index| transfer.shown(index))
        .collect();
    let status = statuses
        .iter()
        .find(|status| matches!(status, Status::Failed(_)))
        .or_else(|| statuses.iter().find(|status| **status != Status::Complete))
        .cloned()
        .unwrap_or(Status::Complete);
    let size: u64 = transfer.files.iter().map(|file| file.meta.size).sum();
    let done: u64 = transfer.files.iter().map(|file| file.done).sum();
    let moving = matches!(status, Status::Sending | Status::Receiving);
    let rate = around.rates.first().filter(|_| moving);
    Some(FileRow {
        key: row_key(&transfer.id, 0),
        transfer: transfer.id.clone(),
        index: 0,
        direction: transfer.direction,
        peer: transfer.peer.clone(),
        files: transfer.files.len(),
        size,
        done,
        status,
        bytes_per_sec: rate.and_then(RateEstimator::bytes_per_sec),
        seconds_left: rate.and_then(|rate| rate.seconds_left(size - done)),
        can_save: around.saved.first().copied().unwrap_or(false),
        // A received folder is handed over as one zip of it.
        saved_as: format!("{name}.zip"),
        name,
        route: around.route,
        lanes: around.lanes,
        digest: None,
    })
}

/// The bytes that paused incoming transfers keep in this browser's storage until they finish
/// or are discarded.
pub fn kept_bytes<'a>(rows: impl IntoIterator<Item = &'a FileRow>) -> u64 {
    rows.into_iter()
        .filter(|row| {
            row.direction == Direction::Incoming && matches!(row.status, Status::Paused { .. })
        })
        .map(|row| row.done)
        .sum()
}

#[cfg(test)]
mod tests {
    use ferry_protocol::{DigestHex, FileMeta};

    use super::*;

    /// Nothing known around a transfer but the rows the user dismissed.
    fn nothing_around(dismissed: &HashSet<usize>) -> Around<'_> {
        Around {
            rates: &[],
            saved: &[],
            dismissed,
            route: None,
            lanes: 1,
        }
    }

    fn transfer() -> Transfer {
        let files = ["a", "b", "c"]
            .map(|name| FileMeta {
                name: name.into(),
                path: String::new(),
                size: 100,
                mime: String::new(),
            })
            .to_vec();
        let mut transfer = Transfer::outgoing(TransferId::from_random_bytes([2; 16]), "bo", files);
        transfer.accept();
        transfer.stored(0, 100);
        transfer.stored(1, 50);
        transfer
    }

    #[test]
    fn rows_show_each_file_with_what_is_known_around_it() {
        let mut transfer = transfer();
        transfer.file_sent(0, DigestHex::from_digest([9; 32]));
        transfer.complete_file(0).unwrap();
        let rates = vec![RateEstimator::new(3.0); 3];
        let around = Around {
            rates: &rates,
            saved: &[true, false, false],
            dismissed: &HashSet::from([2]),
            route: Some(Route::Relayed),
            lanes: 3,
        };
        let rows = rows(&transfer, around);
        assert_eq!(rows.len(), 2, "the dismissed row stays gone");
        assert_eq!(rows[0].key, format!("{}-0", transfer.id));
        assert_eq!((rows[0].done, rows[1].done), (100, 50));
        assert_eq!(rows[0].status, Status::Complete);
        assert_eq!(rows[0].digest.as_deref(), Some("09".repeat(32).as_str()));
        assert_eq!(rows[1].digest, None, "not checked yet");
        assert!(rows[0].can_save && !rows[1].can_save);
        assert_eq!((rows[1].route, rows[1].lanes), (Some(Route::Relayed), 3));
    }

    #[test]
    fn a_transfer_of_folders_is_one_row() {
        let files = [("Top/a", "x", 100), ("Top", "y", 50), ("Top/b", "z", 10)]
            .map(|(path, name, size)| FileMeta {
                name: name.into(),
                path: path.into(),
                size,
                mime: String::new(),
            })
            .to_vec();
        let id = TransferId::from_random_bytes([4; 16]);
        let mut transfer = Transfer::incoming(id.clone(), "ana", files);
        transfer.accept();
        transfer.files[0].done = 100;
        transfer.files[0].status = Status::Complete;
        transfer.files[1].done = 20;
        let rates = vec![RateEstimator::new(3.0); 3];
        let around = Around {
            rates: &rates,
            saved: &[true],
            dismissed: &HashSet::new(),
            route: None,
            lanes: 1,
        };
        let rows = rows(&transfer, around);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!((row.name.as_str(), row.files), ("Top", 3));
        assert_eq!(row.saved_as, "Top.zip");
        assert_eq!((row.done, row.size), (120, 160));
        assert_eq!(row.status, Status::Receiving, "the first file not complete");
        assert!(row.can_save);
        assert_eq!(row.key, row_key(&id, 0));
        transfer.files[2].status = Status::Failed("disk full".into());
        assert_eq!(
            super::rows(&transfer, around)[0].status,
            Status::Failed("disk full".into()),
            "a failure says most"
        );
        transfer.files[2].status = Status::Complete;
        transfer.delivery_failed("could not make the zip: no room");
        assert_eq!(
            super::rows(&transfer, around)[0].status,
            Status::Failed("could not make the zip: no room".into()),
            "a folder that arrived but was not handed over says so"
        );
        let dismissed = HashSet::from([0]);
        let gone = Around {
            dismissed: &dismissed,
            ..around
        };
        assert!(super::rows(&transfer, gone).is_empty());
    }

    #[test]
    fn an_offer_to_this_user_has_no_row_until_it_is_accepted_and_none_once_declined() {
        let files = vec![FileMeta {
            name: "a".into(),
            path: String::new(),
            size: 100,
            mime: String::new(),
        }];
        let dismissed = HashSet::new();
        let around = nothing_around(&dismissed);
        let id = TransferId::from_random_bytes([5; 16]);
        let mut offered = Transfer::incoming(id.clone(), "ana", files.clone());
        assert!(
            rows(&offered, around).is_empty(),
            "an offer is not receiving"
        );
        offered.accept();
        assert_eq!(rows(&offered, around)[0].status, Status::Receiving);

        let mut declined = Transfer::incoming(id.clone(), "ana", files.clone());
        declined.decline();
        assert!(rows(&declined, around).is_empty());

        // Withdrawn, or refused for the offer's own fault: the row says so.
        let mut withdrawn = Transfer::incoming(id.clone(), "ana", files.clone());
        withdrawn.cancel();
        assert_eq!(rows(&withdrawn, around)[0].status, Status::Cancelled);

        let outgoing = Transfer::outgoing(id, "bo", files);
        assert!(matches!(
            rows(&outgoing, around)[0].status,
            Status::Waiting { .. }
        ));
    }

    #[test]
    fn only_paused_incoming_files_count_as_kept() {
        let files = vec![
            FileMeta {
                name: "a".into(),
                path: String::new(),
                size: 100,
                mime: String::new(),
            },
            FileMeta {
                name: "b".into(),
                path: String::new(),
                size: 100,
                mime: String::new(),
            },
        ];
        let id = TransferId::from_random_bytes([3; 16]);
        let mut incoming = Transfer::incoming(id.clone(), "ana", files.clone());
        incoming.accept();
        incoming.files[0].done = 60;
        let dismissed = HashSet::new();
        let around = nothing_around(&dismissed);
        assert_eq!(kept_bytes(&rows(&incoming, around)), 0, "still moving");
        incoming.pause();
        assert_eq!(kept_bytes(&rows(&incoming, around)), 60);
        let mut outgoing = transfer();
        outgoing.pause();
        assert_eq!(
            kept_bytes(&rows(&outgoing, around)),
            0,
            "the sender keeps nothing"
        );
    }
}
