//! The classic HTTP user API at `/`, in the XML shape of Adobe's reg.cgi, and what `/` serves
//! otherwise.
//!
//! `?username=NICK&identity=ID` registers or refreshes a nick (`identity=0` unregisters it),
//! `?friends=A&friends=B` looks names up and `?listUsers=true` lists everyone online; they may
//! be combined in one request and are answered in that order. Unlike reg.cgi, a nick belongs
//! to its holder until it expires: a registration never takes a nick (or a lookalike of one)
//! from a WebSocket user or from another unexpired identity, and only the address that made a
//! registration can remove it. Each address may send a few requests a second and hold a few
//! registrations; more get 429 or `<update>false</update>`.

use std::net::{IpAddr, SocketAddr};

use axum::Extension;
use axum::extract::{ConnectInfo, RawQuery, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ferry_protocol::Nick;
use tokio::time::Instant;

use crate::AppState;
use crate::refused::Refused;
use crate::registry::HttpRefusal;
use crate::store::classic::{self as shared, Registered};
use crate::store::redis::RedisStore;

/// The longest identity accepted; reg.cgi's were 64 hexadecimal digits.
const MAX_IDENTITY_CHARS: usize = 256;

/// What one request to the classic API asks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Query {
    username: Option<String>,
    identity: Option<String>,
    friends: Vec<String>,
    list_users: bool,
}

/// `GET /`: the classic API when the query names one of its parameters, else the app (or, with
/// no app to serve, a line saying what this server is).
pub(crate) async fn root(
    State(state): State<AppState>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    RawQuery(raw): RawQuery,
    request: Request,
) -> Response {
    if let Some(query) = raw.as_deref().and_then(Query::parse) {
        let from = crate::address::client(
            connect_info.map(|Extension(ConnectInfo(addr))| addr.ip()),
            request.headers(),
            state.config().trust_proxy,
        );
        let now = Instant::now();
        if let Some(ip) = from
            && !state.http_request_allowed(ip, now)
        {
            return Refused::TooFast.into_response();
        }
        let body = match state.cluster().map(|cluster| cluster.redis()) {
            Some(redis) => {
                if !shared_request_allowed(&state, redis, from).await {
                    return Refused::TooFast.into_response();
                }
                answer_shared(&state, redis, &query, from, now).await
            }
            None => answer(&state, &query, from, now),
        };
        return ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response();
    }
    match &state.shared.static_files {
        Some(files) => files.serve(request).await,
        None => "Ferry's signaling server: browsers connect to /ws.\n".into_response(),
    }
}

impl Query {
    /// Parses a query string; `None` when it has none of the classic parameters.
    fn parse(raw: &str) -> Option<Self> {
        let mut query = Self::default();
        let mut classic = false;
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            match &*key {
                "username" => query.username = Some(value.into_owned()),
                "identity" => query.identity = Some(value.into_owned()),
                "friends" => query.friends.push(value.into_owned()),
                "listUsers" => query.list_users = value == "true",
                _ => continue,
            }
            classic = true;
        }
        classic.then_some(query)
    }
}

/// Carries out `query`, asked from `from` at `now`, and writes the XML answer. The registry
/// is locked only to read and change it; the XML is written after.
fn answer(state: &AppState, query: &Query, from: Option<IpAddr>, now: Instant) -> String {
    let mut registry = state.registry();
    let updated = (query.username.is_some() || query.identity.is_some()).then(|| {
        let done = match (&query.username, &query.identity) {
            (Some(username), Some(identity)) => match Nick::new(username) {
                Ok(nick) if identity == "0" => registry.unregister_http(&nick, from),
                Ok(nick) if valid_identity(identity) => {
                    registry.register_http(nick, identity, from, now)
                }
                Ok(_) | Err(_) => Err(HttpRefusal::Invalid),
            },
            _ => Err(HttpRefusal::Invalid),
        };
        if let Err(refusal) = done {
            tracing::debug!(username = ?query.username, %refusal, "refused an HTTP registration");
        }
        done.is_ok()
    });
    let friends: Vec<(&String, Option<String>)> = query
        .friends
        .iter()
        .map(|name| {
            let identity = Nick::new(name)
                .ok()
                .and_then(|nick| registry.identity(&nick, from, now));
            (name, identity)
        })
        .collect();
    let online = query.list_users.then(|| registry.online(from, now));
    drop(registry);
    xml(updated, friends, online)
}

/// The network a request comes from, as the shared store counts it.
fn network(from: Option<IpAddr>) -> String {
    from.map_or_else(
        || "none".to_owned(),
        |ip| crate::address::place(ip).to_string(),
    )
}

/// Whether a request from `from` is within its address's rate across every instance. With
/// the store out of reach it is let through: each instance's own rate still holds.
async fn shared_request_allowed(
    state: &AppState,
    redis: &RedisStore,
    from: Option<IpAddr>,
) -> bool {
    let limits = state.config().limits;
    shared::request_allowed(
        redis,
        &network(from),
        limits.http_requests_per_sec,
        limits.http_request_burst,
    )
    .await
    .unwrap_or(true)
}

