//! The one nick namespace of both kinds of user: who holds each nick, found by any of its
//! lookalike keys ([`crate::lookalike::keys`]), so a nick is taken when it shares a key with
//! a held one.

use std::collections::HashMap;

use super::Holder;
use crate::lookalike;

/// Who holds each nick: by its first key, with every key of it pointing there.
#[derive(Debug, Default)]
pub(super) struct Names {
    held: HashMap<String, Held>,
    /// Every key of every held nick, to the key it is held under. No key points to two
    /// holders: a nick that shares a key with a held one is never held itself.
    index: HashMap<String, String>,
}

#[derive(Debug)]
struct Held {
    holder: Holder,
    keys: [String; 2],
}

impl Names {
    /// The key under which `nick`, or a nick that looks like it, is held, and its holder.
    pub(super) fn find(&self, nick: &str) -> Option<(&str, &Holder)> {
        lookalike::keys(nick).iter().find_map(|key| {
            let at = self.index.get(key)?;
            let held = self.held.get(at)?;
            Some((at.as_str(), &held.holder))
        })
    }

    /// The holder of the nick held under `key`.
    pub(super) fn get(&self, key: &str) -> Option<&Holder> {
        self.held.get(key).map(|held| &held.holder)
    }

    /// Holds `nick`, which [`Self::find`] found free, for `holder`; returns the key it is held
    /// under.
    pub(super) fn hold(&mut self, nick: &str, holder: Holder) -> String {
        let keys = lookalike::keys(nick);
        let at = keys[0].clone();
        for key in &keys {
            self.index.insert(key.clone(), at.clone());
        }
        self.held.insert(at.clone(), Held { holder, keys });
        at
    }

    /// Frees the nick held under `key`; returns its holder.
    pub(super) fn free(&mut self, key: &str) -> Option<Holder> {
        let held = self.held.remove(key)?;
        for key in &held.keys {
            self.index.remove(key);
        }
        Some(held.holder)
    }

    /// Frees `nick` when `leaving` says its holder is the one going away: a nick that someone
    /// else holds by now stays theirs.
    pub(super) fn free_if(&mut self, nick: &str, leaving: impl FnOnce(&Holder) -> bool) {
        let key = match self.find(nick) {
            Some((key, holder)) if leaving(holder) => key.to_owned(),
            _ => return,
        };
        self.free(&key);
    }

    /// Whether no nick is held.
    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Every held nick's key and holder.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&String, &Holder)> {
        self.held.iter().map(|(key, held)| (key, &held.holder))
    }
}
