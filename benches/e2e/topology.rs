//! What the source and the target are (issue 9): one standalone server, or a
//! 3-master Redis Cluster the harness creates itself, behind one face.
//!
//! A [`Side`] is the servers of one end; its [`Nodes`] are one connection to
//! each, with the slot → node table for a cluster, so the rest of the
//! harness loads, measures and checks "per node" and a standalone server is
//! simply the one-node case (no thread, no routing: today's behaviour).
//!
//! The slot of a key is `rump::cluster::slot::slot`, a pure function; which
//! master owns it comes from the servers' own `CLUSTER SLOTS`, parsed here.
//! A key routed to the wrong master would be refused with `MOVED`, so every
//! load, ceiling and check below fails loudly rather than measure nonsense.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use resp::Frame;
use rump::cluster::slot::{slot, SLOTS};

use crate::redis::tls::{Certs, Mode};
use crate::redis::{self, Batch, Batcher, Conn, Res, Server, TempDir};

/// Masters of every cluster the harness creates (no replicas): the
/// smallest cluster `redis-cli --cluster create` accepts, and already 6
/// servers for a cluster → cluster run on a 2-core machine.
pub(crate) const MASTERS: usize = 3;

/// How long `redis-cli --cluster create` may take (it polls once a second
/// until the nodes have met).
const CREATE_WITHIN: Duration = Duration::from_secs(60);

/// How long the nodes then get to all say `cluster_state:ok` and agree on
/// the slot map.
const SETTLE_WITHIN: Duration = Duration::from_secs(30);

/// Which ends are clusters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Topology {
    /// Standalone → standalone: the harness as it always was.
    Standalone,
    /// Standalone → 3-master cluster.
    ClusterTarget,
    /// 3-master cluster → 3-master cluster.
    Cluster,
}

impl Topology {
    const ALL: [Topology; 3] = [
        Topology::Standalone,
        Topology::ClusterTarget,
        Topology::Cluster,
    ];

    pub(crate) fn parse(name: &str) -> Res<Topology> {
        Topology::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                format!("unknown topology {name:?} (standalone, cluster-target, cluster)")
            })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Topology::Standalone => "standalone",
            Topology::ClusterTarget => "cluster-target",
            Topology::Cluster => "cluster",
        }
    }

    /// For tables: "standalone → cluster".
    pub(crate) fn arrow(self) -> &'static str {
        match self {
            Topology::Standalone => "standalone → standalone",
            Topology::ClusterTarget => "standalone → cluster",
            Topology::Cluster => "cluster → cluster",
        }
    }

    fn source_is_cluster(self) -> bool {
        self == Topology::Cluster
    }

    fn target_is_cluster(self) -> bool {
        self != Topology::Standalone
    }
}

/// Slot → index of the node that serves it, from `CLUSTER SLOTS`.
#[derive(Clone)]
pub(crate) struct Owners(Arc<[u8]>);

impl Owners {
    pub(crate) fn of(&self, key: &[u8]) -> usize {
        usize::from(self.0[usize::from(slot(key))])
    }
}

/// The servers of one end: one standalone server, or the masters of a cluster.
pub(crate) struct Side {
    pub(crate) servers: Vec<Server>,
    owners: Option<Owners>,
}

impl Side {
    fn standalone(server: Server) -> Side {
        Side {
            servers: vec![server],
            owners: None,
        }
    }

    fn start(
        bin: &Path,
        cli: &Path,
        name: &str,
        dir: &Path,
        cluster: bool,
        certs: Option<&Arc<Certs>>,
    ) -> Res<Side> {
        if !cluster {
            return Ok(Side::standalone(Server::start(bin, name, dir, &[], certs)?));
        }
        let servers = (0..MASTERS)
            .map(|i| Server::start_cluster_node(bin, &format!("{name}-{i}"), dir, certs))
            .collect::<Res<Vec<_>>>()?;
        create_cluster(cli, &servers)?;
        let owners = wait_settled(&servers)?;
        Ok(Side {
            servers,
            owners: Some(owners),
        })
    }

    /// The URL to give a tool in `mode`: the only server, or the first
    /// master (a tool is expected to find the others).
    pub(crate) fn url_in(&self, mode: Mode) -> Res<String> {
        self.servers[0].url_in(mode)
    }

    /// The port of that URL.
    pub(crate) fn port_in(&self, mode: Mode) -> Res<u16> {
        self.servers[0]
            .port_in(mode)
            .ok_or_else(|| format!("{} has no {} port", self.servers[0].name, mode.name()))
    }

    pub(crate) fn pids(&self) -> Vec<u32> {
        self.servers.iter().map(Server::pid).collect()
    }

