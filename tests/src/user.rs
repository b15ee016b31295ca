//! One person using Ferry in their own browser, driven only through what they see: controls
//! found by role and accessible name (the names the app promises in its issue), and visible text.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fantoccini::Locator;
use fantoccini::elements::Element;

mod people;
mod phone;
mod places;

pub use phone::{PHONE, TOUCH_TARGET};

use crate::browser::{Browser, Role};
use crate::files::SourceFile;
use crate::wait::{DEADLINE, wait_for};

/// The status texts a transfer row can show; a row's status is the text that starts with one.
const STATUSES: [&str; 9] = [
    "Waiting for ",
    "Sending",
    "Receiving",
    "Verifying",
    "Paused — ",
    "Complete",
    "Declined",
    "Cancelled",
    "Failed: ",
];

/// How the banner shown while the connection to the server is lost begins.
const CONNECTION_LOST: &str = "Connection to the server lost";

/// A person with Ferry open in their browser.
#[derive(Debug, Clone)]
pub struct User {
    label: String,
    browser: Arc<Browser>,
}

impl User {
    /// Opens Ferry at `url` in `browser` and waits until its join form is there.
    pub async fn open(label: &str, browser: Arc<Browser>, url: &str) -> Result<Self> {
        browser.client().goto(url).await?;
        let user = Self {
            label: label.to_owned(),
            browser,
        };
        user.wait_join_form().await?;
        Ok(user)
    }

    /// Starts opening Ferry at `url` in `browser` and returns at once (with a browser that
    /// does not wait for pages to load).
    pub async fn open_without_waiting(
        label: &str,
        browser: Arc<Browser>,
        url: &str,
    ) -> Result<Self> {
        browser.client().goto(url).await?;
        Ok(Self {
            label: label.to_owned(),
            browser,
        })
    }

    /// Waits until Ferry's join form is there, and the loading view gone.
    pub async fn wait_started(&self) -> Result<()> {
        self.wait_join_form().await
    }

