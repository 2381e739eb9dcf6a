//! Starting and ending a live sync (`--live`) around the copy: the source's
//! `notify-keyspace-events` setting is checked (or, with
//! `--live-enable-events`, set and later put back), and a notification
//! connection per scanned node is subscribed *before* the scan starts, so
//! no change falls between the scan and the change stream. The loops then
//! do the rest (`engine::live`).

use std::time::Duration;

use resp::Frame;

use crate::config::ServerEndpoint;
use crate::engine::live::{missing_event_flags, with_needed_flags, Feed, FeedEvent};
use crate::error::{Error, Role};
use crate::net::conn::Conn;
use crate::net::handshake::text;
use crate::net::request::request;

/// A setting rump changed, to be put back at exit.
#[derive(Debug, Clone)]
pub struct ChangedSetting {
    pub endpoint: ServerEndpoint,
    pub old: String,
}

/// Checks that `conn`'s server sends the notifications `--live` needs;
/// with `enable`, sets them and returns what to put back.
pub fn check_events(
    conn: &mut Conn,
    enable: bool,
    timeout: Duration,
) -> Result<Option<ChangedSetting>, Error> {
    let reply = request(
        conn,
        &[b"CONFIG", b"GET", b"notify-keyspace-events"],
        timeout,
    )?;
    let current = match config_value(reply) {
        Ok(value) => value,
        Err(why) => {
            return Err(refused(
                conn,
                format!(
                    "--live cannot read notify-keyspace-events ({why}); on a managed service, \
                     set it to KA in the provider's parameter group, and make sure this user may \
                     run CONFIG GET"
                ),
            ))
        }
    };
    let Some(missing) = missing_event_flags(&current) else {
        return Ok(None);
    };
    if !enable {
        return Err(refused(
            conn,
            format!(
                "--live needs keyspace notifications, but notify-keyspace-events is {current:?} \
                 (missing {missing:?}): run CONFIG SET notify-keyspace-events KA on the source \
                 (or set it in the provider's parameter group), or give --live-enable-events to \
                 let rump set it for the run and put it back after"
            ),
        ));
    }
    let value = with_needed_flags(&current);
    let reply = request(
        conn,
        &[
            b"CONFIG",
            b"SET",
            b"notify-keyspace-events",
            value.as_bytes(),
        ],
        timeout,
    )?;
    match reply {
        Frame::Simple(_) => Ok(Some(ChangedSetting {
            endpoint: conn.endpoint().clone(),
            old: current,
        })),
        Frame::Error(e) => Err(refused(
            conn,
            format!(
                "--live-enable-events: CONFIG SET notify-keyspace-events failed: {} (set it in \
                 the provider's parameter group instead)",
                text(&e)
            ),
        )),
        other => Err(refused(
            conn,
            format!("unexpected reply to CONFIG SET: {other:?}"),
        )),
    }
}

/// Puts a changed setting back on the connection's server.
pub fn put_back(conn: &mut Conn, old: &str, timeout: Duration) -> Result<(), Error> {
    match request(
        conn,
        &[b"CONFIG", b"SET", b"notify-keyspace-events", old.as_bytes()],
        timeout,
    )? {
        Frame::Simple(_) => Ok(()),
        other => Err(refused(
            conn,
            format!(
                "could not put notify-keyspace-events back to {old:?}: {}",
                match other {
                    Frame::Error(e) => text(&e),
                    other => format!("{other:?}"),
                }
            ),
        )),
    }
}

/// Subscribes a notification connection for db `db`, waiting for the
/// server's confirmation.
pub fn subscribe(conn: &mut Conn, db: u32, timeout: Duration) -> Result<Feed, Error> {
    let mut feed = Feed::new(db);
    let pattern = format!("__keyspace@{db}__:*");
    let reply = request(conn, &[b"PSUBSCRIBE", pattern.as_bytes()], timeout)?;
    match feed.on_frame(reply) {
        Ok(FeedEvent::Subscribed) => Ok(feed),
        Ok(_) => Err(refused(conn, "PSUBSCRIBE was not confirmed".into())),
        Err(message) => Err(Error::Server {
            role: Role::Source,
            endpoint: conn.name().to_string(),
            command: "PSUBSCRIBE".into(),
            message,
        }),
    }
}

fn config_value(reply: Frame) -> Result<String, String> {
    match reply {
        Frame::Array(parts) => match parts.get(1) {
            Some(Frame::Bulk(value)) => Ok(String::from_utf8_lossy(value).into_owned()),
            _ => Err("CONFIG GET returned no value".into()),
        },
        Frame::Error(e) => Err(text(&e)),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

fn refused(conn: &Conn, message: String) -> Error {
    Error::Unsupported {
        role: Role::Source,
        endpoint: conn.name().to_string(),
        message,
    }
}
