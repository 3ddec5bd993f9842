//! Extractors: the JSON body with errors that name the field, the verified caller, the request id and the
//! declared headers; and [`shown`], how a value the caller sent may appear in an error message.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{CLASSIFICATION_HEADER, DATA_CLASSIFICATIONS, PURPOSE_HEADER};
use crate::audit::{draft, refuse};
use crate::auth::workload::WorkloadError;
use crate::auth::{Caller, WorkloadIdentity, user_token};
use crate::budget::SpokeLimits;
use crate::call::{CallMeta, Refusal};
use crate::error::{ApiError, HubError};
use crate::state::AppState;
use causeway_contract::audit::Outcome;

/// A JSON body, limited to `server.max_body_bytes`, whose errors name the offending field.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(HubError::UnsupportedMediaType.into());
        }
        let limit = state.config.server.max_body_bytes;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|len| len > limit) {
            return Err(HubError::PayloadTooLarge(limit).into());
        }
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|err| {
                let too_large = err
                    .into_inner()
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some();
                if too_large {
                    HubError::PayloadTooLarge(limit)
                } else {
                    HubError::InvalidRequest("the request body could not be read".to_owned())
                }
            })?;
        let deserializer = &mut serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let path = err.path().to_string();
            // The parser's message quotes what it could not take (a whole string value, an unknown key).
            let inner = shown_detail(&err.into_inner().to_string());
            if path == "." || path == "?" || path.is_empty() {
                HubError::InvalidRequest(format!("invalid JSON body: {inner}"))
            } else {
                HubError::InvalidRequest(format!(
                    "invalid JSON at `{}`: {inner}",
                    shown_up_to(&path, SHOWN_DETAIL_CHARS)
                ))
            }
        })?;
        Ok(Self(value))
    }
}

/// The verified caller: the user from the bearer token (401 when it is missing or does not verify) and the
/// workload from IAM (401 when its proof does not verify; 403, audited, when the principal is not a registered
/// active spoke). On a call API Gateway verified with IAM authorization, `authorization` holds the SigV4
/// signature and the user's token is read from `x-causeway-user-token` instead; on any other call that header
/// is ignored.
#[derive(Debug)]
pub struct Authenticated(pub Caller);

impl FromRequestParts<Arc<AppState>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let context_arn = lambda_caller_arn(parts);
        // INVARIANT: the user token's header follows from the verified request context alone, so a client
        // cannot pick where the hub looks for it.
        let token = user_token(&parts.headers, context_arn.is_some()).map_err(HubError::from)?;
        let user = state.verifier.verify(token).await.map_err(HubError::from)?;
        tracing::Span::current().record("sub", user.sub.as_str());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match state
            .workload
            .identify(&parts.headers, context_arn.as_deref(), now)
            .await
        {
            Ok(workload) => Ok(Self(Caller { user, workload })),
            Err(WorkloadError::NotRegistered {
                principal,
                account,
                reason,
                message,
            }) => {
                // A verified principal that may not call: a deny, audited like any other.
                let caller = Caller {
                    user,
                    workload: Some(WorkloadIdentity {
                        principal,
                        spoke_account: account,
                        ou: String::new(),
                        application: String::new(),
                        allowed_models: Vec::new(),
                        limits: SpokeLimits::default(),
                        data_classification: None,
                    }),
                };
                // INVARIANT: the refusal is recorded whatever else the request got wrong: a malformed
                // classification header must not turn an audited 403 into an unaudited 400.
                let api = door_api(parts.uri.path());
                let meta = match call_meta(&parts.headers, state, caller.clone(), api) {
                    Ok(meta) => meta,
                    Err(_) => {
                        let mut headers = parts.headers.clone();
                        headers.remove(CLASSIFICATION_HEADER);
                        call_meta(&headers, state, caller, api)?
                    }
                };
                let event = draft(state, &meta, "", "");
                let refusal = Refusal {
                    outcome: Outcome::Denied,
                    reasons: vec![reason.to_owned()],
                    error: HubError::Forbidden(message),
                };
                Err(refuse(state, &meta, event, refusal).await)
            }
            Err(err) => Err(HubError::from(err).into()),
        }
    }
}

/// The audit `api` of the door at `path`, as its handler names it in [`call_meta`], for a call refused
/// before it reached the handler. Paths of no governed door (`/v1/models`) are `models`.
fn door_api(path: &str) -> &'static str {
    match path {
        "/v1/invoke" => "invoke",
        "/v1/chat/completions" => "chat_completions",
        "/v1/responses" => "responses",
        "/v1/messages" => "messages",
        _ if path.starts_with("/model/") && path.ends_with("/converse") => "bedrock_converse",
        _ if path.starts_with("/model/") && path.ends_with("/converse-stream") => {
            "bedrock_converse_stream"
        }
        _ => "models",
    }
}

