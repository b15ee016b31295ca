//! Ferry as a phone meets it: the page shows before the app has arrived, the installed app
//! opens without the server and joins again once it is back, the manifest names icons that
//! exist, a share from the share sheet waits in the send form, and every screen fits a
//! 360×740 phone in the light and in the dark.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use ferry_e2e::{
    Harness, HeldApp, PHONE, TOUCH_TARGET, User, default_static_dir, finished_download,
    random_file, run,
};

use crate::expect_received;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_ferry_before_the_app_has_arrived() -> Result<()> {
    run(async |h: &Harness| {
        let app = HeldApp::start(default_static_dir()).await?;
        let ana = h.open_impatient_user("Ana", &app.url()).await?;
        // The wasm is held: whatever the page shows now, it shows without the app.
        let text = ana.wait_page_saying("Starting…").await?;
        ensure!(
            text.contains("Ferry") && text.contains("peer to peer"),
            "before the app arrives the page should show Ferry's name and what it does, but \
             shows {text:?}"
        );
        ensure!(
            !ana.has_join_form().await?,
            "the join form cannot be there before the app: {text:?}"
        );
        app.release();
        ana.wait_started().await
    })
    .await
}

/// The most the app's code (wasm and JavaScript) may weigh as served, brotli-compressed: what a
/// phone downloads before Ferry works. The issue's goal is 250 KiB; the app is above it (see
/// the README), and this keeps it from growing while it comes down.
const SERVED_BUDGET: u64 = 350 * 1024;

