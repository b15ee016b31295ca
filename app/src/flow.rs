//! Receiver-driven flow control, as plain data.
//!
//! A data channel cannot be paused: whatever the sender sends, the receiver's browser hands
//! over at once, and chunks waiting for a slow disk pile up in the receiver's memory. So the
//! receiver reports with [`ferry_protocol::TransferMessage::Written`] how many bytes its sink
//! has taken ([`WriteReports`] decides when), and the sender keeps at most a window of bytes
//! sent but not yet reported written ([`SendWindow`]). The receiver's memory then holds at
//! most that window, however large the file and however slow the disk.

/// The default window: the most bytes a sender keeps sent but not yet reported written.
///
/// 16 MiB keeps a fast link busy while reports travel back: the receiver writes in batches of
/// up to 4 MiB and reports every [`REPORT_INTERVAL`], so a window of a few batches never runs
/// dry on a LAN (at 100 MB/s it is 170 ms of data, far more than a round trip plus one write),
/// while it stays small beside what a tab may use, which is the receiver's worst case.
pub const WINDOW: u64 = 16 * 1024 * 1024;

/// The receiver reports once at least this many bytes were written since its last report.
/// Each report is a small text message, so 1 MiB costs nothing at any speed and still lets a
/// window of a few mebibytes flow without stalling.
pub const REPORT_INTERVAL: u64 = 1024 * 1024;

/// A report of written bytes that cannot be true.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The receiver reported fewer bytes than it had before.
    #[error("the receiver reported {now} bytes written after {before}")]
    Backwards {
        /// What it reported before.
        before: u64,
        /// What it reports now.
        now: u64,
    },
    /// The receiver reported more bytes than were sent.
    #[error("the receiver reported {written} bytes written of {sent} sent")]
    BeyondSent {
        /// Bytes sent so far.
        sent: u64,
        /// What it reports.
        written: u64,
    },
}

/// The sender's side: bytes sent, bytes the receiver reported written, and the window between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendWindow {
    window: u64,
    sent: u64,
    written: u64,
    most_in_flight: u64,
}

impl SendWindow {
    /// A window of `window` bytes, but never below [`REPORT_INTERVAL`]: the receiver reports
    /// only every so many bytes, so a smaller window would wait for a report that never comes.
    pub fn new(window: u64) -> Self {
        Self {
            window: window.max(REPORT_INTERVAL),
            sent: 0,
            written: 0,
            most_in_flight: 0,
        }
    }

    /// Whether `len` more bytes fit in the window. A message larger than the whole window may
    /// go when nothing is in flight, so that it cannot wait forever.
    pub fn may_send(&self, len: u64) -> bool {
        let in_flight = self.in_flight();
        in_flight == 0 || in_flight.saturating_add(len) <= self.window
    }

    /// Counts `len` bytes handed to the channel.
    pub fn on_sent(&mut self, len: u64) {
        self.sent = self.sent.saturating_add(len);
        self.most_in_flight = self.most_in_flight.max(self.in_flight());
    }

    /// Takes the receiver's report that `bytes` bytes of the transfer are written.
    ///
    /// # Errors
    /// When the report goes back from an earlier one or beyond what was sent; both break the
    /// protocol.
    pub fn on_written(&mut self, bytes: u64) -> Result<(), FlowError> {
        if bytes < self.written {
            return Err(FlowError::Backwards {
                before: self.written,
                now: bytes,
            });
        }
        if bytes > self.sent {
            return Err(FlowError::BeyondSent {
                sent: self.sent,
                written: bytes,
            });
        }
        self.written = bytes;
        Ok(())
    }

    /// Bytes sent but not yet reported written.
    pub fn in_flight(&self) -> u64 {
        self.sent - self.written
    }

    /// The most bytes that were ever in flight at once.
    pub fn most_in_flight(&self) -> u64 {
        self.most_in_flight
    }
}

/// The receiver's side: counts written bytes and says when to report them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteReports {
    written: u64,
    reported: u64,
}

impl WriteReports {
    /// A write of `len` bytes completed. Returns the transfer's total to report once at least
    /// [`REPORT_INTERVAL`] bytes went unreported.
    pub fn on_write(&mut self, len: u64) -> Option<u64> {
        self.written = self.written.saturating_add(len);
        (self.written - self.reported >= REPORT_INTERVAL).then(|| self.report())
    }

