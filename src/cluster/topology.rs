//! The cluster's shape: which master (and which replicas) serve which slots,
//! read from a node's `CLUSTER SHARDS` (Redis 7.0+, Valkey) or, on older
//! servers, `CLUSTER SLOTS` reply.
//!
//! Sans-IO: this file turns already-decoded `resp::Frame`s into a
//! [`Topology`] and answers "who owns slot s" from a table built once, so
//! the per-key lookup is one index. Sending the commands, choosing between
//! them and refreshing after `MOVED` are the engine's.

use std::fmt;
use std::slice::ChunksExact;

use resp::Frame;

use super::slot::SLOTS;
use super::slots::SlotSet;

/// The most shards a topology may have. A shard that owns slots owns at
/// least one, so a real cluster cannot have more; the table that maps slots
/// to shards stores the index in a `u16`.
pub const MAX_SHARDS: usize = SLOTS as usize;

/// `Node::health` when the reply does not say (`CLUSTER SLOTS`).
pub const HEALTH_UNKNOWN: &str = "unknown";

/// One cluster node as its peers announce it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The 40-hex-digit node id (from `CLUSTER SLOTS` of a pre-4.0 server,
    /// which sends none: empty).
    pub id: String,
    /// Where to connect: the node's preferred endpoint (an IP or, with
    /// `cluster-preferred-endpoint-type hostname`, a host name), else its IP.
    /// Empty when the node's endpoint is unknown: connect to the host that
    /// was asked for the topology, on `port`.
    pub host: String,
    /// The plain-text port; 0 for a TLS-only node (see `tls_port`).
    pub port: u16,
    /// The TLS port, when the node has one (`CLUSTER SHARDS` only).
    pub tls_port: Option<u16>,
    /// True for a master.
    pub master: bool,
    /// `online`, `failed` or `loading` as `CLUSTER SHARDS` says;
    /// [`HEALTH_UNKNOWN`] from `CLUSTER SLOTS`.
    pub health: String,
}

impl Node {
    /// The port a client connects to: the TLS port over TLS when the node
    /// announces one (`CLUSTER SHARDS`; `CLUSTER SLOTS` on a TLS cluster
    /// already gives TLS ports), else the plain one.
    pub fn port_for(&self, tls: bool) -> u16 {
        match self.tls_port {
            Some(port) if tls && port != 0 => port,
            _ => self.port,
        }
    }

    /// `host:port` for messages (IPv6 hosts bracketed).
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A master, the slots it serves and its replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Inclusive slot ranges, sorted and merged; empty for a master that
    /// serves no slot.
    pub slots: Vec<(u16, u16)>,
    pub master: Node,
    pub replicas: Vec<Node>,
}

/// Every shard of a cluster, and which one owns each slot.
#[derive(Clone, PartialEq, Eq)]
pub struct Topology {
    shards: Vec<Shard>,
    map: SlotMap,
}

/// Slot → index into `Topology::shards`, [`SlotMap::NONE`] for a slot that
/// no shard serves: one table of `SLOTS` entries, built once per topology.
#[derive(Clone, PartialEq, Eq)]
struct SlotMap(Box<[u16]>);

impl SlotMap {
    /// No owner. `MAX_SHARDS` is below it, so it is never a shard's index.
    const NONE: u16 = u16::MAX;

    fn get(&self, slot: u16) -> Option<usize> {
        match self.0.get(usize::from(slot)) {
            Some(&i) if i != SlotMap::NONE => Some(usize::from(i)),
            _ => None,
        }
    }
}

impl Topology {
    /// Builds a topology from shards: sorts and merges each shard's ranges,
    /// orders the shards by their first slot (masters without slots last),
    /// and maps every slot to its shard. A slot outside `0..16384`, a
    /// reversed range, a slot claimed by two shards, or more than
    /// [`MAX_SHARDS`] shards is an error.
    pub fn new(mut shards: Vec<Shard>) -> Result<Topology, String> {
        if shards.len() > MAX_SHARDS {
            return Err(format!(
                "{} shards, more than a cluster can have ({MAX_SHARDS})",
                shards.len()
            ));
        }
        for shard in &mut shards {
            shard.slots = merged(&shard.slots, &shard.master)?;
        }
        shards.sort_by_key(|s| s.slots.first().map_or(u32::from(SLOTS), |r| u32::from(r.0)));
        let mut map = vec![SlotMap::NONE; usize::from(SLOTS)].into_boxed_slice();
        for (i, shard) in shards.iter().enumerate() {
            for &(first, last) in &shard.slots {
                for s in first..=last {
                    let owner = &mut map[usize::from(s)];
                    if *owner != SlotMap::NONE {
                        return Err(format!(
                            "slot {s} is served by two masters: {} and {}",
                            shards[usize::from(*owner)].master.addr(),
                            shard.master.addr()
                        ));
                    }
                    // i < MAX_SHARDS <= u16::MAX, checked above.
                    *owner = i as u16;
                }
            }
        }
        Ok(Topology {
            shards,
            map: SlotMap(map),
        })
    }

