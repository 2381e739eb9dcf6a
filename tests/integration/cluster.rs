//! Redis Cluster foundations against a live cluster: the test fixture comes
//! up and agrees on its slot map, `rump::cluster::slot` equals the servers'
//! `CLUSTER KEYSLOT`, and rump's parsing of `CLUSTER SHARDS` and `CLUSTER
//! SLOTS` matches the nodes that were started.
//!
//! Tests on [`shared_cluster`] use keys under `cluster-test:` and never
//! flush; the ones that do start their own cluster.

use resp::Frame;
use rump::cluster::{slot, Topology, SLOTS};

use crate::util::cluster::{shared_cluster, Cluster};

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
