//! Folders for the end-to-end tests: a sample tree (nested, unicode names, an empty file, an
//! empty subfolder), given to a page as a person gives one (dropped on the page, or chosen in
//! the folder picker), and what arrived read back: a downloaded zip's entries, or the tree a
//! page wrote into the folder it was given to save into.
//!
//! WebDriver cannot drag a folder from the desktop, so a drop is played in the page: a `drop`
//! event whose `dataTransfer` lists the folder as the entries API does (`webkitGetAsEntry`,
//! `createReader().readEntries`, `file()`), over real `File` objects. The app reads it
//! through the same calls as a real drop. The page's picker for a folder to save into is
//! likewise answered by the test, with a folder of the page's own private file system.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::User;
use crate::webrtc::in_page;

/// A folder's content: each file's path (from the folder's parent, `/`-separated) with its
/// bytes, and each empty folder's path (`None`).
pub type Tree = BTreeMap<String, Option<Vec<u8>>>;

/// The sample folder, "Fotos día": a file in a subfolder, an empty file, a unicode file in a
/// unicode folder, a file two folders down, and an empty subfolder.
pub fn sample_tree() -> Tree {
    let noise: Vec<u8> = (0..200_003u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    [
        ("Fotos día/sub/a.bin", Some(noise)),
        ("Fotos día/empty.txt", Some(Vec::new())),
        ("Fotos día/ü 🚢/ñandú.txt", Some("¡hola, ñandú! 🚢".into())),
        ("Fotos día/nested/deeper/x.txt", Some(b"deep".to_vec())),
        ("Fotos día/vacío", None),
    ]
    .into_iter()
    .map(|(path, bytes)| (path.to_owned(), bytes))
    .collect()
}

/// Writes `tree` under `dir`; returns the path of its top folder.
///
/// # Errors
/// When the disk refuses.
pub fn write_tree(dir: &Path, tree: &Tree) -> Result<PathBuf> {
    for (path, bytes) in tree {
        let target = dir.join(path);
        match bytes {
            Some(bytes) => {
                std::fs::create_dir_all(target.parent().context("a file has a folder")?)?;
                std::fs::write(&target, bytes)?;
            }
            None => std::fs::create_dir_all(&target)?,
        }
    }
    let top = tree.keys().next().context("an empty tree")?;
    Ok(dir.join(top.split('/').next().unwrap_or_default()))
}

/// Drops `tree` on `user`'s page, as dragging its top folder from the desktop does.
///
/// # Errors
/// When the page cannot run the script.
pub async fn drop_tree(user: &User, tree: &Tree) -> Result<()> {
    let spec: Vec<_> = tree
        .iter()
        .map(|(path, bytes)| json!([path, bytes.as_deref().map(hex)]))
        .collect();
    let script = format!("(function (spec) {{ {DROP} }})({})", json!(spec));
    in_page(user, &script).await?;
    Ok(())
}

/// Plays a folder drop: builds entries over real files, then dispatches `drop` on the window.
const DROP: &str = "
const folder = (name) => ({ name, isDirectory: true, isFile: false, children: [] });
const root = folder('');
const at = (path) => {
  let node = root;
  for (const part of path.split('/')) {
    let child = node.children.find((c) => c.isDirectory && c.name === part);
    if (!child) { child = folder(part); node.children.push(child); }
    node = child;
  }
  return node;
};
for (const [path, hex] of spec) {
  if (hex === null) { at(path); continue; }
  const cut = path.lastIndexOf('/');
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.substr(2 * i, 2), 16);
  const file = new File([bytes], path.slice(cut + 1));
  at(path.slice(0, cut)).children.push({
    name: file.name, isDirectory: false, isFile: true,
    file(ok) { setTimeout(() => ok(file)); },
  });
}
const entry = (node) => {
  if (!node.isDirectory) return node;
  return {
    name: node.name, isDirectory: true, isFile: false,
    createReader() {
      let given = false;
      return { readEntries(ok) { setTimeout(() => { ok(given ? [] : node.children.map(entry)); given = true; }); } };
    },
  };
};
const items = root.children.map((node) => ({ kind: 'file', webkitGetAsEntry: () => entry(node) }));
const event = new DragEvent('drop', { bubbles: true, cancelable: true });
Object.defineProperty(event, 'dataTransfer', { value: { items, files: [] } });
window.dispatchEvent(event);
return true;
";