    /// Parses a `CLUSTER SHARDS` reply (RESP2: every map is a flat array of
    /// keys and values): per shard its `slots` (start, end, start, end…)
    /// and its `nodes`, each with `id`, `port`, `tls-port`, `ip`,
    /// `endpoint`, `role` and `health`; unknown fields are ignored. A shard
    /// with two masters (a failed former master still listed) keeps the
    /// online one; a shard with no master and no slots is left out.
    pub fn from_cluster_shards(frame: &Frame) -> Result<Topology, String> {
        let context = "CLUSTER SHARDS reply";
        let mut shards = Vec::new();
        for (n, entry) in array(frame, context)?.iter().enumerate() {
            let context = format!("{context}, shard {n}");
            let mut slots = Vec::new();
            let mut nodes = Vec::new();
            for (key, value) in flat_map(entry, &context)? {
                match key {
                    b"slots" => slots = slot_pairs(value, &context)?,
                    b"nodes" => {
                        for (k, node) in array(value, &context)?.iter().enumerate() {
                            nodes.push(shard_node(node, &format!("{context}, node {k}"))?);
                        }
                    }
                    _ => {}
                }
            }
            let master = nodes
                .iter()
                .position(|n| n.master && n.health == "online")
                .or_else(|| nodes.iter().position(|n| n.master));
            let Some(master) = master else {
                if slots.is_empty() {
                    continue;
                }
                return Err(format!("{context} serves slots but has no master"));
            };
            let master = nodes.remove(master);
            nodes.retain(|n| !n.master);
            shards.push(Shard {
                slots,
                master,
                replicas: nodes,
            });
        }
        Topology::new(shards).map_err(|e| format!("{context}: {e}"))
    }

    /// Parses a `CLUSTER SLOTS` reply: entries of `[start, end, master,
    /// replica…]`, each node `[host, port, id, {metadata}]` (the id since
    /// Redis 4.0, the metadata since 7.0). Ranges of one master (by id, or
    /// by address without one) become one shard.
    pub fn from_cluster_slots(frame: &Frame) -> Result<Topology, String> {
        let context = "CLUSTER SLOTS reply";
        let mut shards: Vec<Shard> = Vec::new();
        for (n, entry) in array(frame, context)?.iter().enumerate() {
            let context = format!("{context}, entry {n}");
            let parts = array(entry, &context)?;
            let [start, end, master, replicas @ ..] = parts else {
                return Err(format!(
                    "{context} has {} elements, expected start, end and a master",
                    parts.len()
                ));
            };
            let range = (slot_number(start, &context)?, slot_number(end, &context)?);
            let master = slots_node(master, true, &format!("{context}, master"))?;
            let replicas = replicas
                .iter()
                .enumerate()
                .map(|(k, r)| slots_node(r, false, &format!("{context}, replica {k}")))
                .collect::<Result<Vec<_>, _>>()?;
            let same = |a: &Node, b: &Node| {
                if a.id.is_empty() || b.id.is_empty() {
                    (&a.host, a.port) == (&b.host, b.port)
                } else {
                    a.id == b.id
                }
            };
            match shards.iter_mut().find(|s| same(&s.master, &master)) {
                Some(shard) => {
                    shard.slots.push(range);
                    for r in replicas {
                        if !shard.replicas.iter().any(|known| same(known, &r)) {
                            shard.replicas.push(r);
                        }
                    }
                }
                None => shards.push(Shard {
                    slots: vec![range],
                    master,
                    replicas,
                }),
            }
        }
        Topology::new(shards).map_err(|e| format!("{context}: {e}"))
    }

    /// Every shard, ordered by first slot; masters without slots last.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Every master, in shard order.
    pub fn masters(&self) -> impl Iterator<Item = &Node> {
        self.shards.iter().map(|s| &s.master)
    }

    /// The shard serving `slot`, if any.
    pub fn owner(&self, slot: u16) -> Option<&Shard> {
        self.shard_index(slot).map(|i| &self.shards[i])
    }

    /// The index into [`Topology::shards`] of the shard serving `slot`, for
    /// callers that keep per-shard state (a connection per master) in a
    /// parallel `Vec`.
    pub fn shard_index(&self, slot: u16) -> Option<usize> {
        self.map.get(slot)
    }

