//! The classic HTTP user API at `/` in reg.cgi's XML shape, the app and `/healthz`.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ferry_protocol::ErrorCode;
use ferry_signaling::{AppState, Config, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::support::{Client, TestServer, arrived, http_get, join};

const TTL: Duration = Duration::from_secs(120);
const HEAD: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

/// The classic API driven through `oneshot` on one shared state.
struct Api {
    state: AppState,
}

impl Api {
    fn new(config: Config) -> Self {
        Self {
            state: AppState::new(config),
        }
    }

    /// `GET uri`: the status, content type and body.
    async fn get(&self, uri: &str) -> anyhow::Result<(StatusCode, String, String)> {
        let response = app(self.state.clone())
            .oneshot(Request::get(uri).body(Body::empty())?)
            .await?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, content_type, String::from_utf8(body.to_vec())?))
    }

    /// Checks that `uri` answers with the XML result `inner`.
    async fn check(&self, uri: &str, inner: &str) -> anyhow::Result<()> {
        let (status, content_type, body) = self.get(uri).await?;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(content_type, "text/xml; charset=utf-8", "{uri}");
        assert_eq!(body, format!("{HEAD}<result>{inner}</result>"), "{uri}");
        Ok(())
    }
}

#[tokio::test]
async fn register_heartbeat_and_unregister() -> anyhow::Result<()> {
    let api = Api::new(Config::default());
    for (uri, expected) in [
        ("/?username=ana&identity=a1", "<update>true</update>"),
        // A heartbeat is the same registration again.
        ("/?username=ana&identity=a1", "<update>true</update>"),
        // Another identity cannot take the nick, whatever its case.
        ("/?username=ana&identity=b2", "<update>false</update>"),
        ("/?username=ANA&identity=b2", "<update>false</update>"),
        (
            "/?listUsers=true",
            "<friend><user>ana</user><identity>a1</identity></friend>",
        ),
        ("/?username=ana&identity=0", "<update>true</update>"),
        ("/?listUsers=true", ""),
        // Now the nick is free for the other identity.
        ("/?username=Ana&identity=b2", "<update>true</update>"),
        (
            "/?listUsers=true",
            "<friend><user>Ana</user><identity>b2</identity></friend>",
        ),
    ] {
        api.check(uri, expected).await?;
    }
    Ok(())
}

#[tokio::test]
async fn refused_registrations() -> anyhow::Result<()> {
    let api = Api::new(Config::default());
    for uri in [
        "/?username=ana",
        "/?identity=a1",
        "/?username=&identity=a1",
        "/?username=%20%20&identity=a1",
        "/?username=a%E2%80%8Bb&identity=a1",
        &format!("/?username={}&identity=a1", "x".repeat(33)),
        "/?username=ana&identity=",
        "/?username=ana&identity=a%20b",
    ] {
        api.check(uri, "<update>false</update>").await?;
    }
    api.check("/?listUsers=true", "").await?;
    Ok(())
}

