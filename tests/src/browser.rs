//! One user's browser: a Chromium or a Firefox of its own over WebDriver, with its own profile
//! and downloads folder, and the few queries a test needs to find controls by their accessible
//! role and name.

use std::path::Path;

use anyhow::{Context, Result};
use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use http::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::driver::Driver;

/// Debian's Chromium.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Debian's Firefox ESR.
const FIREFOX: &str = "/usr/bin/firefox-esr";

/// Which browser a person uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Debian's Chromium, through chromedriver.
    Chromium,
    /// Debian's Firefox ESR, through geckodriver.
    Firefox,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Chromium => "Chromium",
            Self::Firefox => "Firefox",
        })
    }
}

impl std::str::FromStr for Kind {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "chromium" | "chrome" => Ok(Self::Chromium),
            "firefox" => Ok(Self::Firefox),
            other => {
                anyhow::bail!("{other:?} is not a browser Ferry is tested in (chromium, firefox)")
            }
        }
    }
}

/// The kinds of controls a test looks for, by ARIA role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A button, native or `role="button"`.
    Button,
    /// A text field.
    Textbox,
    /// A file chooser: `<input type="file">`, which has no ARIA role of its own.
    FileInput,
    /// A list or listbox.
    List,
    /// An item of a list or listbox.
    ListItem,
    /// A dialog, native or `role="dialog"`.
    Dialog,
    /// A progress bar.
    ProgressBar,
    /// A checkbox, native or ARIA.
    Checkbox,
}

impl Role {
    /// The elements that can carry this role: the native ones and the ARIA ones.
    fn selector(self) -> &'static str {
        match self {
            Role::Button => "button, [role=button], input[type=button], input[type=submit]",
            Role::Textbox => {
                "input:not([type]), input[type=text], input[type=search], textarea, [role=textbox]"
            }
            Role::FileInput => "input[type=file]",
            Role::List => "ul, ol, [role=list], [role=listbox]",
            Role::ListItem => "li, [role=listitem], [role=option]",
            Role::Dialog => "dialog, [role=dialog], [role=alertdialog]",
            Role::ProgressBar => "progress, [role=progressbar]",
            Role::Checkbox => "input[type=checkbox], [role=checkbox], [role=switch]",
        }
    }

    /// Whether an element with this role counts only when WebDriver deems it displayed.
    ///
    /// Two exceptions: a file input is usually hidden behind its styled label, which is what
    /// people click; and an empty list has no size, which WebDriver calls "not displayed",
    /// though it is there. For both, a name computed by the browser shows the element is in the
    /// accessibility tree, which a `display: none` or `hidden` element is not.
    fn must_be_displayed(self) -> bool {
        !matches!(self, Role::FileInput | Role::List)
    }
}

/// A browser session with a fresh profile, deleted when this is dropped.
#[derive(Debug)]
pub struct Browser {
    kind: Kind,
    client: Client,
    downloads: TempDir,
    profile: TempDir,
    /// A Firefox's own geckodriver, which ends with it.
    driver: Option<Driver>,
}

impl Browser {
    /// Starts a Chromium through the chromedriver at `chromedriver`, or a Firefox through a
    /// geckodriver of its own.
    pub async fn launch(kind: Kind, chromedriver: &str) -> Result<Self> {
        Self::launch_with(kind, chromedriver, true).await
    }

    /// Starts a Chromium whose navigations return at once instead of when the page has
    /// loaded, so a test can look at a page whose loading it holds up.
    pub async fn launch_impatient(chromedriver: &str) -> Result<Self> {
        Self::launch_with(Kind::Chromium, chromedriver, false).await
    }

    async fn launch_with(kind: Kind, chromedriver: &str, wait_for_load: bool) -> Result<Self> {
        let profile = tempfile::Builder::new()
            .prefix("ferry-profile-")
            .tempdir()?;
        let downloads = tempfile::Builder::new()
            .prefix("ferry-downloads-")
            .tempdir()?;
        let (capabilities, driver) = match kind {
            Kind::Chromium => (chromium(profile.path(), downloads.path()), None),
            Kind::Firefox => (
                firefox(profile.path(), downloads.path()),
                Some(Driver::geckodriver().await?),
            ),
        };
        let mut capabilities = capabilities;
        if !wait_for_load {
            capabilities.insert("pageLoadStrategy".into(), json!("none"));
        }
        let webdriver = driver.as_ref().map_or(chromedriver, Driver::url);
        let client = ClientBuilder::native()
            .capabilities(capabilities)
            .connect(webdriver)
            .await
            .with_context(|| format!("starting a {kind} session"))?;
        Ok(Self {
            kind,
            client,
            downloads,
            profile,
            driver,
        })
    }

    /// Which browser this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The WebDriver client of this session.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Where this browser saves downloads.
    pub fn downloads(&self) -> &Path {
        self.downloads.path()
    }

