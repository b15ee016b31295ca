//! The signaling server's integration tests: real WebSocket clients against the server bound
//! on `127.0.0.1:0`, and the HTTP routes through `oneshot` or a plain TCP client.
//!
//! Waits are event driven: a test awaits the message it expects, with a timeout only as a
//! safety net. To show that a client received nothing, a test sends it a marker afterwards
//! and checks that the marker is the next thing it gets.

mod support;

mod assets;
mod backlog;
mod bad_input;
mod classic;
mod crowd;
mod floods;
mod hostile;
mod instances;
mod instances_classic;
mod lifecycle;
mod lookalikes;
mod presence;
mod relay;
mod rooms;
mod store;
mod tls;
mod turn;
