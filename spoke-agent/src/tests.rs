//! Router tests: the agent's router called with `oneshot`, forwarding to a fake hub on 127.0.0.1 that runs in
//! the same task (`tokio::select!`), so each test owns its peer and nothing is spawned.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower::ServiceExt as _;

use super::*;
use crate::identity::{HubRequest, NoWorkloadIdentity, SignError};

// === helpers ===

fn config_for(hub: &str) -> AgentConfig {
    AgentConfig {
        hub_url: hub.to_owned(),
        retry_backoff_ms: 10,
        ..AgentConfig::default()
    }
}

fn agent(config: AgentConfig) -> Router {
    router(Arc::new(
        AgentState::new(config, Arc::new(NoWorkloadIdentity)).unwrap(),
    ))
}

fn agent_with(config: AgentConfig, signer: Arc<dyn WorkloadSigner>) -> Router {
    router(Arc::new(AgentState::new(config, signer).unwrap()))
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let (listener, addr) = listener().await;
    drop(listener);
    addr
}

/// Runs `test` while `peer` serves; the peer must outlive the test.
async fn while_serving<T>(peer: impl Future<Output = ()>, test: impl Future<Output = T>) -> T {
    tokio::select! {
        biased;
        out = test => out,
        () = peer => unreachable!("the fake hub stopped before the test finished"),
    }
}

async fn serve_router(listener: TcpListener, hub: Router) {
    let _ = axum::serve(listener, hub).await;
}

/// A hub that answers every request with what it received.
fn echo_hub() -> Router {
    Router::new().fallback(any(|request: Request<Body>| async move {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let headers: serde_json::Map<String, Value> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap())))
            .collect();
        axum::Json(json!({
            "method": parts.method.as_str(),
            "target": parts.uri.path_and_query().unwrap().as_str(),
            "headers": headers,
            "body": String::from_utf8(body.to_vec()).unwrap(),
        }))
    }))
}

async fn json_of(response: Response) -> Value {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&bytes)}))
}

fn post_json(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

// === the agent's own routes ===

#[tokio::test]
async fn healthz_describes_the_agent_without_calling_the_hub() {
    let mut config = config_for(&format!("http://{}", closed_port().await));
    config.application = Some("claims".to_owned());
    let hub = config.hub_url.clone();
    let response = agent(config)
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_of(response).await,
        json!({"status": "ok", "hub_url": hub, "application": "claims", "default_purpose": null, "workload_identity": "none"})
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_error_shape() {
    let agent = agent(config_for("http://127.0.0.1:1"));
    let response = agent
        .clone()
        .oneshot(Request::get("/v1/files").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        json_of(response).await,
        json!({"error": {"code": "not_found", "message": "no route `/v1/files`; the agent serves the hub's doors (`/v1/invoke`, `/v1/chat/completions`, `/v1/responses`, `/v1/embeddings`, `/v1/models`, `/v1/messages`, `/model/{modelId}/…`) and `/healthz`"}})
    );
    let response = agent
        .oneshot(Request::get("/v1/invoke").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        json_of(response).await["error"]["code"],
        "method_not_allowed"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_the_hub_is_called() {
    let (hub_listener, addr) = listener().await;
    let mut config = config_for(&format!("http://{addr}"));
    config.max_body_bytes = 1024;
    let agent = agent(config);
    let big = "x".repeat(1025);

    // Declared length.
    let response = agent
        .clone()
        .oneshot(post_json("/v1/invoke", &big))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        json_of(response).await,
        json!({"error": {"code": "payload_too_large", "message": "the request body is larger than the limit of 1024 bytes"}})
    );

    // Chunked, no declared length.
    let chunks = futures::stream::iter(vec![Ok::<_, Infallible>(Bytes::from(big.clone())); 2]);
    let request = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from_stream(chunks))
        .unwrap();
    let response = agent.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        json_of(response).await["error"]["code"],
        "payload_too_large"
    );

    // The hub never saw a connection.
    let accepted = tokio::time::timeout(Duration::from_millis(50), hub_listener.accept()).await;
    assert!(accepted.is_err(), "the hub must not be called");
}

// === forwarding ===

#[tokio::test]
async fn the_openai_door_forwards_with_the_agents_headers() {
    let (hub_listener, addr) = listener().await;
    let mut config = config_for(&format!("http://{addr}/stage/"));
    config.application = Some("claims-triage".to_owned());
    config.default_purpose = Some("evaluation".to_owned());
    let agent = agent(config);
    let body = r#"{"model":"local-dev","messages":[{"role":"user","content":"hi"}]}"#;
    let request = Request::post("/v1/chat/completions?trace=1")
        .header("content-type", "application/json")
        .header("authorization", "Bearer header.payload.signature")
        .header("x-causeway-application", "payroll")
        .header("x-causeway-data-classification", "confidential")
        .header("x-request-id", "app-req-7")
        .header("connection", "x-hop")
        .header("x-hop", "dropped")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .body(Body::from(body))
        .unwrap();

    let response = while_serving(
        serve_router(hub_listener, echo_hub()),
        agent.oneshot(request),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "app-req-7");
    let seen = json_of(response).await;
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["target"], "/stage/v1/chat/completions?trace=1");
    assert_eq!(seen["body"], body);
    let headers = &seen["headers"];
    assert_eq!(headers["authorization"], "Bearer header.payload.signature");
    assert_eq!(headers["x-causeway-application"], "claims-triage");
    assert_eq!(headers["x-causeway-purpose"], "evaluation");
    assert_eq!(headers["x-causeway-data-classification"], "confidential");
    assert_eq!(headers["x-request-id"], "app-req-7");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["content-length"], body.len().to_string());
    assert_eq!(headers["host"], addr.to_string());
    for dropped in ["x-hop", "proxy-authorization"] {
        assert!(
            headers.get(dropped).is_none(),
            "`{dropped}` must not reach the hub: {headers}"
        );
    }
}

