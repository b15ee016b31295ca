//! Folders end to end: a folder dropped on the page or chosen in the folder picker arrives
//! with its tree (nested folders, unicode names, an empty file, an empty subfolder) as one
//! zip download, or written into the folder the receiver picks.

use anyhow::{Result, ensure};
use ferry_e2e::folders::{
    answer_folder_picker, drop_tree, private_tree, same_tree, sample_tree, write_tree, zip_tree,
};
use ferry_e2e::{Harness, Kind, User, finished_download, listing, run};

/// The sample tree's one row, named after its folder.
const FOLDER: &str = "Fotos día";

/// Waits for the sample folder to be complete on both sides.
async fn expect_complete(ana: &User, bo: &User) -> Result<()> {
    for user in [ana, bo] {
        user.wait_status(FOLDER, "Complete", |status| status == "Complete")
            .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_folder_arrives_in_firefox_as_one_zip_with_its_tree() -> Result<()> {
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo_in(Kind::Chromium, Kind::Firefox).await?;
        let tree = sample_tree();
        ana.select("bo").await?;
        drop_tree(&ana, &tree).await?;
        ana.press_send().await?;
        let offer = bo.incoming_offer().await?;
        ensure!(
            offer.contains("the folder Fotos día (4 files") && offer.contains("Fotos día.zip"),
            "the offer should name the folder, its files and its zip, but reads {offer:?}"
        );
        bo.accept().await?;
        expect_complete(&ana, &bo).await?;
        let zip = finished_download(bo.downloads(), "Fotos día.zip").await?;
        same_tree("the zip", &zip_tree(&zip)?, &tree)?;
        // The folder came as its zip alone, not also file by file.
        let saved = listing(bo.downloads())?;
        ensure!(saved == ["Fotos día.zip"], "downloads hold {saved:?}");
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_is_written_as_a_tree_where_the_receiver_chooses() -> Result<()> {
    run(async |h: &Harness| {
        let (ana, bo) = h.ana_and_bo().await?;
        let tree = sample_tree();
        answer_folder_picker(&bo, "picked").await?;
        ana.select("bo").await?;
        drop_tree(&ana, &tree).await?;
        ana.press_send().await?;
        bo.incoming_offer().await?;
        bo.choose_where_to_save().await?;
        expect_complete(&ana, &bo).await?;
        same_tree(
            "the picked folder",
            &private_tree(&bo, "picked").await?,
            &tree,
        )?;
        ensure!(
            listing(bo.downloads())?.is_empty(),
            "nothing is downloaded when the tree is written where Bo chose"
        );

        // The same folder on disk, chosen with "Choose folder": its files keep their
        // folders (a folder picker lists files only, so the empty subfolder stays behind).
        let on_disk = write_tree(h.files_dir(), &tree)?;
        ana.choose_folder(&on_disk).await?;
        ana.press_send().await?;
        bo.incoming_offer().await?;
        bo.accept().await?;
        let zip = finished_download(bo.downloads(), "Fotos día.zip").await?;
        let files_only = tree
            .iter()
            .filter(|(_, bytes)| bytes.is_some())
            .map(|(path, bytes)| (path.clone(), bytes.clone()))
            .collect();
        same_tree(
            "the zip of the chosen folder",
            &zip_tree(&zip)?,
            &files_only,
        )
    })
    .await
}
