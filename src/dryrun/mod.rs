//! `--dry-run`: connect to both ends and check what the run needs, writing
//! nothing: reachability and authentication, each cluster's topology, slot
//! coverage and nodes, the users' permissions for every command the copy
//! sends, versions (whether values load on the target as they are), the
//! target's free memory against the source's data, key counts, and the
//! expected duration from a short timed sample of reads.
//!
//! Each finding is one line, `ok`, `warn` or `fail` and why; the exit
//! status is 1 when any check failed. Every command sent reads, or is
//! refused by the server before it could write (see `access`).
//!
//! With `--live`, each source node's `notify-keyspace-events` is read too.

pub mod access;
pub mod capacity;
pub mod live;
pub mod reach;
pub mod report;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use crate::config::Config;
use crate::error::Role;
use crate::net::Version;

use reach::End;
pub use report::{Check, Checks, Status};

/// Runs every check of a dry run.
pub fn run(config: &Config) -> Checks {
    let signal = Arc::new(AtomicUsize::new(0));
    let mut checks = Checks::default();
    let mut source = reach::reach(Role::Source, config, &signal, &mut checks);
    let mut target = reach::reach(Role::Target, config, &signal, &mut checks);
    same_database(&source, &target, &mut checks);

    // Keys as the run would find and read them: one of them is what the
    // permissions are checked with.
    let mut sample = None;
    if let End::Server(s) = &mut source {
        if config.key_type.is_some() && s.info.version < Version(6, 0, 0) {
            checks.fail(
                "source",
                format!(
                    "--type needs SCAN … TYPE (Redis 6.0 or later); the source is {}",
                    s.info.product
                ),
            );
        }
        match capacity::sample(s, config) {
            Ok(found) => sample = Some(found),
            // Most likely a permission the check below names.
            Err(e) => checks.warn("estimate", format!("the source could not be sampled: {e}")),
        }
    }
    let found = sample.as_ref().and_then(|s| s.keys.first().cloned());
    let key = found.clone().unwrap_or_else(access::probe_key);
    for end in [&mut source, &mut target] {
        if let End::Server(s) = end {
            access::check(s, config, &key, found.is_some(), &mut checks);
        }
    }
    if let (true, End::Server(s)) = (config.live, &mut source) {
        live::check(s, config.live_enable_events, &mut checks);
    }
    capacity::versions(&source, &target, sample.as_ref(), &mut checks);
    let keys = capacity::keys(&mut source, &mut target, config, &mut checks);
    capacity::memory(&mut source, &mut target, config, &mut checks);
    if let (Some(sample), End::Server(s)) = (&sample, &source) {
        capacity::estimate(sample, keys, s.nodes.len(), &mut checks);
    }
    checks
}

/// A copy onto itself (the same server and db) would rewrite every key
/// while scanning it.
fn same_database(source: &End, target: &End, checks: &mut Checks) {
    let (End::Server(s), End::Server(t)) = (source, target) else {
        return;
    };
    let ids = |info: &crate::net::ServerInfo| -> Vec<String> {
        info.topology.as_ref().map_or_else(Vec::new, |t| {
            t.shards()
                .iter()
                .map(|s| s.master.id.clone())
                .filter(|id| !id.is_empty())
                .collect()
        })
    };
    let theirs = ids(&t.info);
    if ids(&s.info).iter().any(|id| theirs.contains(id)) {
        checks.fail(
            "ends",
            format!(
                "-from {} and -to {} are nodes of the same cluster",
                s.endpoint, t.endpoint
            ),
        );
        return;
    }
    let same = !s.info.run_id.is_empty()
        && s.info.run_id == t.info.run_id
        && s.endpoint.db == t.endpoint.db;
    if same {
        checks.fail(
            "ends",
            format!(
                "-from {} and -to {} are the same database (run_id {})",
                s.endpoint, t.endpoint, s.info.run_id
            ),
        );
    }
}