    /// One plain connection to every server.
    pub(crate) fn nodes(&self) -> Res<Nodes> {
        self.nodes_in(Mode::Plain)
    }

    /// One connection in `mode` to every server.
    pub(crate) fn nodes_in(&self, mode: Mode) -> Res<Nodes> {
        Ok(Nodes {
            conns: self
                .servers
                .iter()
                .map(|s| s.conn_in(mode))
                .collect::<Res<_>>()?,
            owners: self.owners.clone(),
        })
    }

    /// One connection in `mode` to `port`, a latency proxy in front of this
    /// side's only server; a cluster is refused (its clients would reach
    /// the other masters directly, around the proxy).
    pub(crate) fn nodes_via(&self, mode: Mode, port: u16) -> Res<Nodes> {
        match (&self.servers[..], &self.owners) {
            ([server], None) => Ok(Nodes {
                conns: vec![server.conn_via(mode, port)?],
                owners: None,
            }),
            _ => Err("a latency proxy fronts a standalone server only".to_owned()),
        }
    }

    /// "redis://127.0.0.1:P (pid N)", or the cluster's masters; the TLS
    /// port too where there is one.
    pub(crate) fn describe(&self) -> String {
        let each: Vec<String> = self
            .servers
            .iter()
            .map(|s| match s.url_in(Mode::Tls) {
                Ok(tls) => format!("{} and {tls} (pid {})", s.url(), s.pid()),
                Err(_) => format!("{} (pid {})", s.url(), s.pid()),
            })
            .collect();
        match self.owners {
            None => each.join(", "),
            Some(_) => format!("cluster of {} masters: {}", each.len(), each.join(", ")),
        }
    }
}

/// The source ends, the target end and their directory; fields drop in
/// order, so the servers are killed before the directory is removed.
///
/// Every source holds the same data and copies into the same target, in
/// turn within each repetition: with one source per server binary
/// (`--source-server a,b`), the runs of a cross-version copy alternate with
/// those of a same-version one on the same target process (issue 11).
pub(crate) struct Lab {
    pub(crate) sources: Vec<Side>,
    pub(crate) target: Side,
    /// What every server serves on its TLS port, in a lab with TLS.
    pub(crate) certs: Option<Arc<Certs>>,
    _dir: TempDir,
}

/// The server binaries of a lab: one per source, one for the target.
pub(crate) struct Binaries<'a> {
    pub(crate) sources: &'a [std::path::PathBuf],
    pub(crate) target: &'a Path,
    /// Creates the clusters.
    pub(crate) cli: &'a Path,
}

impl Lab {
    /// With `tls`, every server also listens for TLS (see [`redis::tls`]).
    pub(crate) fn start(bins: &Binaries<'_>, topology: Topology, tls: bool) -> Res<Lab> {
        if let ([source], Topology::Standalone) = (bins.sources, topology) {
            if source == bins.target {
                // Exactly the servers the harness always had (plus TLS if asked).
                let redis::Lab {
                    source,
                    target,
                    certs,
                    dir,
                } = redis::Lab::start_with(source, tls)?;
                return Ok(Lab {
                    sources: vec![Side::standalone(source)],
                    target: Side::standalone(target),
                    certs,
                    _dir: dir,
                });
            }
        }
        let dir = TempDir::new()?;
        let certs = match tls {
            true => Some(Arc::new(Certs::generate(dir.path())?)),
            false => None,
        };
        let certs_ref = certs.as_ref();
        let sources = bins
            .sources
            .iter()
            .enumerate()
            .map(|(i, bin)| {
                let name = match i {
                    0 => "source".to_owned(),
                    _ => format!("source{}", i + 1),
                };
                let cluster = topology.source_is_cluster();
                Side::start(bin, bins.cli, &name, dir.path(), cluster, certs_ref)
            })
            .collect::<Res<Vec<_>>>()?;
        let target = Side::start(
            bins.target,
            bins.cli,
            "target",
            dir.path(),
            topology.target_is_cluster(),
            certs_ref,
        )?;
        Ok(Lab {
            sources,
            target,
            certs,
            _dir: dir,
        })
    }
}

/// One connection to each server of a [`Side`].
pub(crate) struct Nodes {
    pub(crate) conns: Vec<Conn>,
    owners: Option<Owners>,
}

impl Nodes {
    pub(crate) fn is_cluster(&self) -> bool {
        self.owners.is_some()
    }

    /// The first server (the standalone one, or the first master).
    pub(crate) fn first(&mut self) -> &mut Conn {
        &mut self.conns[0]
    }

    /// Index of the node serving `key` (0 on a standalone server).
    pub(crate) fn owner(&self, key: &[u8]) -> usize {
        self.owners.as_ref().map_or(0, |o| o.of(key))
    }

