//! A real Redis Cluster for the integration tests: `redis-server
//! --cluster-enabled yes` nodes on free 127.0.0.1 ports, joined with
//! `redis-cli --cluster create`, and returned only once every node says
//! `cluster_state:ok` and sees the same slot map with every replica synced.
//!
//! The helpers read the cluster with their own small `CLUSTER SLOTS` parser,
//! not with `rump::cluster`, so a test that compares rump's view with the
//! servers' does not check rump against itself.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use resp::Frame;

use super::{clean_up_after_exit, free_port, snapshot_keys, Client, Flavor, Server, Snapshot};

/// How long the nodes get to agree after `redis-cli --cluster create`.
const AGREE_WITHIN: Duration = Duration::from_secs(20);

/// How long `redis-cli --cluster create` may take (it polls once a second
/// until the nodes have met).
const CREATE_WITHIN: Duration = Duration::from_secs(30);

/// A cluster node's failure detection time: short, so a failover test is
/// quick, long enough that a busy 2-core machine does not fail nodes.
const NODE_TIMEOUT_MS: &str = "2000";

/// A running cluster; every node is killed on drop.
pub struct Cluster {
    /// The nodes that were masters when the cluster was created, in slot
    /// order: `masters[0]` serves slot 0.
    pub masters: Vec<Server>,
    /// The nodes that were replicas when the cluster was created.
    pub replicas: Vec<Server>,
}

/// One range of a `CLUSTER SLOTS` reply: first and last slot, the master's
/// port, the replicas' ports (sorted).
type SlotRange = (u16, u16, u16, Vec<u16>);

impl Cluster {
    /// Starts `masters` masters (at least 3, as `redis-cli --cluster create`
    /// requires) with `replicas_per_master` replicas each, and waits until
    /// the cluster is ok, every node agrees on the slot map, and every
    /// replica is listed (synced) by every node. Panics with the nodes'
    /// logs otherwise.
    pub fn start(masters: usize, replicas_per_master: usize) -> Cluster {
        assert!(
            masters >= 3,
            "redis-cli --cluster create needs at least 3 masters, not {masters}"
        );
        let nodes: Vec<Server> = (0..masters * (1 + replicas_per_master))
            .map(|_| start_node())
            .collect();
        Cluster::form(nodes, masters, replicas_per_master)
    }

    /// Joins `nodes` (started with [`node_args`]) into a cluster of
    /// `masters` masters with `replicas_per_master` replicas each, as
    /// [`Cluster::start`] does: for nodes started another way (TLS).
    pub fn form(nodes: Vec<Server>, masters: usize, replicas_per_master: usize) -> Cluster {
        create(&nodes, replicas_per_master);
        let (mut masters_found, mut replicas_found): (Vec<Server>, Vec<Server>) =
            nodes.into_iter().partition(is_master);
        if masters_found.len() != masters {
            let all: Vec<Server> = masters_found.into_iter().chain(replicas_found).collect();
            panic!(
                "expected {masters} masters after --cluster create\n{}",
                logs(&all)
            );
        }
        // A replica whose replication offset is still 0 is left out of
        // CLUSTER SLOTS (and "loading" in CLUSTER SHARDS): make every
        // master write once, leaving no key behind.
        if replicas_per_master > 0 {
            for master in &masters_found {
                bump_replication_offset(master);
            }
        }
        let map = wait_until_agreed(
            &masters_found,
            &replicas_found,
            masters,
            replicas_per_master,
        );
        // Slot order: masters[0] serves slot 0.
        masters_found.sort_by_key(|m| map.iter().find(|r| r.2 == m.port).map_or(u16::MAX, |r| r.0));
        replicas_found.sort_by_key(|r| r.port);
        Cluster {
            masters: masters_found,
            replicas: replicas_found,
        }
    }

    /// Every node, masters first.
    pub fn nodes(&self) -> impl Iterator<Item = &Server> {
        self.masters.iter().chain(&self.replicas)
    }

    /// A master's `redis://127.0.0.1:PORT`, to give rump as the cluster.
    pub fn seed_url(&self) -> String {
        self.masters[0].url()
    }

    /// The node serving `slot` now (asked of the cluster, so it follows
    /// resharding and failovers).
    pub fn node_for_slot(&self, slot: u16) -> &Server {
        self.node(owner_port(&self.slot_map(), slot))
    }