    /// The slots some shard serves; [`SlotSet::is_full`] when the cluster
    /// covers them all.
    pub fn coverage(&self) -> SlotSet {
        let mut set = SlotSet::empty();
        for &(first, last) in self.shards.iter().flat_map(|s| &s.slots) {
            set.insert_range(first, last);
        }
        set
    }
}

/// The shards, not 16384 table entries.
impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topology")
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

/// Sorted, merged, validated ranges of one master.
fn merged(ranges: &[(u16, u16)], master: &Node) -> Result<Vec<(u16, u16)>, String> {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::with_capacity(sorted.len());
    for (first, last) in sorted {
        if first > last || last >= SLOTS {
            return Err(format!(
                "master {} serves slots {first}-{last}, not a range of 0-{}",
                master.addr(),
                SLOTS - 1
            ));
        }
        match out.last_mut() {
            Some((_, end)) if u32::from(first) <= u32::from(*end) + 1 => *end = (*end).max(last),
            _ => out.push((first, last)),
        }
    }
    Ok(out)
}

/// A short description of a frame for error messages (never the whole
/// frame: a reply may be large).
fn describe(frame: &Frame) -> String {
    match frame {
        Frame::Simple(s) => format!(
            "status {:?}",
            String::from_utf8_lossy(&s[..s.len().min(40)])
        ),
        Frame::Error(e) => format!("error {:?}", String::from_utf8_lossy(&e[..e.len().min(80)])),
        Frame::Integer(n) => format!("integer {n}"),
        Frame::Bulk(b) => format!(
            "string {:?}",
            String::from_utf8_lossy(&b[..b.len().min(40)])
        ),
        Frame::Null => "null".into(),
        Frame::NullArray => "null array".into(),
        Frame::Array(items) => format!("array of {}", items.len()),
    }
}

fn array<'a>(frame: &'a Frame, context: &str) -> Result<&'a [Frame], String> {
    match frame {
        Frame::Array(items) => Ok(items),
        other => Err(format!(
            "{context} is {}, expected an array",
            describe(other)
        )),
    }
}

/// An array of pairs (`what` names it in the error of an odd length).
fn pairs<'a>(
    frame: &'a Frame,
    context: &str,
    what: &str,
) -> Result<ChunksExact<'a, Frame>, String> {
    let items = array(frame, context)?;
    if items.len() % 2 != 0 {
        return Err(format!(
            "{context}: {what} has an odd number of elements ({})",
            items.len()
        ));
    }
    Ok(items.chunks_exact(2))
}

/// A RESP2 map: an array of alternating keys (strings) and values.
fn flat_map<'a>(frame: &'a Frame, context: &str) -> Result<Vec<(&'a [u8], &'a Frame)>, String> {
    pairs(frame, context, "the map")?
        .map(|kv| match &kv[0] {
            Frame::Bulk(k) | Frame::Simple(k) => Ok((&k[..], &kv[1])),
            other => Err(format!(
                "{context} has key {}, expected a string",
                describe(other)
            )),
        })
        .collect()
}

fn integer(frame: &Frame, what: &str, context: &str) -> Result<i64, String> {
    frame.as_int().ok_or_else(|| {
        format!(
            "{context}: {what} is {}, expected an integer",
            describe(frame)
        )
    })
}

fn slot_number(frame: &Frame, context: &str) -> Result<u16, String> {
    let n = integer(frame, "slot", context)?;
    u16::try_from(n)
        .ok()
        .filter(|s| *s < SLOTS)
        .ok_or_else(|| format!("{context}: slot {n} is out of range 0-{}", SLOTS - 1))
}

fn port_number(frame: &Frame, what: &str, context: &str) -> Result<u16, String> {
    let n = integer(frame, what, context)?;
    u16::try_from(n).map_err(|_| format!("{context}: {what} {n} is out of range 0-65535"))
}

/// A string field; `None` for a null.
fn text(frame: &Frame, what: &str, context: &str) -> Result<Option<String>, String> {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) => String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| format!("{context}: {what} {} is not UTF-8", describe(frame))),
        Frame::Null => Ok(None),
        other => Err(format!(
            "{context}: {what} is {}, expected a string",
            describe(other)
        )),
    }
}

/// An announced address, or `None` for the ways a node says "unknown":
/// null, empty, `?`.
fn known_host(host: Option<String>) -> Option<String> {
    host.filter(|h| !h.is_empty() && h != "?")
}

/// `slots` of a `CLUSTER SHARDS` entry: start, end, start, end…
fn slot_pairs(frame: &Frame, context: &str) -> Result<Vec<(u16, u16)>, String> {
    pairs(frame, context, "slots")?
        .map(|p| Ok((slot_number(&p[0], context)?, slot_number(&p[1], context)?)))
        .collect()
}