    pub(crate) fn conn_for(&mut self, key: &[u8]) -> &mut Conn {
        let i = self.owner(key);
        &mut self.conns[i]
    }

    /// `DBSIZE` of every node.
    pub(crate) fn dbsizes(&mut self) -> Res<Vec<u64>> {
        self.conns.iter_mut().map(Conn::dbsize).collect()
    }

    /// Keys on the whole side: the sum of the nodes' `DBSIZE`.
    pub(crate) fn dbsize(&mut self) -> Res<u64> {
        Ok(self.dbsizes()?.iter().sum())
    }

    pub(crate) fn flushall(&mut self) -> Res<()> {
        self.conns.iter_mut().try_for_each(Conn::flushall)
    }

    /// A [`Router`] that cuts each node's commands into batches.
    pub(crate) fn router(&self, max_cmds: usize, max_bytes: usize) -> Router {
        Router {
            owners: self.owners.clone(),
            batchers: (0..self.conns.len())
                .map(|_| Batcher::new(max_cmds, max_bytes))
                .collect(),
            last: 0,
        }
    }

    /// Runs `work` with every connection and its own input at once, one
    /// thread per node (inline when there is one node), and returns the
    /// results in node order; the first error wins.
    pub(crate) fn each<I: Send, T: Send>(
        &mut self,
        inputs: Vec<I>,
        work: impl Fn(&mut Conn, I) -> Res<T> + Sync,
    ) -> Res<Vec<T>> {
        if inputs.len() != self.conns.len() {
            return Err(format!(
                "{} inputs for {} nodes",
                inputs.len(),
                self.conns.len()
            ));
        }
        if let ([conn], [_]) = (&mut self.conns[..], &inputs[..]) {
            let input = inputs.into_iter().next().ok_or("no input")?;
            return Ok(vec![work(conn, input)?]);
        }
        let work = &work;
        thread::scope(|scope| {
            let handles: Vec<_> = self
                .conns
                .iter_mut()
                .zip(inputs)
                .map(|(conn, input)| scope.spawn(move || work(conn, input)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("a node's thread panicked".to_owned()))
                })
                .collect()
        })
    }

    /// `batches[i]` pipelined to node `i`, all nodes at once; an error reply
    /// is an `Err` naming `what`.
    pub(crate) fn pipelines(&mut self, batches: Vec<Vec<Batch>>, what: &str) -> Res<()> {
        self.each(batches, |conn, batches| {
            conn.pipeline(batches, |reply| match reply {
                Frame::Error(e) => Err(format!("{what} failed: {}", String::from_utf8_lossy(&e))),
                _ => Ok(()),
            })
        })
        .map(drop)
    }

    /// `per_node(conn, keys)` on the node owning each key, the answers put
    /// back in the order of `keys`.
    fn routed<T>(
        &mut self,
        keys: &[Bytes],
        per_node: impl Fn(&mut Conn, &[Bytes]) -> Res<Vec<T>>,
    ) -> Res<Vec<T>> {
        if self.conns.len() == 1 {
            return per_node(&mut self.conns[0], keys);
        }
        let mut groups: Vec<(Vec<usize>, Vec<Bytes>)> = vec![Default::default(); self.conns.len()];
        for (i, key) in keys.iter().enumerate() {
            let group = &mut groups[self.owner(key)];
            group.0.push(i);
            group.1.push(key.clone());
        }
        let mut out: Vec<Option<T>> = (0..keys.len()).map(|_| None).collect();
        for (conn, (indexes, keys)) in self.conns.iter_mut().zip(groups) {
            let answers = per_node(conn, &keys)?;
            if answers.len() != keys.len() {
                return Err(format!(
                    "{} answers for {} keys from one node",
                    answers.len(),
                    keys.len()
                ));
            }
            for (i, answer) in indexes.into_iter().zip(answers) {
                out[i] = Some(answer);
            }
        }
        out.into_iter()
            .map(|a| a.ok_or_else(|| "a key got no answer".to_owned()))
            .collect()
    }

    /// `DUMP` of every key on its node: `None` for keys that do not exist.
    pub(crate) fn dumps(&mut self, keys: &[Bytes]) -> Res<Vec<Option<Bytes>>> {
        self.routed(keys, Conn::dumps)
    }

    /// `command key` of every key on its node, each answering an integer.
    pub(crate) fn ints(&mut self, command: &[u8], keys: &[Bytes]) -> Res<Vec<i64>> {
        self.routed(keys, |conn, keys| conn.ints(command, keys))
    }
}

/// Cuts a command stream into per-node [`Batch`]es, each command going to
/// the node that serves its key.
pub(crate) struct Router {
    owners: Option<Owners>,
    batchers: Vec<Batcher>,
    last: usize,
}

