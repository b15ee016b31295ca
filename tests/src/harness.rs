//! What every scenario starts from and how it ends: one test at a time, a fresh server, a
//! fresh chromedriver, users that each have their own browser (Chromium or Firefox), and
//! cleanup that always runs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::browser::Browser;
use crate::browser::Kind;
use crate::driver::Driver;
use crate::server::{Server, Setup, default_static_dir};
use crate::server_log;
use crate::user::User;

/// The longest a whole scenario may run before it counts as hung.
const SCENARIO_DEADLINE: Duration = Duration::from_secs(600);

/// Each scenario runs two Chromium processes, which take both cores of the machines Ferry is
/// tested on; two scenarios at once would starve each other's transfers and make timing
/// assertions meaningless. So scenarios take turns, whatever `--test-threads` says.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The world of one scenario.
#[derive(Debug)]
pub struct Harness {
    server: Server,
    driver: Driver,
    browsers: Mutex<Vec<(String, Arc<Browser>)>>,
    files: TempDir,
}

impl Harness {
    /// The signaling server, which serves the app too.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// A folder for the files a scenario sends, deleted afterwards.
    pub fn files_dir(&self) -> &std::path::Path {
        self.files.path()
    }

    /// A new person with their own Chromium, on Ferry's page and not joined yet. `label`
    /// names them in failure reports.
    pub async fn open_user(&self, label: &str) -> Result<User> {
        self.open_user_in(label, Kind::Chromium).await
    }

    /// A new person with their own browser of `kind`, on Ferry's page and not joined yet.
    pub async fn open_user_in(&self, label: &str, kind: Kind) -> Result<User> {
        self.open_user_at(label, kind, &self.server.url()).await
    }

    /// A new person with their own browser of `kind`, on Ferry's page at `url` (a room's
    /// link, say) and not joined yet.
    pub async fn open_user_at(&self, label: &str, kind: Kind, url: &str) -> Result<User> {
        let browser = Arc::new(
            Browser::launch(kind, self.driver.url())
                .await
                .with_context(|| format!("{label}'s {kind}"))?,
        );
        self.keep(label, &browser);
        User::open(label, browser, url).await
    }

    /// A person whose Chromium does not wait for pages to load, on `url` as far as it has
    /// come: for looking at a page whose loading a test holds up.
    pub async fn open_impatient_user(&self, label: &str, url: &str) -> Result<User> {
        let browser = Arc::new(
            Browser::launch_impatient(self.driver.url())
                .await
                .with_context(|| format!("{label}'s Chromium"))?,
        );
        self.keep(label, &browser);
        User::open_without_waiting(label, browser, url).await
    }

    /// Keeps `browser` for the end of the scenario, to report on and to close.
    fn keep(&self, label: &str, browser: &Arc<Browser>) {
        self.browsers
            .lock()
            .expect("no code panics while holding this lock")
            .push((label.to_owned(), Arc::clone(browser)));
    }

    /// Ana and Bo, each joined in their own Chromium and each seeing the other online.
    pub async fn ana_and_bo(&self) -> Result<(User, User)> {
        self.ana_and_bo_in(Kind::Chromium, Kind::Chromium).await
    }

    /// Ana in a browser of `ana_kind` and Bo in one of `bo_kind`, joined and each seeing the
    /// other online.
    pub async fn ana_and_bo_in(&self, ana_kind: Kind, bo_kind: Kind) -> Result<(User, User)> {
        let ana = self.open_user_in("Ana", ana_kind).await?;
        let bo = self.open_user_in("Bo", bo_kind).await?;
        ana.join("ana").await?;
        bo.join("bo").await?;
        ana.wait_online_users(&["bo"]).await?;
        bo.wait_online_users(&["ana"]).await?;
        Ok((ana, bo))
    }

    /// A fresh world whose server serves the app built into `static_dir`, for a program that
    /// runs outside [`run`], such as the benchmark; it must end with [`Harness::finish`].
    pub async fn serving(static_dir: PathBuf, setup: Setup) -> Result<Self> {
        server_log::keep();
        // What an earlier world's server said is not this scenario's.
        server_log::take();
        Self::around(Server::start(static_dir, setup).await?).await
    }

    async fn around(server: Server) -> Result<Self> {
        Ok(Self {
            server,
            driver: Driver::chromedriver().await?,
            browsers: Mutex::new(Vec::new()),
            files: tempfile::Builder::new().prefix("ferry-files-").tempdir()?,
        })
    }

    /// Closes every browser; on failure first prints what the server did and what each page
    /// shows and logged, which usually says what went wrong inside the app.
    pub async fn finish(self, failed: bool) {
        let server_said = server_log::take();
        if failed {
            eprintln!("--- the server's log ---");
            server_said.iter().for_each(|line| eprintln!("{line}"));
        }
        let browsers = std::mem::take(
            &mut *self
                .browsers
                .lock()
                .expect("no code panics while holding this lock"),
        );
        for (label, browser) in browsers {
            if failed {
                show_page(&label, &browser).await;
            }
            // A browser whose last tab a scenario closed has ended its session already.
            let _ = browser.quit().await;
        }
    }

    /// Prints what each page shows and logged since the last time: what a failed scenario
    /// prints, for a passing one that did something worth a closer look.
    pub async fn show_pages(&self) {
        let browsers = std::mem::take(
            &mut *self
                .browsers
                .lock()
                .expect("no code panics while holding this lock"),
        );
        for (label, browser) in &browsers {
            show_page(label, browser).await;
        }
        self.browsers
            .lock()
            .expect("no code panics while holding this lock")
            .splice(0..0, browsers);
    }
}

/// Prints what the page of `browser` shows and what it logged since the last time.
async fn show_page(label: &str, browser: &Browser) {
    match browser.page_text().await {
        Ok(text) => eprintln!("--- {label}'s page ---\n{text}"),
        Err(error) => eprintln!("--- {label}'s page is gone: {error:#}"),
    }
    match browser.console().await {
        Ok(lines) => {
            eprintln!("--- {label}'s console ---");
            lines.iter().for_each(|line| eprintln!("{line}"));
        }
        Err(error) => eprintln!("--- {label}'s console is gone: {error:#}"),
    }
}

/// Runs one scenario in a fresh world with a plain server on loopback, and always cleans up
/// after it.
pub async fn run<F>(scenario: F) -> Result<()>
where
    F: AsyncFnOnce(&Harness) -> Result<()>,
{
    run_with(Setup::default(), scenario).await
}

/// Runs one scenario in a fresh world whose server is set up as `setup` says.
pub async fn run_with<F>(setup: Setup, scenario: F) -> Result<()>
where
    F: AsyncFnOnce(&Harness) -> Result<()>,
{
    let _turn = ONE_AT_A_TIME.lock().await;
    let harness = Harness::serving(default_static_dir(), setup).await?;
    let result = match tokio::time::timeout(SCENARIO_DEADLINE, scenario(&harness)).await {
        Ok(result) => result,
        Err(_) => Err(anyhow::anyhow!(
            "the scenario did not finish within {SCENARIO_DEADLINE:?}"
        )),
    };
    if let Err(error) = &result {
        eprintln!("scenario failed: {error:#}");
    }
    harness.finish(result.is_err()).await;
    result
}
