//! The registry's nick namespace: classic registrations and WebSocket sessions share it,
//! lookalikes of a held nick are taken, and registrations are bounded per address and in all.

use super::*;

#[test]
fn http_and_websocket_users_share_one_nick_namespace() {
    let now = Instant::now();
    let mut registry = registry();
    assert_eq!(
        registry.register_http(nick("Ana"), "a1", ip(1), now),
        Ok(())
    );
    let (conn, _peer) = connection(1);
    let refused = registry.join(nick("аna"), None, &Place::Lobby, fresh(1), conn, now);
    assert_eq!(refused.map_err(|r| r.code), Err(ErrorCode::NickTaken));

    // Once the registration has expired, the nick is free for a WebSocket user, who then
    // holds it against HTTP.
    let later = now + TTL;
    let (conn, _peer) = connection(2);
    assert!(
        registry
            .join(nick("ANA"), None, &Place::Lobby, fresh(2), conn, later)
            .is_ok()
    );
    assert_eq!(
        registry.register_http(nick("ana"), "a1", ip(1), later),
        Err(HttpRefusal::Taken)
    );
    assert_eq!(
        registry.unregister_http(&nick("ana"), ip(1)),
        Err(HttpRefusal::Taken)
    );
    assert_eq!(
        registry.identity(&nick("ａｎａ"), None, later),
        Some(fresh(2).id.to_string())
    );
}

#[test]
fn lookalikes_of_a_held_nick_are_taken() {
    let now = Instant::now();
    let mut registry = registry();
    let (conn, _ana) = connection(1);
    registry
        .join(nick("anna"), None, &Place::Lobby, fresh(1), conn, now)
        .unwrap();
    for lookalike in ["Anna", "\u{430}nn\u{430}", "ａｎｎａ", "ANNA"] {
        let (conn, _peer) = connection(2);
        let refused = registry.join(nick(lookalike), None, &Place::Lobby, fresh(2), conn, now);
        assert_eq!(
            refused.map_err(|r| r.code),
            Err(ErrorCode::NickTaken),
            "{lookalike}"
        );
        assert_eq!(
            registry.register_http(nick(lookalike), "x", ip(2), now),
            Err(HttpRefusal::Taken),
            "{lookalike}"
        );
    }
}

#[test]
fn only_the_address_that_registered_a_nick_can_remove_it() {
    let now = Instant::now();
    let mut registry = registry();
    registry
        .register_http(nick("ana"), "a1", ip(1), now)
        .unwrap();
    assert_eq!(
        registry.unregister_http(&nick("ana"), ip(2)),
        Err(HttpRefusal::NotYours)
    );
    assert_eq!(
        registry.register_http(nick("ana"), "b2", ip(2), now),
        Err(HttpRefusal::Taken)
    );
    assert_eq!(
        registry.identity(&nick("ana"), None, now).as_deref(),
        Some("a1")
    );
    assert_eq!(registry.unregister_http(&nick("ana"), ip(1)), Ok(()));
    assert_eq!(registry.identity(&nick("ana"), None, now), None);
}

#[test]
fn registrations_are_counted_per_address_and_in_all() {
    let now = Instant::now();
    let mut registry = Registry::new(
        TTL,
        IceConfig::default(),
        30,
        LobbyScope::Everyone,
        &Limits {
            http_registrations: HttpLimits {
                per_ip: 2,
                total: 3,
            },
            ..Limits::default()
        },
    );
    registry.register_http(nick("a"), "1", ip(1), now).unwrap();
    registry.register_http(nick("b"), "2", ip(1), now).unwrap();
    assert_eq!(
        registry.register_http(nick("c"), "3", ip(1), now),
        Err(HttpRefusal::TooManyFromAddress)
    );
    // A heartbeat of a held registration is not a new one.
    registry.register_http(nick("b"), "2", ip(1), now).unwrap();
    registry.register_http(nick("c"), "3", ip(2), now).unwrap();
    assert_eq!(
        registry.register_http(nick("d"), "4", ip(3), now),
        Err(HttpRefusal::Full)
    );
    // Removed and expired registrations make room again.
    registry.unregister_http(&nick("a"), ip(1)).unwrap();
    registry.register_http(nick("d"), "4", ip(3), now).unwrap();
    registry.sweep(now + TTL);
    assert_eq!(registry.http.total, 0);
    registry
        .register_http(nick("e"), "5", ip(1), now + TTL)
        .unwrap();
}

mod lookalike_namespace {
    use proptest::prelude::*;

    use super::*;

    /// Characters that look alike in groups (Latin, Cyrillic, Greek and fullwidth letters,
    /// digits, combining marks, spaces), so that random nicks often collide.
    const ALPHABET: &[char] = &[
        'a', 'A', '\u{430}', 'ａ', 'o', 'O', '0', '\u{43E}', '\u{3BF}', 'l', 'I', '1', 'e', 'é',
        '\u{301}', 'r', 'n', 'm', 's', 'S', 'ß', ' ', '\u{A0}', '\u{3000}',
    ];

    fn nick_text() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(ALPHABET), 1..6)
            .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        /// Two nicks with one key can never both be held, over either API, and two with
        /// different keys always can.
        #[test]
        fn nicks_that_look_alike_are_never_both_held(first in nick_text(), second in nick_text()) {
            let (Ok(first), Ok(second)) = (Nick::new(&first), Nick::new(&second)) else {
                return Ok(());
            };
            let (a, b) = (crate::lookalike::keys(first.as_str()), crate::lookalike::keys(second.as_str()));
            let alike = a.iter().any(|key| b.contains(key));
            let now = Instant::now();

            let mut sessions = registry();
            let (conn, _first) = connection(1);
            sessions.join(first.clone(), None, &Place::Lobby, fresh(1), conn, now).unwrap();
            let (conn, _second) = connection(2);
            let joined = sessions.join(second.clone(), None, &Place::Lobby, fresh(2), conn, now);
            prop_assert_eq!(joined.is_ok(), !alike);

            let mut registrations = registry();
            registrations.register_http(first, "1", ip(1), now).unwrap();
            let registered = registrations.register_http(second, "2", ip(2), now);
            prop_assert_eq!(registered.is_ok(), !alike);
        }
    }
}