#[tokio::test]
async fn friends_get_an_identity_only_when_online() -> anyhow::Result<()> {
    let api = Api::new(Config::default());
    api.check("/?username=ana&identity=a1", "<update>true</update>")
        .await?;
    api.check(
        "/?friends=ANA&friends=zed&friends=",
        "<friend><user>ANA</user><identity>a1</identity></friend>\
         <friend><user>zed</user></friend>\
         <friend><user></user></friend>",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn calls_combine_in_one_request() -> anyhow::Result<()> {
    let api = Api::new(Config::default());
    api.check("/?username=ana&identity=a1", "<update>true</update>")
        .await?;
    api.check(
        "/?listUsers=true&friends=ana&friends=bo&identity=b2&username=bo",
        "<update>true</update>\
         <friend><user>ana</user><identity>a1</identity></friend>\
         <friend><user>bo</user><identity>b2</identity></friend>\
         <friend><user>ana</user><identity>a1</identity></friend>\
         <friend><user>bo</user><identity>b2</identity></friend>",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn names_and_identities_are_xml_escaped() -> anyhow::Result<()> {
    let api = Api::new(Config::default());
    // The nick <b>"Tom"&'Jerry'</b> and the identity a&b<c>.
    api.check(
        "/?username=%3Cb%3E%22Tom%22%26%27Jerry%27%3C%2Fb%3E&identity=a%26b%3Cc%3E",
        "<update>true</update>",
    )
    .await?;
    api.check(
        "/?listUsers=true&friends=%3Cscript%3E",
        "<friend><user>&lt;script&gt;</user></friend>\
         <friend><user>&lt;b&gt;&quot;Tom&quot;&amp;&apos;Jerry&apos;&lt;/b&gt;</user>\
         <identity>a&amp;b&lt;c&gt;</identity></friend>",
    )
    .await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn registrations_expire_after_the_ttl_without_a_heartbeat() -> anyhow::Result<()> {
    let api = Api::new(Config::default());
    api.check("/?username=ana&identity=a1", "<update>true</update>")
        .await?;
    tokio::time::advance(TTL / 2).await;
    api.check("/?username=ana&identity=a1", "<update>true</update>")
        .await?;
    tokio::time::advance(TTL - Duration::from_millis(1)).await;
    api.check(
        "/?friends=ana",
        "<friend><user>ana</user><identity>a1</identity></friend>",
    )
    .await?;
    tokio::time::advance(Duration::from_millis(1)).await;
    api.check(
        "/?friends=ana&listUsers=true",
        "<friend><user>ana</user></friend>",
    )
    .await?;
    // Expired, the nick is anyone's.
    api.check("/?username=ana&identity=b2", "<update>true</update>")
        .await?;
    Ok(())
}

#[tokio::test]
async fn http_cannot_take_a_websocket_users_nick_and_lists_them() -> anyhow::Result<()> {
    let server = TestServer::start(Config::default()).await?;
    let (mut ana, ana_welcome) = Client::join(&server, "Ana").await?;
    let ana_xml = format!(
        "<friend><user>Ana</user><identity>{}</identity></friend>",
        ana_welcome.id
    );
    for (uri, inner) in [
        (
            "/?username=ana&identity=x1",
            "<update>false</update>".to_owned(),
        ),
        (
            "/?username=ana&identity=0",
            "<update>false</update>".to_owned(),
        ),
        ("/?listUsers=true", ana_xml.clone()),
        (
            "/?friends=ANA",
            format!(
                "<friend><user>ANA</user><identity>{}</identity></friend>",
                ana_welcome.id
            ),
        ),
        (
            "/?username=zed&identity=z1",
            "<update>true</update>".to_owned(),
        ),
    ] {
        let response = http_get(server.addr, uri).await?;
        assert_eq!(response.status, 200, "{uri}");
        assert_eq!(
            response.content_type.as_deref(),
            Some("text/xml; charset=utf-8")
        );
        assert_eq!(
            response.body,
            format!("{HEAD}<result>{inner}</result>"),
            "{uri}"
        );
    }
    // An HTTP registration holds its nick against WebSocket users too, but is not listed to
    // them: it cannot do WebRTC with Ferry.
    let mut other = Client::connect(&server).await?;
    other.send(&join("ZED", None)).await?;
    other.expect_error(ErrorCode::NickTaken).await?;
    let welcome = other.join_as("bo", None).await?;
    assert_eq!(welcome.users.len(), 1, "{:?}", welcome.users);
    assert!(arrived(&ana.recv().await?, &welcome.id));
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn root_serves_the_app_and_healthz_answers() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("index.html"), "<h1>Ferry</h1>")?;
    std::fs::write(dir.path().join("app.js"), "console.log('ferry')")?;
    let api = Api::new(Config {
        static_dir: Some(dir.path().to_owned()),
        ..Config::default()
    });
    let (status, content_type, body) = api.get("/").await?;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "<h1>Ferry</h1>"));
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let (_, _, body) = api.get("/?utm_source=mail").await?;
    assert_eq!(
        body, "<h1>Ferry</h1>",
        "a query without classic keys still gets the app"
    );
    let (_, _, body) = api.get("/app.js").await?;
    assert_eq!(body, "console.log('ferry')");
    let (status, _, body) = api.get("/some/deep/link").await?;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "<h1>Ferry</h1>"));
    api.check("/?listUsers=true", "").await?;
    let (status, _, body) = api.get("/healthz").await?;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));

    // Without an app, / says what the server is and other paths are not found.
    let bare = Api::new(Config::default());
    let (status, _, body) = bare.get("/").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("/ws"), "{body}");
    let (status, _, _) = bare.get("/app.js").await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = bare.get("/ws").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("WebSocket"), "{body}");
    Ok(())
}
