//! The harness's latency mode (issue 12, `--rtt-ms`, `--mbit`): for each
//! round trip asked, one [`LatencyProxy`] in front of the source and one in
//! front of the target, each adding half the round trip each way.
//!
//! The ceilings, rump and every peer go through the proxies; loading the
//! source, flushing the target and checking it after a run go direct (they
//! are not measured, and a round trip per check step would only slow the
//! run). `direct` means no proxy at all, today's harness; `0` means the
//! proxies with no delay, which shows what the proxy itself costs.

use std::time::Duration;

use crate::proxy::{LatencyProxy, Shape};
use crate::redis::tls::Mode;
use crate::redis::Res;
use crate::topology::{Lab, Nodes};

/// Batches of a ceiling's pipeline unanswered at most across a proxy:
/// 2000 commands each, enough to cover 80 ms at a million commands a second.
const CEILING_WINDOW: usize = 64;

/// One round trip of `--rtt-ms`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Rtt {
    /// No proxy.
    Direct,
    /// Proxies adding this many milliseconds per round trip.
    Ms(f64),
}

impl Rtt {
    /// `direct`, or a number of milliseconds.
    pub(crate) fn parse(item: &str) -> Res<Rtt> {
        if item == "direct" {
            return Ok(Rtt::Direct);
        }
        match item.parse::<f64>() {
            Ok(ms) if ms.is_finite() && (0.0..=10_000.0).contains(&ms) => Ok(Rtt::Ms(ms)),
            _ => Err(format!(
                "--rtt-ms: {item:?} is neither `direct` nor a number of ms from 0 to 10000"
            )),
        }
    }

    /// "direct" or "20 ms".
    pub(crate) fn name(self) -> String {
        match self {
            Rtt::Direct => "direct".to_owned(),
            Rtt::Ms(ms) => format!("{ms} ms"),
        }
    }

    pub(crate) fn ms(self) -> Option<f64> {
        match self {
            Rtt::Direct => None,
            Rtt::Ms(ms) => Some(ms),
        }
    }
}

/// The two proxies of one end (one source, one mode, one round trip) and
/// the harness's own connections through them, for the ceilings.
pub(crate) struct Wan {
    pub(crate) from: LatencyProxy,
    pub(crate) to: LatencyProxy,
    pub(crate) src: Nodes,
    pub(crate) tgt: Nodes,
}

impl Wan {
    /// Proxies in front of the lab's source `source` and its target, in
    /// `mode`, adding `rtt_ms` per round trip, capped at `mbit` each way.
    pub(crate) fn start(
        lab: &Lab,
        source: usize,
        mode: Mode,
        rtt_ms: f64,
        mbit: Option<f64>,
        window: Option<usize>,
    ) -> Res<Wan> {
        let shape = Shape {
            one_way: Duration::from_secs_f64(rtt_ms / 2000.0),
            mbit,
            window,
        };
        let side = &lab.sources[source];
        let from = LatencyProxy::start_shaped(side.port_in(mode)?, shape)?;
        let to = LatencyProxy::start_shaped(lab.target.port_in(mode)?, shape)?;
        let mut src = side.nodes_via(mode, from.port())?;
        let mut tgt = lab.target.nodes_via(mode, to.port())?;
        for conn in src.conns.iter_mut().chain(tgt.conns.iter_mut()) {
            conn.set_window(CEILING_WINDOW);
        }
        Ok(Wan { from, to, src, tgt })
    }

    /// CPU seconds both proxies' threads used so far.
    pub(crate) fn cpu(&self) -> f64 {
        [&self.from, &self.to]
            .iter()
            .filter_map(|p| p.cpu())
            .map(|d| d.as_secs_f64())
            .sum()
    }
}
