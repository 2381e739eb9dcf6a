//! `--live` in a dry run: does every scanned source node send the keyspace
//! notifications live sync needs? Read with `CONFIG GET`; nothing is set,
//! even with `--live-enable-events` (which only says it would set it).

use bytes::Bytes;
use resp::Frame;

use crate::dryrun::reach::Server;
use crate::dryrun::report::Checks;
use crate::engine::live::missing_event_flags;
use crate::net::handshake::text;

/// One line per source node.
pub fn check(source: &mut Server, enable: bool, checks: &mut Checks) {
    let command = vec![
        Bytes::from_static(b"CONFIG"),
        Bytes::from_static(b"GET"),
        Bytes::from_static(b"notify-keyspace-events"),
    ];
    for side in &mut source.nodes {
        for node in 0..side.nodes().len() {
            let name = side.nodes()[node].conn.name().to_string();
            let check = format!("live {name}");
            let reply = side.call(node, vec![command.clone()]);
            let value = match reply.as_deref() {
                Ok([Frame::Array(parts)]) => match parts.get(1) {
                    Some(Frame::Bulk(v)) => String::from_utf8_lossy(v).into_owned(),
                    _ => {
                        checks.fail(check, "CONFIG GET notify-keyspace-events returned no value");
                        continue;
                    }
                },
                Ok([Frame::Error(e)]) => {
                    checks.fail(
                        check,
                        format!(
                            "notify-keyspace-events cannot be read ({}): --live would refuse to \
                             start; set it to KA in the provider's parameter group and allow \
                             CONFIG GET",
                            text(e)
                        ),
                    );
                    continue;
                }
                Ok(other) => {
                    checks.fail(check, format!("unexpected reply to CONFIG GET: {other:?}"));
                    continue;
                }
                Err(e) => {
                    checks.fail(check, e.to_string());
                    continue;
                }
            };
            match missing_event_flags(&value) {
                None => checks.ok(
                    check,
                    format!("notify-keyspace-events is {value:?}: changes will be followed"),
                ),
                Some(missing) if enable => checks.warn(
                    check,
                    format!(
                        "notify-keyspace-events is {value:?} (missing {missing:?}): \
                         --live-enable-events will set it for the run and put it back after"
                    ),
                ),
                Some(missing) => checks.fail(
                    check,
                    format!(
                        "notify-keyspace-events is {value:?} (missing {missing:?}): --live would \
                         refuse to start; run CONFIG SET notify-keyspace-events KA, or give \
                         --live-enable-events"
                    ),
                ),
            }
        }
    }
}
