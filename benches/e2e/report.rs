//! Results: the Markdown tables on stdout and the JSON file, both by hand (the
//! bench has no JSON crate, and the objects are small).
//!
//! When any result is from a cluster topology, every table gains a
//! `topology` column, each "busy" cell lists every server of that end (a
//! cluster's masters in slot order), and a summary compares each topology's
//! rump with standalone → standalone on the same dataset. When any is over
//! TLS, every table gains a `mode` column (plain or tls) and a summary
//! compares rump over TLS with rump in plain (`report_tls.rs`). When the
//! results come from more than one pair of servers, or from a source and
//! target of different versions, every table gains a `servers` column and
//! a summary compares each cross-version copy with the same-version one
//! into the same target, next to the transcoding rates per type
//! (`report_versions.rs`). When any result went through latency proxies,
//! every table gains an `rtt` column, the runs and ceilings the proxies' CPU,
//! and a summary shows each tool per round trip against its 0 ms figure
//! (`report_wan.rs`).

#[path = "report_tls.rs"]
mod report_tls;
#[path = "report_versions.rs"]
mod report_versions;
#[path = "report_wan.rs"]
mod report_wan;

use std::fmt::Write as _;
use std::path::Path;

use crate::ceiling::Rate;
use crate::data::Dataset;
use crate::redis::tls::Mode;
use crate::redis::Res;
use crate::topology::Topology;
use crate::transcode::TypeRate;
use crate::wan::Rtt;

const MIB: f64 = 1024.0 * 1024.0;

/// Where and on what the run happened.
pub(crate) struct Meta {
    pub(crate) date: String,
    pub(crate) commit: String,
    pub(crate) redis_version: String,
    pub(crate) server_binary: String,
    pub(crate) cores: usize,
    pub(crate) clk_tck: f64,
    pub(crate) rump_version: String,
    pub(crate) args: Vec<String>,
    pub(crate) reps: usize,
    pub(crate) scale: f64,
    pub(crate) modes: Vec<Mode>,
    /// The latency proxies' bandwidth cap, each way.
    pub(crate) mbit: Option<f64>,
    /// What the harness's TLS connections negotiated, in a run with TLS.
    pub(crate) tls: Option<String>,
}

/// One run of one tool on one dataset.
pub(crate) struct Run {
    pub(crate) tool: String,
    pub(crate) rep: usize,
    pub(crate) secs: f64,
    pub(crate) cpu: f64,
    pub(crate) peak_rss_kib: u64,
    /// CPU seconds each source and each target server used during the run.
    pub(crate) source_cpu: Vec<f64>,
    pub(crate) target_cpu: Vec<f64>,
    pub(crate) other_cpu: f64,
    /// CPU the latency proxies used during the run, in latency mode.
    pub(crate) proxy_cpu: Option<f64>,
    pub(crate) exit_code: Option<i32>,
    /// `Ok(summary)` or `Err(what went wrong)`: exit status, then the target check.
    pub(crate) check: Result<String, String>,
    pub(crate) target_keys: u64,
    pub(crate) stdout: String,
}

/// The servers of a result: each end's product and version, as `INFO` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Servers {
    pub(crate) source: String,
    pub(crate) target: String,
}

impl Servers {
    /// "valkey 8.1.8 → redis 7.0.15".
    pub(crate) fn arrow(&self) -> String {
        format!("{} → {}", self.source, self.target)
    }

    /// Both ends run the same server and version.
    fn same_version(&self) -> bool {
        self.source == self.target
    }
}

/// One dataset: what was loaded, its ceilings and every run.
/// In a run with both modes, each dataset has one per mode: the same servers
/// and data, its own ceilings and runs.
pub(crate) struct DatasetResult {
    pub(crate) topology: Topology,
    pub(crate) dataset: Dataset,
    pub(crate) mode: Mode,
    /// The round trip the proxies added, or `direct`.
    pub(crate) rtt: Rtt,
    pub(crate) servers: Servers,
    /// `DBSIZE` of each source server (one, or each master).
    pub(crate) source_keys: Vec<u64>,
    pub(crate) description: String,
    pub(crate) keys: u64,
    /// Sum of the `DUMP` payload sizes of every key: the bytes that must move.
    pub(crate) bytes: u64,
    /// The largest single `DUMP` payload.
    pub(crate) largest: u64,
    pub(crate) load_secs: f64,
    /// `SCAN … COUNT 5000` of the whole source (every master at once): wall
    /// and source CPU seconds.
    pub(crate) scan: (f64, f64),
    pub(crate) loadavg: String,
    pub(crate) source: Option<Rate>,
    pub(crate) target: Option<Rate>,
    /// Rewriting the source's payloads for an older target, per type byte
    /// (empty when the target reads them as they are).
    pub(crate) transcoding: Vec<TypeRate>,
    pub(crate) runs: Vec<Run>,
}

