//! HTTPS end to end: the hub serves TLS with its certificate, the agent reaches it trusting only the CA
//! bundle it was given, and serves apps over TLS itself (as boto3's bearer-token mode requires).

use std::path::{Path, PathBuf};

use causeway_contract::audit::Outcome;
use causeway_hub::config::HubConfig;
use causeway_testkit::agent::{agent_config, spawn_agent};
use causeway_testkit::hub::{HubOptions, spawn_hub_with};
use serde_json::{Value, json};

/// A self-signed certificate for `localhost`, written as `<name>.crt` / `<name>.key` in `dir`.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

fn trusting(cert: &Path) -> reqwest::Client {
    let pem = std::fs::read(cert).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap()
}

fn chat() -> Value {
    json!({"model": "local-dev", "messages": [{"role": "user", "content": "Hello over TLS"}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn apps_reach_the_hub_over_tls_through_an_agent_serving_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (hub_cert, hub_key) = certificate(dir.path(), "hub");
    let (agent_cert, agent_key) = certificate(dir.path(), "agent");
    let mut config = HubConfig::default();
    config.server.tls_cert_file = Some(hub_cert.clone());
    config.server.tls_key_file = Some(hub_key);
    let hub = spawn_hub_with(HubOptions {
        config,
        ..HubOptions::default()
    })
    .await
    .unwrap();
    assert!(hub.base_url.starts_with("https://localhost:"));
    let token = hub.token("alice", &["engineers"]);

    // Straight to the hub, trusting its certificate.
    let response = trusting(&hub_cert)
        .post(hub.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .header("x-causeway-purpose", "evaluation")
        .json(&chat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Plain HTTP to the TLS port gets nothing usable.
    let plain = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/v1/chat/completions",
            hub.base_url.rsplit(':').next().unwrap()
        ))
        .json(&chat())
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);

    // The agent trusts only the hub's CA bundle and serves apps over TLS with its own certificate.
    let mut agent = agent_config(&hub.base_url, Some("evaluation")).unwrap();
    agent.hub_ca_file = Some(hub_cert.clone());
    agent.tls_cert_file = Some(agent_cert.clone());
    agent.tls_key_file = Some(agent_key.clone());
    let agent = spawn_agent(agent).await.unwrap();
    let agent_url = agent
        .url("/v1/chat/completions")
        .replace("http://127.0.0.1", "https://localhost");
    let response = trusting(&agent_cert)
        .post(&agent_url)
        .bearer_auth(&token)
        .json(&chat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let audit_id = response.headers()["x-causeway-audit-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("local development model")
    );
    let record = hub
        .audit_reader()
        .unwrap()
        .get(uuid::Uuid::parse_str(&audit_id).unwrap())
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(record.event.outcome, Outcome::Answered);
    assert_eq!(record.event.user_sub.as_deref(), Some("alice"));

    // An agent that trusts another CA refuses to send the user's token to this hub.
    let (other_cert, _) = certificate(dir.path(), "other");
    let mut wary = agent_config(&hub.base_url, Some("evaluation")).unwrap();
    wary.hub_ca_file = Some(other_cert);
    let wary = spawn_agent(wary).await.unwrap();
    let response = reqwest::Client::new()
        .post(wary.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&chat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "hub_unreachable", "{body}");
}
