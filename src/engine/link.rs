//! A server connection that survives being lost: the [`Conn`] plus what the
//! engine knows about the server (its `run_id`) and, while the connection is
//! down, since when, why, and when to try again.
//!
//! A loss (reset, EOF, `CLIENT KILL`, a reply deadline missed, a refused
//! reconnect) starts a window of `--timeout`: attempts follow with backoff
//! until one completes its handshake, or the window closes and the run ends
//! with [`Error::Gone`] naming the server and why. A server that answers with
//! another `run_id` restarted, which the role must hear about (its cursor, or
//! what it acknowledged, may mean nothing now). Errors that are not losses
//! (a protocol violation, a refused password) are returned as they are.

use std::time::{Duration, Instant};

use mio::Registry;

use crate::engine::clock::backoff;
use crate::error::Error;
use crate::net::conn::{Conn, Startup};
use crate::net::ServerInfo;
use crate::progress::Stats;

/// What happened to a link on [`Link::tick`].
#[derive(Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// Nothing that concerns the role.
    Steady,
    /// Back, to the same server: re-send what was in flight.
    Reconnected,
    /// Back, but the server restarted (new run_id): what it had is gone.
    Restarted(Box<ServerInfo>),
}

#[derive(Debug)]
struct Lost {
    since: Instant,
    /// The loss, as the user will read it if the server does not come back.
    cause: String,
    retry_at: Instant,
    attempts: u32,
}

/// A reconnect whose handshake succeeded, but which has not yet answered
/// one of the role's commands: a server that accepts connections and then
/// never answers must not earn a fresh window on every reconnect.
#[derive(Debug)]
struct Probation {
    since: Instant,
    cause: String,
    /// `Conn::replies` when the handshake completed.
    replies: u64,
}

/// A connection and its recovery state.
#[derive(Debug)]
pub struct Link {
    pub conn: Conn,
    /// What the server said in its last completed handshake.
    pub info: ServerInfo,
    timeout: Duration,
    lost: Option<Lost>,
    probation: Option<Probation>,
}

impl Link {
    /// A link over a connection whose first handshake gave `info`.
    pub fn new(conn: Conn, info: ServerInfo, timeout: Duration) -> Link {
        Link {
            conn,
            info,
            timeout,
            lost: None,
            probation: None,
        }
    }

    /// A link whose first handshake is still to complete (a cluster node
    /// learnt of mid-run): it counts as lost until then, within the same
    /// `--timeout` window, and its readiness is reported as a reconnect.
    pub fn opening(conn: Conn, timeout: Duration) -> Link {
        Link::opening_for(conn, timeout, "connecting to a node the cluster announced")
    }

    /// A link whose first handshake is still to complete, opened for
    /// `cause` (said if it never completes).
    pub fn opening_for(conn: Conn, timeout: Duration, cause: &str) -> Link {
        let now = Instant::now();
        Link {
            conn,
            info: ServerInfo::default(),
            timeout,
            lost: Some(Lost {
                since: now,
                cause: cause.into(),
                retry_at: now,
                attempts: 0,
            }),
            probation: None,
        }
    }

    /// How long the server may be waited for (`--timeout`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Ready for the role's commands.
    pub fn is_up(&self) -> bool {
        self.lost.is_none() && self.conn.is_ready()
    }

    /// Takes an error from the connection: a loss closes it and schedules a
    /// reconnect (said once on stderr); anything else is returned.
    pub fn lose(&mut self, error: Error, registry: &Registry, stats: &Stats) -> Result<(), Error> {
        if !error.is_connection_loss() {
            return Err(error);
        }
        // Lost again before answering anything since the last reconnect:
        // the window that loss opened is still the one that counts.
        if let Some(p) = self.probation.take() {
            if self.lost.is_none() && self.conn.replies() <= p.replies {
                self.lost = Some(Lost {
                    since: p.since,
                    cause: p.cause,
                    retry_at: Instant::now(),
                    attempts: 1,
                });
            }
        }
        self.conn.close(registry);
        let now = Instant::now();
        match &mut self.lost {
            Some(lost) => {
                if now.duration_since(lost.since) >= self.timeout {
                    return Err(Error::Gone {
                        role: self.conn.role(),
                        endpoint: self.conn.name().to_string(),
                        cause: lost.cause.clone(),
                        waited: self.timeout,
                        last: error.detail(),
                    });
                }
                lost.retry_at = now + backoff(lost.attempts);
                lost.attempts += 1;
            }
            None => {
                stats.notice(format!(
                    "{} {}: connection lost ({}); reconnecting for up to {} s",
                    self.conn.role(),
                    self.conn.name(),
                    error.detail(),
                    self.timeout.as_secs_f64()
                ));
                self.lost = Some(Lost {
                    since: now,
                    cause: error.detail(),
                    retry_at: now + backoff(0),
                    attempts: 1,
                });
            }
        }
        Ok(())
    }

    /// Drives a reconnect: starts the next attempt when it is due, and
    /// advances the handshake of the one in progress.
    pub fn tick(&mut self, registry: &Registry, stats: &Stats) -> Result<LinkEvent, Error> {
        let Some(lost) = &self.lost else {
            return Ok(LinkEvent::Steady);
        };
        if !self.conn.is_connecting() {
            if Instant::now() < lost.retry_at {
                return Ok(LinkEvent::Steady);
            }
            let window = self.timeout.saturating_sub(lost.since.elapsed());
            if let Err(e) = self
                .conn
                .reopen(registry, window.max(Duration::from_millis(1)))
            {
                self.lose(e, registry, stats)?;
                return Ok(LinkEvent::Steady);
            }
        }
        match self.conn.advance(registry) {
            Ok(Startup::Ready(info)) => {
                let restarted = !self.info.run_id.is_empty() && info.run_id != self.info.run_id;
                let waited = lost.since.elapsed();
                self.probation = Some(Probation {
                    since: lost.since,
                    cause: lost.cause.clone(),
                    replies: self.conn.replies(),
                });
                self.lost = None;
                if !self.info.run_id.is_empty() {
                    stats.notice(format!(
                        "{} {}: reconnected after {:.1} s",
                        self.conn.role(),
                        self.conn.name(),
                        waited.as_secs_f64()
                    ));
                }
                if restarted {
                    self.info = (*info).clone();
                    return Ok(LinkEvent::Restarted(info));
                }
                self.info = *info;
                Ok(LinkEvent::Reconnected)
            }
            Ok(Startup::Pending | Startup::Idle) => Ok(LinkEvent::Steady),
            Err(e) => {
                self.lose(e, registry, stats)?;
                Ok(LinkEvent::Steady)
            }
        }
    }

    /// When this link next needs the loop's attention by itself: the next
    /// reconnect attempt, or the connection's reply or start-up deadline.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.lost {
            Some(lost) if !self.conn.is_connecting() => Some(lost.retry_at),
            _ => self.conn.silence_deadline(self.timeout),
        }
    }

    /// A reply deadline missed is a loss like any other.
    pub fn check_silence(&mut self, registry: &Registry, stats: &Stats) -> Result<(), Error> {
        if self.lost.is_none() {
            if let Err(e) = self.conn.check_silence(self.timeout) {
                self.lose(e, registry, stats)?;
            }
        }
        Ok(())
    }

    /// True while the connection is down (lost, or reconnecting).
    pub fn is_down(&self) -> bool {
        self.lost.is_some()
    }
}