/// Makes `user`'s "Choose where to save…" answer with folder `name` of the page's private
/// file system, instead of the dialog a test cannot click in (Chromium only: Firefox has no
/// folder picker).
///
/// # Errors
/// When the page cannot run the script.
pub async fn answer_folder_picker(user: &User, name: &str) -> Result<()> {
    let script = format!(
        "(function () {{ window.showDirectoryPicker = async () => \
         (await navigator.storage.getDirectory()).getDirectoryHandle({}, {{ create: true }}); \
         return true; }})()",
        json!(name)
    );
    in_page(user, &script).await?;
    Ok(())
}

/// What folder `name` of `user`'s private file system holds, as a [`Tree`] of paths below it.
///
/// # Errors
/// When the folder is missing or the page cannot run the script.
pub async fn private_tree(user: &User, name: &str) -> Result<Tree> {
    let script = "const [name, done] = arguments;
        const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
        (async () => {
          const tree = {};
          const walk = async (folder, path) => {
            let empty = true;
            for await (const [child, handle] of folder.entries()) {
              empty = false;
              const inner = path ? path + '/' + child : child;
              if (handle.kind === 'directory') await walk(handle, inner);
              else tree[inner] = hex(new Uint8Array(await (await handle.getFile()).arrayBuffer()));
            }
            if (empty && path) tree[path] = null;
          };
          const root = await navigator.storage.getDirectory();
          await walk(await root.getDirectoryHandle(name), '');
          return tree;
        })().then(done, (error) => done({ error: String(error) }));";
    let answer = user
        .client()
        .execute_async(script, vec![json!(name)])
        .await
        .context("reading the page's private files")?;
    let object = answer
        .as_object()
        .context("the page did not list its files")?;
    if let Some(error) = object.get("error") {
        bail!("the page could not list its files: {error}");
    }
    object
        .iter()
        .map(|(path, hex)| {
            let bytes = match hex.as_str() {
                Some(hex) => Some(unhex(hex)?),
                None => None,
            };
            Ok((path.clone(), bytes))
        })
        .collect()
}

/// The entries of the zip at `path` as a [`Tree`], read by the `zip` crate (which checks each
/// file's CRC-32 as it reads it); fails on a compressed entry, as Ferry stores them.
///
/// # Errors
/// When the file is not a readable zip.
pub fn zip_tree(path: &Path) -> Result<Tree> {
    use std::io::Read;
    let bytes = std::fs::read(path)?;
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).context("reading the zip")?;
    let mut tree = Tree::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index)?;
        let name = entry.name().to_owned();
        if entry.is_dir() {
            tree.insert(name.trim_end_matches('/').to_owned(), None);
            continue;
        }
        if entry.compression() != zip::CompressionMethod::Stored {
            bail!("{name} is compressed ({})", entry.compression());
        }
        let mut content = Vec::new();
        entry
            .read_to_end(&mut content)
            .with_context(|| format!("reading {name} from the zip"))?;
        tree.insert(name, Some(content));
    }
    Ok(tree)
}

/// The files and empty folders under `dir` as a [`Tree`], paths from `dir` (so a received
/// folder's own name leads each path, as in [`sample_tree`]).
///
/// # Errors
/// When the disk cannot be read.
pub fn disk_tree(dir: &Path) -> Result<Tree> {
    fn walk(root: &Path, dir: &Path, tree: &mut Tree) -> Result<()> {
        let mut empty = true;
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            empty = false;
            if path.is_dir() {
                walk(root, &path, tree)?;
            } else {
                tree.insert(relative(root, &path)?, Some(std::fs::read(&path)?));
            }
        }
        if empty && dir != root {
            tree.insert(relative(root, dir)?, None);
        }
        Ok(())
    }
    fn relative(root: &Path, path: &Path) -> Result<String> {
        let parts: Option<Vec<&str>> = path
            .strip_prefix(root)?
            .components()
            .map(|part| part.as_os_str().to_str())
            .collect();
        Ok(parts.context("a name that is not Unicode")?.join("/"))
    }
    let mut tree = Tree::new();
    walk(dir, dir, &mut tree)?;
    Ok(tree)
}

/// Fails unless `got` is `expected`, naming the first path that differs.
///
/// # Errors
/// When the trees differ.
pub fn same_tree(what: &str, got: &Tree, expected: &Tree) -> Result<()> {
    for (path, bytes) in expected {
        match got.get(path) {
            None => bail!("{what}: {path:?} is missing; it holds {:?}", got.keys()),
            Some(found) if found != bytes => bail!("{what}: {path:?} differs"),
            Some(_) => {}
        }
    }
    if let Some(extra) = got.keys().find(|path| !expected.contains_key(*path)) {
        bail!("{what}: {extra:?} was not sent");
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(hex: &str) -> Result<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|at| {
            hex.get(at..at + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .context("the page's hex is broken")
        })
        .collect()
}
