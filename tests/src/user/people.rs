//! A person's dealings with another person: verifying them (the code on screen, "They
//! match"), the marks beside their nick, texts, and accepting their offers without asking.

use anyhow::{Context, Result};

use super::User;
use crate::browser::Role;
use crate::wait::DEADLINE;

impl User {
    /// Selects `nick` and presses "Verify NICK" (or "Verify NICK again").
    pub async fn verify(&self, nick: &str) -> Result<()> {
        self.select(nick).await?;
        let first = format!("Verify {nick}");
        let again = format!("Verify {nick} again");
        self.press(&format!("the {first:?} button"), async |user| {
            match user.named(Role::Button, &first).await? {
                Some(button) => Ok(Some(button)),
                None => user.named(Role::Button, &again).await,
            }
        })
        .await
    }

    /// Waits for the verification dialog with `nick` to show its code; returns the code's
    /// words.
    pub async fn verification_code(&self, nick: &str) -> Result<String> {
        let title = format!("Verify {nick}");
        self.wait(&format!("the code in {title:?}"), DEADLINE, async |user| {
            let Some(dialog) = user.named(Role::Dialog, &title).await? else {
                return Ok(None);
            };
            let text = dialog.text().await?;
            Ok(text
                .lines()
                .map(str::trim)
                .find(|line| is_code(line))
                .map(str::to_owned))
        })
        .await
    }

    /// The status line of the verification dialog with `nick`, once it says `expected`
    /// (a part of it).
    pub async fn wait_verification_says(&self, nick: &str, expected: &str) -> Result<String> {
        let title = format!("Verify {nick}");
        self.wait(
            &format!("{title:?} saying {expected:?}"),
            DEADLINE,
            async |user| {
                let Some(dialog) = user.named(Role::Dialog, &title).await? else {
                    return Ok(None);
                };
                let text = dialog.text().await?;
                Ok(text.contains(expected).then_some(text))
            },
        )
        .await
    }

    /// Presses `button` ("They match", "They don't match", "Close") in the verification
    /// dialog with `nick`.
    pub async fn press_in_verification(&self, nick: &str, button: &str) -> Result<()> {
        let title = format!("Verify {nick}");
        self.press(&format!("{button:?} in {title:?}"), async |user| {
            let Some(dialog) = user.named(Role::Dialog, &title).await? else {
                return Ok(None);
            };
            user.browser
                .named(Some(&dialog), Role::Button, button)
                .await
        })
        .await
    }

    /// Waits until the row of `nick` under "Online users" carries `mark` ("Verified",
    /// "Other device").
    pub async fn wait_mark(&self, nick: &str, mark: &str) -> Result<()> {
        self.wait(
            &format!("{nick:?} marked {mark:?}"),
            DEADLINE,
            async |user| {
                Ok(user
                    .online_user_text(nick)
                    .await?
                    .filter(|text| text.lines().any(|line| line.trim() == mark))
                    .map(|_| ()))
            },
        )
        .await
    }

    /// The text of `nick`'s row under "Online users", if it is there.
    pub async fn online_user_text(&self, nick: &str) -> Result<Option<String>> {
        match self.online_user_item(nick).await? {
            Some(item) => Ok(Some(item.text().await?)),
            None => Ok(None),
        }
    }

    /// Selects `nick`, types `text` as a text to them, presses "Send text" and waits until it
    /// is delivered.
    pub async fn send_text(&self, nick: &str, text: &str) -> Result<()> {
        self.select(nick).await?;
        let label = format!("Text to {nick}");
        let field = self
            .wait(&format!("the {label:?} field"), DEADLINE, async |user| {
                user.named(Role::Textbox, &label).await
            })
            .await?;
        field.send_keys(text).await?;
        self.press("the \"Send text\" button, once enabled", async |user| {
            let Some(button) = user.named(Role::Button, "Send text").await? else {
                return Ok(None);
            };
            Ok(button.is_enabled().await?.then_some(button))
        })
        .await?;
        let delivered = format!("Delivered to {nick}.");
        self.wait(&format!("{delivered:?}"), DEADLINE, async |user| {
            let page = user.browser.page_text().await?;
            Ok(page.contains(&delivered).then_some(()))
        })
        .await
    }

    /// Waits for a text from `nick` that reads `text`, under "Texts".
    pub async fn wait_text_from(&self, nick: &str, text: &str) -> Result<()> {
        let from = format!("From {nick}");
        self.wait(
            &format!("a text {from} saying {text:?}"),
            DEADLINE,
            async |user| {
                let Some(list) = user.named(Role::List, "Texts").await? else {
                    return Ok(None);
                };
                for item in user.browser.all_with_role(&list, Role::ListItem).await? {
                    let shown = item.text().await?;
                    if shown.lines().next().map(str::trim) == Some(from.as_str())
                        && shown.contains(text)
                    {
                        return Ok(Some(()));
                    }
                }
                Ok(None)
            },
        )
        .await
    }

    /// Selects `nick` and ticks "Accept automatically from NICK".
    pub async fn accept_automatically_from(&self, nick: &str) -> Result<()> {
        self.select(nick).await?;
        let name = format!("Accept automatically from {nick}");
        let checkbox = self
            .wait(&format!("the {name:?} checkbox"), DEADLINE, async |user| {
                user.named(Role::Checkbox, &name).await
            })
            .await?;
        if !checkbox.is_selected().await? {
            checkbox.click().await?;
        }
        checkbox
            .is_selected()
            .await?
            .then_some(())
            .context("the checkbox did not stay ticked")
    }

    /// Whether anything on the page warns that `nick` is not on the device verified.
    pub async fn warns_of_other_device(&self, nick: &str) -> Result<bool> {
        let page = self.browser.page_text().await?;
        Ok(page.contains(&format!("{nick} is not on the device you verified")))
    }
}

/// Whether `line` reads as a verification code: three lowercase words.
fn is_code(line: &str) -> bool {
    let words: Vec<&str> = line.split(' ').collect();
    words.len() == 3
        && words
            .iter()
            .all(|word| !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase()))
}
