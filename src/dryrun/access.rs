//! Whether each end's user may run every command the copy sends.
//!
//! Asked with `ACL DRYRUN` (Redis 7.0+) where the user may run it: the
//! server answers for the very command, user and key, and runs nothing.
//! Otherwise each command is probed in a way that cannot write: `SCAN 0
//! COUNT 1`, `DUMP` and the expiry read of the key, and `RESTORE` of an
//! invalid payload, which the server refuses after its permission check and
//! before it would touch the key (`restoreCommand` verifies the payload
//! before it deletes or creates anything). The message says which way was
//! used.
//!
//! The start-up commands (INFO, SELECT, DBSIZE, CLUSTER SHARDS) need no
//! check here: the handshake that reached the server ran them.

use bytes::Bytes;
use resp::Frame;

use crate::config::Config;
use crate::dryrun::reach::{name, Server};
use crate::dryrun::report::Checks;
use crate::error::Role;
use crate::net::handshake::text;
use crate::verify::side::{arg, Command};

/// The key probes read or (fail to) restore: it does not exist, so reading
/// it returns nothing and restoring it can only be refused.
pub fn probe_key() -> Bytes {
    Bytes::from(format!("rump:dry-run:probe:{}", std::process::id()))
}

/// What a server said about one command.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Allowed,
    /// The user may not run the command at all.
    Denied(String),
    /// The user may run it, but not on this key (ACL key patterns).
    KeyDenied(String),
}

/// Checks the permissions of `server`'s user for the commands a copy
/// sends. `key` is a key the run would touch (a sampled source key), or
/// the probe key when none was found.
pub fn check(
    server: &mut Server,
    config: &Config,
    key: &Bytes,
    real_key: bool,
    checks: &mut Checks,
) {
    let check = format!("{} permissions", name(server.role));
    let user = server
        .endpoint
        .user
        .clone()
        .map_or_else(|| Bytes::from_static(b"default"), Bytes::from);
    let user_name = String::from_utf8_lossy(&user).into_owned();
    let commands = commands(server, config, key);
    let Some(side) = server.nodes.first_mut() else {
        return;
    };
    let node = side
        .nodes()
        .first()
        .map(|n| n.conn.name().to_string())
        .unwrap_or_default();
    let dryrun: Vec<Command> = commands
        .iter()
        .map(|c| {
            let mut full = vec![arg(b"ACL"), arg(b"DRYRUN"), user.clone()];
            full.extend(c.iter().cloned());
            full
        })
        .collect();
    let (verdicts, how) = match side.call(0, dryrun) {
        Ok(replies) if !replies.iter().any(Frame::is_error) => (
            replies.iter().map(read_dryrun).collect::<Vec<_>>(),
            "ACL DRYRUN".to_string(),
        ),
        // ACL DRYRUN refused (not permitted to this user, or before 7.0).
        // The same commands then, each as it is: none can write (see above).
        Ok(_) => match side.call(0, commands.clone()) {
            Ok(replies) => (
                replies.iter().map(read_probe).collect(),
                probe_description(server.role),
            ),
            Err(e) => {
                checks.fail(&check, e.to_string());
                return;
            }
        },
        Err(e) => {
            checks.fail(&check, e.to_string());
            return;
        }
    };
    let names: Vec<String> = commands.iter().map(|c| text(&c[0])).collect();
    let mut denied = Vec::new();
    let mut grant = Vec::new();
    let mut key_denied = Vec::new();
    for (command, verdict) in names.iter().zip(verdicts) {
        match verdict {
            Verdict::Allowed => {}
            Verdict::Denied(why) => {
                denied.push(format!("{command} ({why})"));
                grant.push(format!("+{}", command.to_lowercase()));
            }
            Verdict::KeyDenied(why) => key_denied.push(format!("{command} ({why})")),
        }
    }
    if !denied.is_empty() {
        checks.fail(
            &check,
            format!(
                "user {user_name} on {node} may not run {}; grant it with ACL SETUSER \
                 {user_name} {} [{how}]",
                denied.join(", "),
                grant.join(" ")
            ),
        );
    } else if !key_denied.is_empty() {
        let what = if real_key {
            format!("the source key {}", crate::error::quote_key(key))
        } else {
            "a probe key".to_string()
        };
        let message = format!(
            "user {user_name} on {node} may not touch {what}: {}; every key outside its ACL key \
             patterns would fail [{how}]",
            key_denied.join(", ")
        );
        if real_key {
            checks.fail(&check, message);
        } else {
            checks.warn(&check, message);
        }
    } else {
        checks.ok(
            &check,
            format!(
                "user {user_name} on {node} may run {} [{how}]",
                names.join(", ")
            ),
        );
    }
}

