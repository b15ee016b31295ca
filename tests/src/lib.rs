//! Ferry's end-to-end harness: the real signaling server in-process, real Chromium sessions over
//! WebDriver (one per person), and helpers that drive the app only by what a person sees.

#![forbid(unsafe_code)]

mod browser;
pub mod cli;
mod driver;
mod files;
pub mod folders;
mod harness;
mod held;
mod mallory;
mod relay;
mod server;
mod server_log;
mod user;
mod wait;
pub mod wan;
pub mod webrtc;

pub use browser::Kind;
pub use files::{SourceFile, finished_download, listing, random_file, sparse_file};
pub use harness::{Harness, run, run_with};
pub use held::HeldApp;
pub use mallory::Mallory;
pub use relay::Relay;
pub use server::{PRIVATE_IP, Server, Setup, default_static_dir};
pub use user::{PHONE, TOUCH_TARGET, User, is_final};
