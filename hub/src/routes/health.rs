//! `GET /healthz` and `GET /metrics`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{ApiError, HubError};
use crate::state::AppState;

/// Healthy when the audit store can take writes: a hub that cannot audit cannot answer.
pub async fn health_show(
    State(state): State<Arc<AppState>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state
        .audit
        .health()
        .await
        .map_err(|e| HubError::AuditUnavailable(e.to_string()))?;
    Ok(Json(json!({
        "status": "ok",
        "audit_store": state.audit.kind(),
        "identity_mode": if state.config.identity.mode == crate::config::IdentityMode::Dev { "dev" } else { "oidc" },
        "catalog_version": state.policy.current().catalog().version,
        "policy_hash": state.policy.current().hash(),
        "guard_profile": format!("{}@{}", state.guard.profile().name, state.guard.profile().version),
    })))
}

/// Prometheus text exposition.
pub async fn metrics_show(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let text = state
        .metrics
        .render()
        .map_err(|e| HubError::Internal(format!("cannot encode metrics: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
