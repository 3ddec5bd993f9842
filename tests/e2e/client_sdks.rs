//! The official client SDKs against the hub, unchanged but for the endpoint: tools, images and documents
//! with the OpenAI Python SDK (`tests/clients/openai_content.py`, run with the test virtualenv's Python),
//! to the local development model and to Amazon Bedrock through the wire mock.

use std::path::PathBuf;

use causeway_testkit::bedrock_mock::{BedrockMock, Reply};
use causeway_testkit::hub::{TestHub, spawn_hub, spawn_hub_with_bedrock};
use causeway_testkit::moto::MotoServer;
use serde_json::{Value, json};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Runs the OpenAI SDK script against `hub` as `alice` (an engineer) calling `model`; returns what it
/// printed. Fails loudly when the virtualenv or the SDK is missing: `scripts/ensure-moto.sh` installs both.
async fn run_openai_script(hub: &TestHub, model: &str) -> Value {
    let python = MotoServer::venv_path().join("bin").join("python");
    assert!(
        python.exists(),
        "{} is missing; run scripts/ensure-moto.sh",
        python.display()
    );
    let root = workspace_root();
    let output = tokio::process::Command::new(&python)
        .arg(root.join("tests/clients/openai_content.py"))
        .env("CAUSEWAY_HUB_URL", hub.url("/v1"))
        .env("CAUSEWAY_TOKEN", hub.token("alice", &["engineers"]))
        .env("CAUSEWAY_MODEL", model)
        .env("CAUSEWAY_SSN_PDF", root.join("tests/data/ssn.pdf"))
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the OpenAI SDK script failed: {}{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_sdk_tools_images_and_documents_with_the_local_model() {
    let hub = spawn_hub().await.unwrap();
    let results = run_openai_script(&hub, "local-dev").await;
    // The local model calls the tool with the smallest arguments its schema accepts.
    assert_eq!(results["tool_call"]["arguments"], json!({"city": "xx"}));
    assert_eq!(results["streamed_arguments"], json!({"city": "xx"}));
    assert!(
        results["tool_result_answer"]
            .as_str()
            .unwrap()
            .contains("after 1 tool result(s)")
    );
    assert!(
        results["image_answer"]
            .as_str()
            .unwrap()
            .contains("1 image(s)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_sdk_tool_loop_through_bedrock_never_shows_the_model_pii() {
    let mock = BedrockMock::start().await.unwrap();
    mock.set_reply(Reply::tool_use("get_weather", json!({"city": "Leeds"})));
    let hub = spawn_hub_with_bedrock(&mock).await.unwrap();
    let results = run_openai_script(&hub, "claude-haiku").await;
    assert_eq!(results["tool_call"]["arguments"], json!({"city": "Leeds"}));
    assert_eq!(results["streamed_arguments"], json!({"city": "Leeds"}));
    // The mock echoes the tool result it received: masked, still JSON.
    let answer = results["tool_result_answer"].as_str().unwrap();
    assert!(answer.contains("{EMAIL}"), "{answer}");

    let requests = mock.requests();
    for request in &requests {
        let body = serde_json::to_string(&request.body).unwrap();
        assert!(
            !body.contains("jane.doe@example.com"),
            "PII reached the model"
        );
    }
    // What the hub sent: the tool declared, the tool call and its result as Converse blocks, the image.
    let bodies: Vec<&Value> = requests.iter().map(|r| &r.body).collect();
    assert!(bodies.iter().all(|b| {
        b["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
            || b["toolConfig"].is_null()
    }));
    assert!(bodies.iter().any(|b| {
        b["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|m| m["content"].as_array().into_iter().flatten())
            .any(|c| c.get("toolResult").is_some())
    }));
    assert!(bodies.iter().any(|b| {
        b["messages"][0]["content"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["image"]["format"] == "png")
    }));
}