impl Router {
    /// The queue of `key`'s node; call [`Router::done`] after the command.
    pub(crate) fn req(&mut self, key: &[u8]) -> &mut resp::Requests {
        self.last = self.owners.as_ref().map_or(0, |o| o.of(key));
        self.batchers[self.last].req()
    }

    /// Counts the command just queued with [`Router::req`].
    pub(crate) fn done(&mut self) {
        self.batchers[self.last].done();
    }

    /// Queues a command whose key is its first argument, all arguments copied.
    pub(crate) fn command(&mut self, args: &[&[u8]]) {
        let key = args.get(1).copied().unwrap_or_default();
        self.req(key).command(args);
        self.done();
    }

    pub(crate) fn finish(self) -> Vec<Vec<Batch>> {
        self.batchers.into_iter().map(Batcher::finish).collect()
    }
}

/// `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`,
/// bounded by [`CREATE_WITHIN`].
fn create_cluster(cli: &Path, servers: &[Server]) -> Res<()> {
    let mut child = Command::new(cli)
        .args(["--cluster", "create"])
        .args(servers.iter().map(|s| format!("127.0.0.1:{}", s.port)))
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e} (see --redis-cli)", cli.display()))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > CREATE_WITHIN => {
                let _ = child.kill();
                break;
            }
            Ok(None) => thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for {}: {e}", cli.display())),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for {}: {e}", cli.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Err(format!(
        "{} --cluster create failed ({}, {CREATE_WITHIN:?} allowed): {last}",
        cli.display(),
        out.status
    ))
}

/// Waits until every node says `cluster_state:ok` and all see the same slot
/// map over all slots, and returns it as slot → index into `servers`.
fn wait_settled(servers: &[Server]) -> Res<Owners> {
    let deadline = Instant::now() + SETTLE_WITHIN;
    loop {
        let why = match settled(servers) {
            Ok(owners) => return Ok(owners),
            Err(why) => why,
        };
        if Instant::now() > deadline {
            return Err(format!(
                "the cluster did not settle within {SETTLE_WITHIN:?}: {why}"
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn settled(servers: &[Server]) -> Res<Owners> {
    let mut agreed: Option<Vec<u8>> = None;
    for server in servers {
        let mut conn = server.conn()?;
        let info = conn.call_ok(&[b"CLUSTER", b"INFO"])?;
        let ok = info.as_bulk().is_some_and(|b| {
            String::from_utf8_lossy(b)
                .lines()
                .any(|l| l.trim() == "cluster_state:ok")
        });
        if !ok {
            return Err(format!("{} is not cluster_state:ok yet", server.name));
        }
        let map = slot_map(&mut conn, servers)?;
        match &agreed {
            Some(first) if *first != map => {
                return Err(format!("{} sees another slot map", server.name));
            }
            _ => agreed = Some(map),
        }
    }
    agreed
        .map(|map| Owners(map.into()))
        .ok_or_else(|| "no nodes".to_owned())
}

/// `CLUSTER SLOTS` as slot → index into `servers`, every slot served and
/// every server a master of some.
fn slot_map(conn: &mut Conn, servers: &[Server]) -> Res<Vec<u8>> {
    const NONE: u8 = u8::MAX;
    let bad = |what: &str| format!("unexpected CLUSTER SLOTS reply: {what}");
    let reply = conn.call_ok(&[b"CLUSTER", b"SLOTS"])?;
    let mut map = vec![NONE; usize::from(SLOTS)];
    for entry in reply.into_array().map_err(|_| bad("not an array"))? {
        let parts = entry
            .into_array()
            .map_err(|_| bad("an entry is not an array"))?;
        let slot_at = |i: usize| {
            parts
                .get(i)
                .and_then(Frame::as_int)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|&n| n < SLOTS)
                .ok_or_else(|| bad("a slot number"))
        };
        let (first, last) = (slot_at(0)?, slot_at(1)?);
        let port = match parts.get(2) {
            Some(Frame::Array(node)) => node.get(1).and_then(Frame::as_int),
            _ => None,
        }
        .ok_or_else(|| bad("a master without a port"))?;
        let index = servers
            .iter()
            .position(|s| i64::from(s.port) == port)
            .ok_or_else(|| format!("slots {first}-{last} served by port {port}, not ours"))?;
        for s in first..=last {
            map[usize::from(s)] = u8::try_from(index).map_err(|_| bad("too many nodes"))?;
        }
    }
    if let Some(s) = map.iter().position(|&o| o == NONE) {
        return Err(format!("slot {s} is not served yet"));
    }
    for (i, server) in servers.iter().enumerate() {
        if !map.iter().any(|&o| usize::from(o) == i) {
            return Err(format!("{} serves no slot yet", server.name));
        }
    }
    Ok(map)
}
