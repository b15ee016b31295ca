//! placeholder
pub fn mount() {}
