//! The policy bundle in force, and its reload without a restart.
//!
//! Constraints:
//! - A bundle is swapped in whole or not at all: a directory whose files fail any check (catalog, purposes,
//!   schema, strict Cedar validation, `@id`s) is refused with the reason logged and counted, and the bundle in
//!   force stays. A half-written set of files is just another set that fails, or one that is picked up once
//!   it is complete.
//! - A call takes one snapshot of the bundle when it arrives ([`PolicyStore::current`]) and uses it for every
//!   decision and for the policy hash on its audit records, so a reload mid-call cannot mix two bundles.
//! - Reloads happen when the files' content changes (checked every `policy.reload_secs`) and on `SIGHUP`.
//!   The bundle compiled into the binary never changes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use causeway_policy::{PolicyBundle, PolicyError, PolicySources};

use crate::metrics::Metrics;

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The files are the bundle in force (or a set already refused).
    Unchanged,
    /// A new bundle is in force.
    Applied {
        /// Its hash.
        hash: String,
    },
}

/// The bundle in force, swappable.
#[derive(Debug)]
pub struct PolicyStore {
    current: RwLock<Arc<PolicyBundle>>,
    dir: Option<PathBuf>,
    /// The hash of the last set refused, so an unchanged broken set is not re-validated and re-logged.
    refused: Mutex<Option<String>>,
}

impl PolicyStore {
    /// A store holding `bundle`, loaded from `dir` (`None`: the embedded bundle, which never reloads).
    pub fn new(bundle: PolicyBundle, dir: Option<PathBuf>) -> Self {
        Self {
            current: RwLock::new(Arc::new(bundle)),
            dir,
            refused: Mutex::new(None),
        }
    }

    /// The bundle in force now.
    pub fn current(&self) -> Arc<PolicyBundle> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The directory the bundle is reloaded from, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Re-reads the directory and swaps in its bundle if it changed and validates. On error the bundle in
    /// force stays.
    pub fn reload(&self) -> Result<ReloadOutcome, PolicyError> {
        let Some(dir) = &self.dir else {
            return Ok(ReloadOutcome::Unchanged);
        };
        let sources = PolicySources::read_dir(dir)?;
        let hash = sources.hash();
        if hash == self.current().hash() {
            return Ok(ReloadOutcome::Unchanged);
        }
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        if refused.as_deref() == Some(hash.as_str()) {
            return Ok(ReloadOutcome::Unchanged);
        }
        match PolicyBundle::from_sources(&sources) {
            Ok(bundle) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(bundle);
                *refused = None;
                Ok(ReloadOutcome::Applied { hash })
            }
            Err(err) => {
                *refused = Some(hash);
                Err(err)
            }
        }
    }

    /// Reloads, logs the result and counts it.
    pub fn reload_and_report(&self, metrics: &Metrics, trigger: &str) {
        match self.reload() {
            Ok(ReloadOutcome::Unchanged) => {}
            Ok(ReloadOutcome::Applied { hash }) => {
                metrics.policy_reload("applied");
                tracing::info!(policy_hash = %hash, trigger, "policy bundle reloaded");
            }
            Err(err) => {
                metrics.policy_reload("refused");
                tracing::error!(error = %err, trigger, "policy reload refused; the bundle in force stays");
            }
        }
    }
}

/// Watches the policy directory: every `interval` (when not zero) and on `SIGHUP`. Ends when the store is
/// dropped.
pub async fn watch(store: Weak<PolicyStore>, metrics: Weak<Metrics>, interval: Duration) {
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut ticker = (!interval.is_zero()).then(|| {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker
    });
    loop {
        let tick = async {
            match ticker.as_mut() {
                Some(t) => {
                    t.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<()>();
        let trigger = tokio::select! {
            () = tick => "poll",
            () = hup => "sighup",
        };
        let (Some(store), Some(metrics)) = (store.upgrade(), metrics.upgrade()) else {
            return;
        };
        // Reading and validating files is blocking work; keep it off the request threads.
        let _ =
            tokio::task::spawn_blocking(move || store.reload_and_report(&metrics, trigger)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_policy::files;

    fn policy_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let sources = PolicySources::embedded();
        std::fs::create_dir_all(dir.path().join("cedar")).unwrap();
        for (name, text) in [
            (files::CATALOG, &sources.catalog),
            (files::PURPOSES, &sources.purposes),
            (files::SCHEMA, &sources.schema),
            (files::POLICIES, &sources.policies),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    /// Appends `text` to the policy file as a deployment does: the new file is written beside it and renamed
    /// over it, so a watcher never reads a half-written file.
    fn append_policy(dir: &Path, text: &str) {
        let path = dir.join(files::POLICIES);
        let mut policies = std::fs::read_to_string(&path).unwrap();
        policies.push_str(text);
        let staged = path.with_extension("cedar.new");
        std::fs::write(&staged, policies).unwrap();
        std::fs::rename(staged, path).unwrap();
    }

    #[test]
    fn a_broken_set_is_refused_and_a_fixed_one_applied() {
        let dir = policy_dir();
        let store = PolicyStore::new(
            PolicyBundle::load_dir(dir.path()).unwrap(),
            Some(dir.path().to_path_buf()),
        );
        let before = store.current().hash().to_owned();
        assert_eq!(store.reload().unwrap(), ReloadOutcome::Unchanged);

        append_policy(
            dir.path(),
            "\n@id(\"typo\")\nforbid(principal, action, resource) when { context.purpos == \"x\" };\n",
        );
        let err = store.reload().unwrap_err().to_string();
        assert!(err.starts_with("cedar policies: policy `typo`"), "{err}");
        assert_eq!(store.current().hash(), before);
        // The same broken set is not validated again.
        assert_eq!(store.reload().unwrap(), ReloadOutcome::Unchanged);

        let path = dir.path().join(files::POLICIES);
        let fixed = std::fs::read_to_string(&path)
            .unwrap()
            .replace("context.purpos ==", "context.purpose ==");
        std::fs::write(&path, fixed).unwrap();
        let outcome = store.reload().unwrap();
        assert_eq!(
            outcome,
            ReloadOutcome::Applied {
                hash: store.current().hash().to_owned()
            }
        );
        assert_ne!(store.current().hash(), before);
        assert!(store.current().policy_ids().contains(&"typo".to_owned()));
    }

    #[tokio::test]
    async fn the_watcher_picks_up_a_change() {
        let dir = policy_dir();
        let store = Arc::new(PolicyStore::new(
            PolicyBundle::load_dir(dir.path()).unwrap(),
            Some(dir.path().to_path_buf()),
        ));
        let metrics = Arc::new(Metrics::new());
        crate::spawn(watch(
            Arc::downgrade(&store),
            Arc::downgrade(&metrics),
            Duration::from_millis(10),
        ));
        let before = store.current().hash().to_owned();
        append_policy(
            dir.path(),
            "\n@id(\"extra\")\nforbid(principal, action, resource) when { context.ou == \"retired\" };\n",
        );
        // Polls until the watcher has swapped the bundle and counted the reload (it counts on its blocking
        // thread just after the swap); each round waits for at least one more tick.
        let applied = "causeway_policy_reloads_total{result=\"applied\"} 1";
        let mut rounds = 0;
        while store.current().hash() == before || !metrics.render().unwrap().contains(applied) {
            rounds += 1;
            assert!(rounds < 10_000, "the watcher never reloaded");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(store.current().policy_ids().contains(&"extra".to_owned()));
    }
}
