//! Start to ready: how long `causeway-hub serve` takes on the embedded default, from the moment it is
//! started until `GET /healthz` answers 200, and how much CPU it spent getting there. This is the share of a
//! cold start (a Lambda instance, a new container, a restart after a deploy) that is the hub's own.
//!
//! Each start gets a directory holding only a `causeway.toml` with `[server] listen`, so the hub runs its
//! defaults: development identity, the built-in policies and guard profile, the local model and the embedded
//! audit store in `./data`. A *fresh* start finds no data directory (it creates the store and generates its
//! keys); a *restart* starts again in the directory the fresh start left (it opens what is there).
//!
//! The poller opens a TCP connection to the hub's port and sends one HTTP/1.1 request every millisecond
//! until one is answered: no client process per attempt, so polling costs the machine next to nothing. The
//! CPU figure is the hub's own: the sum over its threads of the time each spent on a CPU
//! (`/proc/<pid>/task/<tid>/schedstat`, nanoseconds), read the moment it is ready.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;

/// What to start, and how often.
#[derive(Debug, Clone)]
pub struct StartupPlan {
    /// The `causeway-hub` binary.
    pub hub_bin: PathBuf,
    /// Where the per-start directories go (emptied first, removed after).
    pub scratch: PathBuf,
    /// Fresh starts, each followed by a restart in the same directory.
    pub runs: u32,
    /// Pin the hub to this CPU (`taskset -c`), when given.
    pub cpu: Option<u32>,
    /// First port; run `i` listens on `port + i`.
    pub port: u16,
}

/// One start.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Start {
    /// From spawning the process to the first 200 from `/healthz`, in milliseconds.
    pub ready_ms: f64,
    /// CPU time the hub's threads had used when it answered, in milliseconds.
    pub cpu_ms: f64,
}

/// Percentiles of one kind of start.
#[derive(Debug, Clone, Serialize)]
pub struct StartSummary {
    /// Every start, in order.
    pub starts: Vec<Start>,
    /// Median of `ready_ms`.
    pub ready_p50_ms: f64,
    /// Smallest `ready_ms`.
    pub ready_min_ms: f64,
    /// Largest `ready_ms`.
    pub ready_max_ms: f64,
    /// Median of `cpu_ms`.
    pub cpu_p50_ms: f64,
}

/// Both kinds of start, and the machine's load around them.
#[derive(Debug, Clone, Serialize)]
pub struct StartupResult {
    /// Starts with no data directory.
    pub fresh: StartSummary,
    /// Starts on the data directory a fresh start left.
    pub restart: StartSummary,
    /// One-minute load average before the first start.
    pub load_before: f64,
    /// One-minute load average after the last.
    pub load_after: f64,
}

