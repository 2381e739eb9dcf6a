//! The start-up handshake, as a sans-IO state machine: it queues every
//! start-up command at once (AUTH, CLIENT SETNAME, INFO, SELECT, DBSIZE and
//! the PEXPIRETIME probe, pipelined: one round trip, not six) and then
//! consumes their replies in order, turning the first one that says "no" into
//! one precise error.
//!
//! It never touches a socket: [`Conn`](super::Conn) feeds it frames, and the
//! unit tests below feed it frames by hand. The same handshake runs for the
//! first connection and for every reconnect.

use std::collections::VecDeque;

use resp::{Frame, Requests};

use crate::config::ServerEndpoint;
use crate::error::{Error, Role};
use crate::net::info::{parse_info, ServerInfo};

/// The key the handshake probes `PEXPIRETIME` with; reading it is harmless
/// whether or not it exists.
const PROBE_KEY: &[u8] = b"rump:probe:pexpiretime";

/// One start-up command whose reply is still to come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Auth,
    SetName,
    Info,
    Select,
    Dbsize,
    Probe,
}

impl Step {
    fn command(self) -> &'static str {
        match self {
            Step::Auth => "AUTH",
            Step::SetName => "CLIENT SETNAME",
            Step::Info => "INFO",
            Step::Select => "SELECT",
            Step::Dbsize => "DBSIZE",
            Step::Probe => "PEXPIRETIME",
        }
    }
}

/// A handshake in progress.
#[derive(Debug)]
pub struct Handshake {
    role: Role,
    name: String,
    db: u32,
    steps: VecDeque<Step>,
    info: ServerInfo,
}

