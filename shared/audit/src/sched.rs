//! How the embedded store's own threads (the writer, the index thread, the WAL copier) are scheduled.
//!
//! They run under Linux's `SCHED_BATCH` policy, at the thread's own nice value. Each is woken by the
//! request threads (an append wakes the writer; an answered group wakes the index thread), and under the
//! default policy a woken thread preempts the one that woke it. On a busy core that made every record a
//! group of its own: the writer ran as soon as the first record arrived, logged and synced it, answered it
//! and slept, and the request thread it had interrupted produced the next record a moment later. Each
//! record paid a frame, an `fdatasync` and two context switches (BENCHMARKS.md, "The store's threads
//! scheduled in batches").
//!
//! A `SCHED_BATCH` thread does not preempt on wake-up: it runs when the running thread blocks or its time
//! slice ends, and by then the records that arrived meanwhile are waiting too, so one frame and one sync
//! carry them all. Its share of the CPU is unchanged (the same nice value, the same fair scheduler), and on
//! an idle core, or one whose request thread is waiting for the answer (a lone call), it runs at once.
//! Elsewhere than Linux, or when the kernel refuses the change, the threads keep the default policy.

/// Puts the calling thread under `SCHED_BATCH`, keeping its nice value; says why at debug level when
/// it cannot.
pub(crate) fn run_in_batches(thread: &str) {
    #[cfg(target_os = "linux")]
    if let Err(err) = linux::batch() {
        tracing::debug!(thread, error = %err, "the store thread keeps the default scheduling policy");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = thread;
}

#[cfg(target_os = "linux")]
mod linux {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };

    const BATCH: ThreadSchedulePolicy =
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);

    pub(super) fn batch() -> Result<(), String> {
        let nice = rustix::process::getpriority_process(None)
            .map_err(|e| format!("cannot read the thread's nice value: {e}"))?;
        // The crate sets a normal policy's nice value from a priority in 0..=99; take the one that maps to
        // the nice value the thread has, so only the policy changes.
        let same_nice = (0..=99_u8)
            .filter_map(|p| ThreadPriorityValue::try_from(p).ok())
            .map(ThreadPriority::Crossplatform)
            .find(|p| p.to_posix(BATCH).is_ok_and(|v| v == nice))
            .ok_or_else(|| format!("no priority keeps the nice value {nice}"))?;
        set_thread_priority_and_policy(thread_native_id(), same_nice, BATCH)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;

    /// The policy and nice value of the calling thread, from `/proc/thread-self/stat` (fields 41 and 19).
    fn policy_and_nice() -> (u32, i32) {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The command name (field 2) may hold spaces; fields after it are counted from its closing `)`.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        (
            fields[41 - 3].parse().unwrap(),
            fields[19 - 3].parse().unwrap(),
        )
    }

    #[test]
    fn a_store_thread_runs_in_batches_at_its_own_nice_value() {
        const SCHED_OTHER: u32 = 0;
        const SCHED_BATCH: u32 = 3;
        std::thread::spawn(|| {
            let (policy, nice) = policy_and_nice();
            assert_eq!(policy, SCHED_OTHER);
            run_in_batches("test");
            assert_eq!(policy_and_nice(), (SCHED_BATCH, nice));
        })
        .join()
        .unwrap();
        // Only the calling thread changes.
        assert_eq!(policy_and_nice().0, SCHED_OTHER);
    }

    #[test]
    fn a_niced_thread_keeps_its_nice_value() {
        std::thread::spawn(|| {
            // Raising the nice value needs no privilege.
            let nice = (rustix::process::getpriority_process(None).unwrap() + 3).min(19);
            rustix::process::setpriority_process(None, nice).unwrap();
            run_in_batches("test");
            assert_eq!(policy_and_nice(), (3, nice));
        })
        .join()
        .unwrap();
    }
}