    /// This browser's profile folder, which its Chromium is started with as `--user-data-dir`
    /// and so tells its processes apart from another browser's.
    pub fn profile(&self) -> &Path {
        self.profile.path()
    }

    /// The displayed elements under `scope` (the whole page if `None`) with `role` whose
    /// accessible name, as the browser computes it for screen readers, is exactly `name`.
    pub async fn all_named(
        &self,
        scope: Option<&Element>,
        role: Role,
        name: &str,
    ) -> Result<Vec<Element>> {
        let candidates = match scope {
            Some(element) => element.find_all(Locator::Css(role.selector())).await?,
            None => self.client.find_all(Locator::Css(role.selector())).await?,
        };
        let mut found = Vec::new();
        for element in candidates {
            if role.must_be_displayed() && !element.is_displayed().await? {
                continue;
            }
            let accessible_name = match role {
                Role::FileInput => self.file_input_name(&element).await?,
                _ => self.accessible_name(&element).await?,
            };
            if accessible_name == name {
                found.push(element);
            }
        }
        Ok(found)
    }

    /// The one displayed element with `role` and accessible name `name`, if there is one.
    pub async fn named(
        &self,
        scope: Option<&Element>,
        role: Role,
        name: &str,
    ) -> Result<Option<Element>> {
        Ok(self.all_named(scope, role, name).await?.into_iter().next())
    }

    /// All displayed elements with `role` under `scope`, whatever their names.
    pub async fn all_with_role(&self, scope: &Element, role: Role) -> Result<Vec<Element>> {
        let mut found = Vec::new();
        for element in scope.find_all(Locator::Css(role.selector())).await? {
            if element.is_displayed().await? {
                found.push(element);
            }
        }
        Ok(found)
    }

    /// The accessible name of `element`, computed by the browser (WebDriver "Get Computed
    /// Label"), so a test sees exactly what a screen reader announces.
    pub async fn accessible_name(&self, element: &Element) -> Result<String> {
        let path = format!("element/{}/computedlabel", element.element_id());
        let value = self.command(Method::GET, path, None).await?;
        Ok(value.as_str().unwrap_or_default().trim().to_owned())
    }

    /// The name of a file input: the text of its labels (or its `aria-label`), the words a
    /// person clicks; failing both, its computed accessible name. The label comes first
    /// because browsers compute a file input's name differently: Chromium leaves a hidden one
    /// out of the accessibility tree (an empty name), Firefox adds its own button's text
    /// ("Choose files Browse…").
    async fn file_input_name(&self, input: &Element) -> Result<String> {
        let labels = self
            .client
            .execute(
                "const input = arguments[0];
                 const labels = Array.from(input.labels || [], (label) => label.textContent);
                 return (labels.join(' ') || input.getAttribute('aria-label') || '').trim();",
                vec![serde_json::to_value(input)?],
            )
            .await?;
        let labels = labels
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if labels.is_empty() {
            self.accessible_name(input).await
        } else {
            Ok(labels)
        }
    }

    /// Closes the app's tab the way a person does, leaving the browser itself running on a
    /// blank tab, so the page goes through its normal unload.
    pub async fn close_tab(&self) -> Result<()> {
        let app = self.client.window().await?;
        let blank = self.client.new_window(true).await?;
        self.client.switch_to_window(app).await?;
        self.client.close_window().await?;
        self.client.switch_to_window(blank.handle).await?;
        Ok(())
    }