#[tokio::test]
async fn the_native_door_gets_no_default_purpose_and_models_does() {
    let (hub_listener, addr) = listener().await;
    let mut config = config_for(&format!("http://{addr}"));
    config.default_purpose = Some("evaluation".to_owned());
    let agent = agent(config);
    let test = async {
        let native = agent
            .clone()
            .oneshot(post_json("/v1/invoke", "{}"))
            .await
            .unwrap();
        let native = json_of(native).await;
        let models = agent
            .clone()
            .oneshot(Request::get("/v1/models").body(Body::empty()).unwrap())
            .await
            .unwrap();
        (native, json_of(models).await)
    };
    let (native, models) = while_serving(serve_router(hub_listener, echo_hub()), test).await;
    assert_eq!(native["target"], "/v1/invoke");
    assert!(
        native["headers"].get("x-causeway-purpose").is_none(),
        "{native}"
    );
    assert!(
        native["headers"].get("x-causeway-application").is_none(),
        "{native}"
    );
    assert_eq!(models["method"], "GET");
    assert_eq!(models["target"], "/v1/models");
    assert_eq!(models["headers"]["x-causeway-purpose"], "evaluation");
    // The agent made a request id for a call that came without one.
    let id = native["headers"]["x-request-id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
}

#[tokio::test]
async fn hub_errors_pass_through_unchanged() {
    const BODY: &str = r#"{"error":{"code":"forbidden","message":"policy denies `invoke` on `claude-haiku`","audit_id":"0190"}}"#;
    let hub = Router::new().route(
        "/v1/invoke",
        post(|| async {
            (
                StatusCode::FORBIDDEN,
                [
                    ("content-type", "application/json"),
                    ("x-causeway-audit-id", "0190"),
                ],
                BODY,
            )
        }),
    );
    let (hub_listener, addr) = listener().await;
    let response = while_serving(
        serve_router(hub_listener, hub),
        agent(config_for(&format!("http://{addr}"))).oneshot(post_json("/v1/invoke", "{}")),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["x-causeway-audit-id"], "0190");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(bytes, BODY.as_bytes());
}

#[tokio::test]
async fn a_stream_is_relayed_event_by_event() {
    // The hub sends its second event only once the first has come out of the agent: a buffering agent would
    // never deliver the first, and the test would time out.
    let (release_tx, release_rx) = mpsc::channel::<()>(1);
    let release_rx = Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
    let hub = Router::new().route(
        "/v1/chat/completions",
        post(move || async move {
            let release = release_rx.lock().await.take().unwrap();
            let events = futures::stream::unfold((0, release), |(step, mut release)| async move {
                if step == 1 {
                    release.recv().await;
                }
                let event = match step {
                    0 => "data: {\"n\":1}\n\n",
                    1 => "data: {\"n\":2}\n\n",
                    2 => "data: [DONE]\n\n",
                    _ => return None,
                };
                Some((
                    Ok::<_, Infallible>(Bytes::from_static(event.as_bytes())),
                    (step + 1, release),
                ))
            });
            (
                [("content-type", "text/event-stream")],
                Body::from_stream(events),
            )
                .into_response()
        }),
    );
    let (hub_listener, addr) = listener().await;
    let agent = agent(config_for(&format!("http://{addr}")));
    let test = async {
        let response = agent
            .oneshot(post_json("/v1/chat/completions", r#"{"stream":true}"#))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert!(response.headers().get("content-length").is_none());
        let mut body = response.into_body();
        let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("the first event must arrive before the hub sends the second")
            .unwrap()
            .unwrap()
            .into_data()
            .unwrap();
        assert_eq!(first, "data: {\"n\":1}\n\n");
        release_tx.send(()).await.unwrap();
        let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
            .await
            .unwrap()
            .unwrap()
            .to_bytes();
        assert_eq!(rest, "data: {\"n\":2}\n\ndata: [DONE]\n\n");
    };
    while_serving(serve_router(hub_listener, hub), test).await;
}

#[tokio::test]
async fn a_stream_that_goes_quiet_is_cut_off() {
    let hub = Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            let events = futures::stream::once(async {
                Ok::<_, Infallible>(Bytes::from_static(b"data: {\"n\":1}\n\n"))
            })
            .chain(futures::stream::pending());
            (
                [("content-type", "text/event-stream")],
                Body::from_stream(events),
            )
        }),
    );
    let (hub_listener, addr) = listener().await;
    let mut config = config_for(&format!("http://{addr}"));
    config.stream_idle_timeout_secs = 1;
    let test = async {
        let response = agent(config)
            .oneshot(post_json("/v1/chat/completions", r#"{"stream":true}"#))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "data: {\"n\":1}\n\n");
        let cut = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .unwrap();
        let err = cut.unwrap().unwrap_err();
        assert!(
            err.to_string()
                .contains("sent nothing for 1 s during a streamed answer"),
            "{err}"
        );
    };
    while_serving(serve_router(hub_listener, hub), test).await;
}

// === failures to reach the hub ===

#[tokio::test]
async fn an_unreachable_hub_is_a_502_naming_it() {
    let hub = format!("http://{}", closed_port().await);
    let mut config = config_for(&hub);
    config.connect_retries = 1;
    let request = Request::post("/v1/invoke")
        .header("content-type", "application/json")
        .header("x-request-id", "app-req-9")
        .body(Body::from("{}"))
        .unwrap();
    let response = agent(config).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(response.headers()["x-request-id"], "app-req-9");
    assert_eq!(
        json_of(response).await,
        json!({"error": {"code": "hub_unreachable", "message": format!("cannot reach the hub at `{hub}`: connection refused")}})
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_until_the_hub_is_up() {
    let addr = closed_port().await;
    let mut config = config_for(&format!("http://{addr}"));
    config.connect_retries = 8;
    config.retry_backoff_ms = 20;
    let late_hub = async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let listener = TcpListener::bind(addr).await.unwrap();
        serve_router(listener, echo_hub()).await;
    };
    let response = while_serving(
        late_hub,
        agent(config).oneshot(post_json("/v1/invoke", "{\"a\":1}")),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_of(response).await["body"], "{\"a\":1}");
}

#[tokio::test]
async fn a_request_that_went_out_is_never_retried() {
    // The hub reads the request and hangs up without answering: the call may have been processed, so the
    // agent must not send it again.
    let (hub_listener, addr) = listener().await;
    let accepted = AtomicUsize::new(0);
    let hang_up = async {
        loop {
            let (mut socket, _) = hub_listener.accept().await.unwrap();
            accepted.fetch_add(1, Ordering::SeqCst);
            let mut buffer = [0_u8; 4096];
            let _ = socket.read(&mut buffer).await;
            drop(socket);
        }
    };
    let mut config = config_for(&format!("http://{addr}"));
    config.connect_retries = 3;
    let response = while_serving(
        hang_up,
        agent(config).oneshot(post_json("/v1/invoke", "{}")),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = json_of(response).await;
    assert_eq!(body["error"]["code"], "hub_unreachable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("cannot reach the hub at `http://{addr}`: ")),
        "{message}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_hub_that_does_not_answer_is_a_504() {
    let (hub_listener, addr) = listener().await;
    let silent = async {
        let mut open = Vec::new();
        loop {
            let (socket, _) = hub_listener.accept().await.unwrap();
            open.push(socket);
        }
    };
    let hub = format!("http://{addr}");
    let mut config = config_for(&hub);
    config.request_timeout_secs = 1;
    let response = while_serving(silent, agent(config).oneshot(post_json("/v1/invoke", "{}")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        json_of(response).await,
        json!({"error": {"code": "hub_timeout", "message": format!("the hub at `{hub}` did not answer within 1 s")}})
    );
}

// === workload identity ===

/// Signs with a header over the method, path and body length, and counts its calls.
#[derive(Debug, Default)]
struct TestSigner {
    calls: AtomicUsize,
}

#[async_trait]
impl WorkloadSigner for TestSigner {
    fn kind(&self) -> &'static str {
        "test"
    }

    async fn sign(&self, request: &mut HubRequest) -> Result<(), SignError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let proof = format!(
            "{} {} {}",
            request.method(),
            request.uri().path(),
            request.body().len()
        );
        request.headers_mut().insert(
            "x-test-workload",
            proof.parse().map_err(|_| SignError::new("bad header"))?,
        );
        Ok(())
    }
}

#[derive(Debug)]
struct FailingSigner;

#[async_trait]
impl WorkloadSigner for FailingSigner {
    fn kind(&self) -> &'static str {
        "failing"
    }

    async fn sign(&self, _request: &mut HubRequest) -> Result<(), SignError> {
        Err(SignError::new("no credentials in the environment"))
    }
}

#[tokio::test]
async fn the_signer_sees_the_complete_request() {
    let (hub_listener, addr) = listener().await;
    let signer = Arc::new(TestSigner::default());
    let agent = agent_with(config_for(&format!("http://{addr}")), signer.clone());
    let response = while_serving(
        serve_router(hub_listener, echo_hub()),
        agent.oneshot(post_json("/v1/invoke", "{\"x\":1}")),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json_of(response).await["headers"]["x-test-workload"],
        "POST /v1/invoke 7"
    );
    assert_eq!(signer.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn every_retry_is_signed_afresh() {
    let signer = Arc::new(TestSigner::default());
    let mut config = config_for(&format!("http://{}", closed_port().await));
    config.connect_retries = 2;
    let response = agent_with(config, signer.clone())
        .oneshot(post_json("/v1/invoke", "{}"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(signer.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_signing_failure_is_a_503_and_nothing_is_sent() {
    let (hub_listener, addr) = listener().await;
    let response = agent_with(
        config_for(&format!("http://{addr}")),
        Arc::new(FailingSigner),
    )
    .oneshot(post_json("/v1/invoke", "{}"))
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        json_of(response).await,
        json!({"error": {"code": "workload_identity_unavailable", "message": "cannot prove the workload's identity to the hub: no credentials in the environment"}})
    );
    let accepted = tokio::time::timeout(Duration::from_millis(50), hub_listener.accept()).await;
    assert!(accepted.is_err(), "nothing may reach the hub unsigned");
}

// === serve ===

#[tokio::test]
async fn serve_answers_on_its_listener_and_stops_on_shutdown() {
    let (agent_listener, agent_addr) = listener().await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = config_for("http://127.0.0.1:1");
    let server = serve(config, agent_listener, async {
        let _ = stop_rx.await;
    });
    let client = async {
        let body = reqwest::get(format!("http://{agent_addr}/healthz"))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        stop_tx.send(()).unwrap();
        body
    };
    let (served, body) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(server, client)
    })
    .await
    .unwrap();
    served.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["hub_url"], "http://127.0.0.1:1");
}

#[tokio::test]
async fn serve_refuses_an_unusable_hub_url() {
    let (agent_listener, _) = listener().await;
    let err = serve(
        config_for("ftp://hub"),
        agent_listener,
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: `hub_url` `ftp://hub` must start with `http://` or `https://`"
    );
}
