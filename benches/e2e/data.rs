//! The standard datasets, each scaled by `--scale`, loaded into the source.
//!
//! Values come from a fixed-seed PRNG, so every run loads the same bytes, and
//! they are incompressible, so `DUMP` payload sizes are the value sizes (Redis
//! LZF-compresses compressible strings in `DUMP`, which would make MiB/s lie).
//!
//! A cluster source gets the same keys and values, each command sent to the
//! master that serves its key, every master loaded at once (`DEBUG POPULATE`
//! on a cluster node would ignore slots, so `small` is then plain `SET`s of
//! what it would have written).

use bytes::Bytes;

use crate::redis::Res;
use crate::topology::{Nodes, Router};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dataset {
    /// 1,000,000 strings of 16 bytes (`DEBUG POPULATE`).
    Small,
    /// 200,000 keys over six types, 10% with TTLs.
    Mixed,
    /// 100 strings of 4 MiB and 10 hashes of 100,000 fields.
    Big,
}

impl Dataset {
    pub(crate) const ALL: [Dataset; 3] = [Dataset::Small, Dataset::Mixed, Dataset::Big];

    pub(crate) fn parse(name: &str) -> Res<Dataset> {
        Dataset::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| format!("unknown dataset {name:?} (small, mixed, big)"))
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Dataset::Small => "small",
            Dataset::Mixed => "mixed",
            Dataset::Big => "big",
        }
    }

    /// Which ceiling the target for this dataset is stated in.
    pub(crate) fn by_bytes(self) -> bool {
        self == Dataset::Big
    }
}

/// What `--scale` and `--keys` make of a dataset.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Size {
    pub(crate) scale: f64,
    /// Overrides the key count of `small`.
    pub(crate) small_keys: Option<u64>,
}

fn scaled(n: u64, scale: f64) -> u64 {
    ((n as f64 * scale).round() as u64).max(1)
}

/// Value bytes of every `small` key, as `DEBUG POPULATE … 16` writes them.
const SMALL_VALUE: usize = 16;

/// Loads `dataset` into `nodes` (expected empty) and returns a one-line description.
pub(crate) fn load(dataset: Dataset, nodes: &mut Nodes, size: Size) -> Res<String> {
    match dataset {
        Dataset::Small => {
            let n = size
                .small_keys
                .unwrap_or_else(|| scaled(1_000_000, size.scale));
            if nodes.is_cluster() {
                return load_small_by_slot(nodes, n);
            }
            nodes.first().call_ok(&[
                b"DEBUG",
                b"POPULATE",
                n.to_string().as_bytes(),
                b"key",
                SMALL_VALUE.to_string().as_bytes(),
            ])?;
            Ok(format!(
                "{n} strings of {SMALL_VALUE} bytes (DEBUG POPULATE)"
            ))
        }
        Dataset::Mixed => load_mixed(nodes, scaled(200_000, size.scale)),
        Dataset::Big => load_big(
            nodes,
            scaled(100, size.scale),
            scaled(10, size.scale),
            100_000,
        ),
    }
}

/// xorshift64*: fast, fixed-seed, good enough to defeat LZF.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes()[..chunk.len()]);
        }
        out
    }
}

const KINDS: [&str; 6] = ["string", "hash", "list", "set", "zset", "stream"];

/// What `DEBUG POPULATE n key 16` writes: `key:I` = `value:I` padded with
/// zero bytes to 16, as `SET`s to the master serving each key.
fn load_small_by_slot(nodes: &mut Nodes, n: u64) -> Res<String> {
    let mut batches = nodes.router(5000, 4 << 20);
    for i in 0..n {
        let key = format!("key:{i}");
        let mut value = format!("value:{i}").into_bytes();
        value.resize(SMALL_VALUE, 0);
        batches.command(&[b"SET", key.as_bytes(), &value]);
    }
    run_load(nodes, batches)?;
    Ok(format!(
        "{n} strings of {SMALL_VALUE} bytes (SET by slot, as DEBUG POPULATE writes them)"
    ))
}

fn load_mixed(nodes: &mut Nodes, n: u64) -> Res<String> {
    let mut rng = Rng(0x5eed_0001);
    let mut batches = nodes.router(5000, 4 << 20);
    let mut with_ttl = 0u64;
    for i in 0..n {
        let kind = (i % 6) as usize;
        let key = format!("mixed:{}:{i:08}", KINDS[kind]).into_bytes();
        match kind {
            0 => batches.command(&[b"SET", &key, &rng.bytes(64)]),
            1..=4 => {
                let verb: &[u8] = match kind {
                    1 => b"HSET",
                    2 => b"RPUSH",
                    3 => b"SADD",
                    _ => b"ZADD",
                };
                let pairs = kind == 1 || kind == 4;
                let req = batches.req(&key);
                req.start(2 + if pairs { 20 } else { 10 });
                req.arg(verb);
                req.arg(&key);
                for j in 0..10 {
                    match kind {
                        1 => req.arg(format!("field{j}").as_bytes()),
                        4 => req.arg_int(j),
                        _ => {}
                    }
                    req.arg(&rng.bytes(16));
                }
                batches.done();
            }
            _ => {
                for j in 1..=5 {
                    let id = format!("{j}-0");
                    batches.command(&[b"XADD", &key, id.as_bytes(), b"field", &rng.bytes(16)]);
                }
            }
        }
        if rng.next() % 10 == 0 {
            // 1 to 24 hours: nothing expires during a run.
            let ttl = 3_600_000 + rng.next() % 82_800_000;
            batches.command(&[b"PEXPIRE", &key, ttl.to_string().as_bytes()]);
            with_ttl += 1;
        }
    }
    run_load(nodes, batches)?;
    Ok(format!(
        "{n} keys: string 64 B, hash/list/set/zset of 10 x 16 B, stream of 5; {with_ttl} with TTLs"
    ))
}

fn load_big(nodes: &mut Nodes, strings: u64, hashes: u64, fields: u64) -> Res<String> {
    let mut rng = Rng(0x5eed_0002);
    let mut batches = nodes.router(1000, 16 << 20);
    for i in 0..strings {
        let key = format!("big:string:{i:04}").into_bytes();
        let req = batches.req(&key);
        req.start(3);
        req.arg(b"SET");
        req.arg(&key);
        req.arg_shared(Bytes::from(rng.bytes(4 << 20)));
        batches.done();
    }
    const PER_COMMAND: u64 = 1000;
    for i in 0..hashes {
        let key = format!("big:hash:{i:04}").into_bytes();
        for first in (0..fields).step_by(PER_COMMAND as usize) {
            let last = (first + PER_COMMAND).min(fields);
            let req = batches.req(&key);
            req.start(2 + 2 * (last - first) as usize);
            req.arg(b"HSET");
            req.arg(&key);
            for j in first..last {
                req.arg(format!("field:{j:06}").as_bytes());
                req.arg(&rng.bytes(48));
            }
            batches.done();
        }
    }
    run_load(nodes, batches)?;
    Ok(format!(
        "{strings} strings of 4 MiB, {hashes} hashes of {fields} fields (12 B names, 48 B values)"
    ))
}

/// Every node's batches pipelined to it, all nodes at once.
fn run_load(nodes: &mut Nodes, batches: Router) -> Res<()> {
    nodes.pipelines(batches.finish(), "loading")
}
