//! The cross-version summary (issue 11): rump copying from a source of
//! another version next to rump copying from a source of the target's own
//! version, into the same target with the same data, their runs alternated
//! in every repetition (`--source-server a,b`), so the per-repetition ratio
//! is the figure to trust; and what rewriting the payloads cost per type.
//!
//! The goal is a cross-version copy at 70% or more of the same-version
//! keys/s.

use super::report_tls::{quiet_ratio, ratio_fields, ratios};
use super::{grouped, json_number, median, number, object, table, Cols, DatasetResult};

/// The share of the same-version keys/s a cross-version copy should reach.
const GOAL: f64 = 0.70;

/// The same-version result `r` is measured against: same topology,
/// dataset, mode and target, from a source of the target's version.
fn same_version_of<'a>(
    results: &'a [DatasetResult],
    r: &DatasetResult,
) -> Option<&'a DatasetResult> {
    results.iter().find(|s| {
        s.servers.same_version()
            && s.servers.target == r.servers.target
            && s.topology == r.topology
            && s.dataset == r.dataset
            && s.mode == r.mode
            && s.rtt == r.rtt
    })
}

/// rump's `transcoded` in its median run of `r`.
fn transcoded(r: &DatasetResult) -> String {
    r.median_run("rump")
        .and_then(|run| json_number(&run.stdout, "transcoded"))
        .map_or("-".to_owned(), grouped)
}

pub(super) fn markdown(results: &[DatasetResult], cols: Cols) -> String {
    // The servers are a column of their own here.
    let cols = Cols {
        servers: false,
        ..cols
    };
    let mut rows = Vec::new();
    for r in results.iter().filter(|r| !r.servers.same_version()) {
        let Some(same) = same_version_of(results, r) else {
            continue;
        };
        let (Some(base), Some(cross)) = (same.median_run("rump"), r.median_run("rump")) else {
            continue;
        };
        let per_rep = ratios(same, r);
        let ratio = median(per_rep.clone());
        let (quiet, quiet_reps) = quiet_ratio(same, r);
        let of_ceiling = |d: &DatasetResult, run| {
            d.of_ceiling(run)
                .map_or("-".to_owned(), |f| format!("{:.0}%", f * 100.0))
        };
        rows.push(cols.cells(
            r,
            vec![
                r.dataset.name().to_owned(),
                r.servers.arrow(),
                same.servers.arrow(),
                grouped(r.keys_per_sec(cross)),
                grouped(same.keys_per_sec(base)),
                format!(
                    "{} ({})",
                    ratio.map_or("-".to_owned(), |m| format!("{:.0}%", m * 100.0)),
                    per_rep
                        .iter()
                        .map(|x| format!("{:.0}%", x * 100.0))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "{} ({quiet_reps} of {})",
                    quiet.map_or("-".to_owned(), |m| format!("{:.0}%", m * 100.0)),
                    per_rep.len()
                ),
                match ratio {
                    Some(m) if m >= GOAL => "met".to_owned(),
                    Some(_) => "missed".to_owned(),
                    None => "-".to_owned(),
                },
                transcoded(r),
                format!("{} → {}", of_ceiling(same, base), of_ceiling(r, cross)),
                format!("{:.2} → {:.2}", base.cpu, cross.cpu),
            ],
        ));
    }
    let mut out = String::new();
    if !rows.is_empty() {
        out +=
            "\n### Across versions (rump, median run; same target and data, runs alternated)\n\n";
        out += &table(
            &cols.header(&[
                "dataset",
                "cross-version",
                "same-version",
                "cross keys/s",
                "same keys/s",
                "cross / same keys/s (per rep)",
                "quiet reps only",
                "goal ≥ 70%",
                "transcoded",
                "% of ceiling same → cross",
                "rump CPU s same → cross",
            ]),
            &rows,
        );
    }
    out + &transcoding(results)
}

/// Rewriting each type's payloads, in-process on one thread: once per
/// dataset and pair of servers (every mode has the same payloads).
fn transcoding(results: &[DatasetResult]) -> String {
    let mut rows = Vec::new();
    for (i, r) in results.iter().enumerate() {
        let seen = results[..i]
            .iter()
            .any(|e| e.topology == r.topology && e.dataset == r.dataset && e.servers == r.servers);
        if seen {
            continue;
        }
        for t in &r.transcoding {
            rows.push(vec![
                r.dataset.name().to_owned(),
                r.servers.arrow(),
                t.name(),
                grouped(t.payloads as f64),
                format!("{:.2}", t.bytes as f64 / (1024.0 * 1024.0)),
                format!("{:.2}", t.bytes_out as f64 / (1024.0 * 1024.0)),
                match t.footers {
                    0 => "re-encoded".to_owned(),
                    n if n == t.payloads => "footer".to_owned(),
                    n => format!("footer {n}, re-encoded {}", t.payloads - n),
                },
                format!("{:.3}", t.secs),
                format!("{:.0}", t.mib_per_sec()),
            ]);
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    "\n### Transcoding (rdb::transcode of every payload the target refuses, one thread, untimed for the tools)\n\n"
        .to_owned()
        + &table(
            &[
                "dataset",
                "servers",
                "type (byte, encoding)",
                "payloads",
                "MiB in",
                "MiB out",
                "path",
                "seconds",
                "MiB/s (in)",
            ],
            &rows,
        )
}

/// For the JSON of a cross-version result: rump's per-repetition keys/s
/// over the same-version copy's, and its median; `null` otherwise.
pub(super) fn json_versus(results: &[DatasetResult], r: &DatasetResult) -> String {
    if r.servers.same_version() {
        return "null".to_owned();
    }
    let Some(same) = same_version_of(results, r) else {
        return "null".to_owned();
    };
    let mut fields = vec![("same_version_source", super::string(&same.servers.source))];
    fields.extend(ratio_fields(same, r));
    object(&fields)
}

/// The transcoding rates of `r`, per type byte, as a JSON array.
pub(super) fn json_transcoding(r: &DatasetResult) -> String {
    let items: Vec<String> = r
        .transcoding
        .iter()
        .map(|t| {
            object(&[
                ("type_byte", t.type_byte.to_string()),
                ("type", super::string(&t.name())),
                ("payloads", t.payloads.to_string()),
                ("bytes_in", t.bytes.to_string()),
                ("bytes_out", t.bytes_out.to_string()),
                ("footer_only", t.footers.to_string()),
                ("seconds", number(t.secs)),
                ("mib_per_sec", number(t.mib_per_sec())),
            ])
        })
        .collect();
    format!("[{}]", items.join(", "))
}