/// The commands a copy sends to this end once it is connected.
fn commands(server: &Server, config: &Config, key: &Bytes) -> Vec<Command> {
    let c = |parts: &[&[u8]]| -> Command { parts.iter().map(|p| arg(p)).collect() };
    match server.role {
        Role::Source => {
            let expiry: &[u8] = if server.info.has_pexpiretime() {
                b"PEXPIRETIME"
            } else {
                b"PTTL"
            };
            let mut list = vec![c(&[b"SCAN", b"0"]), c(&[b"DUMP", key])];
            if config.copy_ttl {
                list.push(c(&[expiry, key]));
            }
            list
        }
        Role::Target => {
            let mut restore = c(&[b"RESTORE", key, b"0", b"\x00"]);
            if config.replace {
                restore.push(arg(b"REPLACE"));
            }
            if server.info.has_absttl() {
                restore.push(arg(b"ABSTTL"));
            }
            let mut list = vec![restore];
            if server.info.cluster {
                list.push(c(&[b"ASKING"]));
            }
            list
        }
    }
}

/// An `ACL DRYRUN` reply: `+OK`, or a bulk string saying why not.
fn read_dryrun(frame: &Frame) -> Verdict {
    match frame {
        Frame::Simple(s) if &s[..] == b"OK" => Verdict::Allowed,
        Frame::Bulk(why) | Frame::Simple(why) => {
            let why = text(why);
            if why.contains("access the") {
                Verdict::KeyDenied(why)
            } else {
                Verdict::Denied(why)
            }
        }
        other => Verdict::Denied(format!("{other:?}")),
    }
}

/// The probes' replies: `NOPERM` means denied; anything else (a page, a
/// nil, "payload version or checksum are wrong", a redirect) means the
/// server got past its permission check.
fn read_probe(frame: &Frame) -> Verdict {
    match frame {
        Frame::Error(e) if e.starts_with(b"NOPERM") => {
            let why = text(e);
            if why.contains("access one of the keys") {
                Verdict::KeyDenied(why)
            } else {
                Verdict::Denied(why)
            }
        }
        _ => Verdict::Allowed,
    }
}

fn probe_description(role: Role) -> String {
    match role {
        Role::Source => {
            "ACL DRYRUN not permitted: probed with SCAN, DUMP and the expiry read".into()
        }
        Role::Target => "ACL DRYRUN not permitted: probed with RESTORE of an invalid payload, \
                         which the server refuses before writing anything"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_for_what_they_say() {
        assert_eq!(read_dryrun(&Frame::Simple("OK".into())), Verdict::Allowed);
        assert!(matches!(
            read_dryrun(&Frame::Bulk("This user has no permissions to run the 'restore' command".into())),
            Verdict::Denied(w) if w.contains("'restore'")
        ));
        assert!(matches!(
            read_dryrun(&Frame::Bulk(
                "This user has no permissions to access the 'k' key".into()
            )),
            Verdict::KeyDenied(_)
        ));
        assert_eq!(
            read_probe(&Frame::Error(
                "ERR DUMP payload version or checksum are wrong".into()
            )),
            Verdict::Allowed
        );
        assert_eq!(read_probe(&Frame::Null), Verdict::Allowed);
        assert!(matches!(
            read_probe(&Frame::Error(
                "NOPERM this user has no permissions to run the 'dump' command".into()
            )),
            Verdict::Denied(_)
        ));
        assert!(matches!(
            read_probe(&Frame::Error(
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .into()
            )),
            Verdict::KeyDenied(_)
        ));
    }
}
