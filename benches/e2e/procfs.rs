//! CPU time and peak memory from `/proc`, without `libc`.
//!
//! The tool under test is spawned with piped output and polled every
//! [`POLL`]: `VmHWM` (peak RSS) from `/proc/PID/status` of it and its
//! descendants, and, once it is a zombie (exited, not yet reaped), its final
//! `utime + stime + cutime + cstime` from `/proc/PID/stat`. Reading the zombie
//! makes the CPU figure exact (children the shell reaped included); only the
//! peak RSS can miss growth in the last poll interval before exit, because a
//! zombie no longer has memory to report.

use std::fs;
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::redis::Res;

/// How often the running tool is sampled.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`).
pub(crate) fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

struct Stat {
    state: u8,
    /// utime + stime of the process (all threads).
    ticks: u64,
    /// cutime + cstime: children it has waited for.
    child_ticks: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past it.
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        state: *fields.first()?.as_bytes().first()?,
        ticks: num(11)? + num(12)?,
        child_ticks: num(13)? + num(14)?,
    })
}

/// Busy ticks of the whole machine so far (`/proc/stat`: user, nice, system,
/// irq, softirq, steal; idle and iowait left out).
fn machine_busy_ticks() -> u64 {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(cpu) = text.lines().next() else {
        return 0;
    };
    let fields: Vec<u64> = cpu
        .split_ascii_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum()
}

/// utime + stime of `pids` together, in ticks (0 for any that are gone).
pub(crate) fn ticks(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|&p| stat(p)).map(|s| s.ticks).sum()
}

fn vm_hwm_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmHWM:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

/// Every live descendant of `pid` (through `/proc/PID/task/TID/children`).
fn descendants(pid: u32, out: &mut Vec<u32>) {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for task in tasks.flatten() {
        let Ok(children) = fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        for child in children.split_ascii_whitespace() {
            if let Ok(child) = child.parse() {
                out.push(child);
                descendants(child, out);
            }
        }
    }
}

/// One measured run of a command.
pub(crate) struct Measured {
    /// Spawn to exit (the moment its stdout and stderr closed), seconds.
    pub(crate) wall: f64,
    /// User + system CPU of the process and the children it waited for, seconds.
    pub(crate) cpu: f64,
    /// Largest `VmHWM` seen in the process or any descendant, KiB.
    pub(crate) peak_rss_kib: u64,
    /// User + system CPU each of the `servers` used over the run, seconds.
    pub(crate) server_cpu: Vec<f64>,
    /// CPU the rest of the machine used meanwhile (other builds, the harness's
    /// polling), seconds: how noisy the run was.
    pub(crate) other_cpu: f64,
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

fn drain(pipe: Option<impl Read>) -> (String, Instant) {
    let mut out = Vec::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_end(&mut out);
    }
    (String::from_utf8_lossy(&out).into_owned(), Instant::now())
}

/// Runs `cmd` to completion, sampling it as the module docs say, and the CPU
/// the processes `servers` used meanwhile.
pub(crate) fn run_measured(mut cmd: Command, servers: &[u32], tck: f64) -> Res<Measured> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let per_server = || servers.iter().map(|&p| ticks(&[p])).collect::<Vec<_>>();
    let servers_before = per_server();
    let busy_before = machine_busy_ticks();
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    let pid = child.id();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_reader = thread::spawn(move || drain(stdout));
    let err_reader = thread::spawn(move || drain(stderr));

    let mut peak = 0;
    let mut tree = Vec::new();
    let mut last_ticks = 0;
    let exited_at = loop {
        match stat(pid) {
            Some(st) if st.state == b'Z' || st.state == b'X' => {
                last_ticks = st.ticks + st.child_ticks;
                break Instant::now();
            }
            Some(st) => {
                last_ticks = st.ticks + st.child_ticks;
                peak = peak.max(vm_hwm_kib(pid));
                tree.clear();
                descendants(pid, &mut tree);
                for &p in &tree {
                    peak = peak.max(vm_hwm_kib(p));
                }
            }
            None => break Instant::now(), // already reaped: keep the last sample
        }
        thread::sleep(POLL);
    };
    let servers_after = per_server();
    let busy = machine_busy_ticks().saturating_sub(busy_before);
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {:?}: {e}", cmd.get_program()))?;
    let (stdout, out_closed) = out_reader
        .join()
        .map_err(|_| "stdout reader panicked".to_owned())?;
    let (stderr, err_closed) = err_reader
        .join()
        .map_err(|_| "stderr reader panicked".to_owned())?;
    // Both pipes close when the process exits, up to a poll before we see the zombie.
    let end = out_closed.max(err_closed).min(exited_at);
    let server_ticks: Vec<u64> = servers_after
        .iter()
        .zip(&servers_before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let servers_ticks: u64 = server_ticks.iter().sum();
    Ok(Measured {
        wall: end.duration_since(start).as_secs_f64(),
        cpu: last_ticks as f64 / tck,
        peak_rss_kib: peak,
        server_cpu: server_ticks.iter().map(|&t| t as f64 / tck).collect(),
        other_cpu: busy.saturating_sub(servers_ticks + last_ticks) as f64 / tck,
        status,
        stdout,
        stderr,
    })
}
