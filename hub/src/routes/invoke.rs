//! `POST /v1/invoke`: the native governed call.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use causeway_contract::InvokeRequest;

use super::AUDIT_ID_HEADER;
use super::extract::{Authenticated, JsonBody, call_meta};
use crate::error::ApiError;
use crate::governed;
use crate::state::AppState;

/// Runs one governed call and returns the answer with its audit id.
pub async fn invoke_create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Authenticated(caller): Authenticated,
    JsonBody(request): JsonBody<InvokeRequest>,
) -> Result<Response, ApiError> {
    let meta = call_meta(&headers, &state, caller, "invoke")?;
    let answer = governed::complete(&state, meta, request).await?;
    let audit_id = HeaderValue::from_str(&answer.audit_id.to_string()).ok();
    let mut response = Json(answer).into_response();
    if let Some(id) = audit_id {
        response.headers_mut().insert(AUDIT_ID_HEADER, id);
    }
    Ok(response)
}
