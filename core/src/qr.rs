//! A QR code of a room's link, drawn as SVG for the page, so a phone can join by pointing its
//! camera at the screen. The `qrcode` crate does the encoding: a well-kept implementation of
//! the standard, where error correction and masking are easy to get subtly wrong by hand.

use qrcode::QrCode;
use qrcode::render::svg;

/// The SVG of a QR code for `text`, with a quiet zone, sized by the page's CSS; `None` if
/// `text` is too long for a QR code (a room link never is).
pub fn svg_of(text: &str) -> Option<String> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#111"))
        .light_color(svg::Color("#fff"))
        .build();
    // The XML declaration is not allowed inside an HTML document.
    Some(match image.find("<svg") {
        Some(at) => image[at..].to_owned(),
        None => image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_link_becomes_an_inline_svg() {
        let link = format!("https://ferry.example/#room={}", "ab".repeat(16));
        let svg = svg_of(&link).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.ends_with("</svg>"), "{svg}");
        assert!(svg.contains("fill=\"#111\""));
        assert!(svg_of(&"x".repeat(10_000)).is_none());
    }
}
