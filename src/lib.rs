//! rump: online Redis migration with SCAN, DUMP and RESTORE.
//!
//! The library behind the `rump` command, cut along the data path:
//! `cli`/`config` (what to do) → `net`/`session`/`conn` (talking to servers) →
//! `source`/`pipe`/`target` (the two loops and the channel between them) →
//! `app` (wiring) and `progress` (telling). `main.rs` only maps the outcome to
//! messages and an exit status.
// Tests may unwrap; the tool itself may not (STYLE rule 7).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod app;
pub mod cli;
pub mod config;
pub mod conn;
pub mod control;
pub mod dump;
pub mod error;
pub mod file;
pub mod net;
pub mod pipe;
pub mod progress;
pub mod secrets;
pub mod session;
pub mod source;
pub mod target;
