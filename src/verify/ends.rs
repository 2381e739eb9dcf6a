//! Both ends of a verify, for the reads the copy's loops do not make:
//! each end's [`Side`] is opened on first use (most verifies never need
//! one), and a round can run on both ends at once.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use resp::Frame;

use crate::config::Config;
use crate::error::{Error, Role};
use crate::verify::side::{Request, Side};

/// The two ends, opened lazily.
#[derive(Debug)]
pub struct Ends {
    config: Arc<Config>,
    signal: Arc<AtomicUsize>,
    /// `Some(None)` once found to be a dump file.
    source: Option<Option<Side>>,
    target: Option<Side>,
}

/// Replies of a round on each end.
pub type Replies = Vec<Vec<Frame>>;

impl Ends {
    pub fn new(config: Arc<Config>, signal: Arc<AtomicUsize>) -> Ends {
        Ends {
            config,
            signal,
            source: None,
            target: None,
        }
    }

    /// Both ends, connected to on first use; the source is `None` when it
    /// is a dump file.
    pub fn both(&mut self) -> Result<(Option<&mut Side>, &mut Side), Error> {
        if self.source.is_none() {
            self.source = Some(Side::open(Role::Source, &self.config, &self.signal)?);
        }
        if self.target.is_none() {
            let side = Side::open(Role::Target, &self.config, &self.signal)?;
            self.target = Some(side.ok_or_else(|| {
                Error::Usage("a verify needs a server target, not a dump file".into())
            })?);
        }
        match (&mut self.source, &mut self.target) {
            (Some(source), Some(target)) => Ok((source.as_mut(), target)),
            _ => Err(Error::Setup(std::io::Error::other(
                "the verify's connections were not opened",
            ))),
        }
    }

    /// Runs `f` on each end at once, on two threads (the source's result is
    /// `None` for a dump file).
    pub fn on_both<T: Send>(
        &mut self,
        f: impl Fn(Role, &mut Side) -> Result<T, Error> + Sync,
    ) -> Result<(Option<T>, T), Error> {
        let (source_side, target_side) = self.both()?;
        let f = &f;
        let (ours, theirs) = std::thread::scope(|s| {
            let ours = source_side.map(|side| s.spawn(move || f(Role::Source, side)));
            let theirs = f(Role::Target, target_side);
            let ours = match ours {
                Some(handle) => handle
                    .join()
                    .unwrap_or_else(|_| {
                        Err(Error::Setup(std::io::Error::other(
                            "a verify thread panicked",
                        )))
                    })
                    .map(Some),
                None => Ok(None),
            };
            (ours, theirs)
        });
        Ok((ours?, theirs?))
    }

    /// Runs `source` on the source and `target` on the target at once (the
    /// source's replies are `None` for a dump file).
    pub fn round_both(
        &mut self,
        source: &[Request],
        target: &[Request],
    ) -> Result<(Option<Replies>, Replies), Error> {
        self.on_both(|role, side| match role {
            Role::Source => side.round(source),
            Role::Target => side.round(target),
        })
    }
}