/// The caller ARN API Gateway verified with IAM authorization, when the hub runs on Lambda behind it.
fn lambda_caller_arn(parts: &Parts) -> Option<String> {
    use lambda_http::request::RequestContext;
    match parts.extensions.get::<RequestContext>()? {
        RequestContext::ApiGatewayV1(ctx) => ctx.identity.user_arn.clone(),
        RequestContext::ApiGatewayV2(ctx) => {
            ctx.authorizer.as_ref()?.iam.as_ref()?.user_arn.clone()
        }
        _ => None,
    }
    .filter(|arn| !arn.is_empty())
}

pub use crate::error::{SHOWN_CHARS, SHOWN_DETAIL_CHARS, shown, shown_detail, shown_up_to};

/// The request id set by the request-id layer.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The declared purpose header, if present and readable.
pub fn purpose_header(headers: &HeaderMap) -> Result<Option<String>, HubError> {
    match headers.get(PURPOSE_HEADER) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|v| Some(v.trim().to_owned()))
            .map_err(|_| {
                HubError::InvalidRequest(format!("header `{PURPOSE_HEADER}` must be ASCII"))
            }),
    }
}

/// The declared purpose of a call on a door whose body has no field for it: the `x-causeway-purpose`
/// header, or `defaults.purpose`; a 400 naming the allowed purposes when neither is set.
pub fn declared_purpose(state: &AppState, headers: &HeaderMap) -> Result<String, HubError> {
    purpose_header(headers)?
        .or_else(|| state.config.defaults.purpose.clone())
        .ok_or_else(|| {
            HubError::InvalidRequest(format!(
                "declare the purpose of this call in header `x-causeway-purpose`; one of {}",
                state.policy.current().purposes().allowed_list()
            ))
        })
}

/// The rank of a data classification, lowest first; `None` for a name that is not one.
pub fn classification_rank(name: &str) -> Option<usize> {
    name.parse::<super::DataClassification>()
        .ok()
        .map(|c| c as usize)
}

