//! Prometheus metrics for `GET /metrics`. Labels carry routes, codes, outcomes, model aliases and guard kinds,
//! never users, prompts or values.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    outcome: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    model: String,
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuardLabels {
    stage: String,
    kind: String,
    action: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs .. ~100 s
    Histogram::new(exponential_buckets(0.0001, 2.5, 16))
}

/// The hub's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabel>,
    calls: Family<CallLabels, Counter>,
    tokens: Family<TokenLabels, Counter>,
    guard_events: Family<GuardLabels, Counter>,
    audit_failures: Counter,
    policy_reloads: Family<ResultLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("causeway");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        let http_duration: HistogramFamily<RouteLabel> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request duration by route",
            http_duration.clone(),
        );
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "governed_calls",
            "Governed model calls by outcome and model alias",
            calls.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "model_tokens",
            "Model tokens by model alias and direction",
            tokens.clone(),
        );
        let guard_events = Family::<GuardLabels, Counter>::default();
        registry.register(
            "guard_findings",
            "Guard findings by stage, kind and action",
            guard_events.clone(),
        );
        let audit_failures = Counter::default();
        registry.register(
            "audit_write_failures",
            "Audit appends that failed (each one refused a call)",
            audit_failures.clone(),
        );
        let policy_reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy reloads by result (applied, or refused because the new set failed validation)",
            policy_reloads.clone(),
        );
        Self {
            registry,
            http_requests,
            http_duration,
            calls,
            tokens,
            guard_events,
            audit_failures,
            policy_reloads,
        }
    }

    /// Counts one HTTP request.
    pub fn http(&self, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabel {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts one governed call outcome.
    pub fn call(&self, outcome: &str, model: &str, input_tokens: u32, output_tokens: u32) {
        self.calls
            .get_or_create(&CallLabels {
                outcome: outcome.to_owned(),
                model: model.to_owned(),
            })
            .inc();
        for (direction, count) in [("input", input_tokens), ("output", output_tokens)] {
            if count > 0 {
                self.tokens
                    .get_or_create(&TokenLabels {
                        model: model.to_owned(),
                        direction: direction.to_owned(),
                    })
                    .inc_by(u64::from(count));
            }
        }
    }

    /// Counts guard findings.
    pub fn guard(&self, stage: &str, kind: &str, action: &str, count: u32) {
        self.guard_events
            .get_or_create(&GuardLabels {
                stage: stage.to_owned(),
                kind: kind.to_owned(),
                action: action.to_owned(),
            })
            .inc_by(u64::from(count));
    }

    /// Counts a failed audit append.
    pub fn audit_failure(&self) {
        self.audit_failures.inc();
    }

    /// Counts a policy reload: `applied` or `refused`.
    pub fn policy_reload(&self, result: &str) {
        self.policy_reloads
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
