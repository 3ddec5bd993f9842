//! The hub's state: everything a request needs, built once at start-up (`crate::startup::build_state`) and
//! shared by every door and stage.

use std::collections::HashMap;
use std::sync::Arc;

use causeway_audit::AuditSink;
use causeway_contract::catalog::ProviderKind;
use causeway_guard::GuardEngine;

use crate::auth::JwtVerifier;
use crate::auth::workload::WorkloadVerifier;
use crate::budget::Budgets;
use crate::config::HubConfig;
use crate::invoke::ModelInvoker;
use crate::metrics::Metrics;
use crate::policy::PolicyStore;

/// Everything a request needs, built once at start-up.
#[derive(Debug)]
pub struct AppState {
    /// The validated configuration.
    pub config: HubConfig,
    /// Catalog, purposes and Cedar policies in force; reloaded from `policy.dir` without a restart.
    pub policy: Arc<PolicyStore>,
    /// The guard engine with its profile.
    pub guard: Arc<GuardEngine>,
    /// Verifies bearer tokens.
    pub verifier: Arc<JwtVerifier>,
    /// Verifies workload identities and maps them to registered spokes.
    pub workload: Arc<WorkloadVerifier>,
    /// The audit store.
    pub audit: Arc<dyn AuditSink>,
    /// The compliance console at `/console`, when `[console]` enables it.
    pub console: Option<Arc<causeway_console::Console>>,
    /// Budgets.
    pub budgets: Arc<Budgets>,
    /// Per-user and per-workload admission rate limits, ahead of policy and the guard.
    pub admission: Arc<crate::admission::Admission>,
    /// Repeated refusals, counted instead of recorded one by one.
    pub refusals: Arc<crate::collapse::Collapser>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The model providers this hub has (the local development model when enabled, Bedrock and the
    /// OpenAI-compatible upstream when configured).
    pub providers: HashMap<ProviderKind, Arc<dyn ModelInvoker>>,
}

impl AppState {
    /// The invoker serving a provider, if this hub has it.
    pub fn invoker_for(&self, provider: ProviderKind) -> Option<Arc<dyn ModelInvoker>> {
        self.providers.get(&provider).cloned()
    }
}