    /// Sends Chromium's DevTools command `command` to this person's page.
    pub async fn devtools(
        &self,
        command: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value> {
        self.browser.devtools(command, params).await
    }

    /// Where this person's browser saves downloads.
    pub fn downloads(&self) -> &Path {
        self.browser.downloads()
    }

    /// This person's browser profile folder, the `--user-data-dir` of their Chromium or the
    /// `-profile` of their Firefox.
    pub fn profile(&self) -> &Path {
        self.browser.profile()
    }

    /// Which browser this person uses.
    pub fn kind(&self) -> crate::browser::Kind {
        self.browser.kind()
    }

    /// The WebDriver client of this person's browser, for what the helpers here do not cover,
    /// such as a benchmark timing events inside the page.
    pub fn client(&self) -> &fantoccini::Client {
        self.browser.client()
    }

    /// Types `nick`, presses Join, and waits until the list of online users is shown.
    pub async fn join(&self, nick: &str) -> Result<()> {
        self.submit_nick(nick).await?;
        self.wait(&format!("joining as {nick:?}"), DEADLINE, async |user| {
            if let Some(alert) = user.alert_text().await? {
                bail!("joining as {nick:?} was refused: {alert:?}");
            }
            user.named(Role::List, "Online users").await
        })
        .await?;
        Ok(())
    }

    /// Types `nick` and presses Join, without waiting for what comes of it.
    pub async fn press_join(&self, nick: &str) -> Result<()> {
        self.submit_nick(nick).await
    }

    /// Waits until a status banner starting with `start` shows; returns its text.
    pub async fn wait_banner(&self, start: &str) -> Result<String> {
        self.wait(
            &format!("a banner saying {start:?}"),
            DEADLINE,
            async |user| {
                let live = user
                    .browser
                    .client()
                    .find_all(Locator::Css("[role=status]"));
                for region in live.await? {
                    let text = region.text().await?.trim().to_owned();
                    if region.is_displayed().await? && text.starts_with(start) {
                        return Ok(Some(text));
                    }
                }
                Ok(None)
            },
        )
        .await
    }

    /// Types `nick`, presses Join, and returns the refusal the app shows next to the field.
    /// Fails if the app lets this person in instead.
    pub async fn join_refused(&self, nick: &str) -> Result<String> {
        self.submit_nick(nick).await?;
        let alert = self
            .wait(&format!("a refusal of {nick:?}"), DEADLINE, async |user| {
                if user.named(Role::List, "Online users").await?.is_some() {
                    bail!("the app let a second {nick:?} in");
                }
                user.alert_text().await
            })
            .await?;
        Ok(alert)
    }

    /// Waits until the list of online users is exactly `expected`, in any order.
    pub async fn wait_online_users(&self, expected: &[&str]) -> Result<()> {
        let mut want: Vec<String> = expected.iter().map(|nick| nick.to_lowercase()).collect();
        want.sort();
        self.wait(
            &format!("\"Online users\" = {expected:?}"),
            DEADLINE,
            async |user| {
                let Some(shown) = user.online_users().await? else {
                    return Ok(None);
                };
                let mut shown: Vec<String> = shown.iter().map(|nick| nick.to_lowercase()).collect();
                shown.sort();
                Ok((shown == want).then_some(()))
            },
        )
        .await
    }

    /// Sends `files` to `nick`: selects them in the list, chooses the files, presses Send.
    pub async fn send(&self, nick: &str, files: &[&SourceFile]) -> Result<()> {
        self.select(nick).await?;
        self.choose_files(files).await?;
        self.press_send().await
    }

    /// Selects `nick` under "Online users".
    pub async fn select(&self, nick: &str) -> Result<()> {
        self.press(&format!("{nick:?} under \"Online users\""), async |user| {
            user.online_user_item(nick).await
        })
        .await
    }

    /// Presses "Send" once it can be pressed.
    pub async fn press_send(&self) -> Result<()> {
        self.press("the Send button, once enabled", async |user| {
            let Some(button) = user.named(Role::Button, "Send").await? else {
                return Ok(None);
            };
            Ok(button.is_enabled().await?.then_some(button))
        })
        .await
    }

    /// Gives `files` to the "Choose files" input, as choosing them in the file picker does.
    pub async fn choose_files(&self, files: &[&SourceFile]) -> Result<()> {
        self.give_files("Choose files", files).await
    }

    /// Gives `files` to the input named `input`, as choosing them in its file picker does.
    pub async fn give_files(&self, input: &str, files: &[&SourceFile]) -> Result<()> {
        let paths: Vec<&Path> = files.iter().map(|file| file.path.as_path()).collect();
        self.give_paths(input, &paths).await
    }

    /// Gives the folder at `path` to the "Choose folder" input, as choosing it in the folder
    /// picker does.
    pub async fn choose_folder(&self, path: &Path) -> Result<()> {
        self.give_paths("Choose folder", &[path]).await
    }

    async fn give_paths(&self, input: &str, paths: &[&Path]) -> Result<()> {
        let input = self
            .wait(&format!("the {input:?} input"), DEADLINE, async |user| {
                user.named(Role::FileInput, input).await
            })
            .await?;
        let paths: Vec<String> = paths
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        // WebDriver selects several files at once when their paths are separated by newlines.
        input.send_keys(&paths.join("\n")).await?;
        Ok(())
    }

    /// Waits for the "Incoming files" dialog and returns its text.
    pub async fn incoming_offer(&self) -> Result<String> {
        let dialog = self.incoming_dialog().await?;
        Ok(dialog.text().await?)
    }

    /// Presses "Accept" in the "Incoming files" dialog.
    pub async fn accept(&self) -> Result<()> {
        self.press_in_dialog("Accept").await
    }

    /// Whether "Accept" in the "Incoming files" dialog can be pressed.
    pub async fn can_accept(&self) -> Result<bool> {
        let dialog = self.incoming_dialog().await?;
        let accept = self
            .browser
            .named(Some(&dialog), Role::Button, "Accept")
            .await?
            .context("the \"Incoming files\" dialog has no \"Accept\" button")?;
        Ok(accept.is_enabled().await?)
    }

    /// Presses "Choose where to save…" in the "Incoming files" dialog.
    pub async fn choose_where_to_save(&self) -> Result<()> {
        self.press_in_dialog("Choose where to save…").await
    }

    /// Presses "Decline" in the "Incoming files" dialog.
    pub async fn decline(&self) -> Result<()> {
        self.press_in_dialog("Decline").await
    }

    /// The status text of the transfer row of `file`, if there is such a row: the one piece of
    /// visible text in the row that reads as a status.
    pub async fn status(&self, file: &str) -> Result<Option<String>> {
        let Some(row) = self.transfer_row(file).await? else {
            return Ok(None);
        };
        // Leaves only, so the text of a status is not run together with the buttons beside it.
        let starts: Vec<String> = STATUSES
            .iter()
            .map(|status| format!("starts-with(normalize-space(.), '{status}')"))
            .collect();
        let xpath = format!(".//*[not(*)][{}]", starts.join(" or "));
        for leaf in row.find_all(Locator::XPath(&xpath)).await? {
            if leaf.is_displayed().await? {
                return Ok(Some(leaf.text().await?.trim().to_owned()));
            }
        }
        Ok(None)
    }

    /// Waits until the status of `file` satisfies `done`, failing early on a final status
    /// that does not, and returns it.
    pub async fn wait_status(
        &self,
        file: &str,
        expected: &str,
        done: impl Fn(&str) -> bool,
    ) -> Result<String> {
        self.wait_status_within(file, expected, DEADLINE, done)
            .await
    }

    /// [`User::wait_status`] with a deadline of its own.
    pub async fn wait_status_within(
        &self,
        file: &str,
        expected: &str,
        deadline: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let what = format!("{file:?} to show {expected}");
        self.wait(&what, deadline, async |user| {
            let Some(status) = user.status(file).await? else {
                return Ok(None);
            };
            if done(&status) {
                return Ok(Some(status));
            }
            if is_final(&status) {
                bail!("{file:?} ended as {status:?}, expected {expected}");
            }
            Ok(None)
        })
        .await
    }

    /// How far the progress bar named after `file` is, as its accessible value.
    pub async fn progress(&self, file: &str) -> Result<Option<f64>> {
        let Some(bar) = self.named(Role::ProgressBar, file).await? else {
            return Ok(None);
        };
        let value = match bar.attr("aria-valuenow").await? {
            Some(value) => Some(value),
            None => bar.attr("value").await?,
        };
        Ok(value.and_then(|value| value.parse().ok()))
    }

    /// Waits until the progress bar of `file` shows at least `bytes`; returns what it shows.
    pub async fn wait_progress_at_least(&self, file: &str, bytes: u64) -> Result<u64> {
        self.wait(
            &format!("{file:?} to pass {bytes} bytes"),
            DEADLINE,
            async |user| {
                // The bar's value is a byte count, written as a whole number.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let done = user.progress(file).await?.map(|done| done as u64);
                Ok(done.filter(|&done| done >= bytes))
            },
        )
        .await
    }

    /// Waits until the progress bar of `file` shows bytes moving, but the transfer running.
    pub async fn wait_progress_moving(&self, file: &str) -> Result<()> {
        self.wait(
            &format!("{file:?} to make progress"),
            DEADLINE,
            async |user| {
                if let Some(status) = user.status(file).await?
                    && is_final(&status)
                {
                    bail!("{file:?} ended as {status:?} before it could be interrupted");
                }
                Ok(user
                    .progress(file)
                    .await?
                    .filter(|value| *value > 0.0)
                    .map(|_| ()))
            },
        )
        .await
    }

    /// How the transfer row of `file` says its bytes travel: "Direct" or "Relayed", once the
    /// connection is up.
    pub async fn route(&self, file: &str) -> Result<Option<String>> {
        let Some(row) = self.transfer_row(file).await? else {
            return Ok(None);
        };
        let xpath = ".//*[not(*)][normalize-space(.)='Direct' or normalize-space(.)='Relayed']";
        for leaf in row.find_all(Locator::XPath(xpath)).await? {
            if leaf.is_displayed().await? {
                return Ok(Some(leaf.text().await?.trim().to_owned()));
            }
        }
        Ok(None)
    }

    /// Over how many connections the row of `file` says its bytes travel, in the tooltip of
    /// its route: 1 unless it says "over N connections".
    pub async fn connections(&self, file: &str) -> Result<Option<usize>> {
        let Some(row) = self.transfer_row(file).await? else {
            return Ok(None);
        };
        let xpath = ".//*[@title][contains(@title, ' connections')]";
        for element in row.find_all(Locator::XPath(xpath)).await? {
            let title = element.attr("title").await?.unwrap_or_default();
            if let Some((_, after)) = title.split_once(" over ")
                && let Some((count, _)) = after.split_once(" connections")
            {
                return Ok(count.parse().ok());
            }
        }
        Ok(Some(1))
    }

    /// Whether the page is a secure context, the condition for saving into the private file
    /// system and for the save picker.
    pub async fn is_secure_context(&self) -> Result<bool> {
        let secure = self
            .browser
            .client()
            .execute("return window.isSecureContext;", Vec::new())
            .await?;
        Ok(secure.as_bool().unwrap_or(false))
    }

    /// Checks "Hide my IP address (relay only)", which must be offered.
    pub async fn hide_ip_address(&self) -> Result<()> {
        let label = "Hide my IP address (relay only)";
        self.press(&format!("the {label:?} switch"), async |user| {
            user.named(Role::Checkbox, label).await
        })
        .await
    }

    /// Presses "Cancel" in the transfer row of `file`.
    pub async fn cancel(&self, file: &str) -> Result<()> {
        self.press(&format!("Cancel in the row of {file:?}"), async |user| {
            let Some(row) = user.transfer_row(file).await? else {
                return Ok(None);
            };
            user.browser.named(Some(&row), Role::Button, "Cancel").await
        })
        .await
    }

    /// The text of the banner shown while the connection to the server is lost, if shown.
    pub async fn connection_banner(&self) -> Result<Option<String>> {
        let live = self
            .browser
            .client()
            .find_all(Locator::Css("[role=status], [role=alert]"));
        for region in live.await? {
            if region.is_displayed().await? {
                let text = region.text().await?.trim().to_owned();
                if text.starts_with(CONNECTION_LOST) {
                    return Ok(Some(text));
                }
            }
        }
        Ok(None)
    }

    /// Waits until the banner that says the connection to the server is lost is shown.
    pub async fn wait_connection_banner(&self) -> Result<String> {
        self.wait("the connection-lost banner", DEADLINE, async |user| {
            user.connection_banner().await
        })
        .await
    }

    /// Waits until the connection-lost banner is gone again.
    pub async fn wait_no_connection_banner(&self) -> Result<()> {
        self.wait("the connection-lost banner to go", DEADLINE, async |user| {
            Ok(user.connection_banner().await?.is_none().then_some(()))
        })
        .await
    }

    /// Reloads Ferry's tab, as pressing F5 does.
    pub async fn reload(&self) -> Result<()> {
        Ok(self.client().refresh().await?)
    }

    /// Closes Ferry's tab; the browser goes on with a blank tab in front.
    pub async fn close_tab(&self) -> Result<()> {
        self.browser.close_tab().await
    }

    /// Opens Ferry at `url` in the tab in front (the blank one a closed tab left), as a person
    /// coming back does, and waits until its join form is there. Returns the tab.
    pub async fn open_again(&self, url: &str) -> Result<fantoccini::wd::WindowHandle> {
        self.client().goto(url).await?;
        self.wait_join_form().await?;
        Ok(self.client().window().await?)
    }

    /// Opens Ferry at `url` in a new tab of the same browser, brought to the front; returns
    /// the tab.
    pub async fn open_new_tab(&self, url: &str) -> Result<fantoccini::wd::WindowHandle> {
        let tab = self.client().new_window(true).await?;
        self.client().switch_to_window(tab.handle.clone()).await?;
        self.open_again(url).await?;
        Ok(tab.handle)
    }

    /// Brings `tab` to the front: what this person does from now on happens there.
    pub async fn switch_to_tab(&self, tab: fantoccini::wd::WindowHandle) -> Result<()> {
        Ok(self.client().switch_to_window(tab).await?)
    }

    /// The title of the tab in front.
    pub async fn title(&self) -> Result<String> {
        Ok(self.client().title().await?)
    }

    /// The note saying transfers are held by another tab of this browser, if the page shows
    /// one.
    pub async fn held_elsewhere_note(&self) -> Result<Option<String>> {
        let xpath = "//*[contains(normalize-space(.), 'held by another Ferry tab')][not(*)]";
        for note in self.client().find_all(Locator::XPath(xpath)).await? {
            if note.is_displayed().await? {
                return Ok(Some(note.text().await?));
            }
        }
        Ok(None)
    }

    /// Waits until the tab in front, not joined yet, says that the paused transfer of `file`
    /// from `sender` waits here for this person to join (it took the transfer up: true), or
    /// that another tab of the browser holds it (false).
    pub async fn takes_up_or_defers(&self, file: &str, sender: &str) -> Result<bool> {
        let waiting = format!("{file} from {sender}");
        self.wait(
            &format!("{file:?} taken up here, or said to be held by another tab"),
            DEADLINE,
            async |user| {
                let xpath = "//*[starts-with(normalize-space(.), 'Paused here')][not(*)]";
                for note in user.client().find_all(Locator::XPath(xpath)).await? {
                    if note.is_displayed().await? && note.text().await?.contains(&waiting) {
                        return Ok(Some(true));
                    }
                }
                Ok(user.held_elsewhere_note().await?.map(|_| false))
            },
        )
        .await
    }

    /// Waits for the join form, and checks that the loading view the page showed until the
    /// app started is gone with it.
    async fn wait_join_form(&self) -> Result<()> {
        self.wait("the Nickname field", DEADLINE, async |user| {
            user.named(Role::Textbox, "Nickname").await
        })
        .await?;
        let loading = self.client().find_all(Locator::Id("boot")).await?;
        if !loading.is_empty() {
            bail!(
                "{}: the loading view is still on the page beside the app: {:?}",
                self.label,
                self.browser.page_text().await?
            );
        }
        Ok(())
    }

    async fn submit_nick(&self, nick: &str) -> Result<()> {
        self.submit_nick_with(nick, "Join").await
    }

    /// Types `nick` and presses the join screen's button named `button`.
    async fn submit_nick_with(&self, nick: &str, button: &str) -> Result<()> {
        let field = self
            .named(Role::Textbox, "Nickname")
            .await?
            .context("no textbox named \"Nickname\"")?;
        field.clear().await?;
        field.send_keys(nick).await?;
        self.press(&format!("the {button} button"), async |user| {
            user.named(Role::Button, button).await
        })
        .await
    }

    /// The nicks under "Online users", or `None` while that list is not shown. This person is
    /// not among them: the app shows them apart, as "you".
    async fn online_users(&self) -> Result<Option<Vec<String>>> {
        let Some(list) = self.named(Role::List, "Online users").await? else {
            return Ok(None);
        };
        let mut nicks = Vec::new();
        for item in self.browser.all_with_role(&list, Role::ListItem).await? {
            let text = item.text().await?;
            let nick = text.lines().next().unwrap_or_default().trim().to_owned();
            if !nick.is_empty() {
                nicks.push(nick);
            }
        }
        Ok(Some(nicks))
    }

    async fn alert_text(&self) -> Result<Option<String>> {
        for live in self
            .browser
            .client()
            .find_all(Locator::Css("[role=alert]"))
            .await?
        {
            if live.is_displayed().await? {
                let text = live.text().await?.trim().to_owned();
                if !text.is_empty() {
                    return Ok(Some(text));
                }
            }
        }
        Ok(None)
    }

    async fn online_user_item(&self, nick: &str) -> Result<Option<Element>> {
        let Some(list) = self.named(Role::List, "Online users").await? else {
            return Ok(None);
        };
        for item in self.browser.all_with_role(&list, Role::ListItem).await? {
            let text = item.text().await?;
            if text
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case(nick)
            {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }

    async fn incoming_dialog(&self) -> Result<Element> {
        self.wait("the \"Incoming files\" dialog", DEADLINE, async |user| {
            user.named(Role::Dialog, "Incoming files").await
        })
        .await
    }

    async fn press_in_dialog(&self, button: &str) -> Result<()> {
        let what = format!("{button:?} in the \"Incoming files\" dialog");
        self.press(&what, async |user| {
            let Some(dialog) = user.named(Role::Dialog, "Incoming files").await? else {
                return Ok(None);
            };
            user.browser
                .named(Some(&dialog), Role::Button, button)
                .await
        })
        .await
    }

    /// Waits until `find` finds a control, and clicks it. Finding and clicking are retried
    /// together, so a control the app re-renders in between is found again, not clicked stale.
    async fn press(
        &self,
        what: &str,
        find: impl AsyncFn(&Self) -> Result<Option<Element>>,
    ) -> Result<()> {
        self.wait(what, DEADLINE, async |user| {
            let Some(control) = find(user).await? else {
                return Ok(None);
            };
            control.click().await?;
            Ok(Some(()))
        })
        .await
    }

    /// The row of the transfers list that holds the progress bar named after `file`.
    async fn transfer_row(&self, file: &str) -> Result<Option<Element>> {
        let Some(bar) = self.named(Role::ProgressBar, file).await? else {
            return Ok(None);
        };
        let row = bar
            .find(Locator::XPath(
                "./ancestor::*[self::li or self::tr or @role='listitem' or @role='row'][1]",
            ))
            .await?;
        Ok(Some(row))
    }

    async fn named(&self, role: Role, name: &str) -> Result<Option<Element>> {
        self.browser.named(None, role, name).await
    }

    /// [`wait_for`] with this person's browser handed to the probe, and their name on errors.
    async fn wait<T>(
        &self,
        what: &str,
        deadline: Duration,
        probe: impl AsyncFn(&Self) -> Result<Option<T>>,
    ) -> Result<T> {
        wait_for(&format!("{what} ({})", self.label), deadline, || {
            probe(self)
        })
        .await
    }
}

/// Whether a status is one a transfer never leaves.
pub fn is_final(status: &str) -> bool {
    ["Complete", "Declined", "Cancelled", "Failed: "]
        .iter()
        .any(|end| status.starts_with(end))
}
