//! Where the target loop sends each item: the one connection of a
//! standalone target, or, for a cluster, the master that owns the key's
//! hash slot, from a slot map that follows the cluster as it changes.
//!
//! The map is only ever replaced whole, from a topology the cluster itself
//! reported (a handshake, or a `CLUSTER SHARDS` query sent when a `MOVED`,
//! an unowned slot or a lost master says the map is stale): a `MOVED` is
//! never patched into one slot blindly, since a resharding or failover
//! moves many slots at once.

use std::time::{Duration, Instant};

use mio::Token;

use crate::cluster::slot::{slot, SLOTS};
use crate::cluster::topology::{Node, Topology};
use crate::config::{ServerAddr, ServerEndpoint};

/// Least time between two topology queries: a burst of `MOVED` replies
/// (one per key of a moved slot) asks once.
const QUERY_EVERY: Duration = Duration::from_millis(100);

/// Where items go.
#[derive(Debug)]
pub enum Route {
    /// A standalone target: every item to one of these connections, by its
    /// key's hash slot, so one key always goes to the same connection and
    /// its writes stay in order (more than one connection only when one
    /// cannot hold what a far target's round trip does).
    Single(Vec<Token>),
    Cluster(ClusterRoute),
}

/// A cluster target's slot map and its freshness.
#[derive(Debug)]
pub struct ClusterRoute {
    /// Slot → the master's node token.
    map: Box<[Option<Token>]>,
    /// The node named by the target URI: the credentials (and, for a node
    /// that announces no endpoint, the host) of every other node.
    pub seed: ServerEndpoint,
    /// Ask with `CLUSTER SHARDS` (Redis 7.0+), else `CLUSTER SLOTS`.
    pub shards: bool,
    /// The map is known to be stale: a query is due.
    pub stale: bool,
    last_query: Option<Instant>,
}

impl Route {
    /// The node for `key`; `None` when the cluster map has no owner for its
    /// slot (the map is then marked stale).
    pub fn token_for(&mut self, key: &[u8]) -> Option<Token> {
        match self {
            Route::Single(tokens) => match tokens.len() {
                0 => None,
                1 => Some(tokens[0]),
                n => Some(tokens[usize::from(slot(key)) % n]),
            },
            Route::Cluster(c) => {
                let token = c.map[usize::from(slot(key))];
                if token.is_none() {
                    c.stale = true;
                }
                token
            }
        }
    }

    pub fn cluster(&mut self) -> Option<&mut ClusterRoute> {
        match self {
            Route::Cluster(c) => Some(c),
            Route::Single(_) => None,
        }
    }
}

impl ClusterRoute {
    /// A route with no slot owned yet, for a cluster reached through `seed`.
    pub fn new(seed: ServerEndpoint, shards: bool) -> ClusterRoute {
        ClusterRoute {
            map: vec![None; usize::from(SLOTS)].into_boxed_slice(),
            seed,
            shards,
            stale: false,
            last_query: None,
        }
    }

    /// The endpoint of a cluster node, with the seed's credentials.
    pub fn endpoint_of(&self, host: &str, port: u16) -> ServerEndpoint {
        node_endpoint(&self.seed, host, port)
    }

    /// The endpoint of a topology node.
    pub fn endpoint_of_node(&self, node: &Node) -> ServerEndpoint {
        node_endpoint(&self.seed, &node.host, self.port_of(node))
    }

    /// The port of `node` for this cluster's clients (TLS or plain).
    pub fn port_of(&self, node: &Node) -> u16 {
        node.port_for(self.seed.tls)
    }

    /// Takes a new map: every slot of `topology` owned by the token
    /// `token_of` gives for its master (`None`: no connection to it, so its
    /// slots stay unowned and their keys wait for the next map).
    pub fn replace(
        &mut self,
        topology: &Topology,
        mut token_of: impl FnMut(&Node) -> Option<Token>,
    ) {
        let mut map = vec![None; usize::from(SLOTS)].into_boxed_slice();
        for shard in topology.shards() {
            if shard.slots.is_empty() {
                continue;
            }
            let token = token_of(&shard.master);
            for &(first, last) in &shard.slots {
                for s in first..=last {
                    map[usize::from(s)] = token;
                }
            }
        }
        self.map = map;
        self.stale = false;
    }

    /// True when a topology query should go out now.
    pub fn query_due(&self) -> bool {
        self.stale
            && self
                .last_query
                .map_or(true, |at| at.elapsed() >= QUERY_EVERY)
    }

    /// A query went out.
    pub fn queried(&mut self) {
        self.last_query = Some(Instant::now());
    }

    /// True when `token` owns at least one slot.
    pub fn serves(&self, token: Token) -> bool {
        self.map.contains(&Some(token))
    }
}

/// The endpoint of the cluster node `host:port`, reached with the seed's
/// credentials; a node that announces no host (`""` or `?`) is on the
/// seed's host.
pub fn node_endpoint(seed: &ServerEndpoint, host: &str, port: u16) -> ServerEndpoint {
    let host = if host.is_empty() || host == "?" {
        match &seed.addr {
            ServerAddr::Tcp { host, .. } => host.clone(),
            ServerAddr::Unix(_) => "127.0.0.1".to_string(),
        }
    } else {
        host.to_string()
    };
    // Nodes announce IPs, which a certificate made for the service's name
    // rarely holds: verify every node against the name the seed verified.
    let tls_name = match seed.tls {
        true => seed
            .tls_name
            .clone()
            .or_else(|| seed.host().map(str::to_string)),
        false => None,
    };
    ServerEndpoint {
        addr: ServerAddr::Tcp { host, port },
        db: 0,
        readonly: false,
        tls_name,
        ..seed.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_endpoint, Endpoint};

    fn seed() -> ServerEndpoint {
        match parse_endpoint("redis://u:pw@10.1.1.1:7000") {
            Ok(Endpoint::Server(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nodes_get_the_seed_credentials_and_host_when_they_announce_none() {
        let route = ClusterRoute::new(seed(), true);
        let e = route.endpoint_of("", 7001);
        assert_eq!(e.to_string(), "10.1.1.1:7001");
        assert_eq!(e.password.as_deref(), Some(&b"pw"[..]));
        assert_eq!(route.endpoint_of("node-2", 7002).to_string(), "node-2:7002");
    }

    #[test]
    fn an_unowned_slot_marks_the_map_stale() {
        let mut route = Route::Cluster(ClusterRoute::new(seed(), true));
        assert_eq!(route.token_for(b"k"), None);
        let c = route.cluster().unwrap();
        assert!(c.stale && c.query_due());
        c.queried();
        assert!(!c.query_due(), "one query per burst");
        assert_eq!(
            Route::Single(vec![Token(3)]).token_for(b"k"),
            Some(Token(3))
        );
        // Several connections: a key always to the same one, by slot.
        let mut spread = Route::Single(vec![Token(3), Token(4)]);
        let first = spread.token_for(b"k");
        assert_eq!(spread.token_for(b"k"), first);
        let tokens: std::collections::HashSet<_> = (0..64)
            .map(|i| spread.token_for(format!("key:{i}").as_bytes()))
            .collect();
        assert_eq!(tokens.len(), 2);
    }
}