/// The data classification of a call: the floor is the calling spoke's registered classification, or else
/// `defaults.data_classification`; the `x-causeway-data-classification` header may raise it, never lower it
/// (a lower declaration is ignored, so leaving the header out or sending `public` cannot evade a policy
/// written for the floor).
pub fn classification(
    headers: &HeaderMap,
    state: &AppState,
    workload: Option<&WorkloadIdentity>,
) -> Result<String, HubError> {
    let floor = workload
        .and_then(|w| w.data_classification.clone())
        .unwrap_or_else(|| state.config.defaults.data_classification.clone());
    let Some(value) = headers.get(CLASSIFICATION_HEADER) else {
        return Ok(floor);
    };
    let value = value
        .to_str()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some(declared) = classification_rank(&value) else {
        return Err(HubError::InvalidRequest(format!(
            "header `{CLASSIFICATION_HEADER}` must be one of {}",
            DATA_CLASSIFICATIONS
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    if classification_rank(&floor).is_some_and(|f| declared <= f) {
        Ok(floor)
    } else {
        Ok(value)
    }
}

/// The metadata of a governed call arriving now.
pub fn call_meta(
    headers: &HeaderMap,
    state: &AppState,
    caller: Caller,
    api: &'static str,
) -> Result<CallMeta, HubError> {
    let data_classification = classification(headers, state, caller.workload.as_ref())?;
    Ok(CallMeta {
        call_id: Uuid::now_v7(),
        request_id: request_id(headers),
        api,
        caller,
        data_classification,
        policy: state.policy.current(),
        started: Instant::now(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use causeway_audit::RecordFilter;
    use causeway_contract::audit::Outcome;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::{door_api, shown};
    use crate::app::{Overrides, build_state, router};
    use crate::config::HubConfig;
    use causeway_contract::dev::DevKey;

    #[tokio::test]
    async fn an_unregistered_principal_cannot_dodge_the_audit_with_a_bad_header() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = HubConfig::parse(
            "hub.toml",
            r#"
[identity]
require_workload = true
server_id = "hub-test"

[[spokes]]
principal = "arn:aws:iam::111122223333:role/causeway-invoker"
account = "111122223333"
applications = ["claims-triage"]
"#,
        )
        .unwrap();
        config.data_dir.0 = dir.path().to_path_buf();
        let state = Arc::new(
            build_state(config, Overrides::default(), false)
                .await
                .unwrap(),
        );
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let token = DevKey::load_or_create(dir.path())
            .unwrap()
            .mint("mallory", &[], now, 300)
            .unwrap();
        // A caller AWS verified, that no spoke registered, sends a classification the hub does not know.
        let event = include_str!("../../tests/data/function_url_iam_invoke.json")
            .replace("__TOKEN__", &token)
            .replace(
                "__CALLER_ARN__",
                "arn:aws:sts::999988887777:assumed-role/causeway-invoker/intruder",
            );
        let mut request = lambda_http::request::from_str(&event).unwrap();
        request.headers_mut().insert(
            super::CLASSIFICATION_HEADER,
            axum::http::HeaderValue::from_static("not-a-level"),
        );
        let response = router(state.clone()).oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        // Refused as the unregistered principal it is, and recorded.
        assert_eq!(status, 403, "{body}");
        let audit_id = body["error"]["audit_id"].as_str().unwrap().to_owned();
        let store = causeway_audit::EmbeddedStore::open(state.config.audit_path()).unwrap();
        let records = store.query(&RecordFilter::default()).unwrap();
        assert_eq!(records.len(), 1);
        let record = &records[0].0.event;
        assert_eq!(record.id.to_string(), audit_id);
        assert_eq!(record.outcome, Outcome::Denied);
        assert_eq!(
            record.reasons,
            vec!["workload:unknown_principal".to_owned()]
        );
        assert_eq!(
            record.workload_principal.as_deref(),
            Some("arn:aws:iam::999988887777:role/causeway-invoker")
        );
    }

    #[tokio::test]
    async fn a_long_value_sent_by_a_caller_is_not_echoed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = HubConfig::default();
        config.data_dir.0 = dir.path().to_path_buf();
        let state = Arc::new(
            build_state(config, Overrides::default(), false)
                .await
                .unwrap(),
        );
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let token = DevKey::load_or_create(dir.path())
            .unwrap()
            .mint("alice", &["engineers".to_owned()], now, 300)
            .unwrap();
        let filler = "A".repeat(4096);
        let send = |path: String, body: String| {
            let request = axum::http::Request::post(path)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .header("x-causeway-purpose", "evaluation")
                .body(axum::body::Body::from(body))
                .unwrap();
            let router = router(state.clone());
            async move {
                let response = router.oneshot(request).await.unwrap();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                String::from_utf8_lossy(&body).into_owned()
            }
        };
        let answers = [
            // A model id in the path, a value the parser quotes, a value a door names back.
            send(
                format!("/model/{filler}/converse"),
                r#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#.to_owned(),
            )
            .await,
            send(
                "/v1/invoke".to_owned(),
                format!(r#"{{"model":"local-dev","purpose":"evaluation","messages":"{filler}"}}"#),
            )
            .await,
            send(
                "/v1/chat/completions".to_owned(),
                format!(
                    r#"{{"model":"local-dev","messages":[{{"role":"{filler}","content":"hi"}}]}}"#
                ),
            )
            .await,
        ];
        for answer in answers {
            assert!(answer.contains("AAAA…"), "{answer}");
            assert!(answer.len() < 1024, "{} bytes: {answer}", answer.len());
        }
    }

    #[test]
    fn a_callers_value_in_an_error_message_is_bounded_and_plain() {
        assert_eq!(shown("claude-haiku"), "claude-haiku");
        let long = "m".repeat(2048);
        let cut = shown(&long);
        assert_eq!(cut.chars().count(), super::SHOWN_CHARS + 1);
        assert!(cut.ends_with('…'));
        // Line breaks and control characters would forge log lines; bidi overrides and zero-width
        // characters would make the message read as something else; a backtick would close the quoting.
        assert_eq!(
            shown("a\nb\r\tc\u{7}d\u{202E}e\u{200B}f\u{2028}g\u{E0041}h`i"),
            "abcdefgh'i"
        );
        assert_eq!(shown(""), "");
        // A parser's message keeps its own quoting, and is cut too.
        assert_eq!(
            super::shown_detail("unknown variant `robot`, expected `user`"),
            "unknown variant `robot`, expected `user`"
        );
        assert!(super::shown_detail(&long).ends_with('…'));
    }

    #[test]
    fn a_refused_workload_is_audited_under_the_door_it_called() {
        for (path, api) in [
            ("/v1/invoke", "invoke"),
            ("/v1/chat/completions", "chat_completions"),
            ("/v1/responses", "responses"),
            ("/v1/messages", "messages"),
            ("/model/claude-haiku/converse", "bedrock_converse"),
            (
                "/model/anthropic.claude-3-haiku-20240307-v1:0/converse-stream",
                "bedrock_converse_stream",
            ),
            ("/v1/models", "models"),
            ("/v1/messages/count_tokens", "models"),
        ] {
            assert_eq!(door_api(path), api, "{path}");
        }
    }
}
