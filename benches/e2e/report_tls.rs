//! The TLS summary (issue 10): rump over TLS next to rump in plain on the
//! same servers and data, its runs alternated with the plain ones in every
//! repetition, so the per-repetition ratio is the figure to trust.
//!
//! On a shared machine a repetition counts as quiet when other processes
//! used under a tenth of a core during both its runs; the median over the
//! quiet ones is shown beside the median over all.
//!
//! The servers pay for TLS too, so the table shows both ends' CPU in both
//! modes and each mode's rate against its own ceiling (measured over TLS in
//! TLS mode): a lower ratio with an unchanged share of the ceiling is the
//! servers' cost, not rump's.

use super::{grouped, median, median_fields, number, object, table, Cols, DatasetResult, Run};
use crate::redis::tls::Mode;

/// The plain result of the same topology, dataset and servers as `tls`.
fn plain_of<'a>(results: &'a [DatasetResult], tls: &DatasetResult) -> Option<&'a DatasetResult> {
    results.iter().find(|p| {
        p.mode == Mode::Plain
            && p.topology == tls.topology
            && p.dataset == tls.dataset
            && p.servers == tls.servers
            && p.rtt == tls.rtt
    })
}

/// Other processes may use at most this share of one core during both runs
/// of a repetition for it to count as quiet.
const QUIET: f64 = 0.1;

fn quiet(run: &Run) -> bool {
    run.other_cpu <= QUIET * run.secs
}

/// Per repetition, rump's keys/s over TLS over its keys/s in plain, and
/// whether both runs were quiet. (Any two results of alternated runs: the
/// cross-version summary uses it too.)
pub(super) fn pairs(plain: &DatasetResult, tls: &DatasetResult) -> Vec<(f64, bool)> {
    fn run(r: &DatasetResult, rep: usize) -> Option<&Run> {
        r.runs
            .iter()
            .find(|run| run.tool == "rump" && run.rep == rep)
    }
    let reps = tls.runs.iter().map(|r| r.rep + 1).max().unwrap_or(0);
    (0..reps)
        .filter_map(|rep| {
            let (p, t) = (run(plain, rep)?, run(tls, rep)?);
            Some((
                tls.keys_per_sec(t) / plain.keys_per_sec(p),
                quiet(p) && quiet(t),
            ))
        })
        .collect()
}

pub(super) fn ratios(plain: &DatasetResult, tls: &DatasetResult) -> Vec<f64> {
    pairs(plain, tls).into_iter().map(|(r, _)| r).collect()
}

/// The median ratio of the quiet repetitions, and how many there were.
pub(super) fn quiet_ratio(plain: &DatasetResult, tls: &DatasetResult) -> (Option<f64>, usize) {
    let quiet: Vec<f64> = pairs(plain, tls)
        .into_iter()
        .filter_map(|(r, q)| q.then_some(r))
        .collect();
    let n = quiet.len();
    (median(quiet), n)
}

/// "a → b" of one figure of the two median runs.
fn arrow(plain: &Run, tls: &Run, f: impl Fn(&Run) -> String) -> String {
    format!("{} → {}", f(plain), f(tls))
}

fn share(run: &Run) -> String {
    if run.servers_cpu() > 0.0 {
        format!("{:.0}%", run.cpu / run.servers_cpu() * 100.0)
    } else {
        "-".to_owned()
    }
}

pub(super) fn markdown(results: &[DatasetResult], cols: Cols) -> String {
    // Only the topology is a label here: both modes are in every row.
    let cols = Cols { tls: false, ..cols };
    let mut rows = Vec::new();
    for tls in results.iter().filter(|r| r.mode == Mode::Tls) {
        let Some(plain) = plain_of(results, tls) else {
            continue;
        };
        let (Some(p), Some(t)) = (plain.median_run("rump"), tls.median_run("rump")) else {
            continue;
        };
        let per_rep = ratios(plain, tls);
        let of_ceiling = |r: &DatasetResult, run: &Run| {
            r.of_ceiling(run)
                .map_or("-".to_owned(), |f| format!("{:.0}%", f * 100.0))
        };
        let ceiling = |r: &DatasetResult| {
            r.ceiling().map_or("-".to_owned(), |(keys, mib)| {
                if r.dataset.by_bytes() {
                    format!("{mib:.1} MiB/s")
                } else {
                    grouped(keys)
                }
            })
        };
        rows.push(cols.cells(
            tls,
            vec![
                tls.dataset.name().to_owned(),
                grouped(plain.keys_per_sec(p)),
                grouped(tls.keys_per_sec(t)),
                format!("{:.1}", plain.mib_per_sec(p)),
                format!("{:.1}", tls.mib_per_sec(t)),
                format!(
                    "{} ({})",
                    median(per_rep.clone()).map_or("-".to_owned(), |m| format!("{m:.2}x")),
                    per_rep
                        .iter()
                        .map(|x| format!("{x:.2}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                {
                    let (m, n) = quiet_ratio(plain, tls);
                    format!(
                        "{} ({n} of {})",
                        m.map_or("-".to_owned(), |m| format!("{m:.2}x")),
                        per_rep.len()
                    )
                },
                format!("{} → {}", ceiling(plain), ceiling(tls)),
                format!("{} → {}", of_ceiling(plain, p), of_ceiling(tls, t)),
                arrow(p, t, |r| format!("{:.2}", r.cpu)),
                arrow(p, t, |r| format!("{:.2}", r.servers_cpu())),
                arrow(p, t, share),
                arrow(p, t, Run::busy),
            ],
        ));
    }
    if rows.is_empty() {
        return String::new();
    }
    "\n### TLS against plain (rump, median run of each mode; same servers and data, runs alternated)\n\n"
        .to_owned()
        + &table(
            &cols.header(&[
                "dataset",
                "plain keys/s",
                "TLS keys/s",
                "plain MiB/s",
                "TLS MiB/s",
                "TLS / plain keys/s (per rep)",
                "quiet reps only",
                "ceiling plain → TLS",
                "% of ceiling plain → TLS",
                "rump CPU s plain → TLS",
                "servers CPU s plain → TLS",
                "rump CPU / servers CPU plain → TLS",
                "source / target busy plain → TLS",
            ]),
            &rows,
        )
}

/// For the JSON of a TLS result: rump's per-repetition keys/s ratio over
/// plain and its median; `null` for a plain result or without a pair.
pub(super) fn json(results: &[DatasetResult], r: &DatasetResult) -> String {
    if r.mode != Mode::Tls {
        return "null".to_owned();
    }
    let Some(plain) = plain_of(results, r) else {
        return "null".to_owned();
    };
    object(&ratio_fields(plain, r))
}

/// The JSON fields of rump's per-repetition keys/s ratio of `other` over
/// `base` (runs alternated): its median, over all and over the quiet ones.
pub(super) fn ratio_fields(
    base: &DatasetResult,
    other: &DatasetResult,
) -> Vec<(&'static str, String)> {
    let (quiet, quiet_reps) = quiet_ratio(base, other);
    let mut fields = vec![
        ("quiet_median", quiet.map_or("null".to_owned(), number)),
        ("quiet_reps", quiet_reps.to_string()),
    ];
    fields.extend(median_fields(ratios(base, other)));
    fields
}
