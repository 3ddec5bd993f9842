//! `spawn_hub()`: the real hub, served over HTTP on a random local port.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use causeway_audit::{EmbeddedStore, RecordFilter};
use causeway_contract::AuditRecord;
use causeway_contract::dev::DevKey;
use causeway_hub::app::{AppState, Overrides, build_state};
use causeway_hub::config::{BedrockConfig, HubConfig};
use tokio::sync::oneshot;

use crate::bedrock_mock::BedrockMock;

/// How to build a test hub.
#[derive(Debug, Default)]
pub struct HubOptions {
    /// The configuration; `data_dir` is replaced by a fresh temporary directory unless `keep_data_dir`.
    pub config: HubConfig,
    /// Keep `config.data_dir` as given.
    pub keep_data_dir: bool,
    /// Wire the Bedrock provider to this mock (endpoint, test credentials, one attempt per call).
    pub bedrock: Option<String>,
    /// What replaces the parts built from config (audit sink, budget store, spoke registry, the AWS SDK
    /// config the hub's AWS clients start from); the Bedrock mock replaces `aws` when `bedrock` is set.
    pub overrides: Overrides,
}

/// A running hub. Dropping it stops the server.
#[derive(Debug)]
pub struct TestHub {
    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` when `[server]` configures TLS
    pub base_url: String,
    /// The hub's state (metrics, audit sink, policy).
    pub state: Arc<AppState>,
    /// The development key, for minting tokens.
    pub dev_key: DevKey,
    /// The data directory.
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestHub {
    /// A development token for `sub` with `groups`, valid for an hour.
    pub fn token(&self, sub: &str, groups: &[&str]) -> String {
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.dev_key
            .mint(sub, &groups, now, 3600)
            .unwrap_or_else(|e| format!("minting failed: {e}"))
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The embedded audit database file.
    pub fn audit_path(&self) -> PathBuf {
        self.state.config.audit_path()
    }

    /// A read handle on the embedded audit store (a second connection to the same file).
    pub fn audit_reader(&self) -> anyhow::Result<EmbeddedStore> {
        EmbeddedStore::open(self.audit_path()).context("opening the audit store for reading")
    }

    /// Every audit record so far, oldest first (in chain order).
    pub fn audit_records(&self) -> anyhow::Result<Vec<AuditRecord>> {
        let mut records: Vec<AuditRecord> = self
            .audit_reader()?
            .query(&RecordFilter::default())
            .context("reading the audit records")?
            .into_iter()
            .map(|(record, _)| record)
            .collect();
        records.sort_by_key(|r| r.sequence);
        Ok(records)
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A hub on the embedded defaults.
pub async fn spawn_hub() -> anyhow::Result<TestHub> {
    spawn_hub_with(HubOptions::default()).await
}

/// A hub wired to a Bedrock mock.
pub async fn spawn_hub_with_bedrock(mock: &BedrockMock) -> anyhow::Result<TestHub> {
    spawn_hub_with(HubOptions {
        bedrock: Some(mock.endpoint_url()),
        ..HubOptions::default()
    })
    .await
}

/// A hub built from `options`.
pub async fn spawn_hub_with(options: HubOptions) -> anyhow::Result<TestHub> {
    let mut config = options.config;
    let temp = if options.keep_data_dir {
        None
    } else {
        let dir = tempfile::tempdir().context("creating the data directory")?;
        config.data_dir.0 = dir.path().to_path_buf();
        Some(dir)
    };
    let mut overrides = options.overrides;
    if let Some(endpoint) = options.bedrock {
        config.providers.bedrock = Some(BedrockConfig {
            region: Some(crate::moto::TEST_REGION.to_owned()),
            endpoint_url: Some(endpoint.clone()),
            guardrail_id: config
                .providers
                .bedrock
                .as_ref()
                .and_then(|b| b.guardrail_id.clone()),
            guardrail_version: config
                .providers
                .bedrock
                .as_ref()
                .and_then(|b| b.guardrail_version.clone()),
            max_attempts: 1,
        });
        overrides.aws = Some(crate::moto::local_sdk_config(&endpoint).await);
    }
    let data_dir = config.data_dir.0.clone();
    let dev_key = DevKey::load_or_create(&data_dir).context("creating the development key")?;
    let state = Arc::new(
        build_state(config, overrides, false)
            .await
            .context("building the hub")?,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding 127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let serve_state = state.clone();
    causeway_hub::spawn(async move {
        let _ = causeway_hub::serve::serve_local(serve_state, listener, async {
            let _ = rx.await;
        })
        .await;
    });
    // With TLS configured the certificate names `localhost`, so clients must use that name.
    let base_url = if state.config.server.tls().is_some() {
        format!("https://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    };
    Ok(TestHub {
        base_url,
        state,
        dev_key,
        data_dir,
        _temp: temp,
        shutdown: Some(tx),
    })
}