/// A node map of a `CLUSTER SHARDS` entry.
fn shard_node(frame: &Frame, context: &str) -> Result<Node, String> {
    let (mut id, mut port, mut tls_port, mut ip, mut endpoint, mut role, mut health) =
        (None, None, None, None, None, None, None);
    for (key, value) in flat_map(frame, context)? {
        match key {
            b"id" => id = text(value, "id", context)?,
            b"port" => port = Some(port_number(value, "port", context)?),
            b"tls-port" => tls_port = Some(port_number(value, "tls-port", context)?),
            b"ip" => ip = text(value, "ip", context)?,
            b"endpoint" => endpoint = text(value, "endpoint", context)?,
            b"role" => role = text(value, "role", context)?,
            b"health" => health = text(value, "health", context)?,
            _ => {}
        }
    }
    let id = id.ok_or_else(|| format!("{context} has no id"))?;
    if port.is_none() && tls_port.is_none() {
        return Err(format!(
            "{context} (node {id:?}) has neither port nor tls-port"
        ));
    }
    let master = match role.as_deref() {
        Some("master") => true,
        Some("replica" | "slave") => false,
        Some(other) => return Err(format!("{context} (node {id:?}) has role {other:?}")),
        None => return Err(format!("{context} (node {id:?}) has no role")),
    };
    Ok(Node {
        id,
        host: known_host(endpoint).or(known_host(ip)).unwrap_or_default(),
        port: port.unwrap_or(0),
        tls_port,
        master,
        health: health.unwrap_or_else(|| HEALTH_UNKNOWN.into()),
    })
}

