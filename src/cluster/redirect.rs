//! What a cluster node's error reply means: a redirect (`MOVED`, `ASK`) or a
//! refusal to retry later (`TRYAGAIN`, `CLUSTERDOWN`, `LOADING`), or a
//! request that can never succeed (`CROSSSLOT`).
//!
//! Sans-IO: these functions read the error text of a `resp::Frame::Error`
//! (without the leading `-`) and decide nothing about what to do; following
//! a redirect or backing off is the engine's.

use super::slot::SLOTS;

/// A node telling the client that another node serves the slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// `MOVED slot host:port`: the slot now lives at `addr`, for good; the
    /// slot map is stale and should be re-read.
    Moved { slot: u16, addr: String },
    /// `ASK slot host:port`: the slot is being migrated and this one key is
    /// at `addr`: send `ASKING` and then the command there, once, without
    /// changing the slot map.
    Ask { slot: u16, addr: String },
}

impl Redirect {
    /// The slot the redirect is about.
    pub fn slot(&self) -> u16 {
        match self {
            Redirect::Moved { slot, .. } | Redirect::Ask { slot, .. } => *slot,
        }
    }

    /// `host:port` as the node wrote it.
    pub fn addr(&self) -> &str {
        match self {
            Redirect::Moved { addr, .. } | Redirect::Ask { addr, .. } => addr,
        }
    }

    /// The host part of [`Redirect::addr`]: everything before the last `:`,
    /// without IPv6 brackets. Empty means "the host you sent the command
    /// to" (Redis 7 with an unknown endpoint writes `:6381`).
    pub fn host(&self) -> &str {
        split_addr(self.addr()).map_or("", |(host, _)| host)
    }

    /// The port part of [`Redirect::addr`].
    pub fn port(&self) -> u16 {
        split_addr(self.addr()).map_or(0, |(_, port)| port)
    }
}

/// Splits `host:port` at the last `:` (IPv6 hosts come unbracketed from
/// older servers, `::1:6381`, or bracketed, `[::1]:6381`; brackets are
/// removed). `None` without a `:` or with a port that is not a number.
pub fn split_addr(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port))
}

/// Parses `MOVED <slot> <host:port>` or `ASK <slot> <host:port>`; `None`
/// for any other error text, or one with a bad slot or address.
pub fn parse_redirect(err: &[u8]) -> Option<Redirect> {
    let text = std::str::from_utf8(err).ok()?;
    let mut words = text.split(' ');
    let (kind, slot, addr) = (words.next()?, words.next()?, words.next()?);
    if words.next().is_some() || !slot.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let slot: u16 = slot.parse().ok().filter(|s| *s < SLOTS)?;
    split_addr(addr)?;
    let addr = addr.to_string();
    match kind {
        "MOVED" => Some(Redirect::Moved { slot, addr }),
        "ASK" => Some(Redirect::Ask { slot, addr }),
        _ => None,
    }
}

/// Why a cluster node did not run a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterRefusal {
    /// `MOVED` or `ASK`: another node serves the slot.
    Redirect(Redirect),
    /// `TRYAGAIN`: a multi-key command during a slot migration; retry later.
    TryAgain,
    /// `CLUSTERDOWN`: the cluster is down (a slot uncovered, a failover
    /// under way); retry later.
    ClusterDown,
    /// `LOADING`: the node is loading its data set; retry later.
    Loading,
    /// `CROSSSLOT`: the keys of one command hash to different slots; never
    /// succeeds as sent.
    CrossSlot,
}

