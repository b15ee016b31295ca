//! The app's files: the compressed copies the build made, sent to a browser that takes them,
//! and caching that keeps hashed files for good and asks again about everything else.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use ferry_signaling::{AppState, Config, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

const WASM: &str = "ferry-app-5b3e0a1c9d2f4e67_bg.wasm";
const FOR_EVER: &str = "public, max-age=31536000, immutable";

/// What came back for `GET path` with `Accept-Encoding: encodings`.
struct Got {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .map_or("", |value| value.to_str().unwrap_or_default())
    }
}

async fn get(state: &AppState, path: &str, encodings: &str) -> anyhow::Result<Got> {
    let mut request = Request::get(path);
    if !encodings.is_empty() {
        request = request.header(header::ACCEPT_ENCODING, encodings);
    }
    let response = app(state.clone())
        .oneshot(request.body(Body::empty())?)
        .await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await?.to_bytes().to_vec();
    Ok(Got {
        status,
        headers,
        body,
    })
}

/// A built app as trunk and its post-build hook leave it: each file beside its `.br` and
/// `.gz` copies (here with contents that tell them apart rather than really compressed).
fn built_app() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    for (name, content) in [
        ("index.html", "<h1>Ferry</h1>"),
        (WASM, "the wasm"),
        ("style.css", "body {}"),
        ("manifest.webmanifest", "{}"),
        ("sw.js", "self;"),
    ] {
        std::fs::write(dir.path().join(name), content)?;
        std::fs::write(
            dir.path().join(format!("{name}.br")),
            format!("br of {name}"),
        )?;
        std::fs::write(
            dir.path().join(format!("{name}.gz")),
            format!("gz of {name}"),
        )?;
    }
    Ok(dir)
}

/// A server of [`built_app`], and the folder it serves from (deleted when dropped).
fn serving_built_app() -> anyhow::Result<(tempfile::TempDir, AppState)> {
    let dir = built_app()?;
    let state = AppState::new(Config {
        static_dir: Some(dir.path().to_owned()),
        ..Config::default()
    });
    Ok((dir, state))
}

#[tokio::test]
async fn a_browser_gets_the_compressed_copy_it_takes_and_the_plain_file_otherwise()
-> anyhow::Result<()> {
    let (_dir, state) = serving_built_app()?;
    let path = format!("/{WASM}");
    for (encodings, encoding, body) in [
        ("br, gzip", "br", format!("br of {WASM}")),
        ("gzip, deflate", "gzip", format!("gz of {WASM}")),
        ("", "", "the wasm".to_owned()),
    ] {
        let got = get(&state, &path, encodings).await?;
        assert_eq!(got.status, StatusCode::OK, "{encodings:?}");
        assert_eq!(
            got.header(header::CONTENT_ENCODING),
            encoding,
            "{encodings:?}"
        );
        assert_eq!(String::from_utf8(got.body.clone())?, body, "{encodings:?}");
        // The type is the file's own, not its copy's, or the browser could not stream the
        // wasm into its compiler.
        assert_eq!(got.header(header::CONTENT_TYPE), "application/wasm");
        assert_eq!(got.header(header::VARY), "accept-encoding");
    }
    let page = get(&state, "/", "br").await?;
    assert_eq!(page.header(header::CONTENT_ENCODING), "br");
    assert_eq!(page.body, b"br of index.html");
    Ok(())
}

#[tokio::test]
async fn hashed_files_are_kept_for_good_and_everything_else_is_asked_about_again()
-> anyhow::Result<()> {
    let (_dir, state) = serving_built_app()?;
    let wasm = get(&state, &format!("/{WASM}"), "br").await?;
    assert_eq!(wasm.header(header::CACHE_CONTROL), FOR_EVER);
    // The manifest and the service worker keep their names from build to build: a browser
    // must ask again to see a new one.
    for path in [
        "/",
        "/index.html",
        "/style.css",
        "/some/deep/link",
        "/manifest.webmanifest",
        "/sw.js",
    ] {
        let got = get(&state, path, "br").await?;
        assert_eq!(got.status, StatusCode::OK, "{path}");
        assert_eq!(got.header(header::CACHE_CONTROL), "no-cache", "{path}");
    }
    // A hashed name that is not there (an old build's) gets the page, which must not be kept
    // under that name for good.
    let gone = get(&state, "/ferry-app-0123456789abcdef.js", "").await?;
    assert_eq!(gone.body, b"<h1>Ferry</h1>");
    assert_eq!(gone.header(header::CACHE_CONTROL), "no-cache");
    // A revalidation of a kept file says it is still good, and still for good.
    let modified = wasm.header(header::LAST_MODIFIED).to_owned();
    let response = app(state.clone())
        .oneshot(
            Request::get(format!("/{WASM}"))
                .header(header::IF_MODIFIED_SINCE, modified)
                .body(Body::empty())?,
        )
        .await?;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()[header::CACHE_CONTROL], FOR_EVER);
    Ok(())
}

#[tokio::test]
async fn the_manifest_and_the_service_worker_go_with_the_types_browsers_require()
-> anyhow::Result<()> {
    let (_dir, state) = serving_built_app()?;
    let manifest = get(&state, "/manifest.webmanifest", "br").await?;
    assert_eq!(manifest.status, StatusCode::OK);
    assert_eq!(
        manifest.header(header::CONTENT_TYPE),
        "application/manifest+json"
    );
    // A browser registers a service worker only when it comes as JavaScript.
    let worker = get(&state, "/sw.js", "").await?;
    assert_eq!(worker.header(header::CONTENT_TYPE), "text/javascript");
    assert_eq!(worker.body, b"self;");
    Ok(())
}

#[tokio::test]
async fn a_share_the_service_worker_did_not_take_opens_the_page_to_say_so() -> anyhow::Result<()> {
    let (_dir, state) = serving_built_app()?;
    let response = app(state)
        .oneshot(
            Request::post("/share")
                .header(header::CONTENT_TYPE, "multipart/form-data; boundary=x")
                .body(Body::from(
                    "--x\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nhi\r\n--x--\r\n",
                ))?,
        )
        .await?;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/?shared");
    Ok(())
}
