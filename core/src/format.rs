//! Human-readable sizes, speeds and durations for the transfer rows and the offer dialog.
//!
//! Sizes use decimal units (1 MB = 1,000,000 bytes), as operating systems' file managers and
//! the issue's own examples ("1.2 GB") do.

/// Formats a byte count: "0 B", "999 B", "1.5 kB", "12.3 MB", "1.2 GB".
///
/// Whole-number arithmetic only: formatting a float would bring the float formatter into the
/// wasm for this one function.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    // Tenths of a unit of `divisor` bytes, rounded to the nearest (sizes past an exabyte,
    // where ten times the count would overflow, are nothing a browser sends).
    let tenths = |divisor: u64| bytes.saturating_mul(10).saturating_add(divisor / 2) / divisor;
    let mut divisor = 1000;
    let mut unit = 0;
    // Rounding can turn 999.96 into "1000.0", so step up before that happens.
    while tenths(divisor) >= 10_000 && unit + 1 < UNITS.len() {
        divisor *= 1000;
        unit += 1;
    }
    let shown = tenths(divisor);
    format!("{}.{} {}", shown / 10, shown % 10, UNITS[unit])
}

/// "12.3 MB of 64.0 MB".
pub fn progress_text(done: u64, total: u64) -> String {
    format!("{} of {}", human_size(done), human_size(total))
}

/// "3.4 MB/s", from bytes per second.
pub fn speed_text(bytes_per_sec: f64) -> String {
    // A speed is never negative and far below u64::MAX; the cast just drops the fraction.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = bytes_per_sec.max(0.0).round() as u64;
    format!("{}/s", human_size(whole))
}

/// "5 s left", "3 min 05 s left", "1 h 02 min left".
pub fn time_left_text(seconds: f64) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let secs = seconds.max(0.0).ceil() as u64;
    match secs {
        0..60 => format!("{secs} s left"),
        60..3600 => format!("{} min {:02} s left", secs / 60, secs % 60),
        _ => format!("{} h {:02} min left", secs / 3600, (secs % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1), "1 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1500), "1.5 kB");
        assert_eq!(human_size(12_345_678), "12.3 MB");
        assert_eq!(human_size(64 * 1024 * 1024), "67.1 MB");
        assert_eq!(human_size(1_200_000_000), "1.2 GB");
        assert_eq!(human_size(999_960), "1.0 MB");
        assert_eq!(human_size(8 << 40), "8.8 TB");
    }

    #[test]
    fn progress_speed_and_time() {
        assert_eq!(progress_text(12_300_000, 64_000_000), "12.3 MB of 64.0 MB");
        assert_eq!(speed_text(3_400_000.0), "3.4 MB/s");
        assert_eq!(time_left_text(4.2), "5 s left");
        assert_eq!(time_left_text(185.0), "3 min 05 s left");
        assert_eq!(time_left_text(3720.0), "1 h 02 min left");
    }
}
