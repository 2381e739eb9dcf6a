//! Integration tests: every test starts its own real `redis-server` (or
//! `valkey-server`) processes on free ports and runs the real `rump` binary.

// A test binary has no public API: `pub` only shares fixtures between modules.
#![allow(unreachable_pub)]

/// Server guard, client and rump runner.
mod util;

/// Command line: help, version, usage errors and exit codes.
mod cli;
/// Redis Cluster: the test cluster itself, key slots and topology replies
/// against live nodes, and rump with a cluster at either end (every
/// combination, resharding, failover, replicas, partitions, db 0 only).
mod cluster;
/// --dry-run: every check passing on a good pair, each failing on its own.
mod dryrun;
/// Dump files: round trips, pipes, atomic writes, damage detection, legacy format.
mod dump;
/// Failures: refused, unreachable, auth, db, OOM, replicas, disconnects, signals.
mod failure;
/// Faults mid-run: restarts, killed connections, frozen servers, checkpoints.
mod faults;
/// Hostile peers (a scripted fake source): garbage, HTTP, stalls, endless replies.
mod hostile;
/// Live sync: a writer during and after the scan, refusals, the setting
/// put back, a lost notification connection, a flush, a cluster source.
mod live;
/// Server → server copies: every type, binary data, filters, options.
mod migrate;
/// The latency proxy of the e2e bench: bytes exact, delay, EOF, cap, drop.
mod proxy;
/// One test per fixed bug, named r<issue>.
mod regression;
/// TLS: rediss:// at either end, certificates, clusters over TLS, and every
/// handshake failure.
mod tls;
/// Expiry: exact absolute TTLs, persistence, --no-ttl, keys expiring mid-run.
mod ttl;
/// --verify / --verify-only: differences counted and named, nothing written.
mod verify;
/// Across versions: Redis 6.2, Redis 7.0, Valkey 8.1 and Valkey 9.1 in
/// every direction, payloads rewritten for older targets, field TTLs.
mod versions;
/// Across a WAN: 40 ms round trips through the latency proxy, copies
/// complete and exact, the adaptive windows grown.
mod wan;
