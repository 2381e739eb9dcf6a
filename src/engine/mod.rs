//! The migration engine: two mio loops, one per side, joined by a bounded
//! channel of batches.
//!
//! - `source` and `target` are the loops; each owns any number of server
//!   connections in a slab and drives, per connection, a [`link::Link`]
//!   (reconnects) and a role: `scan` on the source side, `restore` on the
//!   target side. The roles are sans-IO and unit-tested with frames.
//! - `nodes` is what both loops share: a poll, its connections, the wait.
//! - `file` holds the loops for dump-file ends.
//! - `pipe` is the channel, `item` what travels in it, `control` the
//!   run-wide switches, `ledger` and `checkpoint` what is done and how a
//!   later run resumes, `pacer` the `--rate` bucket, `clock` time and backoff.

pub mod checkpoint;
pub mod clock;
pub mod control;
pub mod field_ttl;
pub mod file;
pub mod glob;
pub mod item;
pub mod lanes;
pub mod ledger;
pub mod link;
pub mod live;
pub mod nodes;
pub mod pacer;
pub mod pipe;
pub mod restore;
pub mod route;
pub mod scan;
pub mod seam;
pub mod slab;
pub mod source;
pub mod spread;
pub mod target;
pub mod window;

use std::time::Duration;

use mio::{Events, Poll};

use crate::error::Error;

/// One `poll`, retrying when a signal interrupts it.
pub fn poll_once(poll: &mut Poll, events: &mut Events, timeout: Duration) -> Result<(), Error> {
    loop {
        match poll.poll(events, Some(timeout)) {
            Ok(()) => return Ok(()),
            Err(e) if crate::net::socket::interrupted(&e) => continue,
            Err(e) => return Err(Error::Setup(e)),
        }
    }
}
