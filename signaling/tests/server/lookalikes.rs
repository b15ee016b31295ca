//! The lookalike table: each nick on the right is refused while the one on the left is held,
//! over the WebSocket and the classic API alike, because it looks the same (or holds a
//! character that draws nothing); the nicks at the end look different and are let in.

use ferry_protocol::ErrorCode;
use ferry_signaling::{Config, Limits};

use crate::support::{Client, TestServer, http_get, join};

/// A held nick and one that imitates it.
const IMITATIONS: &[(&str, &str)] = &[
    // Found by an attacker against the last release.
    ("Paul", "PauI"),          // capital I for l
    ("Bill", "BiII"),          // capital I for l, twice
    ("Alex", "\u{13AA}lex"),   // Cherokee A
    ("anna", "anna\u{2800}"),  // braille pattern blank after
    ("anna", "\u{2800}anna"),  // and before
    ("anna", "an\u{13430}na"), // an Egyptian hieroglyph format control inside
    ("anna", "an\u{13431}na"), // and another
    ("José", "José\u{301}"),   // an accent typed twice
    ("Zoë", "Zoë\u{308}"),     // a diaeresis typed twice
    // From UTS #39's confusables data.
    ("hello", "\u{4BB}ello"),         // Cyrillic shha
    ("joe", "\u{458}oe"),             // Cyrillic je
    ("dan", "\u{501}an"),             // Cyrillic komi de
    ("sam", "\u{455}am"),             // Cyrillic dze
    ("max", "m\u{430}\u{445}"),       // Cyrillic a and ha
    ("amy", "am\u{443}"),             // Cyrillic u
    ("quinn", "\u{51B}uinn"),         // Cyrillic qa
    ("wes", "\u{51D}es"),             // Cyrillic we
    ("eve", "\u{435}v\u{435}"),       // Cyrillic ie
    ("pia", "\u{440}\u{456}\u{430}"), // Cyrillic er, i and a
    ("lea", "\u{2113}ea"),            // script small l
    ("lea", "\u{1C0}ea"),             // Latin letter dental click
    ("lea", "\u{399}ea"),             // Greek capital iota
    ("lea", "\u{406}ea"),             // Cyrillic capital I
    ("lea", "\u{A4F2}ea"),            // Lisu letter I
    ("gina", "\u{261}ina"),           // Latin script g
    ("vic", "\u{3BD}ic"),             // Greek nu
    ("vic", "\u{1D20}ic"),            // Latin letter small capital V
    ("ada", "\u{251}da"),             // Latin alpha
    ("bob", "\u{42C}ob"),             // Cyrillic capital soft sign
    ("nina", "\u{578}ina"),           // Armenian vo
    ("una", "\u{57D}na"),             // Armenian seh
    ("rex", "\u{433}ex"),             // Cyrillic ghe
    ("xena", "\u{445}ena"),           // Cyrillic ha
    ("oscar", "0scar"),               // digit zero
    ("ivy", "\u{2170}vy"),            // small Roman numeral one
    ("sol", "\u{A731}ol"),            // Latin letter small capital S
    ("yuki", "\u{28F}uki"),           // Latin letter small capital Y
    ("wanda", "\u{13B3}anda"),        // Cherokee WE
    ("hugo", "\u{4BA}ugo"),           // Cyrillic capital shha
    ("zoe", "\u{1D22}oe"),            // Latin letter small capital Z
    ("wim", "\u{461}im"),             // Cyrillic omega
];

/// Nicks that look different from every held one.
const DIFFERENT: &[&str] = &["ana", "bo", "leo", "annas", "zoey"];

#[tokio::test]
async fn every_imitation_in_the_table_is_refused_and_different_nicks_are_not() -> anyhow::Result<()>
{
    // The classic API is asked once per row, from one address.
    let server = TestServer::start(Config {
        limits: Limits {
            http_requests_per_sec: 1000,
            http_request_burst: 1000,
            ..Limits::default()
        },
        ..Config::default()
    })
    .await?;
    let mut held = Vec::new();
    let mut holders: Vec<&str> = IMITATIONS.iter().map(|(nick, _)| *nick).collect();
    holders.sort_unstable();
    holders.dedup();
    for nick in holders {
        held.push(Client::join(&server, nick).await?.0);
    }
    let mut other = Client::connect(&server).await?;
    for (nick, imitation) in IMITATIONS {
        other.send(&join(imitation, None)).await?;
        let error = other.recv().await?;
        assert!(
            matches!(
                &error,
                ferry_protocol::ServerMessage::Error {
                    code: ErrorCode::NickTaken | ErrorCode::InvalidNick,
                    ..
                }
            ),
            "{imitation:?} was not refused beside {nick:?}: {error:?}"
        );
        let query = format!(
            "/?username={}&identity=x1",
            form_urlencoded::byte_serialize(imitation.as_bytes()).collect::<String>()
        );
        let answer = http_get(server.addr, &query).await?;
        assert!(
            answer.body.contains("<update>false</update>"),
            "{imitation:?} was registered beside {nick:?}"
        );
    }
    for nick in DIFFERENT {
        let (client, welcome) = Client::join(&server, nick).await?;
        assert_eq!(welcome.nick, *nick);
        held.push(client);
    }
    server.stop().await?;
    Ok(())
}
