//! Where the page is, as its address says: a private room's link carries the room in the
//! fragment (`#room=ID`), which browsers never send to a server, so proxies and server logs
//! never see it.

use ferry_protocol::RoomId;

/// What the fragment names the room by.
const ROOM_KEY: &str = "room=";

/// The address fragment names a room, but not one that can exist.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "This room link is broken: after “#room=” it should have 32 letters and digits. Ask for \
     the link again, or make a room of your own."
)]
pub struct BrokenLink;

/// The room the fragment `hash` (with or without its `#`) names, if it names one.
pub fn room_in(hash: &str) -> Result<Option<RoomId>, BrokenLink> {
    let hash = hash.strip_prefix('#').unwrap_or(hash);
    let Some(id) = hash.split('&').find_map(|part| part.strip_prefix(ROOM_KEY)) else {
        return Ok(None);
    };
    RoomId::parse(id.trim()).map(Some).map_err(|_| BrokenLink)
}

/// The fragment that names `room`.
pub fn fragment(room: &RoomId) -> String {
    format!("#{ROOM_KEY}{}", room.as_str())
}

/// The link to `room` on the page at `origin` (`https://host`).
pub fn link(origin: &str, room: &RoomId) -> String {
    format!("{origin}/{}", fragment(room))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> RoomId {
        RoomId::from_random_bytes([0x3c; RoomId::BYTES])
    }

    #[test]
    fn a_room_link_round_trips_through_its_fragment() {
        let link = link("https://ferry.example", &room());
        assert_eq!(
            link,
            format!("https://ferry.example/#room={}", "3c".repeat(16))
        );
        let hash = link.split_once('#').unwrap().1;
        assert_eq!(room_in(hash), Ok(Some(room())));
        assert_eq!(room_in(&fragment(&room())), Ok(Some(room())));
    }

    #[test]
    fn no_fragment_is_the_lobby_and_a_mangled_one_is_a_broken_link() {
        assert_eq!(room_in(""), Ok(None));
        assert_eq!(room_in("#"), Ok(None));
        assert_eq!(room_in("#top"), Ok(None));
        let cut = format!("#room={}", &"3c".repeat(16)[..20]);
        assert_eq!(room_in(&cut), Err(BrokenLink));
        assert_eq!(room_in("#room="), Err(BrokenLink));
        assert_eq!(
            room_in(&format!("#room={}", "3C".repeat(16))),
            Err(BrokenLink)
        );
        assert!(BrokenLink.to_string().ends_with('.'));
    }
}
