//! Redis Cluster against live clusters: the test fixture comes up and
//! agrees on its slot map, `rump::cluster::slot` equals the servers'
//! `CLUSTER KEYSLOT`, rump's parsing of `CLUSTER SHARDS` and `CLUSTER SLOTS`
//! matches the nodes that were started; and then rump itself, with a
//! cluster at either end or both: every key equal on both ends and on the
//! master that owns its slot, through resharding and failover, with the
//! filters, `--rate`, `--read-from replica`, `--slots` and `--partition`.
//!
//! Tests on [`shared_cluster`] use keys under a prefix of their own and
//! never flush it; the ones that change the cluster (or count commands on
//! it) start their own.

use std::time::{Duration, Instant};

use resp::Frame;
use rump::cluster::{slot, Topology, SLOTS};

use crate::cmd;
use crate::util::cluster::{shared_cluster, Cluster};
use crate::util::{assert_same_snapshots, snapshot_matching, Run, Running, Server, Snapshot};

/// Every node of the shared cluster says `cluster_state:ok`, and the roles
/// are as asked: 3 masters, each with one replica.
#[test]
fn shared_cluster_comes_up() {
    let cluster = shared_cluster();
    assert_eq!(cluster.masters.len(), 3);
    assert_eq!(cluster.replicas.len(), 3);
    for node in cluster.nodes() {
        let Frame::Bulk(info) = node.client().ok(&["CLUSTER", "INFO"]) else {
            panic!("CLUSTER INFO")
        };
        let info = String::from_utf8_lossy(&info);
        assert!(info.contains("cluster_state:ok"), "{}: {info}", node.port);
        assert!(
            info.contains("cluster_known_nodes:6"),
            "{}: {info}",
            node.port
        );
    }
    for replica in &cluster.replicas {
        let info = replica.client().info("replication");
        assert!(info.contains("role:slave"), "{info}");
        assert!(info.contains("master_link_status:up"), "{info}");
    }
    assert!(cluster.seed_url().starts_with("redis://127.0.0.1:"));
}

/// A pseudo-random generator, so a failure names a reproducible key.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// ~200 binary keys (empty, NUL, high bytes, braces in all places) hash to
/// the slot the server computes.
#[test]
fn key_slots_match_cluster_keyslot() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut keys: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"foo".to_vec(),
        b"bar".to_vec(),
        b"hello".to_vec(),
        b"{}".to_vec(),
        b"{a}b".to_vec(),
        b"a{}{b}".to_vec(),
        b"a{b}{c}".to_vec(),
        b"foo{bar}zap".to_vec(),
        b"\x00\xff{\x00}".to_vec(),
    ];
    while keys.len() < 200 {
        let len = (rng.next() % 40) as usize;
        let mut key: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Braces often enough to exercise the tag rules.
        for _ in 0..rng.next() % 3 {
            if !key.is_empty() {
                let at = (rng.next() as usize) % key.len();
                key[at] = if rng.next() % 2 == 0 { b'{' } else { b'}' };
            }
        }
        keys.push(key);
    }
    let commands: Vec<Vec<Vec<u8>>> = keys
        .iter()
        .map(|k| vec![b"CLUSTER".to_vec(), b"KEYSLOT".to_vec(), k.clone()])
        .collect();
    let replies = shared_cluster().masters[0]
        .client()
        .pipeline_replies(&commands);
    for (key, reply) in keys.iter().zip(replies) {
        let server = reply
            .as_int()
            .unwrap_or_else(|| panic!("KEYSLOT -> {reply:?}"));
        assert_eq!(i64::from(slot(key)), server, "key {key:?}");
    }
}

