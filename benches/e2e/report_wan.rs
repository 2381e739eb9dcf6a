//! The latency summary (issue 12): every tool at every round trip of
//! `--rtt-ms`, next to the ceiling through the same proxies, and its rate as
//! a share of its own rate through the 0 ms proxies in the same repetition
//! (the round trips alternate within each repetition, so the ratio per
//! repetition is the figure to trust on a noisy machine). The data is the
//! same at every round trip, so the keys/s and MiB/s shares are one number.
//!
//! The proxies' CPU is shown beside each run: a proxy near a whole core
//! would be the bottleneck, not the tool.

use super::{grouped, median, median_fields, object, proxy_cpu, table, Cols, DatasetResult};
use crate::wan::Rtt;

/// The result through the 0 ms proxies of the same topology, dataset, mode
/// and servers as `r`.
fn zero_of<'a>(results: &'a [DatasetResult], r: &DatasetResult) -> Option<&'a DatasetResult> {
    results.iter().find(|z| {
        z.rtt == Rtt::Ms(0.0)
            && z.topology == r.topology
            && z.dataset == r.dataset
            && z.mode == r.mode
            && z.servers == r.servers
    })
}

/// Per repetition, `tool`'s keys/s in `r` over its keys/s in `zero`.
fn ratios(zero: &DatasetResult, r: &DatasetResult, tool: &str) -> Vec<f64> {
    (0..r.reps())
        .filter_map(|rep| Some(r.rate_of(tool, rep)? / zero.rate_of(tool, rep)?))
        .collect()
}

/// "93% (91, 95)": the median share and each repetition's.
fn share(ratios: &[f64]) -> String {
    match median(ratios.to_vec()) {
        None => "-".to_owned(),
        Some(m) => format!(
            "{:.0}% ({})",
            m * 100.0,
            ratios
                .iter()
                .map(|x| format!("{:.0}", x * 100.0))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub(super) fn markdown(results: &[DatasetResult], cols: Cols) -> String {
    let mut rows = Vec::new();
    for r in results {
        let zero = zero_of(results, r);
        if let (Some(s), Some(t), Some((keys, mib))) = (&r.source, &r.target, r.ceiling()) {
            rows.push(cols.cells(
                r,
                vec![
                    r.dataset.name().to_owned(),
                    "ceiling (lower of source, target)".to_owned(),
                    grouped(keys),
                    format!("{mib:.1}"),
                    "-".to_owned(),
                    "-".to_owned(),
                    "-".to_owned(),
                    format!("{} / {}", proxy_cpu(s.proxy_cpu), proxy_cpu(t.proxy_cpu)),
                    "-".to_owned(),
                ],
            ));
        }
        for tool in r.tools() {
            let Some(run) = r.median_run(tool) else {
                continue;
            };
            rows.push(cols.cells(
                r,
                vec![
                    r.dataset.name().to_owned(),
                    tool.to_owned(),
                    grouped(r.keys_per_sec(run)),
                    format!("{:.1}", r.mib_per_sec(run)),
                    r.of_ceiling(run)
                        .map_or("-".to_owned(), |f| format!("{:.0}%", f * 100.0)),
                    format!("{:.2}", run.cpu),
                    format!("{:.1}", r.peak_rss_mib(tool)),
                    proxy_cpu(run.proxy_cpu),
                    zero.map_or("-".to_owned(), |z| share(&ratios(z, r, tool))),
                ],
            ));
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    "\n### Latency (median run per round trip; the ceilings and tools through the proxies, loading and checking direct)\n\n"
        .to_owned()
        + &table(
            &cols.header(&[
                "dataset",
                "tool",
                "keys/s",
                "MiB/s",
                "% of ceiling",
                "tool CPU s",
                "tool peak RSS MiB (max)",
                "proxy CPU s",
                "% of its 0 ms keys/s = MiB/s (per rep)",
            ]),
            &rows,
        )
}

/// For the JSON of a result: each tool's per-repetition keys/s share of
/// its 0 ms figure, and the median; `null` without a 0 ms result.
pub(super) fn json(results: &[DatasetResult], r: &DatasetResult) -> String {
    let Some(zero) = zero_of(results, r) else {
        return "null".to_owned();
    };
    let tools: Vec<String> = r
        .tools()
        .into_iter()
        .map(|tool| {
            let mut fields = vec![("tool", super::string(tool))];
            fields.extend(median_fields(ratios(zero, r, tool)));
            object(&fields)
        })
        .collect();
    format!("[{}]", tools.join(", "))
}
