//! `GET /v1/models`: the aliases this caller may use, and which kind (chat or embedding) each is.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use causeway_contract::api::{ModelInfo, ModelList};

use super::extract::{Authenticated, classification, purpose_header};
use crate::error::{ApiError, HubError};
use crate::governed::visible_models;
use crate::state::AppState;

/// Lists the models the caller may use: for the purpose in `x-causeway-purpose` (or the configured default),
/// or for any purpose when neither is set.
pub async fn models_list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Authenticated(caller): Authenticated,
) -> Result<Json<ModelList>, ApiError> {
    let class = classification(&headers, &state, caller.workload.as_ref())?;
    let purpose = purpose_header(&headers)?.or_else(|| state.config.defaults.purpose.clone());
    let policy = state.policy.current();
    let purposes: Vec<String> = match purpose {
        Some(p) if policy.purposes().contains(&p) => vec![p],
        Some(p) => {
            return Err(HubError::InvalidRequest(format!(
                "unknown purpose `{}`; declare one of {}",
                super::extract::shown(&p),
                policy.purposes().allowed_list()
            ))
            .into());
        }
        None => policy.purposes().purposes.keys().cloned().collect(),
    };
    let visible: BTreeSet<String> = purposes
        .iter()
        .flat_map(|p| visible_models(&state, &caller, p, &class))
        .collect();
    let data = visible
        .into_iter()
        .filter_map(|alias| {
            policy.catalog().get(&alias).map(|entry| ModelInfo {
                id: alias.clone(),
                object: "model".to_owned(),
                owned_by: "causeway".to_owned(),
                description: entry.description.clone(),
                max_tokens: entry.max_tokens,
                kind: entry.kind,
                dimensions: entry.dimensions,
            })
        })
        .collect();
    Ok(Json(ModelList {
        object: "list".to_owned(),
        data,
    }))
}
