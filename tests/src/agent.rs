//! `spawn_agent()`: the real spoke agent, served over HTTP on a random local port in front of a hub.

use std::sync::Arc;

use anyhow::Context as _;
use causeway_agent::AgentState;
use causeway_agent::config::AgentConfig;
use tokio::sync::oneshot;

/// A running agent. Dropping it stops the server.
#[derive(Debug)]
pub struct TestAgent {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestAgent {
    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The agent's config as an operator would write it for application `claims-triage`, pointed at `hub_url`,
/// with no connection retries and, when given, a default purpose for clients that cannot declare one.
///
/// # Errors
///
/// When the config does not parse (a bug in the harness).
pub fn agent_config(hub_url: &str, default_purpose: Option<&str>) -> anyhow::Result<AgentConfig> {
    let mut text =
        format!("hub_url = \"{hub_url}\"\napplication = \"claims-triage\"\nconnect_retries = 0\n");
    if let Some(purpose) = default_purpose {
        text.push_str(&format!("default_purpose = \"{purpose}\"\n"));
    }
    AgentConfig::from_toml("agent.toml", &text, |_| None).context("the test agent's config")
}

/// An agent for `config`, its workload identity loaded as `[workload_identity]` says.
///
/// # Errors
///
/// When the listener cannot be bound or the workload identity cannot be loaded.
pub async fn spawn_agent(config: AgentConfig) -> anyhow::Result<TestAgent> {
    let workload = causeway_agent::identity::Workload::load(&config)
        .await
        .context("loading the agent's workload identity")?;
    let state = AgentState::new(config, workload.signer).context("building the agent")?;
    spawn_agent_state(state).await
}

/// An agent built from `state` (e.g. with a test signer).
///
/// # Errors
///
/// When the listener cannot be bound.
pub async fn spawn_agent_state(state: AgentState) -> anyhow::Result<TestAgent> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the agent's listener")?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    causeway_hub::spawn(async move {
        let stopped = causeway_agent::serve_state(Arc::new(state), listener, async {
            let _ = rx.await;
        })
        .await;
        if let Err(err) = stopped {
            eprintln!("the test agent stopped: {err}");
        }
    });
    Ok(TestAgent {
        base_url: format!("http://{addr}"),
        shutdown: Some(tx),
    })
}