/// Classifies an error reply's text (without the `-`); `None` for errors
/// that are not about the cluster (`ERR`, `BUSYKEY`, …) or a malformed
/// `MOVED`/`ASK`.
pub fn classify(err: &[u8]) -> Option<ClusterRefusal> {
    if let Some(redirect) = parse_redirect(err) {
        return Some(ClusterRefusal::Redirect(redirect));
    }
    let code = err.split(|&b| b == b' ').next().unwrap_or_default();
    match code {
        b"TRYAGAIN" => Some(ClusterRefusal::TryAgain),
        b"CLUSTERDOWN" => Some(ClusterRefusal::ClusterDown),
        b"LOADING" => Some(ClusterRefusal::Loading),
        b"CROSSSLOT" => Some(ClusterRefusal::CrossSlot),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moved(slot: u16, addr: &str) -> Option<Redirect> {
        Some(Redirect::Moved {
            slot,
            addr: addr.into(),
        })
    }

    #[test]
    fn parses_moved_and_ask() {
        let r = parse_redirect(b"MOVED 3999 127.0.0.1:6381").unwrap();
        assert_eq!(r, moved(3999, "127.0.0.1:6381").unwrap());
        assert_eq!(
            (r.slot(), r.addr(), r.host(), r.port()),
            (3999, "127.0.0.1:6381", "127.0.0.1", 6381)
        );
        let r = parse_redirect(b"ASK 3999 127.0.0.1:6381").unwrap();
        assert_eq!(
            r,
            Redirect::Ask {
                slot: 3999,
                addr: "127.0.0.1:6381".into()
            }
        );
        assert_eq!((r.slot(), r.host(), r.port()), (3999, "127.0.0.1", 6381));
    }

    #[test]
    fn ipv6_and_host_names_split_at_the_last_colon() {
        let r = parse_redirect(b"MOVED 3999 ::1:6381").unwrap();
        assert_eq!((r.addr(), r.host(), r.port()), ("::1:6381", "::1", 6381));
        let r = parse_redirect(b"MOVED 3999 [::1]:6381").unwrap();
        assert_eq!((r.addr(), r.host(), r.port()), ("[::1]:6381", "::1", 6381));
        let r = parse_redirect(b"ASK 1 node-1.example.com:7000").unwrap();
        assert_eq!((r.host(), r.port()), ("node-1.example.com", 7000));
    }

    #[test]
    fn empty_host_is_kept_for_the_caller() {
        let r = parse_redirect(b"MOVED 3999 :6381").unwrap();
        assert_eq!(r, moved(3999, ":6381").unwrap());
        assert_eq!((r.host(), r.port()), ("", 6381));
    }

    /// Slot 16383 is the last; 16384 is not a slot.
    #[test]
    fn slot_limit_boundary() {
        assert_eq!(parse_redirect(b"MOVED 16383 h:1"), moved(16383, "h:1"));
        assert_eq!(parse_redirect(b"MOVED 0 h:1"), moved(0, "h:1"));
        assert_eq!(parse_redirect(b"MOVED 16384 h:1"), None);
        assert_eq!(parse_redirect(b"MOVED 65536 h:1"), None);
    }

    #[test]
    fn rejects_malformed_redirects() {
        for bad in [
            &b"MOVED"[..],
            b"MOVED 3999",
            b"MOVED 3999 127.0.0.1",
            b"MOVED 3999 127.0.0.1:",
            b"MOVED 3999 127.0.0.1:x",
            b"MOVED 3999 127.0.0.1:65536",
            b"MOVED 3999 127.0.0.1:+1",
            b"MOVED -1 127.0.0.1:6381",
            b"MOVED +1 127.0.0.1:6381",
            b"MOVED abc 127.0.0.1:6381",
            b"MOVED 3999 127.0.0.1:6381 extra",
            b"MOVED  3999 127.0.0.1:6381",
            b"moved 3999 127.0.0.1:6381",
            b"MOVEDX 3999 127.0.0.1:6381",
            b"MOVED 3999 \xff:6381",
            b"ERR unknown command",
            b"",
        ] {
            assert_eq!(
                parse_redirect(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn classifies_cluster_refusals() {
        assert_eq!(
            classify(b"MOVED 3999 127.0.0.1:6381"),
            Some(ClusterRefusal::Redirect(
                moved(3999, "127.0.0.1:6381").unwrap()
            ))
        );
        assert!(matches!(
            classify(b"ASK 1 127.0.0.1:6381"),
            Some(ClusterRefusal::Redirect(Redirect::Ask { slot: 1, .. }))
        ));
        assert_eq!(
            classify(b"TRYAGAIN Multiple keys request during rehashing of slot"),
            Some(ClusterRefusal::TryAgain)
        );
        assert_eq!(
            classify(b"CLUSTERDOWN The cluster is down"),
            Some(ClusterRefusal::ClusterDown)
        );
        assert_eq!(
            classify(b"CLUSTERDOWN Hash slot not served"),
            Some(ClusterRefusal::ClusterDown)
        );
        assert_eq!(
            classify(b"LOADING Redis is loading the dataset in memory"),
            Some(ClusterRefusal::Loading)
        );
        assert_eq!(
            classify(b"CROSSSLOT Keys in request don't hash to the same slot"),
            Some(ClusterRefusal::CrossSlot)
        );
        assert_eq!(classify(b"TRYAGAIN"), Some(ClusterRefusal::TryAgain));
    }

    #[test]
    fn other_errors_are_not_cluster_refusals() {
        for other in [
            &b"ERR unknown command 'FOO'"[..],
            b"BUSYKEY Target key name already exists.",
            b"OOM command not allowed when used memory > 'maxmemory'.",
            b"MASTERDOWN Link with MASTER is down",
            b"TRYAGAINX later",
            b"LOADINGX",
            b"MOVED 3999",
            b"",
        ] {
            assert_eq!(
                classify(other),
                None,
                "{:?}",
                String::from_utf8_lossy(other)
            );
        }
    }
}