/// A node of a `CLUSTER SLOTS` entry: `[host, port, id, {metadata}]`.
fn slots_node(frame: &Frame, master: bool, context: &str) -> Result<Node, String> {
    let parts = array(frame, context)?;
    let [host, port, rest @ ..] = parts else {
        return Err(format!(
            "{context} has {} elements, expected host and port",
            parts.len()
        ));
    };
    let id = match rest.first() {
        Some(id) => text(id, "id", context)?.unwrap_or_default(),
        None => String::new(),
    };
    // Redis 7.0+: a map with `ip` (and `hostname`) when the first element is
    // not the IP.
    let mut ip = None;
    if let Some(metadata) = rest.get(1) {
        for (key, value) in flat_map(metadata, context)? {
            if key == b"ip" {
                ip = text(value, "ip", context)?;
            }
        }
    }
    Ok(Node {
        id,
        host: known_host(text(host, "host", context)?)
            .or(known_host(ip))
            .unwrap_or_default(),
        port: port_number(port, "port", context)?,
        tls_port: None,
        master,
        health: HEALTH_UNKNOWN.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};

    fn decode(raw: &[u8]) -> Frame {
        let mut buf = BytesMut::from(raw);
        let frame = resp::Decoder::new().decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty(), "one reply per fixture");
        frame
    }

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn int(n: i64) -> Frame {
        Frame::Integer(n)
    }

    fn arr(items: Vec<Frame>) -> Frame {
        Frame::Array(items)
    }

    /// A `CLUSTER SHARDS` node map.
    fn shards_node(id: &str, port: i64, role: &str, health: &str) -> Frame {
        arr(vec![
            bulk("id"),
            bulk(id),
            bulk("port"),
            int(port),
            bulk("ip"),
            bulk("127.0.0.1"),
            bulk("endpoint"),
            bulk("127.0.0.1"),
            bulk("role"),
            bulk(role),
            bulk("replication-offset"),
            int(0),
            bulk("health"),
            bulk(health),
        ])
    }

    fn shards_entry(slots: &[i64], nodes: Vec<Frame>) -> Frame {
        arr(vec![
            bulk("slots"),
            arr(slots.iter().map(|&s| int(s)).collect()),
            bulk("nodes"),
            arr(nodes),
        ])
    }

    /// A `CLUSTER SLOTS` node.
    fn slots_node_frame(port: i64, id: &str) -> Frame {
        arr(vec![bulk("127.0.0.1"), int(port), bulk(id), arr(vec![])])
    }

    fn slots_entry(start: i64, end: i64, nodes: Vec<Frame>) -> Frame {
        let mut items = vec![int(start), int(end)];
        items.extend(nodes);
        arr(items)
    }

    /// Per shard: its slots, its master's id and port, its replicas' ids.
    type Shape = Vec<(Vec<(u16, u16)>, String, u16, Vec<String>)>;

    /// What both replies of one cluster must agree on.
    fn shape(t: &Topology) -> Shape {
        t.shards()
            .iter()
            .map(|s| {
                let mut replicas: Vec<String> = s.replicas.iter().map(|r| r.id.clone()).collect();
                replicas.sort();
                (
                    s.slots.clone(),
                    s.master.id.clone(),
                    s.master.port,
                    replicas,
                )
            })
            .collect()
    }

    fn check_three_shards(t: &Topology, replicas: usize) {
        assert_eq!(t.shards().len(), 3);
        assert!(t.coverage().is_full());
        let slots: Vec<_> = t.shards().iter().map(|s| s.slots.clone()).collect();
        assert_eq!(
            slots,
            vec![vec![(0, 5460)], vec![(5461, 10922)], vec![(10923, 16383)]]
        );
        for shard in t.shards() {
            assert!(shard.master.master);
            assert_eq!(shard.master.id.len(), 40);
            assert_ne!(shard.master.port, 0);
            assert_eq!(shard.replicas.len(), replicas);
            for r in &shard.replicas {
                assert!(!r.master);
                assert_ne!(r.id, shard.master.id);
            }
        }
        assert_eq!(t.owner(0).unwrap().slots, vec![(0, 5460)]);
        assert_eq!(t.owner(5461).unwrap().slots, vec![(5461, 10922)]);
        assert_eq!(t.owner(16383).unwrap().slots, vec![(10923, 16383)]);
        assert_eq!(t.shard_index(5460), Some(0));
        assert_eq!(t.shard_index(10923), Some(2));
        assert_eq!(t.shard_index(16384), None);
        assert_eq!(t.masters().count(), 3);
    }

    /// Redis 7.0, captured by `fixtures/capture.sh redis`.
    #[test]
    fn redis_7_0_cluster_shards_and_slots() {
        let shards = Topology::from_cluster_shards(&decode(include_bytes!(
            "fixtures/redis-7.0-shards.resp"
        )))
        .unwrap();
        check_three_shards(&shards, 1);
        for node in shards
            .shards()
            .iter()
            .flat_map(|s| s.replicas.iter().chain([&s.master]))
        {
            assert_eq!(node.host, "127.0.0.1");
            assert_eq!(node.health, "online");
            assert_eq!(node.tls_port, None);
        }
        let slots =
            Topology::from_cluster_slots(&decode(include_bytes!("fixtures/redis-7.0-slots.resp")))
                .unwrap();
        check_three_shards(&slots, 1);
        assert_eq!(shape(&shards), shape(&slots), "one cluster, two replies");
        assert_eq!(slots.shards()[0].master.health, HEALTH_UNKNOWN);
        assert_eq!(slots.shards()[0].master.host, "127.0.0.1");
    }

    /// Valkey 8.1 with announced host names and
    /// `cluster-preferred-endpoint-type hostname`, captured by
    /// `fixtures/capture.sh valkey`: the endpoint is the host name.
    #[test]
    fn valkey_8_1_cluster_shards_and_slots_with_host_names() {
        let shards = Topology::from_cluster_shards(&decode(include_bytes!(
            "fixtures/valkey-8.1-shards.resp"
        )))
        .unwrap();
        check_three_shards(&shards, 1);
        let slots =
            Topology::from_cluster_slots(&decode(include_bytes!("fixtures/valkey-8.1-slots.resp")))
                .unwrap();
        check_three_shards(&slots, 1);
        assert_eq!(shape(&shards), shape(&slots), "one cluster, two replies");
        for t in [&shards, &slots] {
            for node in t
                .shards()
                .iter()
                .flat_map(|s| s.replicas.iter().chain([&s.master]))
            {
                assert!(
                    node.host.starts_with("node-") && node.host.ends_with(".rump.test"),
                    "{node:?}"
                );
            }
        }
    }

    #[test]
    fn a_master_with_split_ranges_is_one_shard() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let reply = arr(vec![
            slots_entry(
                0,
                99,
                vec![slots_node_frame(7000, &a), slots_node_frame(7003, "r1")],
            ),
            slots_entry(100, 199, vec![slots_node_frame(7001, &b)]),
            slots_entry(
                200,
                299,
                vec![slots_node_frame(7000, &a), slots_node_frame(7003, "r1")],
            ),
            slots_entry(
                300,
                16383,
                vec![slots_node_frame(7001, &b), slots_node_frame(7004, "r2")],
            ),
        ]);
        let t = Topology::from_cluster_slots(&reply).unwrap();
        assert_eq!(t.shards().len(), 2);
        assert_eq!(t.shards()[0].master.port, 7000);
        assert_eq!(t.shards()[0].slots, vec![(0, 99), (200, 299)]);
        assert_eq!(
            t.shards()[0].replicas.len(),
            1,
            "the replica is listed once"
        );
        assert_eq!(t.shards()[1].slots, vec![(100, 199), (300, 16383)]);
        assert_eq!(t.shards()[1].replicas[0].port, 7004);
        assert_eq!(t.owner(150).unwrap().master.port, 7001);
        assert_eq!(t.owner(250).unwrap().master.port, 7000);
        assert!(t.coverage().is_full());

        // CLUSTER SHARDS lists several ranges in one entry; adjacent ones merge.
        let reply = arr(vec![shards_entry(
            &[200, 299, 0, 99, 100, 150],
            vec![shards_node(&a, 7000, "master", "online")],
        )]);
        let t = Topology::from_cluster_shards(&reply).unwrap();
        assert_eq!(t.shards()[0].slots, vec![(0, 150), (200, 299)]);
        assert_eq!(t.coverage().to_string(), "0-150,200-299");
        assert_eq!(t.owner(151), None);
    }

    #[test]
    fn a_master_without_slots_is_listed_last_and_owns_nothing() {
        let reply = arr(vec![
            shards_entry(&[], vec![shards_node("empty", 7009, "master", "online")]),
            shards_entry(
                &[0, 16383],
                vec![
                    shards_node("full", 7000, "master", "online"),
                    shards_node("rep", 7001, "replica", "online"),
                ],
            ),
        ]);
        let t = Topology::from_cluster_shards(&reply).unwrap();
        assert_eq!(t.shards().len(), 2);
        assert_eq!(t.shards()[0].master.id, "full");
        assert_eq!(t.shards()[1].master.id, "empty");
        assert!(t.shards()[1].slots.is_empty());
        assert!((0..SLOTS).all(|s| t.shard_index(s) == Some(0)));
        assert_eq!(
            t.masters().map(|m| m.port).collect::<Vec<_>>(),
            [7000, 7009]
        );
    }

    #[test]
    fn failed_nodes_are_reported_and_the_online_master_wins() {
        let reply = arr(vec![shards_entry(
            &[0, 16383],
            vec![
                shards_node("old", 7000, "master", "failed"),
                shards_node("new", 7001, "master", "online"),
                shards_node("rep", 7002, "replica", "failed"),
                shards_node("syncing", 7003, "replica", "loading"),
            ],
        )]);
        let t = Topology::from_cluster_shards(&reply).unwrap();
        let shard = &t.shards()[0];
        assert_eq!(shard.master.id, "new");
        let replicas: Vec<_> = shard
            .replicas
            .iter()
            .map(|r| (&r.id[..], &r.health[..]))
            .collect();
        assert_eq!(replicas, [("rep", "failed"), ("syncing", "loading")]);

        // A failed master that is the only one still serves its slots.
        let reply = arr(vec![shards_entry(
            &[0, 16383],
            vec![shards_node("down", 7000, "master", "failed")],
        )]);
        let t = Topology::from_cluster_shards(&reply).unwrap();
        assert_eq!(t.owner(0).unwrap().master.health, "failed");

        // A shard of only a former master's leftovers (no master, no slots)
        // is dropped; one with slots but no master is an error.
        let reply = arr(vec![
            shards_entry(
                &[0, 16383],
                vec![shards_node("m", 7000, "master", "online")],
            ),
            shards_entry(&[], vec![shards_node("r", 7001, "replica", "failed")]),
        ]);
        assert_eq!(
            Topology::from_cluster_shards(&reply)
                .unwrap()
                .shards()
                .len(),
            1
        );
        let reply = arr(vec![shards_entry(
            &[0, 16383],
            vec![shards_node("r", 7001, "replica", "online")],
        )]);
        let e = Topology::from_cluster_shards(&reply).unwrap_err();
        assert!(e.contains("shard 0 serves slots but has no master"), "{e}");
    }

    #[test]
    fn partial_coverage_has_no_owner_for_the_gap() {
        let reply = arr(vec![
            slots_entry(0, 5460, vec![slots_node_frame(7000, "a")]),
            slots_entry(10923, 16383, vec![slots_node_frame(7002, "c")]),
        ]);
        let t = Topology::from_cluster_slots(&reply).unwrap();
        assert!(!t.coverage().is_full());
        assert_eq!(t.coverage().to_string(), "0-5460,10923-16383");
        assert_eq!(t.owner(5461), None);
        assert_eq!(t.owner(10922), None);
        assert_eq!(t.owner(10923).unwrap().master.port, 7002);
    }

    #[test]
    fn endpoints_fall_back_to_the_ip_and_then_to_empty() {
        let node = |endpoint: Frame| {
            arr(vec![
                bulk("id"),
                bulk("x"),
                bulk("port"),
                int(7000),
                bulk("tls-port"),
                int(7443),
                bulk("ip"),
                bulk("10.0.0.1"),
                bulk("endpoint"),
                endpoint,
                bulk("hostname"),
                bulk("ignored.example"),
                bulk("role"),
                bulk("master"),
                bulk("health"),
                bulk("online"),
            ])
        };
        let host = |endpoint: Frame| {
            let reply = arr(vec![shards_entry(&[0, 16383], vec![node(endpoint)])]);
            let t = Topology::from_cluster_shards(&reply).unwrap();
            assert_eq!(t.shards()[0].master.tls_port, Some(7443));
            t.shards()[0].master.host.clone()
        };
        assert_eq!(host(bulk("db.example")), "db.example");
        assert_eq!(host(bulk("?")), "10.0.0.1");
        assert_eq!(host(bulk("")), "10.0.0.1");
        assert_eq!(host(Frame::Null), "10.0.0.1");

        // CLUSTER SLOTS: a null or "?" host falls back to the metadata's ip;
        // without one the host is empty (connect where you asked).
        let entry = |host: Frame, metadata: Option<Frame>| {
            let mut node = vec![host, int(7000), bulk("id")];
            node.extend(metadata);
            arr(vec![slots_entry(0, 16383, vec![arr(node)])])
        };
        let host_of = |reply: Frame| {
            Topology::from_cluster_slots(&reply).unwrap().shards()[0]
                .master
                .host
                .clone()
        };
        let ip = || Some(arr(vec![bulk("ip"), bulk("10.0.0.2")]));
        assert_eq!(host_of(entry(bulk("name.example"), ip())), "name.example");
        assert_eq!(host_of(entry(Frame::Null, ip())), "10.0.0.2");
        assert_eq!(host_of(entry(bulk("?"), ip())), "10.0.0.2");
        assert_eq!(host_of(entry(Frame::Null, None)), "");
        assert_eq!(host_of(entry(bulk(""), None)), "");
    }

    #[test]
    fn tls_only_nodes_have_port_zero() {
        let reply = arr(vec![shards_entry(
            &[0, 16383],
            vec![arr(vec![
                bulk("id"),
                bulk("t"),
                bulk("tls-port"),
                int(7443),
                bulk("ip"),
                bulk("127.0.0.1"),
                bulk("role"),
                bulk("master"),
            ])],
        )]);
        let t = Topology::from_cluster_shards(&reply).unwrap();
        let master = &t.shards()[0].master;
        assert_eq!((master.port, master.tls_port), (0, Some(7443)));
        assert_eq!(master.health, HEALTH_UNKNOWN);
    }

    #[test]
    fn old_cluster_slots_without_ids_group_by_address() {
        let node = |port| arr(vec![bulk("127.0.0.1"), int(port)]);
        let reply = arr(vec![
            slots_entry(0, 10, vec![node(7000), node(7001)]),
            slots_entry(11, 20, vec![node(7002)]),
            slots_entry(21, 16383, vec![node(7000), node(7001)]),
        ]);
        let t = Topology::from_cluster_slots(&reply).unwrap();
        assert_eq!(t.shards().len(), 2);
        assert_eq!(t.shards()[0].slots, vec![(0, 10), (21, 16383)]);
        assert_eq!(t.shards()[0].replicas.len(), 1);
        assert_eq!(t.shards()[0].master.id, "");
        assert_eq!(t.shards()[0].master.addr(), "127.0.0.1:7000");
    }

    #[test]
    fn an_empty_reply_is_an_empty_topology() {
        for t in [
            Topology::from_cluster_shards(&arr(vec![])).unwrap(),
            Topology::from_cluster_slots(&arr(vec![])).unwrap(),
        ] {
            assert!(t.shards().is_empty());
            assert!(t.coverage().is_empty());
            assert_eq!(t.owner(0), None);
        }
    }

    #[test]
    fn malformed_replies_are_errors_naming_the_place() {
        let ok_node = || shards_node("m", 7000, "master", "online");
        let cases: Vec<(Frame, &str)> = vec![
            (
                Frame::Error(Bytes::from_static(b"ERR unknown subcommand")),
                "CLUSTER SHARDS reply is error \"ERR unknown subcommand\", expected an array",
            ),
            (arr(vec![int(1)]), "shard 0 is integer 1, expected an array"),
            (
                arr(vec![arr(vec![bulk("slots")])]),
                "shard 0: the map has an odd number of elements (1)",
            ),
            (
                arr(vec![shards_entry(&[0], vec![ok_node()])]),
                "shard 0: slots has an odd number of elements (1)",
            ),
            (
                arr(vec![shards_entry(&[0, 16384], vec![ok_node()])]),
                "slot 16384 is out of range 0-16383",
            ),
            (
                arr(vec![shards_entry(&[-1, 5], vec![ok_node()])]),
                "slot -1 is out of range",
            ),
            (
                arr(vec![shards_entry(&[10, 5], vec![ok_node()])]),
                "master 127.0.0.1:7000 serves slots 10-5, not a range of 0-16383",
            ),
            (
                arr(vec![shards_entry(
                    &[0, 5],
                    vec![shards_node("m", 70000, "master", "online")],
                )]),
                "node 0: port 70000 is out of range 0-65535",
            ),
            (
                arr(vec![shards_entry(
                    &[0, 5],
                    vec![shards_node("m", 7000, "boss", "online")],
                )]),
                "has role \"boss\"",
            ),
            (
                arr(vec![shards_entry(
                    &[0, 5],
                    vec![arr(vec![bulk("port"), int(1)])],
                )]),
                "node 0 has no id",
            ),
            (
                arr(vec![shards_entry(
                    &[0, 5],
                    vec![arr(vec![
                        bulk("id"),
                        bulk("x"),
                        bulk("role"),
                        bulk("master"),
                    ])],
                )]),
                "has neither port nor tls-port",
            ),
            (
                arr(vec![shards_entry(
                    &[0, 5],
                    vec![arr(vec![
                        bulk("id"),
                        Frame::Bulk(Bytes::from_static(b"\xff")),
                        bulk("port"),
                        int(1),
                        bulk("role"),
                        bulk("master"),
                    ])],
                )]),
                "id string \"\u{fffd}\" is not UTF-8",
            ),
            (
                arr(vec![
                    shards_entry(&[0, 100], vec![shards_node("a", 7000, "master", "online")]),
                    shards_entry(
                        &[100, 200],
                        vec![shards_node("b", 7001, "master", "online")],
                    ),
                ]),
                "slot 100 is served by two masters: 127.0.0.1:7000 and 127.0.0.1:7001",
            ),
        ];
        for (frame, phrase) in cases {
            let e = Topology::from_cluster_shards(&frame).unwrap_err();
            assert!(e.contains(phrase), "{frame:?}: {e}");
            assert!(e.starts_with("CLUSTER SHARDS reply"), "{e}");
        }

        let slots_cases: Vec<(Frame, &str)> = vec![
            (
                Frame::Null,
                "CLUSTER SLOTS reply is null, expected an array",
            ),
            (
                arr(vec![arr(vec![int(0), int(5)])]),
                "entry 0 has 2 elements, expected start, end and a master",
            ),
            (
                arr(vec![slots_entry(0, 5, vec![arr(vec![bulk("h")])])]),
                "entry 0, master has 1 elements, expected host and port",
            ),
            (
                arr(vec![slots_entry(0, 5, vec![arr(vec![int(1), int(7000)])])]),
                "host is integer 1, expected a string",
            ),
            (
                arr(vec![arr(vec![
                    bulk("0"),
                    int(5),
                    slots_node_frame(7000, "a"),
                ])]),
                "slot is string \"0\", expected an integer",
            ),
            (
                arr(vec![
                    slots_entry(0, 10, vec![slots_node_frame(7000, "a")]),
                    slots_entry(5, 20, vec![slots_node_frame(7001, "b")]),
                ]),
                "slot 5 is served by two masters",
            ),
        ];
        for (frame, phrase) in slots_cases {
            let e = Topology::from_cluster_slots(&frame).unwrap_err();
            assert!(e.contains(phrase), "{frame:?}: {e}");
            assert!(e.starts_with("CLUSTER SLOTS reply"), "{e}");
        }
    }

    /// The limit: `MAX_SHARDS` shards are accepted, one more is refused.
    #[test]
    fn shard_count_limit_boundary() {
        let shard = |i: usize| Shard {
            slots: if i < usize::from(SLOTS) {
                vec![(i as u16, i as u16)]
            } else {
                vec![]
            },
            master: Node {
                id: format!("{i}"),
                host: "127.0.0.1".into(),
                port: 7000,
                tls_port: None,
                master: true,
                health: "online".into(),
            },
            replicas: vec![],
        };
        let t = Topology::new((0..MAX_SHARDS).map(shard).collect()).unwrap();
        assert_eq!(t.shards().len(), MAX_SHARDS);
        assert_eq!(t.shard_index(16383), Some(16383));
        assert!(t.coverage().is_full());
        let e = Topology::new((0..=MAX_SHARDS).map(shard).collect()).unwrap_err();
        assert!(
            e.contains("16385 shards, more than a cluster can have (16384)"),
            "{e}"
        );
    }

    #[test]
    fn node_addresses_bracket_ipv6() {
        let mut node = shard_node(&shards_node("x", 7000, "master", "online"), "n").unwrap();
        assert_eq!(node.addr(), "127.0.0.1:7000");
        node.host = "::1".into();
        assert_eq!(node.addr(), "[::1]:7000");
    }
}