impl Run {
    fn servers_cpu(&self) -> f64 {
        self.source_cpu.iter().chain(&self.target_cpu).sum()
    }

    /// Each source server's busy share, then each target server's.
    fn busy(&self) -> String {
        format!(
            "{} / {}",
            busy(&self.source_cpu, self.secs),
            busy(&self.target_cpu, self.secs)
        )
    }
}

/// CPU over wall time of each server, e.g. "92%" or "61% 60% 62%".
fn busy(cpu: &[f64], secs: f64) -> String {
    cpu.iter()
        .map(|c| format!("{:.0}%", c / secs * 100.0))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The label columns after the dataset: the servers when there is more
/// than one pair or a cross-version one, the topology when any result is
/// from a cluster, the mode when any is over TLS.
#[derive(Clone, Copy)]
struct Cols {
    servers: bool,
    clustered: bool,
    tls: bool,
    /// Any result through latency proxies.
    rtt: bool,
}

impl Cols {
    fn of(results: &[DatasetResult]) -> Cols {
        Cols {
            servers: results
                .iter()
                .any(|r| !r.servers.same_version() || r.servers != results[0].servers),
            clustered: results.iter().any(|r| r.topology != Topology::Standalone),
            tls: results.iter().any(|r| r.mode == Mode::Tls),
            rtt: results.iter().any(|r| r.rtt != Rtt::Direct),
        }
    }

    /// `cells` with the labels of `r` inserted after the first (the dataset).
    fn cells(self, r: &DatasetResult, mut cells: Vec<String>) -> Vec<String> {
        let mut at = 1;
        if self.servers {
            cells.insert(at, r.servers.arrow());
            at += 1;
        }
        if self.clustered {
            cells.insert(at, r.topology.arrow().to_owned());
            at += 1;
        }
        if self.tls {
            cells.insert(at, r.mode.name().to_owned());
            at += 1;
        }
        if self.rtt {
            cells.insert(at, r.rtt.name());
        }
        cells
    }

    fn header<'a>(self, header: &[&'a str]) -> Vec<&'a str> {
        let mut header = header.to_vec();
        let mut at = 1;
        if self.servers {
            header.insert(at, "servers");
            at += 1;
        }
        if self.clustered {
            header.insert(at, "topology");
            at += 1;
        }
        if self.tls {
            header.insert(at, "mode");
            at += 1;
        }
        if self.rtt {
            header.insert(at, "rtt");
        }
        header
    }
}

impl DatasetResult {
    fn keys_per_sec(&self, run: &Run) -> f64 {
        self.keys as f64 / run.secs
    }

    fn mib_per_sec(&self, run: &Run) -> f64 {
        self.bytes as f64 / MIB / run.secs
    }

    /// The smaller of the two ceilings, in keys/s and MiB/s.
    fn ceiling(&self) -> Option<(f64, f64)> {
        let (s, t) = (self.source.as_ref()?, self.target.as_ref()?);
        Some((
            s.keys_per_sec().min(t.keys_per_sec()),
            s.mib_per_sec().min(t.mib_per_sec()),
        ))
    }

    /// A run's rate as a fraction of the smaller ceiling, in the unit the
    /// dataset's target is stated in (MiB/s for `big`, keys/s otherwise).
    fn of_ceiling(&self, run: &Run) -> Option<f64> {
        let (keys, mib) = self.ceiling()?;
        Some(if self.dataset.by_bytes() {
            self.mib_per_sec(run) / mib
        } else {
            self.keys_per_sec(run) / keys
        })
    }

    fn tools(&self) -> Vec<&str> {
        let mut tools: Vec<&str> = Vec::new();
        for run in &self.runs {
            if !tools.contains(&run.tool.as_str()) {
                tools.push(&run.tool);
            }
        }
        tools
    }

    /// The run with the median wall time of `tool` (the slower middle one of an
    /// even count).
    fn median_run(&self, tool: &str) -> Option<&Run> {
        let mut runs: Vec<&Run> = self.runs.iter().filter(|r| r.tool == tool).collect();
        runs.sort_by(|a, b| a.secs.total_cmp(&b.secs));
        runs.get(runs.len() / 2).copied()
    }

