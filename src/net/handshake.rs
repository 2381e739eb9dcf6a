//! The start-up handshake, as a sans-IO state machine: it queues every
//! start-up command at once (AUTH, CLIENT SETNAME, INFO, SELECT, DBSIZE and
//! the PEXPIRETIME probe, pipelined: one round trip, not six) and then
//! consumes their replies in order, turning the first one that says "no" into
//! one precise error. A cluster node (INFO says `cluster_enabled:1`) is asked
//! for its topology too: `CLUSTER SHARDS`, or `CLUSTER SLOTS` where that is
//! missing; a connection to a replica that is to be read sends `READONLY`.
//!
//! It never touches a socket: [`Conn`](super::Conn) feeds it frames, and the
//! unit tests below feed it frames by hand. The same handshake runs for the
//! first connection and for every reconnect.

use std::collections::VecDeque;

use resp::{Frame, Requests};

use crate::cluster::topology::Topology;
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
    ReadOnly,
    Shards,
    Slots,
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
            Step::ReadOnly => "READONLY",
            Step::Shards => "CLUSTER SHARDS",
            Step::Slots => "CLUSTER SLOTS",
        }
    }
}

/// What a reply did to the handshake.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// More replies are awaited; this many more commands were just queued.
    Pending(usize),
    /// The handshake is complete.
    Done(Box<ServerInfo>),
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
        if endpoint.readonly {
            // Lets a cluster replica serve reads of its master's slots.
            out.command(&[b"READONLY"]);
            steps.push_back(Step::ReadOnly);
        }
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

    /// Takes the next reply; a cluster node's topology query is queued on
    /// `out` when INFO shows it is one.
    pub fn on_reply(&mut self, frame: Frame, out: &mut Requests) -> Result<Progress, Error> {
        let Some(step) = self.steps.pop_front() else {
            return Err(self.protocol("a reply arrived for no command".into()));
        };
        let mut queued = 0;
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
                if self.info.cluster {
                    out.command(&[b"CLUSTER", b"SHARDS"]);
                    self.steps.push_back(Step::Shards);
                    queued += 1;
                }
            }
            (Step::Info, Frame::Error(e)) => return Err(self.info_refused(&e)),
            (Step::Select, Frame::Simple(_)) => {}
            (Step::Dbsize, Frame::Integer(n)) => self.info.dbsize = u64::try_from(n).unwrap_or(0),
            (Step::Probe, frame) => self.info.pexpiretime = matches!(frame, Frame::Integer(_)),
            (Step::ReadOnly, Frame::Simple(_)) => {}
            (Step::Shards, frame @ Frame::Array(_)) => {
                let topology =
                    Topology::from_cluster_shards(&frame).map_err(|e| self.protocol(e))?;
                self.info.topology = Some(topology);
            }
            // Before Redis 7.0 there is no CLUSTER SHARDS: ask the older way.
            (Step::Shards, Frame::Error(_)) => {
                out.command(&[b"CLUSTER", b"SLOTS"]);
                self.steps.push_back(Step::Slots);
                queued += 1;
            }
            (Step::Slots, frame @ Frame::Array(_)) => {
                let topology =
                    Topology::from_cluster_slots(&frame).map_err(|e| self.protocol(e))?;
                self.info.topology = Some(topology);
            }
            (step, frame) => return Err(self.unexpected(step, frame)),
        }
        if self.steps.is_empty() {
            Ok(Progress::Done(Box::new(std::mem::take(&mut self.info))))
        } else {
            Ok(Progress::Pending(queued))
        }
    }

    /// What INFO says that makes the endpoint unusable for this role.
    fn check_endpoint(&self) -> Result<(), Error> {
        let unsupported = |message: &str| Error::Unsupported {
            role: self.role,
            endpoint: self.name.clone(),
            message: message.into(),
        };
        if self.info.cluster && self.db != 0 {
            return Err(Error::Usage(format!(
                "{} {}: is a Redis Cluster node, and a cluster has only db 0: drop /{} from \
                 the URI",
                flag(self.role),
                self.name,
                self.db
            )));
        }
        // A cluster target is written through its masters, whichever node
        // the URI names.
        if self.role == Role::Target && self.info.replica && !self.info.cluster {
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

/// The command-line flag of a role's endpoint.
fn flag(role: Role) -> &'static str {
    match role {
        Role::Source => "-from",
        Role::Target => "-to",
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
            if let Progress::Done(info) = hs.on_reply(frame, &mut out)? {
                return Ok(*info);
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
            "redis://h/1",
            Role::Source,
            vec![
                ok(),
                Frame::Bulk(cluster.into()),
                Frame::Error("ERR SELECT is not allowed in cluster mode".into()),
                Frame::Integer(0),
                Frame::Integer(-2),
            ],
        )
        .unwrap_err();
        assert!(matches!(e, Error::Usage(_)), "{e}");
        assert!(e.to_string().contains("only db 0"), "{e}");
    }

    /// A `CLUSTER SLOTS` reply for one master serving every slot.
    fn one_master_slots() -> Frame {
        Frame::Array(vec![Frame::Array(vec![
            Frame::Integer(0),
            Frame::Integer(16383),
            Frame::Array(vec![
                Frame::Bulk("127.0.0.1".into()),
                Frame::Integer(7000),
                Frame::Bulk("a".repeat(40).into()),
            ]),
        ])])
    }

    #[test]
    fn a_cluster_node_is_asked_for_its_topology_the_old_way_if_need_be() {
        let cluster = "redis_version:6.2.14\r\ncluster_enabled:1\r\nrole:slave\r\n";
        let mut out = Requests::new();
        let (mut hs, owed) = Handshake::start(Role::Target, &endpoint("redis://h"), &mut out);
        assert_eq!(owed, 4);
        assert_eq!(hs.on_reply(ok(), &mut out).unwrap(), Progress::Pending(0));
        // INFO shows a cluster (a replica is a fine seed for a cluster target).
        let queued = hs.on_reply(Frame::Bulk(cluster.into()), &mut out).unwrap();
        assert_eq!(queued, Progress::Pending(1));
        assert!(String::from_utf8_lossy(&out.to_bytes()).contains("SHARDS"));
        hs.on_reply(Frame::Integer(0), &mut out).unwrap();
        hs.on_reply(Frame::Integer(-2), &mut out).unwrap();
        assert_eq!(hs.waiting_for(), "CLUSTER SHARDS");
        let fallback = hs
            .on_reply(
                Frame::Error("ERR unknown subcommand 'SHARDS'".into()),
                &mut out,
            )
            .unwrap();
        assert_eq!(fallback, Progress::Pending(1));
        let Progress::Done(info) = hs.on_reply(one_master_slots(), &mut out).unwrap() else {
            panic!("the handshake ends with the topology");
        };
        let topology = info.topology.expect("a topology");
        assert!(topology.coverage().is_full());
    }

    #[test]
    fn a_replica_to_be_read_is_sent_readonly() {
        let mut ep = endpoint("redis://h");
        ep.readonly = true;
        let mut out = Requests::new();
        let (_, owed) = Handshake::start(Role::Source, &ep, &mut out);
        assert_eq!(owed, 5);
        assert!(String::from_utf8_lossy(&out.to_bytes()).ends_with("READONLY\r\n"));
    }
}
