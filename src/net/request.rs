//! One command on a ready connection, waited for: for the few start-up and
//! wind-down steps that happen outside the loops (`--live` reads and sets
//! `notify-keyspace-events`, and subscribes before the scan starts).
//!
//! The connection joins a poll of its own for the call and leaves it after,
//! so it can then join a loop's poll as every connection does.

use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use resp::Frame;

use crate::engine::poll_once;
use crate::error::Error;
use crate::net::conn::Conn;

/// Sends `args` and returns the reply, within `timeout`.
pub fn request(conn: &mut Conn, args: &[&[u8]], timeout: Duration) -> Result<Frame, Error> {
    let mut poll = Poll::new().map_err(Error::Setup)?;
    conn.register(poll.registry(), Token(1))?;
    let result = exchange(conn, &mut poll, args, timeout);
    conn.deregister(poll.registry());
    result
}

fn exchange(
    conn: &mut Conn,
    poll: &mut Poll,
    args: &[&[u8]],
    timeout: Duration,
) -> Result<Frame, Error> {
    let mut cmd = conn.out().cmd();
    for arg in args {
        cmd = cmd.arg(arg);
    }
    cmd.send();
    conn.owe(1);
    let deadline = Instant::now() + timeout;
    let mut events = Events::with_capacity(4);
    loop {
        conn.flush()?;
        if let Some(frame) = conn.next_frame()? {
            return Ok(frame);
        }
        conn.check_silence(timeout)?;
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                role: conn.role(),
                endpoint: conn.name().to_string(),
                what: format!(
                    "waiting for the reply to {}",
                    String::from_utf8_lossy(args.first().copied().unwrap_or_default())
                ),
            });
        }
        poll_once(
            poll,
            &mut events,
            (deadline - now).min(Duration::from_millis(100)),
        )?;
        for event in events.iter() {
            conn.on_event(event);
        }
    }
}
