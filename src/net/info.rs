//! What a server is, from its `INFO` reply: version and product, `run_id`
//! (which tells a restart from a reconnect), role, cluster mode, and the
//! capabilities rump probes for during the handshake.

/// A server version, as `INFO server` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// What the handshake learned about a server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerInfo {
    /// The Redis protocol version it implements (`redis_version`; Valkey
    /// reports its Redis-compatible level here too).
    pub version: Version,
    /// Valkey's own version (`valkey_version`), when the server is Valkey.
    pub valkey: Option<Version>,
    /// `redis 7.0.15` or `valkey 8.1.1`, for messages.
    pub product: String,
    /// `run_id`: tells whether two addresses reach the same server, and
    /// whether a server that came back after a lost connection restarted.
    pub run_id: String,
    /// `role:slave`.
    pub replica: bool,
    /// `cluster_enabled:1`.
    pub cluster: bool,
    /// `DBSIZE` of the selected db.
    pub dbsize: u64,
    /// `PEXPIRETIME` answered the handshake's probe. Probed rather than
    /// inferred from the version: managed services rename or disable commands.
    pub pexpiretime: bool,
    /// A cluster node's view of the cluster (`CLUSTER SHARDS`, or `CLUSTER
    /// SLOTS` where that is missing), read during the handshake.
    pub topology: Option<crate::cluster::topology::Topology>,
}

impl ServerInfo {
    /// `PEXPIRETIME` works (Redis 7.0+, not renamed away): expiry can be read
    /// as an absolute time.
    pub fn has_pexpiretime(&self) -> bool {
        self.pexpiretime
    }

    /// `RESTORE … ABSTTL` exists (Redis 5.0).
    pub fn has_absttl(&self) -> bool {
        self.version >= Version(5, 0, 0)
    }

    /// The newest RDB version this server writes, and so the newest DUMP
    /// payload its `RESTORE` accepts; `None` for versions rump does not know.
    /// (Redis 5.0–6.2 write 9, 7.0 writes 10, 7.2 writes 11, 7.4–8.4 write
    /// 12, 8.6 writes 13; Valkey 7.2–8.1 write 11 and Valkey 9 writes 80.)
    pub fn rdb_version(&self) -> Option<u16> {
        if let Some(v) = self.valkey {
            return Some(if v >= Version(9, 0, 0) { 80 } else { 11 });
        }
        let v = self.version;
        Some(match v {
            _ if v >= Version(8, 6, 0) && v < Version(8, 8, 0) => 13,
            _ if v >= Version(7, 4, 0) && v < Version(8, 6, 0) => 12,
            _ if v >= Version(7, 2, 0) && v < Version(7, 4, 0) => 11,
            _ if v >= Version(7, 0, 0) && v < Version(7, 2, 0) => 10,
            _ if v >= Version(5, 0, 0) && v < Version(7, 0, 0) => 9,
            _ => return None,
        })
    }
}

/// Picks the fields rump needs out of `INFO` output.
pub fn parse_info(info: &str) -> ServerInfo {
    let mut out = ServerInfo::default();
    let mut product = ("redis", String::new());
    for line in info.lines() {
        let Some((field, value)) = line.trim_end().split_once(':') else {
            continue;
        };
        match field {
            "redis_version" => {
                out.version = parse_version(value);
                if product.0 == "redis" {
                    product.1 = value.to_string();
                }
            }
            "valkey_version" => {
                product = ("valkey", value.to_string());
                out.valkey = Some(parse_version(value));
            }
            "server_name" if value == "valkey" => product.0 = "valkey",
            "role" => out.replica = value == "slave",
            "run_id" => out.run_id = value.to_string(),
            "cluster_enabled" => out.cluster = value == "1",
            _ => {}
        }
    }
    out.product = format!("{} {}", product.0, product.1);
    out
}

fn parse_version(text: &str) -> Version {
    let mut parts = text.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or(0)
    });
    Version(
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_of_redis_and_valkey() {
        let redis =
            parse_info("# Server\r\nredis_version:7.0.15\r\nrun_id:abc123\r\nrole:master\r\ncluster_enabled:0\r\n");
        assert_eq!(redis.version, Version(7, 0, 15));
        assert_eq!(redis.product, "redis 7.0.15");
        assert_eq!(redis.run_id, "abc123");
        assert!(!redis.replica && !redis.cluster);
        assert!(redis.has_absttl());
        assert_eq!(redis.rdb_version(), Some(10));

        let valkey = parse_info(
            "redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.1\r\nrole:slave\r\ncluster_enabled:1\r\n",
        );
        assert_eq!(valkey.version, Version(7, 2, 4));
        assert_eq!(valkey.product, "valkey 8.1.1");
        assert!(valkey.replica && valkey.cluster);
        assert_eq!(valkey.rdb_version(), Some(11));
        let nine = parse_info("redis_version:7.2.4\r\nvalkey_version:9.1.2\r\n");
        assert_eq!(nine.rdb_version(), Some(80));

        let old = parse_info("redis_version:4.0.9\r\n");
        assert!(!old.has_absttl());
        assert_eq!(old.rdb_version(), None);
        assert_eq!(
            parse_info("redis_version:6.2.14\r\n").rdb_version(),
            Some(9)
        );
        assert_eq!(
            parse_info("redis_version:7.4.1\r\n").rdb_version(),
            Some(12)
        );
        assert_eq!(
            parse_info("redis_version:8.6.0\r\n").rdb_version(),
            Some(13)
        );
        assert_eq!(parse_info("").version, Version(0, 0, 0));
    }
}
