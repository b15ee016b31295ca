//! Where received bytes land: the private file system's sink, the writer worker and its
//! takeovers, and the start-up clean-up of what closed tabs left.

use std::collections::HashSet;

use ferry_app::web::sink::{Finished, Opfs, Sink};
use ferry_app::web::writer::Writer;
use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;
use web_sys::{
    Blob, FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetDirectoryOptions,
    FileSystemGetFileOptions,
};

use crate::support::*;

#[wasm_bindgen_test]
async fn the_opfs_sink_writes_and_reads_back_a_file() {
    let opfs = Opfs::open("wasm-test", &HashSet::new())
        .await
        .unwrap()
        .expect("Chromium has OPFS");
    let content = noise(3 * 1024 * 1024 + 5, 11);
    let mut sink = Sink::private(&opfs, "sample").await.unwrap();
    // Written out of order, as blocks that pass their checks in any order are.
    let chunks: Vec<(usize, &[u8])> = content.chunks(256 * 1024).enumerate().collect();
    for (index, chunk) in chunks.into_iter().rev() {
        let at = (index * 256 * 1024) as u64;
        sink.write(&[(at, Uint8Array::from(chunk))]).await.unwrap();
    }
    let Finished::Download { blob, entry } = sink.finish("application/octet-stream").await.unwrap()
    else {
        panic!("a private file is handed over as a download");
    };
    assert_eq!(entry.as_deref(), Some("sample"));
    assert!(bytes_of(&blob).await == content);

    // A discarded partial file is gone at once.
    let mut partial = Sink::private(&opfs, "partial").await.unwrap();
    partial
        .write(&[(0, Uint8Array::from(&b"half"[..]))])
        .await
        .unwrap();
    partial.discard().await;
    opfs.remove("sample").await;
    assert!(opfs.entries().await.is_empty());
}

#[wasm_bindgen_test]
async fn the_writer_worker_writes_parts_in_any_order_through_a_sync_access_handle() {
    let folder = fresh_folder("writer-test").await;
    let create = FileSystemGetFileOptions::new();
    create.set_create(true);
    let handle: FileSystemFileHandle =
        JsFuture::from(folder.get_file_handle_with_options("parts", &create))
            .await
            .unwrap()
            .unchecked_into();
    // Both browsers have sync access handles: a failure to open is a failure here, not a
    // fallback.
    let writer = Writer::start().unwrap();
    let file = writer.open(&handle).await.unwrap();
    let content = noise(2 * 1024 * 1024 + 77, 5);
    let parts: Vec<(u64, Uint8Array)> = content
        .chunks(300 * 1024)
        .enumerate()
        .map(|(index, chunk)| ((index * 300 * 1024) as u64, Uint8Array::from(chunk)))
        .rev()
        .collect();
    let (late, early) = parts.split_at(2);
    writer.write(file, early).await.unwrap();
    writer.write(file, late).await.unwrap();
    writer.close(file).await.unwrap();
    assert!(read_entry(&folder, "parts").await == content);

    // A closed file takes no more bytes, and says so.
    let refused = writer
        .write(file, &[(0, Uint8Array::from(&b"late"[..]))])
        .await;
    assert!(refused.is_err(), "a write after close succeeded");
}

#[wasm_bindgen_test]
async fn fresh_writer_workers_take_over_open_files_and_write_on_where_the_last_stopped() {
    let folder = fresh_folder("writer-turnover").await;
    let create = FileSystemGetFileOptions::new();
    create.set_create(true);
    let mut handles = Vec::new();
    for name in ["one", "two"] {
        let handle: FileSystemFileHandle =
            JsFuture::from(folder.get_file_handle_with_options(name, &create))
                .await
                .unwrap()
                .unchecked_into();
        handles.push(handle);
    }
    // A fresh worker after every 256 KiB, so that both files outlive several.
    let writer = Writer::with_turnover(256 * 1024).unwrap();
    let files = [
        writer.open(&handles[0]).await.unwrap(),
        writer.open(&handles[1]).await.unwrap(),
    ];
    let contents = [noise(1024 * 1024 + 5, 6), noise(700 * 1024, 7)];
    // Two transfers writing at once: a takeover waits for the other's write in flight.
    let write_all = async |index: usize| {
        let parts = (0u64..)
            .step_by(100 * 1024)
            .zip(contents[index].chunks(100 * 1024));
        for (at, chunk) in parts {
            writer
                .write(files[index], &[(at, Uint8Array::from(chunk))])
                .await
                .unwrap();
        }
    };
    futures::join!(write_all(0), write_all(1));
    for file in files {
        writer.close(file).await.unwrap();
    }
    assert!(
        writer.workers_started() >= 6,
        "only {} workers for 1.7 MB handed over in turns of 256 KiB",
        writer.workers_started()
    );
    assert!(read_entry(&folder, "one").await == contents[0]);
    assert!(read_entry(&folder, "two").await == contents[1]);
}

