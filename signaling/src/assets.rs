//! The app's files: each sent as the brotli or gzip copy the build made when the browser takes
//! one, and with caching that suits it (a file whose name holds its content's hash never
//! changes; anything else is asked about again on every visit).

use std::path::Path;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// A year, which browsers take as "for ever", for a file that never changes.
const FOR_EVER: &str = "public, max-age=31536000, immutable";

/// Anything else: kept, but checked with the server before each use, so a new build is seen
/// on the next visit.
const ASK_AGAIN: &str = "no-cache";

/// The fewest hexadecimal digits taken for a content hash in a file's name. trunk writes a
/// 64-bit hash without leading zeros, so a name has up to 16; a hash of fewer than 12 (one
/// build in 65,536) is only asked about again, never kept wrongly.
const HASH_DIGITS: usize = 12;

/// The built app in a folder, served with `index.html` for any path it does not hold (the
/// app reads its own address).
#[derive(Clone, Debug)]
pub(crate) struct Assets {
    files: ServeDir<ServeFile>,
}

impl Assets {
    /// The app built into `dir`, with the compressed copies beside each file.
    pub(crate) fn new(dir: &Path) -> Self {
        let index = ServeFile::new(dir.join("index.html"))
            .precompressed_br()
            .precompressed_gzip();
        Self {
            files: ServeDir::new(dir)
                .precompressed_br()
                .precompressed_gzip()
                .fallback(index),
        }
    }

    /// Answers `request` with a file of the app.
    pub(crate) async fn serve(&self, request: Request) -> Response {
        let immutable = is_hashed(request.uri().path());
        let mut response = match self.files.clone().oneshot(request).await {
            Ok(response) => response.into_response(),
            Err(never) => match never {},
        };
        if !matches!(response.status(), StatusCode::OK | StatusCode::NOT_MODIFIED) {
            return response;
        }
        // A hashed name that is not there gets the page instead, which must not be kept.
        let is_page = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|kind| kind.as_bytes().starts_with(b"text/html"));
        let policy = if immutable && !is_page {
            FOR_EVER
        } else {
            ASK_AGAIN
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
        // The same address answers differently by Accept-Encoding: caches must keep each.
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        response
    }
}

/// Whether the file at `path` has its content's hash in its name, as trunk names the wasm,
/// its JavaScript and the style sheet (`ferry-app-3f0c…_bg.wasm`, `style-9a1e….css`).
fn is_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    name != "index.html"
        && name.split(['-', '_', '.']).any(|part| {
            part.len() >= HASH_DIGITS
                && part.len() <= 16
                && part.bytes().all(|byte| byte.is_ascii_hexdigit())
        })
}

#[cfg(test)]
mod tests {
    use super::is_hashed;

    #[test]
    fn names_with_a_content_hash_are_told_from_the_rest() {
        for hashed in [
            "/ferry-app-5b3e0a1c9d2f4e67_bg.wasm",
            "/ferry-app-5b3e0a1c9d2f4e67.js",
            "/style-a0b1c2d3e4f5a6b7.css",
            "/5b3e0a1c9d2f4e6-boot.js",
        ] {
            assert!(is_hashed(hashed), "{hashed} has a hash");
        }
        for plain in [
            "/",
            "/index.html",
            "/style.css",
            "/ferry-app.js",
            "/deadbeef.js",
            "/ca.crt",
            "/ferry-app-5b3e0a1c9d2f4e67aa.js",
            // wasm-bindgen names a snippets folder after its crate, not after its content.
            "/snippets/ferry-app-0123456789abcdef/inline0.js",
        ] {
            assert!(!is_hashed(plain), "{plain} has no hash");
        }
    }
}