    /// A client on the master serving `key`'s slot (the slot from the
    /// server's `CLUSTER KEYSLOT`).
    pub fn client_for_key(&self, key: &[u8]) -> Client {
        self.node_for_slot(self.keyslot(key)).client()
    }

    /// The server's `CLUSTER KEYSLOT key`.
    pub fn keyslot(&self, key: &[u8]) -> u16 {
        match self
            .any_live_node()
            .client()
            .cmd(&[b"CLUSTER", b"KEYSLOT", key])
        {
            Frame::Integer(n) => u16::try_from(n).expect("slot"),
            other => panic!("CLUSTER KEYSLOT -> {other:?}"),
        }
    }

    /// The keys on the cluster: the sum of `DBSIZE` over the nodes that are
    /// masters now.
    pub fn dbsize(&self) -> i64 {
        self.current_masters().map(|m| m.client().dbsize()).sum()
    }

    /// Empties every master (and so its replicas). Never on
    /// [`shared_cluster`].
    pub fn flushall(&self) {
        for master in self.current_masters() {
            master.client().ok(&["FLUSHALL"]);
        }
    }

    /// The nodes that are masters now (after a failover, not `masters`).
    pub fn current_masters(&self) -> impl Iterator<Item = &Server> {
        self.nodes().filter(|n| is_master(n))
    }

    /// The server's `CLUSTER KEYSLOT` of each key, pipelined.
    pub fn keyslots(&self, keys: &[Vec<u8>]) -> Vec<u16> {
        let commands: Vec<Vec<Vec<u8>>> = keys
            .iter()
            .map(|k| vec![b"CLUSTER".to_vec(), b"KEYSLOT".to_vec(), k.clone()])
            .collect();
        self.any_live_node()
            .client()
            .pipeline_replies(&commands)
            .into_iter()
            .map(|r| match r {
                Frame::Integer(n) => u16::try_from(n).expect("slot"),
                other => panic!("CLUSTER KEYSLOT -> {other:?}"),
            })
            .collect()
    }

    /// Runs `commands` (each `[NAME, KEY, ...]`) on the masters that own
    /// their key's slot, pipelined per master; panics on any error reply
    /// (a `MOVED` included: the map is read once, so do not reshard
    /// meanwhile).
    pub fn pipeline(&self, commands: &[Vec<Vec<u8>>]) {
        let keys: Vec<Vec<u8>> = commands.iter().map(|c| c[1].clone()).collect();
        let slots = self.keyslots(&keys);
        let map = self.slot_map();
        let mut by_master: BTreeMap<u16, Vec<Vec<Vec<u8>>>> = BTreeMap::new();
        for (command, slot) in commands.iter().zip(slots) {
            by_master
                .entry(owner_port(&map, slot))
                .or_default()
                .push(command.clone());
        }
        for (port, commands) in by_master {
            self.node(port).client().pipeline(&commands);
        }
    }