#[wasm_bindgen_test]
async fn start_up_takes_over_what_closed_tabs_left_unfinished_and_clears_the_rest() {
    // Folders no tab holds a lock for, as tabs that closed leave them: one with a transfer
    // left unfinished (its record names it), one without.
    let storage = web_sys::window().unwrap().navigator().storage();
    let root: FileSystemDirectoryHandle = JsFuture::from(storage.get_directory())
        .await
        .unwrap()
        .unchecked_into();
    let create = FileSystemGetDirectoryOptions::new();
    create.set_create(true);
    let incoming: FileSystemDirectoryHandle =
        JsFuture::from(root.get_directory_handle_with_options("ferry-incoming", &create))
            .await
            .unwrap()
            .unchecked_into();
    JsFuture::from(incoming.get_directory_handle_with_options("closed-tab", &create))
        .await
        .unwrap();
    let unfinished: FileSystemDirectoryHandle =
        JsFuture::from(incoming.get_directory_handle_with_options("unfinished-tab", &create))
            .await
            .unwrap()
            .unchecked_into();
    let file_options = FileSystemGetFileOptions::new();
    file_options.set_create(true);
    JsFuture::from(unfinished.get_file_handle_with_options("partial", &file_options))
        .await
        .unwrap();
    let with_transfers = HashSet::from(["unfinished-tab".to_owned()]);

    let opfs = Opfs::open("live-tab", &with_transfers)
        .await
        .unwrap()
        .unwrap();
    assert!(opfs.entries().await.is_empty());
    let gone = JsFuture::from(incoming.get_directory_handle("closed-tab")).await;
    assert!(gone.is_err(), "the abandoned folder is still there");
    assert_eq!(opfs.abandoned(), ["closed-tab"]);
    JsFuture::from(incoming.get_directory_handle("live-tab"))
        .await
        .expect("this tab's own folder stays");
    assert_eq!(opfs.tabs(), ["live-tab", "unfinished-tab"]);
    let taken = opfs
        .of_tab("unfinished-tab")
        .expect("the folder taken over");
    assert_eq!(taken.entries().await, ["partial"]);

    // Another page starting now finds the folder held: it neither takes it nor clears it.
    let other = Opfs::open("other-tab", &with_transfers)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.tabs(), ["other-tab"]);
    assert!(other.abandoned().is_empty());
    assert_eq!(taken.entries().await, ["partial"]);
}

/// The folder `name` in the origin-private file system, created empty.
pub(crate) async fn fresh_folder(name: &str) -> FileSystemDirectoryHandle {
    let storage = web_sys::window().unwrap().navigator().storage();
    let root: FileSystemDirectoryHandle = JsFuture::from(storage.get_directory())
        .await
        .unwrap()
        .unchecked_into();
    let recursive = web_sys::FileSystemRemoveOptions::new();
    recursive.set_recursive(true);
    let _ = JsFuture::from(root.remove_entry_with_options(name, &recursive)).await;
    let create = FileSystemGetDirectoryOptions::new();
    create.set_create(true);
    JsFuture::from(root.get_directory_handle_with_options(name, &create))
        .await
        .unwrap()
        .unchecked_into()
}

pub(crate) async fn read_entry(folder: &FileSystemDirectoryHandle, name: &str) -> Vec<u8> {
    let handle: FileSystemFileHandle = JsFuture::from(folder.get_file_handle(name))
        .await
        .unwrap()
        .unchecked_into();
    let file: Blob = JsFuture::from(handle.get_file())
        .await
        .unwrap()
        .unchecked_into();
    bytes_of(&file).await
}