/// [`answer`] for an instance of several, whose registrations are in Redis: what the shared
/// store holds, with the WebSocket users the registry knows of. What the store cannot be
/// asked now is answered as not done or not there.
async fn answer_shared(
    state: &AppState,
    redis: &RedisStore,
    query: &Query,
    from: Option<IpAddr>,
    now: Instant,
) -> String {
    let lobby = state.registry().lobby_of(from).map(|key| key.wire());
    let network = network(from);
    let limits = state.config().limits.http_registrations;
    let updated = match (&query.username, &query.identity) {
        (None, None) => None,
        (Some(username), Some(identity)) => {
            // An invalid nick or identity, or no lobby to register in, does nothing.
            let done = match (Nick::new(username), &lobby) {
                (Ok(nick), Some(lobby)) if identity == "0" => {
                    Some(shared::unregister(redis, lobby, &nick, &network).await)
                }
                (Ok(nick), Some(lobby)) if valid_identity(identity) => {
                    let asked = shared::Asked {
                        place: lobby,
                        nick: &nick,
                        identity,
                        from: &network,
                    };
                    let ttl = state.config().presence_ttl;
                    let limits = (limits.per_ip, limits.total);
                    Some(shared::register(redis, &asked, ttl, limits).await)
                }
                _ => None,
            };
            if !matches!(done, Some(Ok(Registered::Done))) {
                tracing::debug!(username, ?done, "refused an HTTP registration");
            }
            Some(matches!(done, Some(Ok(Registered::Done))))
        }
        _ => Some(false),
    };
    let mut friends = Vec::new();
    for name in &query.friends {
        let Ok(nick) = Nick::new(name) else {
            friends.push((name, None));
            continue;
        };
        let mut identity = state.registry().identity(&nick, from, now);
        if let (None, Some(lobby)) = (&identity, &lobby) {
            identity = shared::identity(redis, lobby, &nick).await.ok().flatten();
        }
        friends.push((name, identity));
    }
    let online = if query.list_users {
        let mut online = state.registry().online(from, now);
        if let Some(lobby) = &lobby {
            online.extend(shared::listed(redis, lobby).await.unwrap_or_default());
        }
        online.sort_by_cached_key(|(nick, _)| nick.key());
        Some(online)
    } else {
        None
    };
    xml(updated, friends, online)
}

/// The XML answer: whether the update was done, each friend's identity, everyone online.
fn xml(
    updated: Option<bool>,
    friends: Vec<(&String, Option<String>)>,
    online: Option<Vec<(Nick, String)>>,
) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<result>");
    if let Some(updated) = updated {
        xml.push_str(if updated {
            "<update>true</update>"
        } else {
            "<update>false</update>"
        });
    }
    for (name, identity) in friends {
        push_friend(&mut xml, name, identity.as_deref());
    }
    for (nick, identity) in online.into_iter().flatten() {
        push_friend(&mut xml, nick.as_str(), Some(&identity));
    }
    xml.push_str("</result>");
    xml
}

/// An identity is any run of 1 to [`MAX_IDENTITY_CHARS`] visible ASCII characters.
fn valid_identity(identity: &str) -> bool {
    !identity.is_empty()
        && identity.len() <= MAX_IDENTITY_CHARS
        && identity.bytes().all(|b| b.is_ascii_graphic())
}

fn push_friend(xml: &mut String, user: &str, identity: Option<&str>) {
    xml.push_str("<friend><user>");
    push_escaped(xml, user);
    xml.push_str("</user>");
    if let Some(identity) = identity {
        xml.push_str("<identity>");
        push_escaped(xml, identity);
        xml.push_str("</identity>");
    }
    xml.push_str("</friend>");
}

/// Appends `text` with XML's five special characters escaped, and any character XML 1.0
/// cannot carry at all (a control character from an unvalidated friend name) replaced.
fn push_escaped(xml: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => xml.push_str("&amp;"),
            '<' => xml.push_str("&lt;"),
            '>' => xml.push_str("&gt;"),
            '"' => xml.push_str("&quot;"),
            '\'' => xml.push_str("&apos;"),
            '\t' | '\n' | '\r' => xml.push(c),
            c if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') => xml.push('\u{FFFD}'),
            c => xml.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeated_friends_and_the_other_keys() {
        assert_eq!(
            Query::parse("friends=ana&friends=B%C3%B3&listUsers=true&username=cy&identity=42&x=1"),
            Some(Query {
                username: Some("cy".into()),
                identity: Some("42".into()),
                friends: vec!["ana".into(), "Bó".into()],
                list_users: true,
            })
        );
    }

    #[test]
    fn a_query_without_classic_keys_is_not_for_the_api() {
        assert_eq!(Query::parse(""), None);
        assert_eq!(Query::parse("utm_source=x"), None);
        assert!(Query::parse("listUsers=false").is_some());
    }

    #[test]
    fn escapes_markup_and_replaces_what_xml_cannot_hold() {
        let mut xml = String::new();
        push_escaped(&mut xml, "<a href=\"x\">Tom & Jerry's</a>\u{1}");
        assert_eq!(
            xml,
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&apos;s&lt;/a&gt;\u{FFFD}"
        );
    }

    #[test]
    fn identities_are_visible_ascii() {
        assert!(valid_identity("0123abcdef"));
        assert!(!valid_identity(""));
        assert!(!valid_identity("a b"));
        assert!(!valid_identity(&"a".repeat(MAX_IDENTITY_CHARS + 1)));
    }
}
