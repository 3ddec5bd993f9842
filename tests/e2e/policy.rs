//! Policy reload without a restart: a policy set that fails validation is refused and the decisions in force
//! stand; a valid set is picked up and decides the next call, and its hash goes on the audit record.

use std::path::Path;

use causeway_audit::RecordFilter;
use causeway_hub::config::HubConfig;
use causeway_hub::policy::ReloadOutcome;
use causeway_testkit::hub::{HubOptions, TestHub, spawn_hub_with};
use serde_json::{Value, json};

const POLICIES: &str = "cedar/causeway.cedar";

/// A copy of the repository's `policies/` directory that the test may edit.
fn policy_dir() -> tempfile::TempDir {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cedar")).unwrap();
    for name in [
        "catalog.toml",
        "purposes.toml",
        "cedar/causeway.cedarschema",
        POLICIES,
    ] {
        std::fs::copy(source.join(name), dir.path().join(name)).unwrap();
    }
    dir
}

fn append(dir: &Path, text: &str) {
    let path = dir.join(POLICIES);
    let mut policies = std::fs::read_to_string(&path).unwrap();
    policies.push_str(text);
    std::fs::write(path, policies).unwrap();
}

async fn invoke(hub: &TestHub) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(hub.url("/v1/invoke"))
        .bearer_auth(hub.token("alice", &[]))
        .json(&json!({
            "model": "local-dev", "purpose": "evaluation",
            "messages": [{"role": "user", "content": "hello"}],
        }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn metrics(hub: &TestHub) -> String {
    reqwest::get(hub.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_policy_is_refused_and_a_fixed_one_is_picked_up() {
    let dir = policy_dir();
    let mut config = HubConfig::default();
    config.policy.dir = Some(dir.path().to_path_buf());
    // No polling: the test triggers each reload itself, as SIGHUP would.
    config.policy.reload_secs = 0;
    let hub = spawn_hub_with(HubOptions {
        config,
        ..HubOptions::default()
    })
    .await
    .unwrap();
    let original = hub.state.policy.current().hash().to_owned();
    assert_eq!(invoke(&hub).await.0, 200);

    // A forbid with a typo in the context attribute: strict validation refuses the whole set.
    append(
        dir.path(),
        "\n@id(\"local-dev-retired\")\nforbid (principal, action, resource == Causeway::Model::\"local-dev\")\nwhen { context.purpos == \"evaluation\" };\n",
    );
    hub.state
        .policy
        .reload_and_report(&hub.state.metrics, "test");
    assert_eq!(hub.state.policy.current().hash(), original);
    // Refused once: the same broken set is not validated (or counted) again.
    assert_eq!(hub.state.policy.reload().unwrap(), ReloadOutcome::Unchanged);
    let (status, body) = invoke(&hub).await;
    assert_eq!(status, 200, "the old decisions stand: {body}");

    // The fixed set is picked up and decides the next call.
    let path = dir.path().join(POLICIES);
    let fixed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("context.purpos ==", "context.purpose ==");
    std::fs::write(&path, fixed).unwrap();
    hub.state
        .policy
        .reload_and_report(&hub.state.metrics, "test");
    let reloaded = hub.state.policy.current().hash().to_owned();
    assert_ne!(reloaded, original);
    assert_eq!(hub.state.policy.reload().unwrap(), ReloadOutcome::Unchanged);
    let (status, body) = invoke(&hub).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("forbid:local-dev-retired"),
        "{body}"
    );

    let text = metrics(&hub).await;
    assert!(
        text.contains("causeway_policy_reloads_total{result=\"applied\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("causeway_policy_reloads_total{result=\"refused\"} 1"),
        "{text}"
    );
    let mut records: Vec<_> = hub
        .audit_reader()
        .unwrap()
        .query(&RecordFilter::default())
        .unwrap()
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    records.sort_by_key(|r| r.sequence);
    let hashes: Vec<&str> = records
        .iter()
        .map(|r| r.event.policy_hash.as_str())
        .collect();
    assert_eq!(
        hashes,
        vec![original.as_str(), original.as_str(), reloaded.as_str()]
    );
}