    /// What the page logged to its console since the last call, one line per entry.
    /// Chromium hands its console to WebDriver; Firefox prints it with its own output, which
    /// its geckodriver passes on.
    pub async fn console(&self) -> Result<Vec<String>> {
        if let Some(driver) = &self.driver {
            return Ok(driver
                .take_output()
                .into_iter()
                .filter(|line| line.starts_with("console."))
                .collect());
        }
        let entries = self
            .command(
                Method::POST,
                "se/log".into(),
                Some(json!({ "type": "browser" })),
            )
            .await?;
        Ok(entries
            .as_array()
            .into_iter()
            .flatten()
            // The browser's own pages (the new-tab page it starts on) are noise here.
            .filter(|entry| {
                !entry["message"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("chrome://")
            })
            .map(|entry| {
                format!(
                    "{} {}",
                    entry["level"].as_str().unwrap_or("?"),
                    entry["message"].as_str().unwrap_or("")
                )
            })
            .collect())
    }

    /// The text the page shows now, as a person reads it.
    pub async fn page_text(&self) -> Result<String> {
        let text = self
            .client
            .execute("return document.body?.innerText ?? '';", Vec::new())
            .await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// Sends Chromium's DevTools command `command` with `params` (the page's viewport, its
    /// colour scheme) and returns its answer.
    pub async fn devtools(&self, command: &str, params: Value) -> Result<Value> {
        self.command(
            Method::POST,
            "goog/cdp/execute".into(),
            Some(json!({ "cmd": command, "params": params })),
        )
        .await
        .with_context(|| format!("DevTools command {command}"))
    }

    /// Ends the session, which closes Chromium.
    pub async fn quit(&self) -> Result<()> {
        self.client.clone().close().await?;
        Ok(())
    }

    async fn command(&self, method: Method, path: String, body: Option<Value>) -> Result<Value> {
        let command = SessionCommand { method, path, body };
        Ok(self.client.issue_cmd(command).await?)
    }
}

/// The capabilities of a headless Chromium with its profile in `profile`, saving downloads to
/// `downloads`.
fn chromium(profile: &Path, downloads: &Path) -> Capabilities {
    let options = json!({
        "binary": CHROMIUM,
        "args": [
            "--headless=new",
            // Tests run as root, where Chromium's sandbox refuses to start.
            "--no-sandbox",
            // Without it, Chromium gathers no ICE candidates in a loopback-only namespace.
            "--allow-loopback-in-peer-connection",
            "--disable-gpu",
            "--no-first-run",
            // The network is closed here: these stop Chromium's own background fetches.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            format!("--user-data-dir={}", profile.display()),
        ],
        "prefs": {
            // Chromium gathers ICE candidates on loopback only for an origin allowed to use
            // the camera and microphone (measured: without the grant it gathers none at all).
            // Ferry never asks for either, so the grant changes nothing else a person would
            // see.
            "profile.default_content_setting_values.media_stream_camera": 1,
            "profile.default_content_setting_values.media_stream_mic": 1,
            // Chromium asks before a page downloads a second file without a new click,
            // as Ferry does when one accepted offer holds several files; this is the
            // answer "Allow" that a person gives to that question.
            "profile.default_content_setting_values.automatic_downloads": 1,
            "download.default_directory": downloads,
            "download.prompt_for_download": false,
            "download.directory_upgrade": true,
            "safebrowsing.enabled": false,
        },
    });
    let mut capabilities = Capabilities::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    // A person clicks through the warning about Ferry's own certificate; this is that
    // click (HTTPS scenarios use a certificate no browser trusts).
    capabilities.insert("acceptInsecureCerts".into(), json!(true));
    capabilities.insert("goog:chromeOptions".into(), options);
    // Kept so a failing test can print what the page logged.
    capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    capabilities
}

/// The capabilities of a headless Firefox ESR with its profile in `profile`, saving downloads
/// to `downloads`.
fn firefox(profile: &Path, downloads: &Path) -> Capabilities {
    let options = json!({
        "binary": FIREFOX,
        "args": ["-headless", "-profile", profile, "-width", "1280", "-height", "900"],
        "prefs": {
            // Firefox gathers ICE candidates on loopback only with this pref, and on any
            // interface but the default route only for a page allowed the camera or the
            // microphone (measured: without the permission it looks for a default route,
            // which a loopback-only namespace lacks, and gathers nothing). Ferry never asks
            // for either, so the grant changes nothing else a person would see.
            "media.peerconnection.ice.loopback": true,
            "permissions.default.camera": 1,
            "permissions.default.microphone": 1,
            // Downloads go to this person's folder, without asking.
            "browser.download.folderList": 2,
            "browser.download.dir": downloads,
            "browser.download.useDownloadDir": true,
            "browser.download.always_ask_before_handling_new_types": false,
            "browser.download.alwaysOpenPanel": false,
            "browser.download.start_downloads_in_tmp_dir": false,
            // The network is closed here: these stop Firefox's own background requests.
            "app.update.disabledForTesting": true,
            "browser.safebrowsing.downloads.enabled": false,
            "browser.safebrowsing.malware.enabled": false,
            "browser.safebrowsing.phishing.enabled": false,
            "datareporting.policy.dataSubmissionEnabled": false,
            "network.captive-portal-service.enabled": false,
            "network.connectivity-service.enabled": false,
            "extensions.update.enabled": false,
            "browser.shell.checkDefaultBrowser": false,
            // The page's console goes to Firefox's output, for a failed test to print.
            "devtools.console.stdout.content": true,
        },
    });
    let mut capabilities = Capabilities::new();
    capabilities.insert("browserName".into(), json!("firefox"));
    capabilities.insert("acceptInsecureCerts".into(), json!(true));
    capabilities.insert("moz:firefoxOptions".into(), options);
    capabilities
}

/// A WebDriver command fantoccini has no method for, addressed to the current session.
#[derive(Debug)]
struct SessionCommand {
    method: Method,
    /// The path after `/session/{id}/`.
    path: String,
    body: Option<Value>,
}

impl WebDriverCompatibleCommand for SessionCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/{}", self.path))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}
