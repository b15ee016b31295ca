//! Many small files: Ana sends Bo a folder of `--folder-files` files (chosen with "Choose
//! folder"), and this times Bo's wait from pressing Accept to the folder's zip being ready
//! (the app's `ferry:zipped` mark), then checks every entry of the downloaded zip.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use ferry_e2e::folders::{Tree, write_tree, zip_tree};
use ferry_e2e::{Harness, finished_download};

use crate::Args;
use crate::marks::between;
use crate::sampler::{Sampler, Usage};

/// What one folder transfer measured.
pub struct FolderRun {
    /// From Bo pressing Accept to the zip being ready.
    pub seconds: f64,
    /// What Bo's browser used meanwhile.
    pub receiver: Usage,
    /// What Ana's browser used meanwhile.
    pub sender: Usage,
}

/// The folder "photos" of `count` files of `bytes` bytes each, every one different.
pub fn folder_tree(count: usize, bytes: usize) -> Tree {
    (0..count)
        .map(|index| {
            let content = (0..bytes)
                .map(|at| (index.wrapping_mul(31) ^ at.wrapping_mul(7)) as u8)
                .collect();
            (format!("photos/IMG_{index:05}.jpg"), Some(content))
        })
        .collect()
}

/// Sends the folder written under `dir` once, between two fresh browsers.
pub async fn run(
    harness: &Harness,
    args: &Args,
    dir: &Path,
    tree: &Tree,
    timeout: Duration,
) -> Result<FolderRun> {
    let (ana, bo) = harness.ana_and_bo_in(args.sender, args.receiver).await?;
    let folder = write_tree(dir, tree)?;
    ana.select("bo").await?;
    ana.choose_folder(&folder).await?;
    ana.press_send().await?;
    bo.incoming_offer().await?;
    let sampler = Sampler::start(&bo, &ana);
    let ended = async {
        bo.accept().await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let zipped = bo
                .client()
                .execute(
                    "return performance.getEntriesByName('ferry:zipped', 'mark').length;",
                    vec![],
                )
                .await?;
            if zipped.as_u64().unwrap_or(0) > 0 {
                return between(&bo, "ferry:accept", "ferry:zipped").await;
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("the folder did not arrive within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    .await;
    let [receiver, sender] = sampler.stop().await?;
    let millis = ended?;
    let zip = finished_download(bo.downloads(), "photos.zip").await?;
    let got = zip_tree(&zip)?;
    ensure!(
        got == *tree,
        "the zip's entries differ from the folder sent"
    );
    Ok(FolderRun {
        seconds: millis / 1000.0,
        receiver,
        sender,
    })
}