/// Runs the plan.
///
/// # Errors
///
/// The hub cannot be started, exits before it is ready, or is not ready within a minute.
pub fn measure(plan: &StartupPlan) -> anyhow::Result<StartupResult> {
    if plan.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let load_before = crate::procfs::load_average();
    std::fs::create_dir_all(&plan.scratch)
        .with_context(|| format!("creating `{}`", plan.scratch.display()))?;
    let mut fresh = Vec::new();
    let mut restart = Vec::new();
    for run in 0..plan.runs {
        let port = plan
            .port
            .checked_add(u16::try_from(run)?)
            .context("port out of range")?;
        let dir = plan.scratch.join(format!("start-{run}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("emptying `{}`", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("causeway.toml"),
            format!("[server]\nlisten = \"127.0.0.1:{port}\"\n"),
        )?;
        fresh.push(start_once(plan, &dir, port)?);
        restart.push(start_once(plan, &dir, port)?);
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing `{}`", dir.display()))?;
    }
    Ok(StartupResult {
        fresh: summarize(fresh),
        restart: summarize(restart),
        load_before,
        load_after: crate::procfs::load_average(),
    })
}

fn summarize(starts: Vec<Start>) -> StartSummary {
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let ready: Vec<f64> = starts.iter().map(|s| s.ready_ms).collect();
    StartSummary {
        ready_p50_ms: median(ready.clone()),
        ready_min_ms: ready.iter().copied().fold(f64::INFINITY, f64::min),
        ready_max_ms: ready.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        cpu_p50_ms: median(starts.iter().map(|s| s.cpu_ms).collect()),
        starts,
    }
}

/// Stops the hub when dropped, whatever happened.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // Best effort: the process may already be gone.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_once(plan: &StartupPlan, dir: &Path, port: u16) -> anyhow::Result<Start> {
    let mut command = match plan.cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(&plan.hub_bin);
            c
        }
        None => Command::new(&plan.hub_bin),
    };
    command
        .args(["serve", "--config", "causeway.toml"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    let mut hub = Running(
        command
            .spawn()
            .with_context(|| format!("starting `{}`", plan.hub_bin.display()))?,
    );
    loop {
        if healthy(addr) {
            let ready_ms = started.elapsed().as_secs_f64() * 1e3;
            let cpu_ms = cpu_ns(hub.0.id()) as f64 / 1e6;
            return Ok(Start { ready_ms, cpu_ms });
        }
        if let Some(status) = hub.0.try_wait()? {
            bail!(
                "the hub exited before it was ready ({status}); run it by hand in `{}` to see why",
                dir.display()
            );
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the hub was not ready within a minute");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// True when `GET /healthz` on `addr` is answered with 200.
fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_nodelay(true);
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// CPU time of every thread of `pid` so far, in nanoseconds (first field of each thread's `schedstat`).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The result as a Markdown table.
#[must_use]
pub fn markdown(result: &StartupResult) -> String {
    let row = |name: &str, s: &StartSummary| {
        format!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            s.starts.len(),
            s.ready_p50_ms,
            s.ready_min_ms,
            s.ready_max_ms,
            s.cpu_p50_ms
        )
    };
    format!(
        "| start | runs | ready p50 (ms) | min | max | CPU to ready p50 (ms) |\n|---|---:|---:|---:|---:|---:|\n{}{}\nload average {:.2} → {:.2}\n",
        row("fresh data directory", &result.fresh),
        row("restart", &result.restart),
        result.load_before,
        result.load_after
    )
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader};
    use std::net::TcpListener;

    use super::*;

    /// A server on a free port that answers every request with `status_line`.
    fn server(status_line: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut stream = stream;
                let _ = stream.write_all(
                    format!("{status_line}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                );
            }
        });
        addr
    }

    #[test]
    fn ready_means_a_200_from_healthz() {
        assert!(healthy(server("HTTP/1.1 200 OK")));
        assert!(!healthy(server("HTTP/1.1 503 Service Unavailable")));
        // Nothing listening.
        let free = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(!healthy(free));
    }

    #[test]
    fn summaries_take_the_median_and_the_range() {
        let starts = [30.0, 10.0, 20.0].map(|ms| Start {
            ready_ms: ms,
            cpu_ms: ms / 2.0,
        });
        let summary = summarize(starts.to_vec());
        assert_eq!(summary.ready_p50_ms, 20.0);
        assert_eq!(summary.ready_min_ms, 10.0);
        assert_eq!(summary.ready_max_ms, 30.0);
        assert_eq!(summary.cpu_p50_ms, 10.0);
        let table = markdown(&StartupResult {
            fresh: summary.clone(),
            restart: summary,
            load_before: 0.5,
            load_after: 0.25,
        });
        assert!(table.contains("| fresh data directory | 3 | 20.0 | 10.0 | 30.0 | 10.0 |"));
        assert!(table.contains("load average 0.50 → 0.25"));
    }

    #[test]
    fn no_runs_is_an_error() {
        let plan = StartupPlan {
            hub_bin: PathBuf::from("/nonexistent"),
            scratch: std::env::temp_dir(),
            runs: 0,
            cpu: None,
            port: 1,
        };
        let err = measure(&plan).unwrap_err().to_string();
        assert!(err.contains("--runs"), "{err}");
    }
}
