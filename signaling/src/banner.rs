//! What the server prints at start-up: each URL to open, the certificate's fingerprint to
//! compare with what the browser shows, and the URL as a QR code a phone can scan.

use std::fmt::Write;

use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

/// What the start-up banner shows.
#[derive(Clone, Debug, Default)]
pub struct Banner {
    /// The URLs to open, first the one to scan.
    pub urls: Vec<String>,
    /// The SHA-256 fingerprint of the server certificate, when serving HTTPS.
    pub fingerprint: Option<String>,
    /// The URL of Ferry's certificate authority and its fingerprint, when Ferry made one.
    pub ca: Option<(String, String)>,
    /// Draw each URL as a QR code.
    pub qr: bool,
}

impl Banner {
    /// The banner as text for a terminal.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let Some(first) = self.urls.first() else {
            return text;
        };
        if self.urls.len() == 1 && self.fingerprint.is_none() && !self.qr {
            // The one-line form scripts have always read.
            let _ = writeln!(
                text,
                "Ferry is running at {first} — open it in two browser tabs."
            );
            return text;
        }
        let _ = writeln!(
            text,
            "Ferry is running. Open it in two browsers, on this machine or others:"
        );
        for url in &self.urls {
            let _ = writeln!(text, "\n  {url}");
            if let Some(fingerprint) = &self.fingerprint {
                let _ = writeln!(text, "  certificate SHA-256 {fingerprint}");
            }
            if self.qr
                && let Some(code) = qr(url)
            {
                text.push_str(&code);
            }
        }
        if let Some((url, fingerprint)) = &self.ca {
            let _ = writeln!(
                text,
                "\nThe certificate is Ferry's own, so browsers warn about it. Click through the \
                 warning,\nor trust Ferry's certificate authority once and never see it \
                 again:\n  {url}\n  SHA-256 {fingerprint}"
            );
        }
        text
    }
}

/// `url` as a QR code in half-height blocks, drawn light on a dark terminal (the usual
/// terminal colours): scanners read the light modules as the background. `None` when the URL
/// is too long for a QR code.
fn qr(url: &str) -> Option<String> {
    let code = QrCode::new(url.as_bytes()).ok()?;
    let drawn = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    Some(
        drawn
            .lines()
            .map(|line| format!("  {line}\n"))
            .collect::<String>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_loopback_keeps_the_one_line_form() {
        let banner = Banner {
            urls: vec!["http://127.0.0.1:3000/".into()],
            ..Banner::default()
        };
        assert_eq!(
            banner.render(),
            "Ferry is running at http://127.0.0.1:3000/ — open it in two browser tabs.\n"
        );
    }

    #[test]
    fn https_shows_every_url_with_its_fingerprint_code_and_the_authority() {
        let banner = Banner {
            urls: vec![
                "https://192.168.1.20:3000/".into(),
                "https://10.8.0.5:3000/".into(),
            ],
            fingerprint: Some("AB:CD".into()),
            ca: Some(("https://192.168.1.20:3000/ca.crt".into(), "01:23".into())),
            qr: true,
        };
        let text = banner.render();
        for expected in [
            "  https://192.168.1.20:3000/\n  certificate SHA-256 AB:CD\n",
            "  https://10.8.0.5:3000/\n  certificate SHA-256 AB:CD\n",
            "  https://192.168.1.20:3000/ca.crt\n  SHA-256 01:23\n",
            "▀",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
        let quiet = Banner {
            qr: false,
            ..banner
        };
        assert!(!quiet.render().contains('▀'));
    }

    #[test]
    fn the_code_is_square_and_surrounded_by_a_quiet_zone() {
        let url = "https://192.168.1.20:3000/";
        let modules = QrCode::new(url).unwrap().width();
        let drawn = qr(url).unwrap();
        let lines: Vec<&str> = drawn.lines().collect();
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|line| line.chars().count() == width));
        // Two module rows per line, a 4-module quiet zone on each side, two spaces of indent.
        assert_eq!(width - 2, modules + 8);
        assert_eq!(lines.len(), (modules + 8).div_ceil(2));
    }
}