/// rump's topology from every node's `CLUSTER SHARDS` and `CLUSTER SLOTS`:
/// all slots owned, 3 shards whose masters and replicas are the nodes
/// started, and both replies giving the same shards.
#[test]
fn topology_replies_parse_on_the_live_cluster() {
    let cluster = shared_cluster();
    let master_ports: Vec<u16> = cluster.masters.iter().map(|m| m.port).collect();
    let replica_ports: Vec<u16> = cluster.replicas.iter().map(|r| r.port).collect();
    for node in cluster.nodes() {
        let mut c = node.client();
        let shards = Topology::from_cluster_shards(&c.ok(&["CLUSTER", "SHARDS"]))
            .unwrap_or_else(|e| panic!("node {}: {e}", node.port));
        let slots = Topology::from_cluster_slots(&c.ok(&["CLUSTER", "SLOTS"]))
            .unwrap_or_else(|e| panic!("node {}: {e}", node.port));
        for t in [&shards, &slots] {
            assert!(t.coverage().is_full(), "{t:?}");
            assert_eq!(t.shards().len(), 3, "{t:?}");
            for shard in t.shards() {
                assert!(master_ports.contains(&shard.master.port), "{shard:?}");
                assert_eq!(shard.master.host, "127.0.0.1");
                assert_eq!(shard.replicas.len(), 1, "{shard:?}");
                assert!(replica_ports.contains(&shard.replicas[0].port), "{shard:?}");
            }
        }
        let view = |t: &Topology| {
            t.shards()
                .iter()
                .map(|s| {
                    (
                        s.slots.clone(),
                        s.master.id.clone(),
                        s.master.port,
                        s.replicas[0].port,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(view(&shards), view(&slots), "node {}", node.port);
        for s in shards
            .shards()
            .iter()
            .flat_map(|s| s.replicas.iter().chain([&s.master]))
        {
            assert_eq!(s.health, "online", "{s:?}");
        }
        // The owner of every slot is the node the server itself names.
        for probe in [0, 1, 5460, 5461, 10922, 10923, SLOTS - 1] {
            let owner = shards.owner(probe).expect("owned");
            assert_eq!(owner.master.port, cluster.node_for_slot(probe).port);
        }
    }
    // masters are in slot order.
    let shards =
        Topology::from_cluster_slots(&cluster.masters[0].client().ok(&["CLUSTER", "SLOTS"]))
            .unwrap();
    let ports: Vec<u16> = shards.masters().map(|m| m.port).collect();
    assert_eq!(ports, master_ports);
}

/// `client_for_key` reaches the master that owns the key: writes through it
/// are never redirected, and land where `rump::cluster::slot` says.
#[test]
fn client_for_key_reaches_the_owner() {
    let cluster = shared_cluster();
    for i in 0..50 {
        let key = format!("cluster-test:owner:{i}");
        let mut c = cluster.client_for_key(key.as_bytes());
        let reply = c.run(&["SET", &key, "v", "EX", "60"]);
        assert_eq!(reply, Frame::Simple("OK".into()), "{key}");
        let owner = cluster.node_for_slot(slot(key.as_bytes()));
        assert_eq!(owner.client().run(&["GET", &key]), Frame::Bulk("v".into()));
        c.ok(&["DEL", &key]);
    }
    // A key on another master is redirected there: the fixture's map is live.
    let key = b"cluster-test:moved";
    let owner = cluster.node_for_slot(slot(key)).port;
    let other = cluster.masters.iter().find(|m| m.port != owner).unwrap();
    let reply = other.client().cmd(&[b"GET", key]);
    let Frame::Error(e) = reply else {
        panic!("{reply:?}")
    };
    assert!(
        e.ends_with(format!(":{owner}").as_bytes()),
        "{}",
        String::from_utf8_lossy(&e)
    );
}

/// A cluster of its own (no replicas): keys spread over the masters count in
/// `dbsize`, and `flushall` empties them all.
#[test]
fn own_cluster_counts_and_flushes() {
    let cluster = Cluster::start(3, 0);
    assert_eq!(cluster.masters.len(), 3);
    assert!(cluster.replicas.is_empty());
    assert_eq!(cluster.dbsize(), 0);
    for i in 0..300 {
        let key = format!("k{i}");
        cluster
            .client_for_key(key.as_bytes())
            .ok(&["SET", &key, "x"]);
    }
    assert_eq!(cluster.dbsize(), 300);
    for m in &cluster.masters {
        let n = m.client().dbsize();
        assert!(n > 50, "master {} holds {n} of 300 keys", m.port);
    }
    cluster.flushall();
    assert_eq!(cluster.dbsize(), 0);
}

/// How long one rump run may take here: a debug build on 2 busy cores.
const RUN_WITHIN: Duration = Duration::from_secs(90);

/// Runs rump to completion within [`RUN_WITHIN`].
fn run_rump(args: &[&str]) -> Run {
    Running::start(args).wait(RUN_WITHIN)
}

/// Runs rump with `args` and `--json`: it must exit 0 having copied
/// `count` keys.
fn copy(args: &[&str], count: usize) -> Run {
    let mut args = args.to_vec();
    args.push("--json");
    let run = run_rump(&args);
    run.success();
    assert_eq!(copied(&run), count, "{}", run.stdout);
    run
}

/// The entries of `all` whose key's slot (the cluster's `CLUSTER KEYSLOT`)
/// `keep` accepts.
fn in_slots(all: Snapshot, keep: impl Fn(u16) -> bool) -> Snapshot {
    let slots = shared_cluster().keyslots(&keys_of(&all));
    all.into_iter()
        .zip(slots)
        .filter(|(_, s)| keep(*s))
        .map(|(e, _)| e)
        .collect()
}

/// The `copied` count of a `--json` run, as an integer.
fn copied(run: &Run) -> usize {
    run.json_field("copied") as usize
}

/// The two hash-tagged keys under `prefix`: one `{user1}` slot.
fn tagged(prefix: &str) -> [String; 2] {
    [
        format!("{prefix}{{user1}}:a"),
        format!("{prefix}{{user1}}:b"),
    ]
}

/// The commands that make `n` keys under `prefix`: strings, lists, sets,
/// sorted sets and hashes in turn (small ones, whose DUMP payloads do not
/// depend on insertion history), a third of them with a TTL, two of them
/// the hash-tagged [`tagged`] keys.
pub fn mixed_keys(prefix: &str, n: usize) -> Vec<Vec<Vec<u8>>> {
    let [a, b] = tagged(prefix);
    let mut commands = vec![
        cmd!("SET", a, "alice"),
        cmd!("HSET", b, "name", "bob"),
        cmd!("PEXPIRE", b, "600000"),
    ];
    for i in 0..n - 2 {
        let key = format!("{prefix}{i}");
        let n = i.to_string();
        commands.push(match i % 5 {
            0 => cmd!("SET", key, format!("value-{i}")),
            1 => cmd!("RPUSH", key, "a", "b", n),
            2 => cmd!("SADD", key, "1", "2", n),
            3 => cmd!("ZADD", key, "1.5", "one", n, "n"),
            _ => cmd!("HSET", key, "f", n, "g", "x"),
        });
        if i % 3 == 0 {
            commands.push(cmd!("PEXPIRE", key, (600_000 + i).to_string()));
        }
    }
    commands
}

/// Writes [`mixed_keys`]`(prefix, n)` into `cluster` and returns them as
/// the cluster holds them.
fn seed(cluster: &Cluster, prefix: &str, n: usize) -> Snapshot {
    cluster.pipeline(&mixed_keys(prefix, n));
    let ours = cluster.snapshot(&format!("{prefix}*"));
    assert_eq!(ours.len(), n, "keys under {prefix:?}");
    ours
}

/// `keys` of a snapshot.
fn keys_of(snapshot: &Snapshot) -> Vec<Vec<u8>> {
    snapshot.iter().map(|e| e.0.clone()).collect()
}

/// Panics unless every master of `cluster` holds at least `least` keys
/// matching `pattern`: the keys were spread, so a run that wrote them all
/// through one node could not pass.
fn assert_spread(cluster: &Cluster, pattern: &str, least: usize) {
    for master in cluster.current_masters() {
        let n = master.client().keys_matching(pattern).len();
        assert!(
            n >= least,
            "master {} holds {n} keys matching {pattern:?}, expected at least {least}",
            master.port
        );
    }
}

/// Standalone → cluster: 5000 keys of every core type, some with TTLs and
/// two sharing a `{user1}` hash tag, land each on the master owning its
/// slot, equal in value and expiry.
#[test]
fn standalone_to_cluster_puts_every_key_on_the_master_owning_its_slot() {
    let cluster = shared_cluster();
    let source = Server::start();
    source.client().pipeline(&mixed_keys("s2c:", 5000));
    let ours = snapshot_matching(source.port, "*");
    assert_eq!(ours.len(), 5000);

    copy(&["-from", &source.url(), "-to", &cluster.seed_url()], 5000).assert_reconciles();
    assert_same_snapshots(&ours, &cluster.snapshot("s2c:*"));
    assert_spread(cluster, "s2c:*", 1000);

    // The hash-tagged keys share one slot, so one master holds both.
    let tagged: Vec<Vec<u8>> = tagged("s2c:")
        .iter()
        .map(|k| k.as_bytes().to_vec())
        .collect();
    let slots = cluster.keyslots(&tagged);
    assert_eq!(slots[0], slots[1]);
    assert_eq!(slots[0], cluster.keyslots(&[b"user1".to_vec()])[0]);
    let mut owner = cluster.node_for_slot(slots[0]).client();
    for key in &tagged {
        assert!(
            owner.dump(key).is_some(),
            "{:?}",
            String::from_utf8_lossy(key)
        );
    }
}

/// Cluster → standalone, the cluster named by a replica: every master is
/// scanned, and the target gets exactly the cluster's keys.
#[test]
fn cluster_to_standalone_copies_every_master() {
    let cluster = shared_cluster();
    let ours = seed(cluster, "c2s:", 3000);
    assert_eq!(ours.len(), 3000);
    assert_spread(cluster, "c2s:*", 500);
    let target = Server::start();

    copy(
        &[
            "-from",
            &cluster.replicas[0].url(),
            "-to",
            &target.url(),
            "--match",
            "c2s:*",
        ],
        3000,
    );
    assert_same_snapshots(&ours, &snapshot_matching(target.port, "*"));
}

/// Cluster → cluster with another shard count (3 masters into 4, so the
/// slot ranges differ): every key on the target master that owns its slot.
#[test]
fn cluster_to_cluster_with_another_shard_count() {
    let source = shared_cluster();
    let ours = seed(source, "c2c:", 4000);
    let target = Cluster::start(4, 0);

    copy(
        &[
            "-from",
            &source.seed_url(),
            "-to",
            &target.masters[3].url(),
            "--match",
            "c2c:*",
        ],
        4000,
    );
    assert_same_snapshots(&ours, &target.snapshot("*"));
    assert_eq!(target.dbsize(), 4000);
    assert_spread(&target, "*", 500);
}

/// Cluster → native dump file → cluster: the keys deleted after the dump
/// come back from it equal, expiry included, each on its owner (restored
/// through a replica's address).
#[test]
fn cluster_to_dump_file_and_back_round_trips() {
    let cluster = shared_cluster();
    let before = seed(cluster, "file:", 2000);
    assert_eq!(before.len(), 2000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.rump");
    let file = file.to_str().unwrap();

    copy(
        &[
            "-from",
            &cluster.seed_url(),
            "-to",
            file,
            "--match",
            "file:*",
        ],
        2000,
    );
    assert!(std::fs::read(file).unwrap().starts_with(crate::dump::MAGIC));

    let deletes: Vec<Vec<Vec<u8>>> = keys_of(&before)
        .into_iter()
        .map(|k| cmd!("DEL", k))
        .collect();
    cluster.pipeline(&deletes);
    assert!(cluster.snapshot("file:*").is_empty());

    copy(&["-from", file, "-to", &cluster.replicas[1].url()], 2000);
    assert_same_snapshots(&before, &cluster.snapshot("file:*"));
}

/// Standalone → cluster with `--match`, `--type hash` and `--no-replace`:
/// only matching hashes are written, the one already on the target is kept
/// and counted skipped, and `--json` says so.
#[test]
fn standalone_to_cluster_with_match_type_and_no_replace() {
    let cluster = shared_cluster();
    let source = Server::start();
    let mut commands = Vec::new();
    for i in 0..100 {
        commands.push(cmd!("HSET", format!("flt:in:{i}"), "f", i.to_string()));
        commands.push(cmd!("SET", format!("flt:in:s{i}"), i.to_string()));
        commands.push(cmd!("HSET", format!("flt:out:{i}"), "f", i.to_string()));
    }
    source.client().pipeline(&commands);
    // Already on the target, with other content: kept.
    cluster.pipeline(&[cmd!("HSET", "flt:in:0", "kept", "yes")]);
    let kept = cluster.snapshot("flt:in:0");

    let run = copy(
        &[
            "-from",
            &source.url(),
            "-to",
            &cluster.seed_url(),
            "--match",
            "flt:in:*",
            "--type",
            "hash",
            "--no-replace",
        ],
        99,
    );
    assert_eq!(run.json_field("skipped"), 1.0, "{}", run.stdout);
    assert_eq!(run.json_field("failed"), 0.0, "{}", run.stdout);

    // Exactly the matching hashes, the pre-existing one untouched.
    let mut want: Snapshot = snapshot_matching(source.port, "flt:in:*")
        .into_iter()
        .filter(|(k, _, _)| !k.starts_with(b"flt:in:s") && k != b"flt:in:0")
        .collect();
    want.extend(kept);
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(want.len(), 100);
    assert_same_snapshots(&want, &cluster.snapshot("flt:*"));
}

/// `--rate` over a cluster source limits the whole run, not each master:
/// 3000 keys spread over 3 masters at 1000/s take about 3 s, not 1 s.
#[test]
fn rate_over_a_cluster_source_is_over_the_whole_run() {
    let cluster = shared_cluster();
    let commands: Vec<Vec<Vec<u8>>> = (0..3000)
        .map(|i| cmd!("SET", format!("rate:{i}"), "v"))
        .collect();
    cluster.pipeline(&commands);
    assert_spread(cluster, "rate:*", 800);
    let target = Server::start();

    let start = Instant::now();
    let run = run_rump(&[
        "-from",
        &cluster.seed_url(),
        "-to",
        &target.url(),
        "--match",
        "rate:*",
        "--rate",
        "1000",
        "--json",
    ]);
    let took = start.elapsed();
    run.success();
    assert_eq!(copied(&run), 3000, "{}", run.stdout);
    assert!(
        took >= Duration::from_millis(2500),
        "3000 keys at --rate 1000 took {took:?}: the rate is not over the whole run"
    );
    assert_same_snapshots(
        &cluster.snapshot("rate:*"),
        &snapshot_matching(target.port, "*"),
    );
}

/// Starts rump copying `source` into `cluster` at `rate` keys/s and
/// returns once the cluster holds `at_least` keys: rump has its slot map
/// and is mid-run.
fn start_writing(source: &Server, cluster: &Cluster, rate: &str, at_least: i64) -> Running {
    let mut rump = Running::start(&[
        "-from",
        &source.url(),
        "-to",
        &cluster.seed_url(),
        "--rate",
        rate,
        "--json",
    ]);
    let deadline = Instant::now() + RUN_WITHIN;
    while cluster.dbsize() < at_least {
        assert!(Instant::now() < deadline, "rump wrote nothing");
        assert!(
            !rump.has_exited(),
            "rump ended early: {}",
            rump.wait(RUN_WITHIN).stderr
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    rump
}

/// Waits for a [`start_writing`] rump: it was still running when `what`
/// (the change made under it), and copied `count` keys, exit 0.
fn finish_writing(rump: &mut Running, what: &str, count: usize) {
    let mid_run = !rump.has_exited();
    let run = rump.wait(RUN_WITHIN);
    run.success();
    assert!(mid_run, "rump finished before {what}");
    assert_eq!(copied(&run), count, "{}", run.stdout);
}

/// 1000 slots move from one master to another (`CLUSTER SETSLOT …
/// MIGRATING/IMPORTING`, `MIGRATE`, `SETSLOT … NODE`) while rump writes
/// into the cluster: rump meets both `ASK` and `MOVED`, and ends with every
/// key present once, equal, on the master that owns its slot now.
#[test]
fn resharding_during_the_copy_is_followed() {
    let cluster = Cluster::start(3, 0);
    let source = Server::start();
    source.client().populate(15_000, 16);
    cluster.reset_stats();
    let (from, to) = (&cluster.masters[0], &cluster.masters[1]);

    // rump has its slot map and is writing: now move slots under it.
    let mut rump = start_writing(&source, &cluster, "5000", 500);
    cluster.move_slots(from, to, 0..=999, Duration::from_millis(800));
    finish_writing(&mut rump, "the slots had moved", 15_000);

    assert_eq!(cluster.node_for_slot(0).port, to.port);
    assert_eq!(cluster.node_for_slot(999).port, to.port);
    let (moved, ask) = (cluster.error_count("MOVED"), cluster.error_count("ASK"));
    assert!(
        moved > 0 && ask > 0,
        "the nodes replied MOVED {moved} times and ASK {ask} times: rump did not meet both"
    );
    assert_same_snapshots(&snapshot_matching(source.port, "*"), &cluster.snapshot("*"));
    assert_eq!(cluster.dbsize(), 15_000);
}

/// How long a `CLUSTER FAILOVER` may take to promote the replica.
const FAILOVER_WITHIN: Duration = Duration::from_secs(20);

/// A replica of a target shard takes over (`CLUSTER FAILOVER`) while rump
/// writes: rump follows it to the new master and no key is lost.
#[test]
fn failover_of_a_target_shard_is_followed() {
    let cluster = Cluster::start(3, 1);
    let source = Server::start();
    source.client().populate(6000, 16);
    // Mid-run: some keys written, most still to come.
    let mut rump = start_writing(&source, &cluster, "2000", 1000);
    let old = &cluster.masters[0];
    let replica = cluster.replicas_of(old)[0];
    replica.client().ok(&["CLUSTER", "FAILOVER"]);
    let deadline = Instant::now() + FAILOVER_WITHIN;
    while cluster.node_for_slot(0).port != replica.port {
        assert!(
            Instant::now() < deadline,
            "replica {} not promoted within {FAILOVER_WITHIN:?}",
            replica.port
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    finish_writing(&mut rump, "the replica was promoted", 6000);
    assert_eq!(cluster.dbsize(), 6000);
    assert_same_snapshots(&snapshot_matching(source.port, "*"), &cluster.snapshot("*"));
}

/// `--read-from replica` scans and dumps on the replicas only: the masters'
/// `INFO commandstats` show no SCAN and no DUMP, and the copy is whole.
#[test]
fn read_from_replica_spares_the_masters() {
    let cluster = Cluster::start(3, 1);
    cluster.pipeline(&mixed_keys("rr:", 3000));
    cluster.wait_replicas_caught_up(Duration::from_secs(10));
    cluster.reset_stats();
    let target = Server::start();

    copy(
        &[
            "-from",
            &cluster.seed_url(),
            "-to",
            &target.url(),
            "--read-from",
            "replica",
        ],
        3000,
    );
    for master in &cluster.masters {
        let used = master.client().commands_used();
        assert!(
            !used.iter().any(|c| c == "scan" || c == "dump"),
            "master {} ran {used:?}",
            master.port
        );
    }
    let mut dumps = 0;
    for replica in &cluster.replicas {
        let mut c = replica.client();
        assert!(
            c.command_calls("scan") > 0,
            "replica {} was not scanned",
            replica.port
        );
        dumps += c.command_calls("dump");
    }
    assert_eq!(dumps, 3000, "DUMPs on the replicas");
    assert_same_snapshots(&cluster.snapshot("*"), &snapshot_matching(target.port, "*"));
}

/// N in `--partition I/N` for the partition tests.
const PARTITIONS: usize = 3;

/// Runs `--partition 0/3`, `1/3`, `2/3` at once from `source` (with
/// `extra` options) into `targets` (one each, or the same one thrice);
/// returns each run's `copied`.
fn run_partitions(source: &str, targets: [&Server; PARTITIONS], extra: &[&str]) -> Vec<usize> {
    let mut running: Vec<Running> = (0..PARTITIONS)
        .map(|i| {
            let partition = format!("{i}/{PARTITIONS}");
            let target = targets[i].url();
            let mut args = vec!["-from", source, "-to", &target, "--partition", &partition];
            args.extend_from_slice(extra);
            args.push("--json");
            Running::start(&args)
        })
        .collect();
    running
        .iter_mut()
        .map(|r| {
            let run = r.wait(RUN_WITHIN);
            run.success();
            copied(&run)
        })
        .collect()
}

/// Three concurrent partitions copy `ours` (the source's keys) exactly:
/// together into one target, then each into a target of its own, where
/// the three hold disjoint keys of increasing slot ranges adding up to
/// the source's.
fn assert_partitions_copy_each_key_once(source: &str, ours: &Snapshot, extra: &[&str]) {
    let together = Server::start();
    let counts = run_partitions(source, [&together; PARTITIONS], extra);
    assert_eq!(
        counts.iter().sum::<usize>(),
        ours.len(),
        "copied {counts:?}"
    );
    assert_same_snapshots(ours, &snapshot_matching(together.port, "*"));

    let alone: Vec<Server> = (0..PARTITIONS).map(|_| Server::start()).collect();
    let counts = run_partitions(source, [&alone[0], &alone[1], &alone[2]], extra);
    let parts: Vec<Snapshot> = alone
        .iter()
        .map(|s| snapshot_matching(s.port, "*"))
        .collect();
    let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
    assert_eq!(counts, sizes, "copied vs keys on each partition's target");
    assert_eq!(
        sizes.iter().sum::<usize>(),
        ours.len(),
        "keys per partition {sizes:?}"
    );
    for part in &parts {
        assert!(!part.is_empty(), "an empty partition: {sizes:?}");
    }
    // Disjoint and whole: their union, sorted, is the source.
    let mut union: Snapshot = parts.iter().flatten().cloned().collect();
    union.sort_by(|a, b| a.0.cmp(&b.0));
    assert_same_snapshots(ours, &union);
    // Each partition is a slot range, in order.
    let ranges: Vec<(u16, u16)> = parts
        .iter()
        .map(|p| {
            let slots = shared_cluster().keyslots(&keys_of(p));
            (*slots.iter().min().unwrap(), *slots.iter().max().unwrap())
        })
        .collect();
    for w in ranges.windows(2) {
        assert!(w[0].1 < w[1].0, "partition slot ranges overlap: {ranges:?}");
    }
}

/// `--partition` from a standalone source: 3 concurrent processes copy
/// each of 10000 keys exactly once.
#[test]
fn partitions_of_a_standalone_source_copy_each_key_once() {
    let source = Server::start();
    source.client().populate(10_000, 8);
    let ours = snapshot_matching(source.port, "*");
    assert_partitions_copy_each_key_once(&source.url(), &ours, &[]);
}

/// `--partition` from a cluster source: the same, over its masters.
#[test]
fn partitions_of_a_cluster_source_copy_each_key_once() {
    let cluster = shared_cluster();
    let ours = seed(cluster, "part:", 5000);
    assert_partitions_copy_each_key_once(&cluster.seed_url(), &ours, &["--match", "part:*"]);
}

/// `--slots` on a standalone source picks keys by slot before any DUMP:
/// exactly the keys of those slots are copied, and the source runs one
/// DUMP per copied key, none for the others.
#[test]
fn slots_on_a_standalone_source_dump_only_keys_of_those_slots() {
    let source = Server::start();
    source.client().populate(10_000, 8);
    let all = snapshot_matching(source.port, "*");
    let want = in_slots(all, |s| s <= 5460 || s == 16383);
    assert!(want.len() > 3000, "{} keys in the slots", want.len());
    source.client().ok(&["CONFIG", "RESETSTAT"]);
    let target = Server::start();

    copy(
        &[
            "-from",
            &source.url(),
            "-to",
            &target.url(),
            "--slots",
            "0-5460,16383",
        ],
        want.len(),
    );
    assert_eq!(
        source.client().command_calls("dump"),
        want.len() as u64,
        "DUMPs on the source for {} keys in the slots",
        want.len()
    );
    assert_same_snapshots(&want, &snapshot_matching(target.port, "*"));
}

/// `--slots` on a cluster source copies only the keys of those slots.
#[test]
fn slots_on_a_cluster_source_copy_only_keys_of_those_slots() {
    let cluster = shared_cluster();
    let all = seed(cluster, "slots:", 3000);
    let want = in_slots(all, |s| (5461..=10922).contains(&s));
    assert!(want.len() > 500, "{} keys in the slots", want.len());
    let target = Server::start();

    copy(
        &[
            "-from",
            &cluster.seed_url(),
            "-to",
            &target.url(),
            "--match",
            "slots:*",
            "--slots",
            "5461-10922",
        ],
        want.len(),
    );
    assert_same_snapshots(&want, &snapshot_matching(target.port, "*"));
}

/// A db other than 0 on a cluster, as source (named by a replica) or as
/// target, is a usage error naming db 0, found before any key is read or
/// written.
#[test]
fn a_db_other_than_0_on_a_cluster_is_a_usage_error() {
    let cluster = shared_cluster();
    let target = Server::start();
    let from = format!("{}/1", cluster.replicas[0].url());
    let run = run_rump(&["-from", &from, "-to", &target.url(), "--json"]);
    run.expect_code(2);
    assert!(run.error_line().contains("db 0"), "{}", run.stderr);
    let mut t = target.client();
    assert_eq!(t.dbsize(), 0);
    assert_eq!(t.command_calls("restore"), 0);

    let source = Server::start();
    let commands: Vec<Vec<Vec<u8>>> = (0..100)
        .map(|i| cmd!("SET", format!("db2:{i}"), "v"))
        .collect();
    source.client().pipeline(&commands);
    source.client().ok(&["CONFIG", "RESETSTAT"]);
    let run = run_rump(&["-from", &source.url(), "-to", &cluster.masters[1].url_db(2)]);
    run.expect_code(2);
    assert!(run.error_line().contains("db 0"), "{}", run.stderr);
    assert!(cluster.snapshot("db2:*").is_empty(), "keys written");
    assert_eq!(
        source.client().command_calls("dump"),
        0,
        "the source was read"
    );
}

/// Two masters of one cluster as source and target would copy the cluster
/// onto itself: a usage error, and nothing is read or written.
#[test]
fn the_same_cluster_at_both_ends_is_a_usage_error() {
    let cluster = Cluster::start(3, 0);
    let commands: Vec<Vec<Vec<u8>>> = (0..300)
        .map(|i| cmd!("SET", format!("same:{i}"), "v"))
        .collect();
    cluster.pipeline(&commands);
    cluster.reset_stats();

    let run = run_rump(&[
        "-from",
        &cluster.masters[0].url(),
        "-to",
        &cluster.masters[1].url(),
    ]);
    run.expect_code(2);
    // rump names it "the same database" (a master of the target is the
    // source node itself) or "the same cluster" (two of its nodes).
    let line = run.error_line();
    assert!(
        line.contains("same database") || line.contains("same cluster"),
        "{}",
        run.stderr
    );
    for node in cluster.nodes() {
        let used = node.client().commands_used();
        assert!(
            !used.iter().any(|c| c == "restore" || c == "dump"),
            "node {} ran {used:?}",
            node.port
        );
    }
    assert_eq!(cluster.dbsize(), 300);
}
