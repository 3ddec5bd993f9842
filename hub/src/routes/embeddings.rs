//! `POST /v1/embeddings`: the OpenAI-compatible embeddings door, for RAG pipelines and anything else that
//! turns text into vectors. The purpose comes from `x-causeway-purpose` or `defaults.purpose`; the texts go
//! through the governed embedding path ([`crate::embed`]): guarded, budgeted and audited like every call.
//! `encoding_format: "base64"` returns each vector as base64 of its little-endian 32-bit floats, as OpenAI
//! does; token arrays as `input` are refused (the hub guards text).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use causeway_contract::openai::{
    CausewayExtension, Embedding, EmbeddingInput, EmbeddingUsage, EmbeddingVector,
    EmbeddingsRequest, EmbeddingsResponse,
};

use super::AUDIT_ID_HEADER;
use super::extract::{Authenticated, JsonBody, call_meta, declared_purpose};
use crate::embed::{EmbedRequest, EmbedResponse, embed};
use crate::error::{ApiError, HubError};
use crate::state::AppState;

fn inputs(input: EmbeddingInput) -> Result<Vec<String>, HubError> {
    match input {
        EmbeddingInput::Text(text) => Ok(vec![text]),
        EmbeddingInput::Texts(texts) => Ok(texts),
        EmbeddingInput::Tokens(_) => Err(HubError::InvalidRequest(
            "`input` must be a string or a list of strings; token arrays are not supported (the hub guards text)"
                .to_owned(),
        )),
    }
}

/// The answer in OpenAI's shape, vectors as numbers or base64.
fn answer(answer: EmbedResponse, base64: bool) -> EmbeddingsResponse {
    let data = answer
        .vectors
        .into_iter()
        .enumerate()
        .map(|(i, vector)| Embedding {
            object: "embedding".to_owned(),
            index: u32::try_from(i).unwrap_or(u32::MAX),
            embedding: if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                EmbeddingVector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                EmbeddingVector::Float(vector)
            },
        })
        .collect();
    EmbeddingsResponse {
        object: "list".to_owned(),
        data,
        model: answer.model,
        usage: EmbeddingUsage {
            prompt_tokens: answer.usage.input_tokens,
            total_tokens: answer.usage.input_tokens,
        },
        causeway: CausewayExtension {
            audit_id: answer.audit_id.to_string(),
            development_model: answer.development_model,
            guards: answer.guards,
        },
    }
}

/// OpenAI-compatible embeddings through the governed path.
pub async fn embeddings_create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Authenticated(caller): Authenticated,
    JsonBody(request): JsonBody<EmbeddingsRequest>,
) -> Result<Response, ApiError> {
    let purpose = declared_purpose(&state, &headers)?;
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(HubError::InvalidRequest(format!(
                "`encoding_format` `{}` is not supported; use `float` or `base64`",
                super::extract::shown(other)
            ))
            .into());
        }
    };
    let native = EmbedRequest {
        model: request.model,
        purpose,
        inputs: inputs(request.input)?,
        dimensions: request.dimensions,
    };
    let meta = call_meta(&headers, &state, caller, "embeddings")?;
    let result = embed(&state, meta, native).await?;
    let audit_id = result.audit_id;
    let mut response = Json(answer(result, base64)).into_response();
    if let Ok(id) = HeaderValue::from_str(&audit_id.to_string()) {
        response.headers_mut().insert(AUDIT_ID_HEADER, id);
    }
    Ok(response)
}