impl Handshake {
    /// Queues every start-up command for `endpoint` on `out`; returns the
    /// handshake and how many replies it now waits for.
    pub fn start(role: Role, endpoint: &ServerEndpoint, out: &mut Requests) -> (Handshake, usize) {
        let mut steps = VecDeque::new();
        if let Some(password) = &endpoint.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = &endpoint.user {
                args.push(user);
            }
            args.push(password);
            out.command(&args);
            steps.push_back(Step::Auth);
        }
        // So operators see rump in CLIENT LIST; a refusal is ignored.
        out.command(&[b"CLIENT", b"SETNAME", role_name(role)]);
        steps.push_back(Step::SetName);
        out.command(&[b"INFO"]);
        steps.push_back(Step::Info);
        if endpoint.db != 0 {
            out.command(&[b"SELECT", endpoint.db.to_string().as_bytes()]);
            steps.push_back(Step::Select);
        }
        out.command(&[b"DBSIZE"]);
        steps.push_back(Step::Dbsize);
        // A read of a key that does not exist: -2 where the command works, an
        // error where it does not exist or is renamed away.
        out.command(&[b"PEXPIRETIME", PROBE_KEY]);
        steps.push_back(Step::Probe);
        let owed = steps.len();
        let handshake = Handshake {
            role,
            name: endpoint.to_string(),
            db: endpoint.db,
            steps,
            info: ServerInfo::default(),
        };
        (handshake, owed)
    }

    /// The command whose reply is awaited, for a timeout message.
    pub fn waiting_for(&self) -> &'static str {
        self.steps.front().map_or("start-up", |s| s.command())
    }

    /// Takes the next reply: `Ok(Some(info))` when the handshake is complete.
    pub fn on_reply(&mut self, frame: Frame) -> Result<Option<ServerInfo>, Error> {
        let Some(step) = self.steps.pop_front() else {
            return Err(self.protocol("a reply arrived for no command".into()));
        };
        match (step, frame) {
            (Step::Auth, Frame::Error(e)) => {
                return Err(Error::Auth {
                    role: self.role,
                    endpoint: self.name.clone(),
                    message: text(&e),
                })
            }
            (Step::Auth, Frame::Simple(_)) => {}
            (Step::SetName, _) => {}
            (Step::Info, Frame::Bulk(b)) => {
                self.info = parse_info(&text(&b));
                self.check_endpoint()?;
            }
            (Step::Info, Frame::Error(e)) => return Err(self.info_refused(&e)),
            (Step::Select, Frame::Simple(_)) => {}
            (Step::Dbsize, Frame::Integer(n)) => self.info.dbsize = u64::try_from(n).unwrap_or(0),
            (Step::Probe, frame) => self.info.pexpiretime = matches!(frame, Frame::Integer(_)),
            (step, frame) => return Err(self.unexpected(step, frame)),
        }
        if self.steps.is_empty() {
            Ok(Some(std::mem::take(&mut self.info)))
        } else {
            Ok(None)
        }
    }

    /// What INFO says that makes the endpoint unusable for this role.
    fn check_endpoint(&self) -> Result<(), Error> {
        let unsupported = |message: &str| Error::Unsupported {
            role: self.role,
            endpoint: self.name.clone(),
            message: message.into(),
        };
        if self.info.cluster {
            return Err(unsupported(
                "is a Redis Cluster node (cluster_enabled:1); cluster endpoints are not \
                 supported by this build yet",
            ));
        }
        if self.role == Role::Target && self.info.replica {
            return Err(unsupported(
                "is a read-only replica (role:slave); point -to at the primary",
            ));
        }
        Ok(())
    }

    /// INFO refused: missing credentials, or a user that may not run INFO
    /// (which is not an authentication failure, and says what to grant).
    fn info_refused(&self, e: &[u8]) -> Error {
        if e.starts_with(b"NOAUTH") {
            let var = match self.role {
                Role::Source => "RUMP_FROM_PASSWORD",
                Role::Target => "RUMP_TO_PASSWORD",
            };
            return Error::Auth {
                role: self.role,
                endpoint: self.name.clone(),
                message: format!(
                    "{} (give the password in the URI, redis://:PASSWORD@host, or in {var})",
                    text(e)
                ),
            };
        }
        let hint = if e.starts_with(b"NOPERM") {
            " (rump needs INFO to learn the server's version and run_id: grant the user +info)"
        } else {
            ""
        };
        Error::Server {
            role: self.role,
            endpoint: self.name.clone(),
            command: "INFO".into(),
            message: format!("{}{hint}", text(e)),
        }
    }

    fn unexpected(&self, step: Step, frame: Frame) -> Error {
        let command = match step {
            Step::Select => format!("SELECT {}", self.db),
            other => other.command().to_string(),
        };
        match frame {
            Frame::Error(e) => Error::Server {
                role: self.role,
                endpoint: self.name.clone(),
                command,
                message: text(&e),
            },
            other => self.protocol(format!("unexpected reply to {command}: {other:?}")),
        }
    }

    fn protocol(&self, detail: String) -> Error {
        Error::Protocol {
            role: self.role,
            endpoint: self.name.clone(),
            detail,
        }
    }
}

fn role_name(role: Role) -> &'static [u8] {
    match role {
        Role::Source => b"rump-source",
        Role::Target => b"rump-target",
    }
}

