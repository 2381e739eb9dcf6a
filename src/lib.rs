//! rump: online Redis migration with SCAN, DUMP and RESTORE.
//!
//! The library behind the `rump` command, cut along the data path:
//! `cli`/`config` (what to do) → `net` (sockets, connections, the start-up
//! handshake) → `engine` (the loops, their per-connection roles, the channel
//! between them, reconnects and checkpoints) → `dump` (dump files) →
//! `app` (wiring) and `progress` (telling); `secrets` keeps passwords out of
//! every line printed. `main.rs` only maps the outcome to messages and an
//! exit status.
// Tests may unwrap; the tool itself may not (STYLE rule 7).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod app;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod dryrun;
pub mod dump;
pub mod engine;
pub mod error;
pub mod live;
pub mod net;
pub mod progress;
pub mod secrets;
pub mod verify;
