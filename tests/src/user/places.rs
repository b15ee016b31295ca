//! A person's ways between places: into a private room by its link, a new room or a pairing
//! code, and what the room shows them (its link, a code for one more device).

use anyhow::{Context, Result, bail};
use fantoccini::Locator;

use super::User;
use crate::browser::Role;
use crate::wait::DEADLINE;

impl User {
    /// On a page opened at a room's link: types `nick`, presses "Join room", and waits until
    /// the list of online users is shown.
    pub async fn join_room(&self, nick: &str) -> Result<()> {
        self.submit_nick_with(nick, "Join room").await?;
        self.wait_joined(nick).await
    }

    /// On the join screen: types `nick`, presses "New private room", and waits until the
    /// room's link is shown; returns it.
    pub async fn join_new_room(&self, nick: &str) -> Result<String> {
        self.submit_nick_with(nick, "New private room").await?;
        self.wait_joined(nick).await?;
        self.room_link().await
    }

    /// On the join screen of a server without a lobby: types `nick`, presses "Create a room",
    /// and waits until the room's link is shown; returns it.
    pub async fn create_room(&self, nick: &str) -> Result<String> {
        self.submit_nick_with(nick, "Create a room").await?;
        self.wait_joined(nick).await?;
        self.room_link().await
    }

    /// Whether the page offers a button named `name`.
    pub async fn offers(&self, name: &str) -> Result<bool> {
        Ok(self.named(Role::Button, name).await?.is_some())
    }

    /// Waits until the page offers a button named `name`.
    pub async fn wait_offered(&self, name: &str) -> Result<()> {
        self.wait(&format!("the {name} button"), DEADLINE, async |user| {
            Ok(user.offers(name).await?.then_some(()))
        })
        .await
    }

    /// What the page's alert says, once it says something.
    pub async fn wait_alert(&self) -> Result<String> {
        self.wait("an alert", DEADLINE, async |user| user.alert_text().await)
            .await
    }

    /// In a room: presses "Leave room" and waits until the page is in the lobby.
    pub async fn leave_room(&self) -> Result<()> {
        self.press("the Leave room button", async |user| {
            user.named(Role::Button, "Leave room").await
        })
        .await?;
        self.wait("the lobby", DEADLINE, async |user| {
            let in_lobby = user.offers("New private room").await?
                && user.named(Role::List, "Online users").await?.is_some();
            Ok(in_lobby.then_some(()))
        })
        .await
    }

    /// On the join screen: types `nick` and the pairing code `code`, presses "Join with code",
    /// and waits until the list of online users is shown.
    pub async fn join_with_code(&self, nick: &str, code: &str) -> Result<()> {
        self.type_code(code).await?;
        self.submit_nick_with(nick, "Join with code").await?;
        self.wait_joined(nick).await
    }

    /// As [`User::join_with_code`], for a code the app must refuse: returns what it says.
    pub async fn join_with_code_refused(&self, nick: &str, code: &str) -> Result<String> {
        self.type_code(code).await?;
        // Pressing the button clears the last refusal at once (the app does so as it starts
        // joining), so the text found after it is this code's answer.
        self.submit_nick_with(nick, "Join with code").await?;
        self.wait(
            &format!("a refusal of the code {code}"),
            DEADLINE,
            async |user| {
                if user.named(Role::List, "Online users").await?.is_some() {
                    bail!("the code {code} let {nick:?} in");
                }
                user.alert_text().await
            },
        )
        .await
    }

    /// Joined: presses "New private room" and returns the new room's link once shown.
    pub async fn new_room(&self) -> Result<String> {
        self.press("the New private room button", async |user| {
            user.named(Role::Button, "New private room").await
        })
        .await?;
        self.room_link().await
    }

    /// The link of the room this person is in, once the page shows it.
    pub async fn room_link(&self) -> Result<String> {
        self.wait("the room's link", DEADLINE, async |user| {
            let Some(field) = user.named(Role::Textbox, "Room link").await? else {
                return Ok(None);
            };
            let link = field.prop("value").await?.unwrap_or_default();
            Ok((!link.is_empty()).then_some(link))
        })
        .await
    }

    /// Whether the room shows its link as a QR code: an image of that name holding a drawing.
    pub async fn shows_qr_code(&self) -> Result<bool> {
        let found = self
            .client()
            .find_all(Locator::Css(
                "[role=img][aria-label='QR code of the room link'] svg path",
            ))
            .await?;
        Ok(!found.is_empty())
    }

    /// Presses "Pair with a code" and returns the code once shown (digits only).
    pub async fn pair_with_code(&self) -> Result<String> {
        self.press("the Pair with a code button", async |user| {
            user.named(Role::Button, "Pair with a code").await
        })
        .await?;
        self.wait("a pairing code", DEADLINE, async |user| {
            let found = user.client().find_all(Locator::Id("pair-code")).await?;
            let Some(code) = found.into_iter().next() else {
                return Ok(None);
            };
            let digits: String = code
                .text()
                .await?
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            Ok((digits.len() == 6).then_some(digits))
        })
        .await
    }

    async fn type_code(&self, code: &str) -> Result<()> {
        let field = self
            .named(Role::Textbox, "Or enter a pairing code")
            .await?
            .context("no textbox named \"Or enter a pairing code\"")?;
        field.clear().await?;
        field.send_keys(code).await?;
        Ok(())
    }

    pub async fn wait_joined(&self, nick: &str) -> Result<()> {
        self.wait(&format!("joining as {nick:?}"), DEADLINE, async |user| {
            if let Some(alert) = user.alert_text().await? {
                bail!("joining as {nick:?} was refused: {alert:?}");
            }
            user.named(Role::List, "Online users").await
        })
        .await?;
        Ok(())
    }
}
