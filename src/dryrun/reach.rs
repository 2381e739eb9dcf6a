//! Reaching each end: the node named (connection, authentication, the
//! handshake's INFO), every node of a cluster (its topology, slot coverage,
//! and whether each node answers), and for a dump file whether it can be
//! read whole (source) or created (target).

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use crate::app::open_all;
use crate::cluster::slots::SlotSet;
use crate::cluster::topology::{Node, Topology};
use crate::config::{Config, Endpoint, ReadFrom, ServerEndpoint};
use crate::dryrun::report::Checks;
use crate::dump::{rdb_version_of, DumpKind, DumpReader, Input};
use crate::engine::route::node_endpoint;
use crate::error::Role;
use crate::net::ServerInfo;
use crate::progress::group;
use crate::verify::side::Side;

/// The longest a cluster node gets to answer the dry run: a node that is
/// down is found in seconds, whatever `--timeout` says.
const NODE_PROBE: Duration = Duration::from_secs(5);

/// A server end that answered.
#[derive(Debug)]
pub struct Server {
    pub role: Role,
    pub endpoint: ServerEndpoint,
    /// What the node named said.
    pub info: ServerInfo,
    /// The nodes that hold the data (the one named for a standalone server;
    /// a cluster's masters), each with its own connection.
    pub nodes: Vec<Side>,
}

/// A dump file source, read whole.
#[derive(Debug, Default)]
pub struct File {
    pub records: u64,
    pub bytes: u64,
    /// The newest RDB version among the payloads.
    pub rdb: Option<u16>,
    /// The server the dump was taken from, as its header says.
    pub written_by: String,
}

/// An end, as far as it was reached.
#[derive(Debug)]
pub enum End {
    Server(Box<Server>),
    File(File),
    /// A dump file target that can be written, or stdout.
    Output,
    /// It could not be reached (the failure is among the checks).
    Unreached,
}

/// The check's name for an end.
pub fn name(role: Role) -> &'static str {
    match role {
        Role::Source => "source",
        Role::Target => "target",
    }
}

/// Reaches the `role` end of `config`, saying how it went in `checks`.
pub fn reach(role: Role, config: &Config, signal: &Arc<AtomicUsize>, checks: &mut Checks) -> End {
    let endpoint = match role {
        Role::Source => &config.source,
        Role::Target => &config.target,
    };
    match (endpoint, role) {
        (Endpoint::Server(server), _) => reach_server(role, server, config, signal, checks),
        (Endpoint::File(path), Role::Source) => read_file(&path.to_string_lossy(), checks),
        (Endpoint::Stdio, Role::Source) => read_file("-", checks),
        (Endpoint::File(path), Role::Target) => creatable(path, checks),
        (Endpoint::Stdio, Role::Target) => {
            checks.ok("target", "standard output: the dump is written there");
            End::Output
        }
    }
}

fn reach_server(
    role: Role,
    server: &ServerEndpoint,
    config: &Config,
    signal: &Arc<AtomicUsize>,
    checks: &mut Checks,
) -> End {
    let check = name(role);
    let seed = match open_all(&[(role, server.clone())], config.timeout, signal) {
        Ok(mut opened) => match opened.pop() {
            Some(seed) => seed,
            None => return End::Unreached,
        },
        Err(e) => {
            checks.fail(check, e.to_string());
            return End::Unreached;
        }
    };
    let info = seed.info.clone();
    let who = match (&server.user, &server.password) {
        (_, None) => "no password".to_string(),
        (Some(user), Some(_)) => format!("authenticated as {}", String::from_utf8_lossy(user)),
        (None, Some(_)) => "authenticated as default".to_string(),
    };
    let shape = if info.cluster {
        "cluster node"
    } else if info.replica {
        "replica"
    } else {
        "standalone"
    };
    checks.ok(
        check,
        format!("{server} answers: {} ({shape}), {who}", info.product),
    );
    let Some(topology) = info.topology.clone() else {
        return match Side::new(
            role,
            server.clone(),
            vec![seed],
            None,
            config.timeout,
            signal,
        ) {
            Ok(side) => End::Server(Box::new(Server {
                role,
                endpoint: server.clone(),
                info,
                nodes: vec![side],
            })),
            Err(e) => {
                checks.fail(check, e.to_string());
                End::Unreached
            }
        };
    };
    drop(seed);
    let nodes = cluster(role, server, &topology, config, signal, checks);
    End::Server(Box::new(Server {
        role,
        endpoint: server.clone(),
        info,
        nodes,
    }))
}