    /// `tool`'s keys/s in repetition `rep`.
    fn rate_of(&self, tool: &str, rep: usize) -> Option<f64> {
        self.runs
            .iter()
            .find(|r| r.tool == tool && r.rep == rep)
            .map(|r| self.keys_per_sec(r))
    }

    /// `tool`'s peak RSS in MiB: a peak is a peak, the largest over the
    /// repetitions.
    fn peak_rss_mib(&self, tool: &str) -> f64 {
        let kib = self
            .runs
            .iter()
            .filter(|x| x.tool == tool)
            .map(|x| x.peak_rss_kib)
            .max()
            .unwrap_or(0);
        kib as f64 / 1024.0
    }

    /// How many repetitions there were.
    fn reps(&self) -> usize {
        self.runs.iter().map(|r| r.rep + 1).max().unwrap_or(0)
    }

    /// Per repetition, rump's keys/s over `peer`'s (same rep, adjacent runs).
    fn ratios(&self, peer: &str) -> Vec<f64> {
        (0..self.reps())
            .filter_map(|rep| Some(self.rate_of("rump", rep)? / self.rate_of(peer, rep)?))
            .collect()
    }
}

/// The JSON fields of per-repetition ratios: their median and each.
fn median_fields(per_rep: Vec<f64>) -> [(&'static str, String); 2] {
    [
        (
            "median",
            median(per_rep.clone()).map_or("null".to_owned(), number),
        ),
        (
            "per_rep",
            format!(
                "[{}]",
                per_rep
                    .into_iter()
                    .map(number)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    ]
}

pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// A byte count for people: "28 B", "3.1 KiB", "5.91 MiB".
fn size(n: u64) -> String {
    match n {
        0..=1023 => format!("{n} B"),
        1024..=1_048_575 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.2} MiB", n as f64 / MIB),
    }
}

/// 1234567 as "1,234,567" (rump's own progress formatting).
fn grouped(n: f64) -> String {
    rump::progress::group(n.max(0.0).round() as u64)
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header.iter().map(|h| (*h).to_owned()).collect());
    out += &line(widths.iter().map(|&w| "-".repeat(w)).collect());
    for row in rows {
        out += &line(row.clone());
    }
    out
}

/// The whole report as Markdown.
pub(crate) fn markdown(meta: &Meta, results: &[DatasetResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## e2e benchmark, {}\n\ncommit {}, {} ({}), {} cores, {} rep(s), scale {}, rump {}\n",
        meta.date,
        meta.commit,
        meta.redis_version,
        meta.server_binary,
        meta.cores,
        meta.reps,
        meta.scale,
        meta.rump_version
    );
    if let Some(tls) = &meta.tls {
        let _ = writeln!(
            out,
            "TLS: every server also listens on a TLS port (the harness's CA, `--tls-auth-clients no`); the harness's own TLS connections negotiated {tls}\n"
        );
    }
    let cols = Cols::of(results);
    let clustered = cols.clustered;
    for (i, r) in results.iter().enumerate() {
        // The modes and sources of one dataset share its data: describe it once.
        if results[..i]
            .iter()
            .any(|e| e.topology == r.topology && e.dataset == r.dataset)
        {
            continue;
        }
        let keys_each = if r.source_keys.len() > 1 {
            format!(
                " ({} on the source masters)",
                r.source_keys
                    .iter()
                    .map(|&k| grouped(k as f64))
                    .collect::<Vec<_>>()
                    .join(" + ")
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "- `{}`{}: {}; {} keys{keys_each}, {:.1} MiB of DUMP payloads (largest {}); loaded in {:.1} s; SCAN {:.2} s (source CPU {:.2} s); load average before the runs: {}",
            r.dataset.name(),
            if clustered {
                format!(" ({})", r.topology.arrow())
            } else {
                String::new()
            },
            r.description,
            grouped(r.keys as f64),
            r.bytes as f64 / MIB,
            size(r.largest),
            r.load_secs,
            r.scan.0,
            r.scan.1,
            r.loadavg
        );
    }

    let ceilings: Vec<Vec<String>> = results
        .iter()
        .filter_map(|r| {
            let (s, t) = (r.source.as_ref()?, r.target.as_ref()?);
            let mut cells = vec![
                r.dataset.name().to_owned(),
                grouped(r.keys as f64),
                format!("{:.1}", r.bytes as f64 / MIB),
                grouped(s.keys_per_sec()),
                format!("{:.1}", s.mib_per_sec()),
                busy(&s.server_cpu, s.secs),
                grouped(t.keys_per_sec()),
                format!("{:.1}", t.mib_per_sec()),
                busy(&t.server_cpu, t.secs),
            ];
            if cols.rtt {
                cells.push(format!(
                    "{} / {}",
                    proxy_cpu(s.proxy_cpu),
                    proxy_cpu(t.proxy_cpu)
                ));
            }
            Some(cols.cells(r, cells))
        })
        .collect();
    if !ceilings.is_empty() {
        out += "\n### Ceilings (source: pipelined DUMP + expiry read; target: pipelined RESTORE into an empty db)\n\n";
        let mut header = vec![
            "dataset",
            "keys",
            "MiB",
            "source keys/s",
            "source MiB/s",
            "source busy",
            "target keys/s",
            "target MiB/s",
            "target busy",
        ];
        if cols.rtt {
            header.push("source / target proxy CPU s");
        }
        out += &table(&cols.header(&header), &ceilings);
    }

    let mut rows = Vec::new();
    for r in results {
        for tool in r.tools() {
            let Some(run) = r.median_run(tool) else {
                continue;
            };
            let reps = r.runs.iter().filter(|x| x.tool == tool).count();
            let mut cells = vec![
                r.dataset.name().to_owned(),
                if reps > 1 {
                    format!("{tool} (median of {reps})")
                } else {
                    tool.to_owned()
                },
                grouped(r.keys as f64),
                format!("{:.2}", run.secs),
                grouped(r.keys_per_sec(run)),
                format!("{:.1}", r.mib_per_sec(run)),
                r.of_ceiling(run).map_or("-".to_owned(), |f| {
                    format!(
                        "{:.0}% ({})",
                        f * 100.0,
                        if r.dataset.by_bytes() {
                            "MiB/s"
                        } else {
                            "keys/s"
                        }
                    )
                }),
                format!("{:.2}", run.cpu),
                format!("{:.1}", r.peak_rss_mib(tool)),
                format!("{:.2}", run.servers_cpu()),
                run.busy(),
                if run.servers_cpu() > 0.0 {
                    format!("{:.0}%", run.cpu / run.servers_cpu() * 100.0)
                } else {
                    "-".to_owned()
                },
                format!("{:.2}", run.other_cpu),
                match &run.check {
                    Ok(_) => "ok".to_owned(),
                    Err(e) => format!("FAIL: {}", e.replace('|', "/")),
                },
            ];
            if cols.rtt {
                cells.insert(RUNS_OTHER_CPU, proxy_cpu(run.proxy_cpu));
            }
            rows.push(cols.cells(r, cells));
        }
    }
    if !rows.is_empty() {
        out += "\n### Runs\n\n";
        let mut header = vec![
            "dataset",
            "tool",
            "keys",
            "seconds",
            "keys/s",
            "MiB/s",
            "% of ceiling",
            "tool CPU s",
            "tool peak RSS MiB (max)",
            "servers CPU s",
            "source / target busy",
            "tool CPU / servers CPU",
            "other CPU s",
            "check",
        ];
        if cols.rtt {
            header.insert(RUNS_OTHER_CPU, "proxy CPU s");
        }
        out += &table(&cols.header(&header), &rows);
    }
    if clustered {
        out += &topologies(results, cols);
    }
    if cols.tls {
        out += &report_tls::markdown(results, cols);
    }
    if cols.servers {
        out += &report_versions::markdown(results, cols);
    }
    if cols.rtt {
        out += &report_wan::markdown(results, cols);
    }

    let mut ab = Vec::new();
    for r in results {
        for peer in r.tools().into_iter().filter(|&t| t != "rump") {
            let ratios = r.ratios(peer);
            if let Some(m) = median(ratios.clone()) {
                ab.push(cols.cells(
                    r,
                    vec![
                        r.dataset.name().to_owned(),
                        format!("rump / {peer}"),
                        format!("{m:.2}x"),
                        ratios
                            .iter()
                            .map(|x| format!("{x:.2}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ],
                ));
            }
        }
    }
    if !ab.is_empty() {
        out += "\n### A/B (keys/s ratio per repetition, runs alternated)\n\n";
        out += &table(
            &cols.header(&["dataset", "pair", "median ratio", "per rep"]),
            &ab,
        );
    }
    out
}

/// Where the runs table's "other CPU s" column is, before the labels.
const RUNS_OTHER_CPU: usize = 12;

/// "0.42", or "-" without proxies.
fn proxy_cpu(cpu: Option<f64>) -> String {
    cpu.map_or("-".to_owned(), |c| format!("{c:.2}"))
}

/// rump's median run per dataset and topology, against the ceiling of that
/// topology and against standalone → standalone on the same dataset.
fn topologies(results: &[DatasetResult], cols: Cols) -> String {
    let mut rows = Vec::new();
    for r in results {
        let Some(run) = r.median_run("rump") else {
            continue;
        };
        let standalone = results
            .iter()
            .find(|s| {
                s.topology == Topology::Standalone
                    && s.dataset == r.dataset
                    && s.mode == r.mode
                    && s.rtt == r.rtt
                    && s.servers == r.servers
            })
            .and_then(|s| Some(s.keys_per_sec(s.median_run("rump")?)));
        rows.push(vec![
            match cols.servers {
                true => format!("{} ({})", r.dataset.name(), r.servers.arrow()),
                false => r.dataset.name().to_owned(),
            },
            r.topology.arrow().to_owned(),
            grouped(r.keys_per_sec(run)),
            r.ceiling()
                .map_or("-".to_owned(), |(keys, _)| grouped(keys)),
            r.of_ceiling(run)
                .map_or("-".to_owned(), |f| format!("{:.0}%", f * 100.0)),
            standalone.map_or("-".to_owned(), |s| {
                format!("{:.2}x", r.keys_per_sec(run) / s)
            }),
            format!("{:.2}", run.cpu),
            format!("{:.2}", run.servers_cpu()),
            if run.servers_cpu() > 0.0 {
                format!("{:.0}%", run.cpu / run.servers_cpu() * 100.0)
            } else {
                "-".to_owned()
            },
            run.busy(),
        ]);
        if cols.tls {
            if let Some(row) = rows.last_mut() {
                row.insert(2, r.mode.name().to_owned());
            }
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut header = vec![
        "dataset",
        "topology",
        "keys/s",
        "ceiling keys/s",
        "% of ceiling",
        "vs standalone",
        "rump CPU s",
        "servers CPU s",
        "rump CPU / servers CPU",
        "source / target busy (each server)",
    ];
    if cols.tls {
        header.insert(2, "mode");
    }
    "\n### Topologies (rump, median run)\n\n".to_owned() + &table(&header, &rows)
}

fn string(s: &str) -> String {
    rump::progress::json_string(s)
}

fn number(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".to_owned()
    }
}

fn object(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}: {v}", string(k)))
        .collect();
    format!("{{{}}}", body.join(", "))
}

fn array(items: Vec<String>) -> String {
    format!("[{}]", items.join(",\n  "))
}

fn numbers(values: &[f64]) -> String {
    format!(
        "[{}]",
        values
            .iter()
            .map(|&v| number(v))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn rate_json(rate: Option<&Rate>) -> String {
    rate.map_or("null".to_owned(), |r| {
        object(&[
            ("seconds", number(r.secs)),
            ("keys", r.keys.to_string()),
            ("bytes", r.bytes.to_string()),
            ("keys_per_sec", number(r.keys_per_sec())),
            ("mib_per_sec", number(r.mib_per_sec())),
            ("server_cpu_seconds", number(r.server_cpu_total())),
            ("server_cpu_seconds_each", numbers(&r.server_cpu)),
            (
                "proxy_cpu_seconds",
                r.proxy_cpu.map_or("null".to_owned(), number),
            ),
        ])
    })
}

/// A numeric field of a flat JSON object such as rump's `--json` summary.
pub(crate) fn json_number(text: &str, field: &str) -> Option<f64> {
    let at = text.find(&format!("\"{field}\""))? + field.len() + 2;
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn run_json(r: &DatasetResult, run: &Run) -> String {
    let tool_field = |f: &str| json_number(&run.stdout, f).map_or("null".to_owned(), number);
    object(&[
        ("tool", string(&run.tool)),
        ("rep", run.rep.to_string()),
        ("seconds", number(run.secs)),
        ("keys_per_sec", number(r.keys_per_sec(run))),
        ("mib_per_sec", number(r.mib_per_sec(run))),
        (
            "of_ceiling",
            r.of_ceiling(run).map_or("null".to_owned(), number),
        ),
        ("cpu_seconds", number(run.cpu)),
        ("peak_rss_mib", number(run.peak_rss_kib as f64 / 1024.0)),
        ("servers_cpu_seconds", number(run.servers_cpu())),
        ("source_cpu_seconds", number(run.source_cpu.iter().sum())),
        ("target_cpu_seconds", number(run.target_cpu.iter().sum())),
        ("source_cpu_seconds_each", numbers(&run.source_cpu)),
        ("target_cpu_seconds_each", numbers(&run.target_cpu)),
        ("cpu_over_servers", number(run.cpu / run.servers_cpu())),
        ("other_cpu_seconds", number(run.other_cpu)),
        (
            "proxy_cpu_seconds",
            run.proxy_cpu.map_or("null".to_owned(), number),
        ),
        (
            "exit_code",
            run.exit_code.map_or("null".to_owned(), |c| c.to_string()),
        ),
        ("target_keys", run.target_keys.to_string()),
        ("check_ok", run.check.is_ok().to_string()),
        (
            "check",
            string(match &run.check {
                Ok(s) | Err(s) => s,
            }),
        ),
        ("tool_copied", tool_field("copied")),
        ("tool_transcoded", tool_field("transcoded")),
        ("tool_bytes", tool_field("bytes")),
        ("tool_seconds", tool_field("seconds")),
        ("tool_stdout", string(run.stdout.trim())),
    ])
}

/// The whole run as JSON.
pub(crate) fn json(meta: &Meta, results: &[DatasetResult]) -> String {
    let datasets = results
        .iter()
        .map(|r| {
            let (ceiling_keys, ceiling_mib) = r.ceiling().unzip();
            let ratios = r
                .tools()
                .into_iter()
                .filter(|&t| t != "rump")
                .map(|peer| {
                    let per_rep = r.ratios(peer);
                    object(&[
                        ("peer", string(peer)),
                        (
                            "median",
                            median(per_rep.clone()).map_or("null".to_owned(), number),
                        ),
                        ("per_rep", array(per_rep.into_iter().map(number).collect())),
                    ])
                })
                .collect();
            object(&[
                ("name", string(r.dataset.name())),
                ("topology", string(r.topology.name())),
                ("source_server", string(&r.servers.source)),
                ("target_server", string(&r.servers.target)),
                ("mode", string(r.mode.name())),
                ("rtt", string(&r.rtt.name())),
                ("rtt_ms", r.rtt.ms().map_or("null".to_owned(), number)),
                (
                    "source_keys_each",
                    format!(
                        "[{}]",
                        r.source_keys
                            .iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                ("description", string(&r.description)),
                ("keys", r.keys.to_string()),
                ("payload_bytes", r.bytes.to_string()),
                ("largest_payload_bytes", r.largest.to_string()),
                ("load_seconds", number(r.load_secs)),
                ("scan_seconds", number(r.scan.0)),
                ("scan_server_cpu_seconds", number(r.scan.1)),
                ("loadavg_before", string(&r.loadavg)),
                ("source_capacity", rate_json(r.source.as_ref())),
                ("target_capacity", rate_json(r.target.as_ref())),
                (
                    "ceiling_keys_per_sec",
                    ceiling_keys.map_or("null".to_owned(), number),
                ),
                (
                    "ceiling_mib_per_sec",
                    ceiling_mib.map_or("null".to_owned(), number),
                ),
                (
                    "runs",
                    array(r.runs.iter().map(|run| run_json(r, run)).collect()),
                ),
                ("rump_over_peer", array(ratios)),
                ("rump_tls_over_plain", report_tls::json(results, r)),
                (
                    "rump_over_same_version",
                    report_versions::json_versus(results, r),
                ),
                ("transcoding", report_versions::json_transcoding(r)),
                ("rump_over_0ms", report_wan::json(results, r)),
            ])
        })
        .collect();
    object(&[
        ("date", string(&meta.date)),
        ("commit", string(&meta.commit)),
        ("redis_version", string(&meta.redis_version)),
        ("server_binary", string(&meta.server_binary)),
        ("cores", meta.cores.to_string()),
        ("clk_tck", number(meta.clk_tck)),
        ("rump_version", string(&meta.rump_version)),
        ("reps", meta.reps.to_string()),
        ("scale", number(meta.scale)),
        (
            "modes",
            array(meta.modes.iter().map(|m| string(m.name())).collect()),
        ),
        ("tls", meta.tls.as_deref().map_or("null".to_owned(), string)),
        ("mbit", meta.mbit.map_or("null".to_owned(), number)),
        ("args", array(meta.args.iter().map(|a| string(a)).collect())),
        ("datasets", array(datasets)),
    ]) + "\n"
}

pub(crate) fn write_json(path: &Path, meta: &Meta, results: &[DatasetResult]) -> Res<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, json(meta, results))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
