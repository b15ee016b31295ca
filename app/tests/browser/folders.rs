//! Folders between two engines: the tree written into a picked folder, the same tree as one
//! zip read back by a zip reader, and an offer whose paths climb out refused.

use ferry_app::web::call_method;
use ferry_app::web::chosen::Chosen;
use ferry_app::web::engine::Answer;
use ferry_app::web::sink::{Picked, Sink};
use ferry_protocol::{FileMeta, TRANSFER_VERSION, TransferId, TransferMessage};
use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;
use web_sys::{FileSystemDirectoryHandle, FileSystemGetFileOptions};

use crate::hand::*;
use crate::storage::{fresh_folder, read_entry};
use crate::support::*;

/// A folder "Top" with a file in a subfolder, an empty file, a unicode name in a unicode
/// folder, and an empty subfolder; and each file's place and bytes.
fn tree() -> (Chosen, Vec<(&'static str, Vec<u8>)>) {
    let contents = vec![
        ("Top/sub/a.bin", noise(2 * 1024 * 1024 + 5, 21)),
        ("Top/empty.txt", Vec::new()),
        ("Top/día 1/ü 🚢.txt", "¡hola! 🚢".as_bytes().to_vec()),
    ];
    let chosen = Chosen {
        files: contents
            .iter()
            .map(|(path, bytes)| file(path.rsplit('/').next().unwrap(), bytes))
            .collect(),
        paths: contents
            .iter()
            .map(|(path, _)| path.rsplit_once('/').unwrap().0.to_owned())
            .collect(),
        empty_folders: vec!["Top/nothing".into()],
    };
    (chosen, contents)
}

/// Ana offers Bo the sample tree: both sides (Ana's engine must outlive the transfer), the
/// transfer, and the tree's files.
async fn tree_offered() -> (Side, Side, TransferId, Vec<(&'static str, Vec<u8>)>) {
    let (ana, bo) = pair(quiet());
    let (chosen, contents) = tree();
    let id = ana.engine.send_files(&peer(0x0b), chosen).unwrap();
    until(20, "the offer", || bo.offer().is_some()).await;
    (ana, bo, id, contents)
}

async fn subfolder(folder: &FileSystemDirectoryHandle, name: &str) -> FileSystemDirectoryHandle {
    JsFuture::from(folder.get_directory_handle(name))
        .await
        .unwrap_or_else(|_| panic!("no folder {name}"))
        .unchecked_into()
}

/// The names in `folder`.
async fn names_in(folder: &FileSystemDirectoryHandle) -> Vec<String> {
    let iterator = call_method(folder, "keys", &[], "listing a folder").unwrap();
    let mut names = Vec::new();
    loop {
        let step = call_method(&iterator, "next", &[], "listing a folder").unwrap();
        let step = JsFuture::from(step.unchecked_into::<js_sys::Promise>())
            .await
            .unwrap();
        if js_sys::Reflect::get(&step, &"done".into())
            .unwrap()
            .is_truthy()
        {
            break;
        }
        let name = js_sys::Reflect::get(&step, &"value".into()).unwrap();
        names.push(name.as_string().unwrap());
    }
    names.sort();
    names
}

#[wasm_bindgen_test]
async fn a_folder_is_written_as_a_tree_into_the_picked_folder() {
    let picked = fresh_folder("picked-tree").await;
    let (_ana, bo, id, contents) = tree_offered().await;
    bo.engine
        .answer(&id, Answer::SaveTo(Picked::Folder(picked.clone())));
    until(30, "completion", || bo.statuses(&id) == ["Complete"]).await;
    let top = subfolder(&picked, "Top").await;
    assert_eq!(
        names_in(&top).await,
        ["día 1", "empty.txt", "nothing", "sub"]
    );
    assert!(names_in(&subfolder(&top, "nothing").await).await.is_empty());
    for (path, expected) in &contents {
        let (folders, name) = path.rsplit_once('/').unwrap();
        let mut folder = picked.clone();
        for part in folders.split('/') {
            folder = subfolder(&folder, part).await;
        }
        assert!(
            read_entry(&folder, name).await == *expected,
            "{path} differs"
        );
    }
    // Nothing is zipped when the tree is written where the user chose.
    assert!(bo.engine.received_zip(&id).is_none());
}

#[wasm_bindgen_test]
async fn a_folder_kept_for_download_arrives_as_one_zip() {
    let (_ana, bo, id, contents) = tree_offered().await;
    bo.engine.answer(&id, Answer::Download);
    until(30, "the zip", || bo.engine.received_zip(&id).is_some()).await;
    let (zip, name) = bo.engine.received_zip(&id).unwrap();
    assert_eq!(name, "Top.zip");
    let bytes = bytes_of(&zip).await;
    let archive = rawzip::ZipArchive::from_slice(&bytes).unwrap();
    let mut found = Vec::new();
    for entry in archive.entries() {
        let entry = entry.unwrap();
        let path = String::from_utf8(entry.file_path().as_ref().to_vec()).unwrap();
        if entry.is_dir() {
            found.push((path, None));
            continue;
        }
        let wayfinder = entry.wayfinder();
        let data = archive.get_entry(wayfinder).unwrap().data().to_vec();
        assert_eq!(
            rawzip::crc32(&data),
            entry.crc32(),
            "{path}: its recorded CRC"
        );
        found.push((path, Some(data)));
    }
    let mut expected: Vec<(String, Option<Vec<u8>>)> = contents
        .into_iter()
        .map(|(path, bytes)| (path.to_owned(), Some(bytes)))
        .collect();
    expected.push(("Top/nothing/".to_owned(), None));
    assert!(
        found == expected,
        "entries: {:?}",
        found.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
}

#[wasm_bindgen_test]
async fn an_offer_whose_paths_climb_out_is_refused() {
    let HandPlayed {
        bo,
        events,
        channel,
        ..
    } = bo_and_a_hand_played_ana().await;
    let id = TransferId::from_random_bytes([0x5e; 16]);
    channel
        .send(&TransferMessage::Offer {
            id: id.clone(),
            files: vec![FileMeta {
                name: "passwd".into(),
                path: "photos/../../etc".into(),
                size: 4,
                mime: String::new(),
            }],
            version: TRANSFER_VERSION,
            empty_folders: Vec::new(),
        })
        .unwrap();
    let answer = next_message(&channel).await;
    let reason = "refused: the path “photos/../../etc” leads out of its folder";
    assert_eq!(
        answer,
        TransferMessage::Failed {
            reason: reason.into()
        }
    );
    let statuses: Vec<String> = bo
        .rows(&id)
        .iter()
        .map(|row| row.status.to_string())
        .collect();
    assert_eq!(statuses, [format!("Failed: {reason}")]);
    // Nothing was asked of the user.
    assert!(!offered(&events));
}

#[wasm_bindgen_test]
async fn a_chosen_folder_keeps_its_files_and_namesakes_in_one_offer_get_their_own() {
    let folder = fresh_folder("chosen-folder").await;
    let create = FileSystemGetFileOptions::new();
    create.set_create(true);
    JsFuture::from(folder.get_file_handle_with_options("same.txt", &create))
        .await
        .unwrap();
    let mut old = Sink::picked(&Picked::Folder(folder.clone()), "", "old.txt")
        .await
        .unwrap();
    old.write(&[(0, Uint8Array::from(&b"mine"[..]))])
        .await
        .unwrap();
    old.finish("").await.unwrap();

    let (ana, bo) = pair(quiet());
    let id = ana
        .engine
        .send_files(
            &peer(0x0b),
            vec![
                file("same.txt", b"first"),
                file("same.txt", b"second"),
                file("old.txt", b"theirs"),
            ],
        )
        .unwrap();
    until(20, "the offer", || bo.offer().is_some()).await;
    bo.engine
        .answer(&id, Answer::SaveTo(Picked::Folder(folder.clone())));
    until(20, "completion", || bo.statuses(&id) == ["Complete"; 3]).await;
    let names: Vec<String> = bo.rows(&id).into_iter().map(|row| row.name).collect();
    assert_eq!(names, ["same.txt", "same (2).txt", "old.txt"]);
    // "same.txt" was already there, empty: each file took the next free name.
    assert_eq!(read_entry(&folder, "same.txt").await, b"");
    assert_eq!(read_entry(&folder, "same (2).txt").await, b"first");
    assert_eq!(read_entry(&folder, "same (2) (2).txt").await, b"second");
    assert_eq!(read_entry(&folder, "old.txt").await, b"mine");
    assert_eq!(read_entry(&folder, "old (2).txt").await, b"theirs");
}
