//! A person on a phone, or on the installed app: the page as a 360×740 screen in the light or
//! the dark, what it looks like there, the service worker that keeps the app, and sharing into
//! Ferry from the share sheet.

use std::path::Path;

use anyhow::{Context, Result, bail};
use fantoccini::Locator;
use serde_json::{Value, json};

use super::User;
use crate::browser::Role;
use crate::wait::DEADLINE;

/// The viewport of a small phone, in CSS pixels.
pub const PHONE: (u32, u32) = (360, 740);

/// The smallest a control may be, either way, for a finger to hit it.
pub const TOUCH_TARGET: f64 = 44.0;

/// What lays a page out wrong on a phone: finds the page wider than its screen, and every
/// visible control smaller than a finger, each as a line naming it.
const LAYOUT_PROBLEMS: &str = r#"
const problems = [];
const page = document.documentElement;
if (page.scrollWidth > page.clientWidth) {
  // Named by the innermost elements that reach past the edge: those are what to fix.
  const past = [...document.body.querySelectorAll("*")].filter((element) => {
    const box = element.getBoundingClientRect();
    return box.width > 0 && box.right > page.clientWidth + 0.5;
  });
  const innermost = past.filter((element) => !past.some((other) => other !== element && element.contains(other)));
  const names = innermost.slice(0, 5).map((element) => `${element.tagName.toLowerCase()}.${[...element.classList].join(".")} "${(element.textContent || "").trim().slice(0, 30)}"`);
  problems.push(`the page is ${page.scrollWidth} px wide on a ${page.clientWidth} px screen, past it: ${names.join(", ")}`);
}
const controls = "button, a[href], input:not([type=file]):not([type=checkbox]), textarea, select, label.button, label.check, summary";
for (const control of document.querySelectorAll(controls)) {
  const box = control.getBoundingClientRect();
  if (box.width === 0 || box.height === 0 || control.closest("[hidden]")) continue;
  const style = getComputedStyle(control);
  if (style.visibility === "hidden" || control.classList.contains("visually-hidden")) continue;
  if (box.height < arguments[0] || box.width < arguments[0]) {
    const name = (control.getAttribute("aria-label") || control.textContent || control.id || control.tagName).trim().slice(0, 40);
    problems.push(`${control.tagName.toLowerCase()} "${name}" is ${Math.round(box.width)}×${Math.round(box.height)} px`);
  }
  if (box.right > page.clientWidth + 0.5) {
    problems.push(`${control.tagName.toLowerCase()} "${(control.textContent || control.id).trim().slice(0, 40)}" reaches past the screen's edge`);
  }
}
return problems;
"#;

/// Builds a form as the share sheet posts it (files under `files`, and a text) and submits it
/// to the manifest's share target.
const SHARE: &str = r#"
const [files, text] = arguments;
const form = document.createElement("form");
form.method = "post";
form.action = "/share";
form.enctype = "multipart/form-data";
const input = document.createElement("input");
input.type = "file";
input.name = "files";
input.multiple = true;
const chosen = new DataTransfer();
for (const [name, content] of files) {
  chosen.items.add(new File([content], name, { type: "application/octet-stream" }));
}
input.files = chosen.files;
const words = document.createElement("input");
words.name = "text";
words.value = text;
form.append(input, words);
document.body.append(form);
setTimeout(() => form.submit(), 0);
"#;

impl User {
    /// Makes this person's page a 360×740 phone screen in the light or the dark (Chromium).
    pub async fn as_phone(&self, dark: bool) -> Result<()> {
        let (width, height) = PHONE;
        self.devtools(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": true }),
        )
        .await?;
        let scheme = if dark { "dark" } else { "light" };
        self.devtools(
            "Emulation.setEmulatedMedia",
            // Without motion, a screenshot shows the colours the scheme ends on, not a
            // transition between the two.
            json!({ "features": [
                    { "name": "prefers-color-scheme", "value": scheme },
                    { "name": "prefers-reduced-motion", "value": "reduce" },
                ] }),
        )
        .await?;
        Ok(())
    }

    /// Everything on the page as it is now that does not fit a phone: a page wider than the
    /// screen, and controls smaller than [`TOUCH_TARGET`].
    pub async fn layout_problems(&self) -> Result<Vec<String>> {
        let found = self
            .client()
            .execute(LAYOUT_PROBLEMS, vec![json!(TOUCH_TARGET)])
            .await?;
        Ok(found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect())
    }

