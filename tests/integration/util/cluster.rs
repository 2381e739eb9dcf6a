//! A real Redis Cluster for the integration tests: `redis-server
//! --cluster-enabled yes` nodes on free 127.0.0.1 ports, joined with
//! `redis-cli --cluster create`, and returned only once every node says
//! `cluster_state:ok` and sees the same slot map with every replica synced.
//!
//! The helpers read the cluster with their own small `CLUSTER SLOTS` parser,
//! not with `rump::cluster`, so a test that compares rump's view with the
//! servers' does not check rump against itself.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use resp::Frame;

use super::{free_port, Client, Flavor, Server};

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
        let map = self.slot_map();
        let port = map
            .iter()
            .find(|r| r.0 <= slot && slot <= r.1)
            .map(|r| r.2)
            .unwrap_or_else(|| panic!("no node serves slot {slot}: {map:?}"));
        self.nodes()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("slot {slot} is served by port {port}, not one of ours"))
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

/// One cluster node, not yet part of a cluster. The bus port is given
/// explicitly: the default, port + 10000, is past 65535 for half the
/// ephemeral range.
fn start_node() -> Server {
    let bus = free_port().to_string();
    Server::start_with(
        Flavor::Redis,
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            NODE_TIMEOUT_MS,
            "--cluster-port",
            &bus,
        ],
    )
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
/// tried until one is not `MOVED`).
fn bump_replication_offset(master: &Server) {
    let mut c = master.client();
    for i in 0..10_000 {
        let key = format!("cluster-fixture:{i}");
        if c.run(&["SET", &key, "1"]).is_error() {
            continue;
        }
        c.ok(&["DEL", &key]);
        return;
    }
    panic!("no key of 10000 hashes to master {}", master.port);
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
/// exits: `sh` polls for our pid twice a second.
fn watchdog(cluster: &Cluster) {
    let pids: Vec<String> = cluster.nodes().map(|n| n.pid().to_string()).collect();
    let dirs: Vec<String> = cluster
        .nodes()
        .map(|n| format!("'{}'", n.dir().display()))
        .collect();
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; kill -9 {pids} 2>/dev/null; rm -rf {dirs}",
        me = std::process::id(),
        pids = pids.join(" "),
        dirs = dirs.join(" "),
    );
    // Never waited for on purpose: it outlives this process, which is its
    // whole point (and then init reaps it).
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the shared cluster's watchdog");
}
