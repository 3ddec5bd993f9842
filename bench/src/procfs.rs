//! Process-tree accounting from `/proc`: CPU time (user + system, reaped children included) and peak
//! resident memory (`VmHWM`) of a process and all its descendants, so LiteLLM's and Portkey's worker
//! processes count against them.

use std::collections::HashMap;

use anyhow::Context as _;

/// Fields of `/proc/<pid>/stat` after the command name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    ppid: u32,
    /// utime + stime + cutime + cstime, in clock ticks.
    ticks: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may hold spaces, so fields
/// are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17); index = field - 3.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        ppid: u32::try_from(field(4)?).ok()?,
        ticks: field(14)? + field(15)? + field(16)? + field(17)?,
    })
}

/// `VmHWM` from `/proc/<pid>/status`, in KiB.
fn parse_hwm_kib(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn all_stats() -> HashMap<u32, Stat> {
    let mut stats = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return stats;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may exit between listing and reading; it simply drops out.
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            && let Some(stat) = parse_stat(&text)
        {
            stats.insert(pid, stat);
        }
    }
    stats
}

/// `root` and every live descendant.
pub fn tree(root: u32) -> Vec<u32> {
    let stats = all_stats();
    let mut members = vec![root];
    let mut i = 0;
    while let Some(&parent) = members.get(i) {
        members.extend(
            stats
                .iter()
                .filter(|(_, s)| s.ppid == parent)
                .map(|(&pid, _)| pid),
        );
        i += 1;
    }
    members.retain(|pid| stats.contains_key(pid));
    members
}

/// CPU seconds used so far by `root`'s tree (children it has reaped included).
pub fn cpu_seconds(root: u32, ticks_per_second: u64) -> f64 {
    let stats = all_stats();
    let ticks: u64 = tree(root)
        .iter()
        .filter_map(|pid| stats.get(pid))
        .map(|s| s.ticks)
        .sum();
    // Tick counts stay far below 2^52.
    ticks as f64 / ticks_per_second.max(1) as f64
}

/// Sum of `VmHWM` over `root`'s live tree, in MiB: an upper bound on the tree's peak, since members may peak
/// at different times.
pub fn peak_rss_mib(root: u32) -> f64 {
    let kib: u64 = tree(root)
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|t| parse_hwm_kib(&t))
        .sum();
    kib as f64 / 1024.0
}

/// Clock ticks per second (`getconf CLK_TCK`), read once.
pub fn ticks_per_second() -> anyhow::Result<u64> {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("running `getconf CLK_TCK`")?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("reading `getconf CLK_TCK`")
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_a_name_with_spaces() {
        let text = "4242 (node (worker) x) S 17 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 50 7 3 20 0 11 0 12345 1000000 2000 18446744073709551615";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                ppid: 17,
                ticks: 310
            })
        );
    }

    #[test]
    fn hwm_is_read_in_kib() {
        let text = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(parse_hwm_kib(text), Some(5120));
    }

    #[test]
    fn this_process_is_its_own_tree_root_and_uses_cpu_and_memory() {
        let me = std::process::id();
        assert_eq!(tree(me).first(), Some(&me));
        assert!(peak_rss_mib(me) > 0.0);
        assert!(cpu_seconds(me, ticks_per_second().unwrap()) >= 0.0);
    }
}