/// Server text (an error reply, INFO) as a string, lossily.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_endpoint, Endpoint};

    fn endpoint(uri: &str) -> ServerEndpoint {
        match parse_endpoint(uri) {
            Ok(Endpoint::Server(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    const INFO: &str = "redis_version:7.0.15\r\nrun_id:r1\r\nrole:master\r\ncluster_enabled:0\r\n";

    fn run(uri: &str, role: Role, replies: Vec<Frame>) -> Result<ServerInfo, Error> {
        let mut out = Requests::new();
        let (mut hs, owed) = Handshake::start(role, &endpoint(uri), &mut out);
        assert_eq!(owed, replies.len(), "one reply per command");
        for frame in replies {
            if let Some(info) = hs.on_reply(frame)? {
                return Ok(info);
            }
        }
        panic!("the handshake did not complete");
    }

    fn ok() -> Frame {
        Frame::Simple("OK".into())
    }

    #[test]
    fn every_start_up_command_is_pipelined_at_once() {
        let mut out = Requests::new();
        let (hs, owed) = Handshake::start(Role::Source, &endpoint("redis://u:pw@h/3"), &mut out);
        assert_eq!(owed, 6);
        assert_eq!(hs.waiting_for(), "AUTH");
        let bytes = out.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        for needle in [
            "AUTH",
            "SETNAME",
            "INFO",
            "SELECT",
            "$1\r\n3",
            "DBSIZE",
            "PEXPIRETIME",
        ] {
            assert!(text.contains(needle), "{needle} in {text:?}");
        }
    }

    #[test]
    fn a_complete_handshake_yields_the_server_info() {
        let info = run(
            "redis://:pw@h/2",
            Role::Source,
            vec![
                ok(),
                Frame::Error("ERR unknown subcommand".into()),
                Frame::Bulk(INFO.into()),
                ok(),
                Frame::Integer(42),
                Frame::Integer(-2),
            ],
        )
        .unwrap();
        assert_eq!((info.dbsize, info.pexpiretime), (42, true));
        assert_eq!(info.run_id, "r1");
        let info = run(
            "redis://h",
            Role::Target,
            vec![
                ok(),
                Frame::Bulk(INFO.into()),
                Frame::Integer(0),
                Frame::Error("ERR unknown command 'PEXPIRETIME'".into()),
            ],
        )
        .unwrap();
        assert!(!info.pexpiretime);
    }

    #[test]
    fn refusals_are_told_apart() {
        let wrong = run(
            "redis://:pw@h",
            Role::Source,
            vec![
                Frame::Error("WRONGPASS invalid username-password pair".into()),
                Frame::Error("NOAUTH".into()),
                Frame::Error("NOAUTH".into()),
                Frame::Error("NOAUTH".into()),
                Frame::Error("NOAUTH".into()),
            ],
        );
        assert!(matches!(wrong, Err(Error::Auth { .. })), "{wrong:?}");

        let missing = run(
            "redis://h",
            Role::Target,
            vec![
                Frame::Error("NOAUTH Authentication required.".into()),
                Frame::Error("NOAUTH Authentication required.".into()),
                Frame::Error("NOAUTH".into()),
                Frame::Error("NOAUTH".into()),
            ],
        )
        .unwrap_err();
        assert!(
            missing.to_string().contains("RUMP_TO_PASSWORD"),
            "{missing}"
        );

        let no_info = run(
            "redis://u:pw@h",
            Role::Source,
            vec![
                ok(),
                ok(),
                Frame::Error(
                    "NOPERM this user has no permissions to run the 'info' command".into(),
                ),
                Frame::Integer(1),
                Frame::Integer(-2),
            ],
        )
        .unwrap_err();
        let text = no_info.to_string();
        assert!(!text.contains("authentication failed"), "{text}");
        assert!(text.contains("+info"), "{text}");

        let db = run(
            "redis://h/99",
            Role::Source,
            vec![
                ok(),
                Frame::Bulk(INFO.into()),
                Frame::Error("ERR DB index is out of range".into()),
                Frame::Integer(0),
                Frame::Integer(-2),
            ],
        )
        .unwrap_err();
        assert!(db.to_string().contains("SELECT 99 failed"), "{db}");
    }

    #[test]
    fn replicas_and_clusters_are_refused_where_they_cannot_serve() {
        let replica = "redis_version:7.0.15\r\nrole:slave\r\n";
        let e = run(
            "redis://h",
            Role::Target,
            vec![
                ok(),
                Frame::Bulk(replica.into()),
                Frame::Integer(0),
                Frame::Integer(-2),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("read-only replica"), "{e}");
        let info = run(
            "redis://h",
            Role::Source,
            vec![
                ok(),
                Frame::Bulk(replica.into()),
                Frame::Integer(0),
                Frame::Integer(-2),
            ],
        )
        .unwrap();
        assert!(info.replica, "a replica is a fine source");
        let cluster = "redis_version:7.0.15\r\ncluster_enabled:1\r\n";
        let e = run(
            "redis://h",
            Role::Source,
            vec![
                ok(),
                Frame::Bulk(cluster.into()),
                Frame::Integer(0),
                Frame::Integer(-2),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("Cluster"), "{e}");
    }
}