#[test]
fn the_app_downloads_within_its_budget() -> Result<()> {
    let dist = default_static_dir();
    let mut served = Vec::new();
    for entry in std::fs::read_dir(&dist).with_context(|| format!("reading {}", dist.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".wasm.br") || (name.ends_with(".js.br") && name != "sw.js.br") {
            served.push((std::fs::metadata(dist.join(&name))?.len(), name));
        }
    }
    ensure!(
        served.iter().any(|(_, name)| name.ends_with(".wasm.br")),
        "no brotli copy of the wasm in {}: build the app with trunk first",
        dist.display()
    );
    let total: u64 = served.iter().map(|(len, _)| len).sum();
    ensure!(
        total <= SERVED_BUDGET,
        "the app's code weighs {total} bytes as served, over its budget of {SERVED_BUDGET}: \
         {served:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_opens_without_the_server_says_so_and_joins_again_once_it_is_back() -> Result<()> {
    run(async |h: &Harness| {
        let ana = h.open_user("Ana").await?;
        ana.wait_kept_for_offline().await?;
        ana.join("ana").await?;
        h.server().stop().await?;
        // Nothing answers at the server's address now: the page comes from the service worker.
        ana.reload_and_wait_shell().await?;
        let banner = ana.wait_banner("Offline").await?;
        ensure!(
            banner.contains("reconnecting"),
            "the offline banner should say Ferry keeps trying, but reads {banner:?}"
        );
        h.server().restart().await?;
        ana.wait_online_users(&[]).await?;
        ana.wait_no_connection_banner().await
    })
    .await
}

/// Reads the manifest as the browser fetches it and loads each icon it names; returns the
/// manifest, and for each icon its declared and its real size.
const MANIFEST_AND_ICONS: &str = r#"
const done = arguments[arguments.length - 1];
(async () => {
  const manifest = await (await fetch(document.querySelector("link[rel=manifest]").href)).json();
  const icons = [];
  for (const icon of manifest.icons) {
    const image = new Image();
    image.src = new URL(icon.src, location.href).href;
    try {
      await image.decode();
      icons.push([icon.src, icon.sizes, `${image.naturalWidth}x${image.naturalHeight}`]);
    } catch (failure) {
      icons.push([icon.src, icon.sizes, `unreadable: ${failure}`]);
    }
  }
  done({ manifest, icons });
})().catch((failure) => done({ error: String(failure) }));
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_makes_an_installable_app_whose_icons_exist() -> Result<()> {
    run(async |h: &Harness| {
        let ana = h.open_user("Ana").await?;
        let found = ana
            .client()
            .execute_async(MANIFEST_AND_ICONS, Vec::new())
            .await?;
        ensure!(
            found.get("error").is_none(),
            "reading the manifest failed: {found}"
        );
        let manifest = &found["manifest"];
        for (field, expected) in [
            ("name", "Ferry"),
            ("display", "standalone"),
            ("start_url", "/"),
        ] {
            ensure!(
                manifest[field] == expected,
                "the manifest's {field} should be {expected:?}: {manifest}"
            );
        }
        ensure!(
            manifest["theme_color"].is_string() && manifest["background_color"].is_string(),
            "the manifest should give the app's colours: {manifest}"
        );
        let target = &manifest["share_target"];
        ensure!(
            target["action"] == "/share"
                && target["method"] == "POST"
                && target["enctype"] == "multipart/form-data"
                && target["params"]["files"][0]["name"] == "files",
            "the share target should take files by POST to /share: {target}"
        );
        let icons = found["icons"].as_array().context("no icons")?;
        let sizes: Vec<&str> = icons.iter().filter_map(|icon| icon[1].as_str()).collect();
        for wanted in ["192x192", "512x512"] {
            ensure!(sizes.contains(&wanted), "no {wanted} icon among {sizes:?}");
        }
        for icon in icons {
            ensure!(
                icon[1] == icon[2],
                "the icon {} says it is {} but is {}",
                icon[0],
                icon[1],
                icon[2]
            );
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_a_text_shared_from_the_share_sheet_wait_in_the_send_form() -> Result<()> {
    run(async |h: &Harness| {
        let shared = [
            ("note.txt", "Shared from a phone's gallery.\n"),
            ("list.csv", "name,size\nboat.jpg,1\n"),
        ];
        let ana = h.open_user("Ana").await?;
        ana.wait_kept_for_offline().await?;
        ana.share(&shared, "Look at these").await?;
        ana.wait_note("2 shared files are ready").await?;
        let bo = h.open_user("Bo").await?;
        bo.join("bo").await?;
        ana.join("ana").await?;
        let title = ana.send_title().await?;
        ensure!(title == "Send 2 files to…", "the send form reads {title:?}");
        let chosen = ana.chosen().await?;
        ensure!(
            chosen == ["note.txt", "list.csv"],
            "the shared files should be chosen in order, but are {chosen:?}"
        );
        ana.select("bo").await?;
        let title = ana.send_title().await?;
        ensure!(
            title == "Send 2 files to bo",
            "the send form reads {title:?}"
        );
        let draft = ana.text_draft("bo").await?;
        ensure!(
            draft == "Look at these",
            "the shared text should wait to go: {draft:?}"
        );
        ana.send_text("bo", "").await?;
        bo.wait_text_from("ana", "Look at these").await?;
        ana.press_send().await?;
        bo.incoming_offer().await?;
        bo.accept().await?;
        for (name, content) in shared {
            ana.wait_status(name, "Complete", |status| status == "Complete")
                .await?;
            let saved = finished_download(bo.downloads(), name).await?;
            let got = std::fs::read_to_string(&saved)?;
            ensure!(got == content, "{name} arrived as {got:?}, not {content:?}");
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_screen_fits_a_phone_in_the_light_and_in_the_dark() -> Result<()> {
    run(async |h: &Harness| {
        let shots = Shots::new()?;
        let ana = h.open_user("Ana").await?;
        let bo = h.open_user("Bo").await?;
        ana.as_phone(false).await?;
        bo.as_phone(false).await?;
        let mut problems = Vec::new();
        problems.extend(shots.check(&ana, "join").await?);
        ana.join("ana").await?;
        bo.join("bo").await?;
        ana.wait_online_users(&["bo"]).await?;
        ana.select("bo").await?;
        problems.extend(shots.check(&ana, "people").await?);
        let photo = random_file(h.files_dir(), "a photo from the gallery.jpg", 3 << 20, 7).await?;
        ana.send("bo", &[&photo]).await?;
        bo.incoming_offer().await?;
        problems.extend(shots.check(&bo, "offer").await?);
        bo.accept().await?;
        expect_received(&ana, &bo, &photo).await?;
        problems.extend(shots.check(&ana, "sent").await?);
        problems.extend(shots.check(&bo, "received").await?);
        ana.verify("bo").await?;
        ana.verification_code("bo").await?;
        problems.extend(shots.check(&ana, "verify").await?);
        ana.press_in_verification("bo", "Cancel").await?;
        ana.new_room().await?;
        problems.extend(shots.check(&ana, "room").await?);
        ensure!(
            problems.is_empty(),
            "on a {}×{} phone (touch targets of {TOUCH_TARGET} px; screenshots in {}):\n{}",
            PHONE.0,
            PHONE.1,
            shots.dir.display(),
            problems.join("\n")
        );
        Ok(())
    })
    .await
}

/// Where the phone screenshots go: `target/phone-screens`, kept after the run to look at.
struct Shots {
    dir: PathBuf,
}

impl Shots {
    fn new() -> Result<Self> {
        let dir = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/phone-screens"
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// Looks at `user`'s screen `name` in the light and in the dark: saves a screenshot of
    /// each and returns what does not fit, each line naming the screen.
    async fn check(&self, user: &User, name: &str) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        for dark in [false, true] {
            user.as_phone(dark).await?;
            let scheme = if dark { "dark" } else { "light" };
            user.screenshot(&self.dir.join(format!("{name}-{scheme}.png")))
                .await?;
            problems.extend(
                user.layout_problems()
                    .await?
                    .into_iter()
                    .map(|problem| format!("{name} ({scheme}): {problem}")),
            );
        }
        user.as_phone(false).await?;
        Ok(problems)
    }
}