    /// Every key matching `pattern` on the nodes that are masters now, with
    /// its DUMP payload and absolute expiry, sorted by key. Panics if a key
    /// is held by a master that does not own its slot, or by two masters:
    /// what a cluster target must never end up with.
    pub fn snapshot(&self, pattern: &str) -> Snapshot {
        let map = self.slot_map();
        let mut all: Snapshot = Vec::new();
        for master in self.current_masters() {
            let mut c = master.client();
            let keys = c.keys_matching(pattern);
            let slots = self.keyslots(&keys);
            let misplaced: Vec<String> = keys
                .iter()
                .zip(&slots)
                .filter(|(_, &slot)| owner_port(&map, slot) != master.port)
                .map(|(k, slot)| {
                    format!(
                        "{:?} (slot {slot}, owned by {})",
                        String::from_utf8_lossy(k),
                        owner_port(&map, *slot)
                    )
                })
                .collect();
            assert!(
                misplaced.is_empty(),
                "master {} holds {} keys of slots it does not own, first: {}",
                master.port,
                misplaced.len(),
                misplaced[..misplaced.len().min(5)].join(", ")
            );
            all.extend(snapshot_keys(&mut c, keys));
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let twice: Vec<String> = all
            .windows(2)
            .filter(|w| w[0].0 == w[1].0)
            .map(|w| String::from_utf8_lossy(&w[0].0).into_owned())
            .collect();
        assert!(
            twice.is_empty(),
            "{} keys are on two masters, first {:?}",
            twice.len(),
            twice.first()
        );
        all
    }

    /// `CONFIG RESETSTAT` on every node: command and error counts from 0.
    pub fn reset_stats(&self) {
        for node in self.nodes() {
            node.client().ok(&["CONFIG", "RESETSTAT"]);
        }
    }

    /// How many `name` errors (`MOVED`, `ASK`, ...) the nodes have replied
    /// since their stats were reset: `INFO errorstats`, summed.
    pub fn error_count(&self, name: &str) -> u64 {
        let prefix = format!("errorstat_{name}:count=");
        self.nodes()
            .map(|n| {
                n.client()
                    .info("errorstats")
                    .lines()
                    .find_map(|l| l.strip_prefix(&prefix))
                    .map_or(0, |v| v.trim().parse::<u64>().expect("error count"))
            })
            .sum()
    }

    /// The replicas of `master` now, as the cluster lists them.
    pub fn replicas_of(&self, master: &Server) -> Vec<&Server> {
        let map = self.slot_map();
        let ports: Vec<u16> = map
            .iter()
            .find(|r| r.2 == master.port)
            .map(|r| r.3.clone())
            .unwrap_or_default();
        ports.into_iter().map(|p| self.node(p)).collect()
    }

    /// Waits until every replica holds as many keys as its master (for a
    /// test that reads replicas right after writing to the masters).
    pub fn wait_replicas_caught_up(&self, within: Duration) {
        let deadline = Instant::now() + within;
        for master in self.current_masters() {
            for replica in self.replicas_of(master) {
                loop {
                    let (want, have) = (master.client().dbsize(), replica.client().dbsize());
                    if want == have {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "replica {} has {have} keys, its master {} {want}, after {within:?}",
                        replica.port,
                        master.port
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Moves `slots` from master `from` to master `to` as `redis-cli
    /// --cluster reshard` does, but all at once, so a test can count on
    /// meeting both redirections: every slot `MIGRATING` on `from` and
    /// `IMPORTING` on `to`; then `hold`, while a new key of those slots
    /// written to `from` is answered `ASK`; then their keys `MIGRATE`d and
    /// the slots given to `to` on every master, after which a write through
    /// the old map is answered `MOVED`.
    pub fn move_slots(
        &self,
        from: &Server,
        to: &Server,
        slots: RangeInclusive<u16>,
        hold: Duration,
    ) {
        let (from_id, to_id) = (node_id(from), node_id(to));
        let setslot = |slot: u16, how: &str, id: &str| {
            vec![
                b"CLUSTER".to_vec(),
                b"SETSLOT".to_vec(),
                slot.to_string().into_bytes(),
                how.as_bytes().to_vec(),
                id.as_bytes().to_vec(),
            ]
        };
        let each = |how: &str, id: &str| -> Vec<Vec<Vec<u8>>> {
            slots.clone().map(|s| setslot(s, how, id)).collect()
        };
        to.client().pipeline(&each("IMPORTING", &from_id));
        from.client().pipeline(&each("MIGRATING", &to_id));
        std::thread::sleep(hold);
        let mut source = from.client();
        for slot in slots.clone() {
            loop {
                let Frame::Array(keys) =
                    source.ok(&["CLUSTER", "GETKEYSINSLOT", &slot.to_string(), "100"])
                else {
                    panic!("CLUSTER GETKEYSINSLOT")
                };
                if keys.is_empty() {
                    break;
                }
                let mut migrate: Vec<Vec<u8>> = [
                    "MIGRATE",
                    "127.0.0.1",
                    &to.port.to_string(),
                    "",
                    "0",
                    "10000",
                    "KEYS",
                ]
                .iter()
                .map(|a| a.as_bytes().to_vec())
                .collect();
                migrate.extend(keys.iter().map(|k| k.as_bulk().expect("key").to_vec()));
                source.pipeline(&[migrate]);
            }
        }
        // The new owner first, then the old one, then the others, as
        // redis-cli does.
        to.client().pipeline(&each("NODE", &to_id));
        source.pipeline(&each("NODE", &to_id));
        for other in self
            .current_masters()
            .filter(|m| m.port != from.port && m.port != to.port)
        {
            other.client().pipeline(&each("NODE", &to_id));
        }
    }

    /// The node listening on `port`.
    fn node(&self, port: u16) -> &Server {
        self.nodes()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("port {port} is not one of our nodes"))
    }

    /// The slot map as one live node sees it.
    fn slot_map(&self) -> Vec<SlotRange> {
        slot_map(self.any_live_node()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A node that answers (a test may have killed some).
    fn any_live_node(&self) -> &Server {
        self.nodes()
            .find(|n| Client::try_connect(n.port).is_ok())
            .expect("no cluster node answers")
    }
}

/// The port of the master serving `slot` in `map`.
fn owner_port(map: &[SlotRange], slot: u16) -> u16 {
    map.iter()
        .find(|r| r.0 <= slot && slot <= r.1)
        .map(|r| r.2)
        .unwrap_or_else(|| panic!("no node serves slot {slot}: {map:?}"))
}

/// A node's `CLUSTER MYID`.
pub fn node_id(node: &Server) -> String {
    match node.client().ok(&["CLUSTER", "MYID"]) {
        Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("CLUSTER MYID -> {other:?}"),
    }
}

/// One cluster node, not yet part of a cluster. The bus port is given
/// explicitly: the default, port + 10000, is past 65535 for half the
/// ephemeral range.
fn start_node() -> Server {
    let args = node_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_with(Flavor::Redis, &args)
}

/// The arguments that make a server a cluster node, with a free bus port.
pub fn node_args() -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        NODE_TIMEOUT_MS,
        "--cluster-port",
        &free_port().to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// `redis-cli --cluster create … --cluster-replicas R --cluster-yes`,
/// bounded by [`CREATE_WITHIN`].
fn create(nodes: &[Server], replicas_per_master: usize) {
    let cli = std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into());
    let mut cmd = Command::new(&cli);
    cmd.args(["--cluster", "create"])
        .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
        .args(["--cluster-replicas", &replicas_per_master.to_string()])
        .arg("--cluster-yes")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot run {cli:?}: {e}; install redis-tools or set REDIS_CLI")
    });
    let start = Instant::now();
    while child.try_wait().expect("wait for redis-cli").is_none() {
        if start.elapsed() > CREATE_WITHIN {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("redis-cli output");
    assert!(
        out.status.success(),
        "{cli} --cluster create failed ({:?}, {:?} allowed)\n{}\n{}\n{}",
        out.status,
        CREATE_WITHIN,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        logs(nodes)
    );
}

fn is_master(node: &Server) -> bool {
    node.client()
        .info("replication")
        .lines()
        .any(|l| l.trim() == "role:master")
}

/// One write and its undo on `master`, on a key of its own slots (keys are
/// tried until one is not `MOVED`). Right after `--cluster create` a node
/// may still answer `CLUSTERDOWN` for a while: that key is tried again,
/// within [`AGREE_WITHIN`].
fn bump_replication_offset(master: &Server) {
    let mut c = master.client();
    let deadline = Instant::now() + AGREE_WITHIN;
    let mut last = Frame::Null;
    let mut i = 0;
    while i < 10_000 && Instant::now() < deadline {
        let key = format!("cluster-fixture:{i}");
        match c.run(&["SET", &key, "1"]) {
            Frame::Error(e) if e.starts_with(b"MOVED") => i += 1,
            Frame::Error(e) => {
                last = Frame::Error(e);
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => {
                c.ok(&["DEL", &key]);
                return;
            }
        }
    }
    panic!(
        "no write of {i} keys succeeded on master {} within {AGREE_WITHIN:?} (last: {last:?})\n{}",
        master.port,
        master.log()
    );
}

/// Waits until every node says `cluster_state:ok` and reports the same slot
/// map: all 16384 slots, `masters` masters, `replicas` replicas on each
/// range. Returns the map.
fn wait_until_agreed(
    masters: &[Server],
    replicas: &[Server],
    want_masters: usize,
    want_replicas: usize,
) -> Vec<SlotRange> {
    let nodes: Vec<&Server> = masters.iter().chain(replicas).collect();
    let deadline = Instant::now() + AGREE_WITHIN;
    loop {
        let why = match agreed_map(&nodes, want_masters, want_replicas) {
            Ok(map) => return map,
            Err(why) => why,
        };
        if Instant::now() > deadline {
            panic!(
                "the cluster did not settle within {AGREE_WITHIN:?}: {why}\n{}",
                logs_of(&nodes)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The slot map all `nodes` agree on, or why there is none yet.
fn agreed_map(
    nodes: &[&Server],
    want_masters: usize,
    want_replicas: usize,
) -> Result<Vec<SlotRange>, String> {
    let mut agreed: Option<Vec<SlotRange>> = None;
    for node in nodes {
        let info = match node.client().ok(&["CLUSTER", "INFO"]) {
            Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            other => return Err(format!("CLUSTER INFO -> {other:?}")),
        };
        if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
            return Err(format!("node {} is not cluster_state:ok", node.port));
        }
        let map = slot_map(node)?;
        let covered: u32 = map.iter().map(|r| u32::from(r.1 - r.0) + 1).sum();
        let mut master_ports: Vec<u16> = map.iter().map(|r| r.2).collect();
        master_ports.sort_unstable();
        master_ports.dedup();
        if covered != 16384 || master_ports.len() != want_masters {
            return Err(format!("node {} sees {map:?}", node.port));
        }
        if let Some(r) = map.iter().find(|r| r.3.len() != want_replicas) {
            return Err(format!(
                "node {} lists {} replicas for slots {}-{}, not {want_replicas}",
                node.port,
                r.3.len(),
                r.0,
                r.1
            ));
        }
        match &agreed {
            Some(first) if *first != map => {
                return Err(format!(
                    "nodes disagree: {first:?} vs {map:?} on {}",
                    node.port
                ))
            }
            _ => agreed = Some(map),
        }
    }
    agreed.ok_or_else(|| "no nodes".into())
}

/// `CLUSTER SLOTS` of `node` as sorted ranges, parsed here (not by rump).
fn slot_map(node: &Server) -> Result<Vec<SlotRange>, String> {
    let reply = node.client().ok(&["CLUSTER", "SLOTS"]);
    let Frame::Array(entries) = reply else {
        return Err(format!("CLUSTER SLOTS -> {reply:?}"));
    };
    let port = |f: &Frame| -> Option<u16> {
        match f {
            Frame::Array(n) => n.get(1)?.as_int().and_then(|p| u16::try_from(p).ok()),
            _ => None,
        }
    };
    let mut map = Vec::new();
    for entry in &entries {
        let parsed = (|| {
            let Frame::Array(parts) = entry else {
                return None;
            };
            let first = u16::try_from(parts.first()?.as_int()?).ok()?;
            let last = u16::try_from(parts.get(1)?.as_int()?).ok()?;
            let master = port(parts.get(2)?)?;
            let mut replicas = parts[3..].iter().map(port).collect::<Option<Vec<_>>>()?;
            replicas.sort_unstable();
            Some((first, last, master, replicas))
        })();
        map.push(parsed.ok_or_else(|| format!("CLUSTER SLOTS entry {entry:?}"))?);
    }
    map.sort();
    Ok(map)
}

/// The tail of each node's log, for a panic message.
fn logs(nodes: &[Server]) -> String {
    logs_of(&nodes.iter().collect::<Vec<_>>())
}

fn logs_of(nodes: &[&Server]) -> String {
    /// Lines of each log: enough for the cause, short enough to read.
    const TAIL: usize = 25;
    nodes
        .iter()
        .map(|n| {
            let log = n.log();
            let lines: Vec<&str> = log.lines().collect();
            format!(
                "--- node {} (log tail)\n{}",
                n.port,
                lines[lines.len().saturating_sub(TAIL)..].join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One cluster (3 masters, 1 replica each) started on first use and shared
/// by every test of this run that can share it: tests using it must use
/// their own key prefix (disjoint from every other test's), must not flush
/// it, and must not kill, restart, pause or fail over its nodes or move its
/// slots (start their own [`Cluster`] for that).
///
/// A static is never dropped, so its nodes are killed by a watchdog
/// process once this test process has exited.
pub fn shared_cluster() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| {
        let cluster = Cluster::start(3, 1);
        watchdog(&cluster);
        cluster
    })
}

/// Kills the cluster's nodes (and removes their dirs) after this process
/// exits.
pub fn watchdog(cluster: &Cluster) {
    let pids: Vec<u32> = cluster.nodes().map(Server::pid).collect();
    let dirs: Vec<&Path> = cluster.nodes().map(Server::dir).collect();
    clean_up_after_exit(&pids, &dirs);
}
