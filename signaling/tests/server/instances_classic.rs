//! The classic HTTP API over several instances on one Redis: a registration made through one
//! instance is looked up, listed and removed through another, holds its nick against
//! WebSocket users everywhere, and the limits on registrations and requests are one budget
//! for the whole service.

use std::time::Duration;

use ferry_protocol::ErrorCode;
use ferry_signaling::testing::RedisServer;
use ferry_signaling::{Config, HttpLimits};

use crate::support::*;

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

fn on(redis: &RedisServer) -> Config {
    Config {
        redis: Some(redis.url()),
        instance_ttl: Duration::from_secs(3),
        ..Config::default()
    }
}

/// The body of `GET path` on `server`, which must answer 200 with an XML result: its inside.
async fn classic(server: &TestServer, path: &str) -> anyhow::Result<String> {
    let response = http_get(server.addr, path).await?;
    anyhow::ensure!(response.status == 200, "{path}: {response:?}");
    let inner = response
        .body
        .strip_prefix(&format!("{HEAD}<result>"))
        .and_then(|rest| rest.strip_suffix("</result>"))
        .map(str::to_owned);
    inner.ok_or_else(|| anyhow::anyhow!("{path}: not a result: {}", response.body))
}

#[tokio::test]
async fn a_registration_through_one_instance_is_the_same_through_another() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let a = TestServer::start(on(&redis)).await?;
    let b = TestServer::start(on(&redis)).await?;
    let (_ana, ana_welcome) = Client::join(&a, "ana").await?;

    assert_eq!(
        classic(&a, "/?username=carl&identity=c1").await?,
        "<update>true</update>"
    );
    assert_eq!(
        classic(&b, "/?friends=CARL").await?,
        "<friend><user>CARL</user><identity>c1</identity></friend>"
    );
    // Listed through B with the WebSocket user of A, sorted by nick.
    let listed = classic(&b, "/?listUsers=true").await?;
    assert_eq!(
        listed,
        format!(
            "<friend><user>ana</user><identity>{}</identity></friend>\
             <friend><user>carl</user><identity>c1</identity></friend>",
            ana_welcome.id
        )
    );
    // The nick is held against everyone: a page on B, and another identity through B.
    let mut page = Client::connect(&b).await?;
    page.send(&join("Carl", None)).await?;
    page.expect_error(ErrorCode::NickTaken).await?;
    assert_eq!(
        classic(&b, "/?username=carl&identity=c2").await?,
        "<update>false</update>"
    );
    assert_eq!(
        classic(&b, "/?username=ana&identity=a9").await?,
        "<update>false</update>",
        "a registration took the nick of a page on another instance"
    );
    // Removed through B (from the same address), it is gone through A.
    assert_eq!(
        classic(&b, "/?username=carl&identity=0").await?,
        "<update>true</update>"
    );
    assert_eq!(
        classic(&a, "/?friends=carl").await?,
        "<friend><user>carl</user></friend>"
    );
    Ok(())
}

#[tokio::test]
async fn registrations_and_requests_are_one_budget_across_instances() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let strict = || {
        let mut config = on(&redis);
        config.limits.http_registrations = HttpLimits {
            per_ip: 2,
            ..HttpLimits::default()
        };
        config
    };
    let a = TestServer::start(strict()).await?;
    let b = TestServer::start(strict()).await?;
    for (server, nick) in [(&a, "one"), (&b, "two")] {
        let path = format!("/?username={nick}&identity={nick}");
        assert_eq!(classic(server, &path).await?, "<update>true</update>");
    }
    for server in [&a, &b] {
        assert_eq!(
            classic(server, "/?username=three&identity=three").await?,
            "<update>false</update>",
            "a third registration from one address"
        );
    }

    // Requests on a Redis of their own: the registrations above counted as requests too.
    let fresh = RedisServer::start().await?;
    let hurried = || {
        let mut config = on(&fresh);
        config.limits.http_requests_per_sec = 1;
        config.limits.http_request_burst = 3;
        config
    };
    let c = TestServer::start(hurried()).await?;
    let d = TestServer::start(hurried()).await?;
    // Three requests within the burst, over both instances; the fourth is over it on either.
    for server in [&c, &d, &c] {
        assert_eq!(http_get(server.addr, "/?friends=x").await?.status, 200);
    }
    assert_eq!(http_get(d.addr, "/?friends=x").await?.status, 429);
    Ok(())
}
