//! Crash test: the real hub binary under concurrent load is killed with SIGKILL, restarted on the same data
//! directory, and every answer a client received must have its durable audit record, with its payload, in a
//! chain that verifies.

#![expect(clippy::unwrap_used, reason = "test set-up fails loudly")]
#![expect(clippy::expect_used, reason = "test set-up fails loudly")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use causeway_audit::{EmbeddedStore, PayloadState};
use causeway_contract::dev::DevKey;
use tokio::sync::Mutex;
use uuid::Uuid;

const WORKERS: usize = 12;
const USERS: usize = 24;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_hub(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_causeway-hub"))
        .args(["serve", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("the hub binary starts")
}

async fn wait_ready(http: &reqwest::Client, base: &str, hub: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let exited = hub.try_wait().unwrap();
        assert!(
            exited.is_none(),
            "the hub exited before it was ready: {exited:?}"
        );
        if let Ok(response) = http.get(format!("{base}/healthz")).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "the hub did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn invoke(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    n: usize,
) -> Result<Option<Uuid>, reqwest::Error> {
    let response = http
        .post(format!("{base}/v1/invoke"))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "model": "local-dev",
            "purpose": "evaluation",
            "messages": [{"role": "user", "content": format!("crash test call {n}")}],
        }))
        .send()
        .await?;
    if !response.status().is_success() {
        return Ok(None);
    }
    // The answer is received only when the whole body is; a connection cut mid-body is no answer.
    let body: serde_json::Value = response.json().await?;
    Ok(body["audit_id"].as_str().and_then(|id| id.parse().ok()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_received_before_a_sigkill_are_all_durable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n\n[server]\nlisten = \"127.0.0.1:{port}\"\n\n[identity]\nmode = \"dev\"\n\n\
             [budgets]\nuser_requests_per_minute = 100000\n\n[audit]\ncheckpoint_every = 64\n\n[log]\nfilter = \"warn\"\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("hub.log");
    let key = DevKey::load_or_create(&data).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..USERS)
            .map(|u| key.mint(&format!("crash-user-{u}"), &[], now, 600).unwrap())
            .collect(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    let mut hub = start_hub(&config, &log);
    wait_ready(&http, &base, &mut hub).await;

    // Load: workers call until the hub dies under them (bounded in count and time either way).
    let received = Arc::new(Mutex::new(Vec::<Uuid>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        let (http, base, tokens, received, stop) = (
            http.clone(),
            base.clone(),
            tokens.clone(),
            received.clone(),
            stop.clone(),
        );
        workers.spawn(async move {
            for i in 0..2000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let n = w * 10_000 + i;
                match invoke(&http, &base, &tokens[n % USERS], n).await {
                    Ok(Some(id)) => received.lock().await.push(id),
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.lock().await.len() < 150 {
        assert!(
            Instant::now() < deadline,
            "too few answers under load; see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    hub.kill().unwrap(); // SIGKILL on unix: no shutdown, no flush, no closing checkpoint.
    hub.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    while workers.join_next().await.is_some() {}
    let received = received.lock().await.clone();

    // Restart on the same data directory and keep serving: the chain continues.
    let mut hub = start_hub(&config, &log);
    wait_ready(&http, &base, &mut hub).await;
    let after = invoke(&http, &base, &tokens[0], 1)
        .await
        .unwrap()
        .expect("the restarted hub answers");

    // A streamed answer: its closing record carries the streamed text as its payload.
    let response = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&tokens[1])
        .header("x-causeway-purpose", "evaluation")
        .json(&serde_json::json!({
            "model": "local-dev", "stream": true,
            "messages": [{"role": "user", "content": "stream after the crash"}],
        }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let opening: Uuid = response.headers()["x-causeway-audit-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let sse = response.text().await.unwrap();
    let streamed: String = sse
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(!streamed.is_empty(), "{sse}");

    let store = EmbeddedStore::open_read_only(data.join("audit.db"), None).unwrap();
    let (opened, _) = store.get(opening).unwrap().unwrap();
    let closing = store
        .query(&causeway_audit::RecordFilter {
            user_sub: Some("crash-user-1".into()),
            outcome: Some("stream_completed".into()),
            ..causeway_audit::RecordFilter::default()
        })
        .unwrap();
    let (closing, _) = closing
        .iter()
        .find(|(r, _)| r.event.call_id == opened.event.call_id)
        .expect("the closing record of the stream");
    let payload = match store.payload(closing.event.id).unwrap() {
        PayloadState::Stored(payload) => Some(payload),
        _ => None,
    }
    .expect("the closing record of the stream has its payload");
    assert_eq!(payload.response, streamed);
    assert!(payload.prompt.contains("stream after the crash"));
    let mut missing = Vec::new();
    for id in &received {
        match store.get(*id).unwrap() {
            Some(_) => {}
            None => missing.push(*id),
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} answered calls have no audit record: {missing:?}",
        missing.len(),
        received.len()
    );
    for id in received.iter().take(20) {
        assert!(
            matches!(store.payload(*id).unwrap(), PayloadState::Stored(_)),
            "answered call {id} has no readable payload"
        );
    }
    let (record, _) = store.get(after).unwrap().unwrap();
    assert!(
        record.sequence > received.len() as u64,
        "the restarted hub continued the same chain"
    );

    hub.kill().unwrap();
    hub.wait().unwrap();
    let report = store.verify_report(None).unwrap();
    assert!(
        report.is_ok(),
        "chain broken after a crash: {:?}",
        report.breaks
    );
    assert!(report.records > received.len() as u64);
}
