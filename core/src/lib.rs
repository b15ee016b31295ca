//! Ferry's core: what decides how a transfer goes, as plain data with unit tests. A peer's glue
//! (the browser app's) feeds it what happens (bytes read, chunks and messages arriving, blocks
//! hashed) and does what it says.

#![forbid(unsafe_code)]

pub mod backoff;
pub mod blocks;
pub mod chunking;
pub mod comparison;
pub mod filename;
pub mod flow;
pub mod format;
pub mod offer;
pub mod paths;
pub mod place;
pub mod qr;
pub mod rate;
pub mod record;
pub mod resume;
pub mod route;
pub mod rows;
pub mod sdp;
pub mod share;
pub mod stripes;
pub mod transfer;
pub mod trust;
pub mod verify;
pub mod zip;
