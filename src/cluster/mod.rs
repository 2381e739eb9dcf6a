//! Redis Cluster, the parts that need no socket: which slot a key hashes to
//! (`slot`), sets of slots for `--slots` and `--partition` (`slots`), what a
//! cluster node's error reply means (`redirect`), and the cluster's shape
//! read from `CLUSTER SHARDS` / `CLUSTER SLOTS` (`topology`).
//!
//! Everything here is sans-IO and pure: the engine sends the commands, owns
//! the connections per master and decides when to re-read the topology or
//! follow a redirect; this folder only computes and parses, so all of it is
//! unit-tested without a server (the integration tests check it against a
//! live cluster).

pub mod redirect;
pub mod slot;
pub mod slots;
pub mod topology;

pub use redirect::{classify, parse_redirect, split_addr, ClusterRefusal, Redirect};
pub use slot::{crc16, hash_tag, slot, SLOTS};
pub use slots::{parse_partition, SlotSet, MAX_PARTITIONS};
pub use topology::{Node, Shard, Topology, HEALTH_UNKNOWN, MAX_SHARDS};