/// A cluster's topology and nodes: every slot the run needs is served, and
/// every node answers (a replica that does not is a warning, unless the
/// run reads replicas). Returns a connection to each master that serves
/// slots.
fn cluster(
    role: Role,
    seed: &ServerEndpoint,
    topology: &Topology,
    config: &Config,
    signal: &Arc<AtomicUsize>,
    checks: &mut Checks,
) -> Vec<Side> {
    let check = format!("{} cluster", name(role));
    let shards: Vec<_> = topology
        .shards()
        .iter()
        .filter(|s| !s.slots.is_empty())
        .collect();
    let replicas: usize = shards.iter().map(|s| s.replicas.len()).sum();
    let covered = topology.coverage();
    let needed = match (role, &config.slots) {
        (Role::Source, Some(selected)) => selected.clone(),
        _ => SlotSet::full(),
    };
    let missing: Vec<u16> = (0..crate::cluster::slot::SLOTS)
        .filter(|&s| needed.contains(s) && !covered.contains(s))
        .collect();
    if missing.is_empty() {
        checks.ok(
            &check,
            format!(
                "{} masters, {replicas} replicas; every slot {} is served",
                shards.len(),
                if needed.is_full() {
                    "of 16384"
                } else {
                    "selected"
                }
            ),
        );
    } else {
        let mut set = SlotSet::empty();
        missing.iter().for_each(|&s| set.insert(s));
        checks.fail(
            &check,
            format!(
                "{} slots are served by no master ({set}): their keys cannot be {}",
                group(missing.len() as u64),
                if role == Role::Source {
                    "read"
                } else {
                    "written"
                }
            ),
        );
    }
    let probe_timeout = config.timeout.min(NODE_PROBE);
    let mut masters = Vec::new();
    let (mut answered, mut failed) = (0, 0);
    for shard in &shards {
        let slots = shard_slots(&shard.slots);
        let wanted = role == Role::Target
            || (config.read_from == ReadFrom::Master && selects(config, &shard.slots));
        match probe(role, seed, &shard.master, probe_timeout, signal) {
            Ok(side) => {
                answered += 1;
                masters.push(side);
            }
            Err(e) => {
                failed += 1;
                let status_fail = wanted || role == Role::Target;
                let message = format!(
                    "master {} (slots {slots}) does not answer: {e}",
                    shard.master.addr()
                );
                if status_fail {
                    checks.fail(format!("{} nodes", name(role)), message);
                } else {
                    checks.warn(format!("{} nodes", name(role)), message);
                }
            }
        }
        let mut replica_up = false;
        for replica in &shard.replicas {
            match probe(role, seed, replica, probe_timeout, signal) {
                Ok(_) => {
                    answered += 1;
                    replica_up = true;
                }
                Err(e) => {
                    failed += 1;
                    checks.warn(
                        format!("{} nodes", name(role)),
                        format!(
                            "replica {} (of slots {slots}) does not answer: {e}",
                            replica.addr()
                        ),
                    );
                }
            }
        }
        if role == Role::Source
            && config.read_from == ReadFrom::Replica
            && selects(config, &shard.slots)
            && !replica_up
        {
            checks.fail(
                format!("{} nodes", name(role)),
                format!("--read-from replica: no replica of slots {slots} answers"),
            );
        }
    }
    if failed == 0 {
        checks.ok(
            format!("{} nodes", name(role)),
            format!("all {answered} nodes answer"),
        );
    }
    masters
}

/// True when the run reads some slot of `ranges`.
fn selects(config: &Config, ranges: &[(u16, u16)]) -> bool {
    config.slots.as_ref().map_or(true, |set| {
        ranges
            .iter()
            .any(|&(a, b)| (a..=b).any(|s| set.contains(s)))
    })
}

fn shard_slots(ranges: &[(u16, u16)]) -> String {
    let mut set = SlotSet::empty();
    for &(a, b) in ranges {
        set.insert_range(a, b);
    }
    set.to_string()
}

/// Connects to one cluster node, with the seed's credentials.
fn probe(
    role: Role,
    seed: &ServerEndpoint,
    node: &Node,
    timeout: Duration,
    signal: &Arc<AtomicUsize>,
) -> Result<Side, String> {
    let endpoint = node_endpoint(seed, &node.host, node.port);
    let opened = open_all(&[(role, endpoint.clone())], timeout, signal).map_err(|e| e.detail())?;
    Side::new(role, endpoint, opened, None, timeout, signal).map_err(|e| e.detail())
}

/// Reads a dump file through, checksums and all.
fn read_file(name: &str, checks: &mut Checks) -> End {
    let opened = Input::open(name).and_then(|input| DumpReader::open(input, name));
    let mut reader = match opened {
        Ok(reader) => reader,
        Err(e) => {
            checks.fail("source", e.to_string());
            return End::Unreached;
        }
    };
    let mut file = File {
        written_by: reader
            .header()
            .map(|h| h.redis_version.clone())
            .unwrap_or_default(),
        ..File::default()
    };
    loop {
        match reader.next_batch() {
            Ok(Some(items)) => {
                for item in items {
                    file.records += 1;
                    file.bytes += item.payload.len() as u64;
                    file.rdb = file.rdb.max(rdb_version_of(&item.payload));
                }
            }
            Ok(None) => break,
            Err(e) => {
                checks.fail("source", e.to_string());
                return End::Unreached;
            }
        }
    }
    let kind = match reader.kind() {
        DumpKind::Native => "native dump",
        DumpKind::Legacy => "dump in the original rump format",
        DumpKind::Empty => "empty dump",
    };
    let from = if file.written_by.is_empty() {
        String::new()
    } else {
        format!(", taken from {}", file.written_by)
    };
    checks.ok(
        "source",
        format!(
            "{name}: {kind}, read whole and intact: {} keys, {} bytes of values{from}",
            group(file.records),
            group(file.bytes)
        ),
    );
    End::File(file)
}

/// A dump file target: its directory takes a new file (tried with an empty
/// file of our own, removed at once: the dump itself is written the same
/// way, beside its final name).
fn creatable(path: &std::path::Path, checks: &mut Checks) -> End {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let probe = dir.join(format!(".rump-dry-run-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            let replaced = if path.exists() {
                " (it exists, and is replaced only once the new dump is complete)"
            } else {
                ""
            };
            checks.ok(
                "target",
                format!("{}: can be written{replaced}", path.display()),
            );
            End::Output
        }
        Err(e) => {
            checks.fail(
                "target",
                format!(
                    "{}: cannot create a file in {}: {e}",
                    path.display(),
                    dir.display()
                ),
            );
            End::Unreached
        }
    }
}
