//! The page's entry point: mounts the Leptos app (on wasm32; natively there is nothing to run).

#[cfg(target_arch = "wasm32")]
fn main() {
    ferry_app::ui::mount();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("ferry-app runs in the browser: build it with `trunk build`.");
}