    /// A file ended: returns the total to report if any written bytes are unreported, so the
    /// sender's progress reaches the file's end.
    pub fn at_file_end(&mut self) -> Option<u64> {
        (self.written > self.reported).then(|| self.report())
    }

    fn report(&mut self) -> u64 {
        self.reported = self.written;
        self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn the_window_closes_when_full_and_opens_with_reports() {
        let mut window = SendWindow::new(2 * MIB);
        assert!(window.may_send(MIB));
        window.on_sent(MIB);
        assert!(window.may_send(MIB));
        window.on_sent(MIB);
        assert!(!window.may_send(1));
        assert_eq!(window.in_flight(), 2 * MIB);
        window.on_written(MIB / 2).unwrap();
        assert!(window.may_send(MIB / 2));
        assert!(!window.may_send(MIB / 2 + 1));
        window.on_written(2 * MIB).unwrap();
        assert_eq!(window.in_flight(), 0);
        assert_eq!(window.most_in_flight(), 2 * MIB);
    }

    #[test]
    fn a_window_below_the_report_interval_is_raised_to_it() {
        let mut window = SendWindow::new(1000);
        window.on_sent(REPORT_INTERVAL - 1);
        assert!(window.may_send(1));
        assert!(!window.may_send(2));
    }

    #[test]
    fn a_message_larger_than_the_window_goes_alone() {
        let mut window = SendWindow::new(MIB);
        assert!(window.may_send(3 * MIB));
        window.on_sent(3 * MIB);
        assert!(!window.may_send(1));
    }

    #[test]
    fn impossible_reports_are_refused_and_change_nothing() {
        let mut window = SendWindow::new(4 * MIB);
        window.on_sent(3 * MIB);
        window.on_written(2 * MIB).unwrap();
        assert_eq!(
            window.on_written(MIB),
            Err(FlowError::Backwards {
                before: 2 * MIB,
                now: MIB
            })
        );
        assert_eq!(
            window.on_written(3 * MIB + 1),
            Err(FlowError::BeyondSent {
                sent: 3 * MIB,
                written: 3 * MIB + 1
            })
        );
        assert_eq!(window.in_flight(), MIB);
        // The same total twice is not news, but not wrong either.
        window.on_written(2 * MIB).unwrap();
    }

    #[test]
    fn reports_every_interval_and_at_each_file_end() {
        let mut reports = WriteReports::default();
        assert_eq!(reports.on_write(MIB / 2), None);
        assert_eq!(reports.on_write(MIB / 2), Some(MIB));
        assert_eq!(reports.on_write(3 * MIB), Some(4 * MIB));
        assert_eq!(reports.on_write(10), None);
        assert_eq!(reports.at_file_end(), Some(4 * MIB + 10));
        // A file that wrote nothing more (an empty one) needs no report.
        assert_eq!(reports.at_file_end(), None);
        assert_eq!(reports.on_write(MIB - 10), None);
        assert_eq!(reports.on_write(10), Some(5 * MIB + 10));
    }

    /// A receiver that writes whatever arrived, in batches, never lets the sender stall and
    /// never holds more than the window.
    #[test]
    fn sender_and_receiver_together_move_a_file_within_the_window() {
        let size = 40 * MIB + 123;
        let chunk = 256 * 1024;
        let mut window = SendWindow::new(4 * MIB);
        let mut reports = WriteReports::default();
        let (mut sent, mut queued, mut written) = (0, 0, 0);
        while written < size {
            while sent < size && window.may_send(chunk.min(size - sent)) {
                let len = chunk.min(size - sent);
                window.on_sent(len);
                sent += len;
                queued += len;
            }
            assert!(queued <= 4 * MIB, "the receiver holds {queued} bytes");
            assert!(queued > 0, "the sender stalled with nothing in flight");
            // The receiver writes up to 1.5 MiB of what waits, as a slow disk would.
            let len = queued.min(3 * MIB / 2);
            queued -= len;
            written += len;
            let report = reports.on_write(len);
            let report = if written == size {
                report.or_else(|| reports.at_file_end())
            } else {
                report
            };
            if let Some(total) = report {
                window.on_written(total).unwrap();
            }
        }
        assert_eq!(window.in_flight(), 0);
        assert_eq!(window.most_in_flight(), 4 * MIB);
    }
}