    /// Saves what the screen shows as a PNG at `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let png = self.client().screenshot().await?;
        std::fs::write(path, png).with_context(|| format!("saving {}", path.display()))
    }

    /// Waits until the service worker controls this page, so that it opens without the
    /// server from now on.
    pub async fn wait_kept_for_offline(&self) -> Result<()> {
        self.wait(
            "the service worker to take the page",
            DEADLINE,
            async |user| {
                let controlled = user
                    .client()
                    .execute(
                        "return !!(navigator.serviceWorker && navigator.serviceWorker.controller);",
                        Vec::new(),
                    )
                    .await?;
                Ok(controlled.as_bool().unwrap_or(false).then_some(()))
            },
        )
        .await
    }

    /// Reloads the page and waits for its join form or, joined, its list of online users,
    /// however long the server takes to answer.
    pub async fn reload_and_wait_shell(&self) -> Result<()> {
        self.client().refresh().await?;
        self.wait("Ferry's page after a reload", DEADLINE, async |user| {
            if user.named(Role::Textbox, "Nickname").await?.is_some() {
                return Ok(Some(()));
            }
            Ok(user.named(Role::List, "Online users").await?.map(|_| ()))
        })
        .await
    }

    /// Shares `files` (name and text content) and `text` into Ferry, as a phone's share sheet
    /// does for the installed app, and waits for the page that opens on them.
    pub async fn share(&self, files: &[(&str, &str)], text: &str) -> Result<()> {
        let files: Vec<Value> = files
            .iter()
            .map(|(name, content)| json!([name, content]))
            .collect();
        self.client()
            .execute(SHARE, vec![json!(files), json!(text)])
            .await?;
        self.wait("the page opened on the share", DEADLINE, async |user| {
            let url = user.client().current_url().await?;
            let page = user.named(Role::Textbox, "Nickname").await?;
            Ok((url.path() == "/" && url.query().is_none() && page.is_some()).then_some(()))
        })
        .await
    }

    /// What the page shows once it says `part`, however far it has loaded.
    pub async fn wait_page_saying(&self, part: &str) -> Result<String> {
        self.wait(
            &format!("the page saying {part:?}"),
            DEADLINE,
            async |user| {
                let text = user.browser.page_text().await?;
                Ok(text.contains(part).then_some(text))
            },
        )
        .await
    }

    /// Whether the join form (the "Nickname" field) is on the page.
    pub async fn has_join_form(&self) -> Result<bool> {
        Ok(self.named(Role::Textbox, "Nickname").await?.is_some())
    }

    /// The heading of the send panel ("Send files", "Send 2 files to…", "Send 2 files to bo").
    pub async fn send_title(&self) -> Result<String> {
        let title = self.client().find(Locator::Id("send-title")).await?;
        Ok(title.text().await?.trim().to_owned())
    }

    /// The names under "Chosen files".
    pub async fn chosen(&self) -> Result<Vec<String>> {
        let Some(list) = self.named(Role::List, "Chosen files").await? else {
            bail!("no list named \"Chosen files\"");
        };
        let mut names = Vec::new();
        for item in self.browser.all_with_role(&list, Role::ListItem).await? {
            let name = item.find(Locator::Css(".name")).await?;
            names.push(name.text().await?.trim().to_owned());
        }
        Ok(names)
    }

    /// What the "Text to NICK" box holds.
    pub async fn text_draft(&self, nick: &str) -> Result<String> {
        let label = format!("Text to {nick}");
        let Some(field) = self.named(Role::Textbox, &label).await? else {
            bail!("no textbox named {label:?}");
        };
        Ok(field.prop("value").await?.unwrap_or_default())
    }

    /// The first note (a `status` paragraph) whose text holds `part`, once there is one.
    pub async fn wait_note(&self, part: &str) -> Result<String> {
        self.wait(&format!("a note saying {part:?}"), DEADLINE, async |user| {
            for note in user
                .client()
                .find_all(Locator::Css("p[role=status]"))
                .await?
            {
                let text = note.text().await?;
                if text.contains(part) {
                    return Ok(Some(text));
                }
            }
            Ok(None)
        })
        .await
    }
}
