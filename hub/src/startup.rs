//! Start-up: the hub's state built from a validated config. One AWS base config (the caller's, else the
//! standard provider chain) is loaded once, when a section needs AWS, and each adapter gets its own clients
//! from it with its section's region and endpoint; model providers go in a map keyed by provider kind.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use causeway_audit::{AuditSink, CheckpointSigner, EmbeddedStore};
use causeway_audit_aws::kms::KmsSigner;
use causeway_audit_aws::{AwsAuditOptions, AwsAuditStore};
use causeway_contract::catalog::ProviderKind;
use causeway_contract::dev::{DEV_AUDIENCE, DEV_ISSUER, DevKey};
use causeway_policy::PolicyBundle;
use secrecy::SecretString;
use uuid::Uuid;

use crate::auth::JwtVerifier;
use crate::auth::jwt::KeySource;
use crate::auth::workload::{CallerIdentityResolver, StsForwarder, WorkloadVerifier};
use crate::budget::dynamodb::DynamoDbStore;
use crate::budget::{BudgetStore, Budgets, MemoryStore};
use crate::config::{AuditStoreKind, BudgetStoreKind, HubConfig, IdentityMode, RegistryStoreKind};
use crate::invoke::ModelInvoker;
use crate::invoke::bedrock::BedrockInvoker;
use crate::invoke::local::LocalModel;
use crate::invoke::openai::OpenAiInvoker;
use crate::metrics::Metrics;
use crate::policy::PolicyStore;
use crate::registry::{DynamoDbRegistry, EmbeddedRegistry, SpokeRegistry};
use crate::state::AppState;

/// Parts a caller may supply instead of the ones built from config (tests, embedding).
#[derive(Debug, Default)]
pub struct Overrides {
    /// The AWS SDK config for Bedrock and the AWS audit store (credentials, region). Default: the standard
    /// provider chain. The `region` and `endpoint_url` of a section still apply on top of it.
    pub aws: Option<aws_config::SdkConfig>,
    /// The audit sink. Default: the embedded store at `audit.path`.
    pub audit: Option<Arc<dyn AuditSink>>,
    /// Environment lookups (for `providers.openai.api_key_env`). Default: the process environment.
    pub env: Option<std::collections::HashMap<String, String>>,
    /// The spoke registry. Default: the embedded registry of `[[spokes]]`.
    pub registry: Option<Arc<dyn SpokeRegistry>>,
    /// The budget counter store. Default: per `budgets.store`.
    pub budget_store: Option<Arc<dyn BudgetStore>>,
    /// The model provider serving `bedrock` catalog entries. Default: Amazon Bedrock Runtime, when
    /// `providers.bedrock` is configured.
    pub bedrock_invoker: Option<Arc<dyn ModelInvoker>>,
}

/// The hub cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A policy file is wrong.
    #[error("policy: {0}")]
    Policy(#[from] causeway_policy::PolicyError),
    /// The guard profile is wrong.
    #[error("guard profile: {0}")]
    Guard(String),
    /// The audit store cannot be opened.
    #[error("audit store: {0}")]
    Audit(#[from] causeway_audit::AuditError),
    /// Identity keys cannot be loaded.
    #[error("identity: {0}")]
    Identity(String),
    /// A setting cannot be honoured.
    #[error("config: {0}")]
    Config(String),
}

/// The AWS SDK config every AWS client of the hub starts from, loaded once (and only when a section needs
/// AWS): the caller's override, else the standard provider chain. Each section's `region` and
/// `endpoint_url` apply to its own clients on top of it.
#[derive(Debug, Default)]
struct AwsBase {
    config: Option<aws_config::SdkConfig>,
}

impl AwsBase {
    async fn get(&mut self) -> &aws_config::SdkConfig {
        if self.config.is_none() {
            self.config =
                Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await);
        }
        self.config
            .get_or_insert_with(|| unreachable!("loaded above"))
    }

    /// A DynamoDB client for a section with its own `region` and `endpoint_url`.
    async fn dynamodb(
        &mut self,
        region: Option<&str>,
        endpoint_url: Option<&str>,
    ) -> aws_sdk_dynamodb::Client {
        let mut builder = aws_sdk_dynamodb::config::Builder::from(self.get().await);
        if let Some(region) = region {
            builder = builder.region(aws_config::Region::new(region.to_owned()));
        }
        if let Some(endpoint) = endpoint_url {
            builder = builder.endpoint_url(endpoint);
        }
        aws_sdk_dynamodb::Client::from_conf(builder.build())
    }
}

/// The value of the environment variable `name` that the setting `setting` names (from the test environment
/// when one is given); its absence is a start-up error naming both.
fn named_env(
    env: &Option<HashMap<String, String>>,
    setting: &str,
    name: &str,
) -> Result<String, StartupError> {
    match env {
        Some(env) => env.get(name).cloned(),
        None => std::env::var(name).ok(),
    }
    .ok_or_else(|| StartupError::Config(format!("`{setting}` names `{name}`, which is not set")))
}

/// Opens the AWS audit store of `[audit]`: its DynamoDB, S3 and KMS clients are built here, once, from the
/// hub's AWS base config with the section's region and endpoint. Checkpoints are signed by the KMS key
/// `signing_key_id`, or else (not on Lambda) by the Ed25519 key file in the data directory.
async fn open_aws_audit(
    config: &HubConfig,
    aws: &mut AwsBase,
    on_lambda: bool,
) -> Result<AwsAuditStore, StartupError> {
    let section = &config.audit;
    let sdk = aws.get().await;
    let mut ddb = aws_sdk_dynamodb::config::Builder::from(sdk);
    let mut s3 = aws_sdk_s3::config::Builder::from(sdk);
    let mut kms = aws_sdk_kms::config::Builder::from(sdk);
    if let Some(region) = &section.region {
        ddb = ddb.region(aws_config::Region::new(region.clone()));
        s3 = s3.region(aws_config::Region::new(region.clone()));
        kms = kms.region(aws_config::Region::new(region.clone()));
    }
    if let Some(endpoint) = &section.endpoint_url {
        ddb = ddb.endpoint_url(endpoint);
        s3 = s3.endpoint_url(endpoint).force_path_style(true);
        kms = kms.endpoint_url(endpoint);
    }
    let chain_id = section.chain_id.clone().unwrap_or_else(|| {
        let prefix = if on_lambda { "lambda" } else { "hub" };
        format!("{prefix}-{}", Uuid::now_v7())
    });
    let kms = aws_sdk_kms::Client::from_conf(kms.build());
    let signer: Arc<dyn CheckpointSigner> = match &section.signing_key_id {
        Some(key_id) => Arc::new(KmsSigner::new(kms.clone(), key_id).await?),
        None if on_lambda => {
            return Err(StartupError::Config(
                "`audit.signing_key_id` is required on AWS Lambda: a key file there does not outlive the instance"
                    .to_owned(),
            ));
        }
        None => Arc::new(causeway_audit::Ed25519FileSigner::load_or_create(
            &config.data_dir.0,
        )?),
    };
    let options = AwsAuditOptions {
        table: section.table.clone().unwrap_or_default(),
        bucket: section.bucket.clone().unwrap_or_default(),
        kms_key_id: section.kms_key_id.clone(),
        retention_days: section.retention_days,
        chain_id,
        checkpoint_every: section.checkpoint_every,
        checkpoint_interval: Duration::from_secs(section.checkpoint_interval_secs),
    };
    let encrypt_payloads = options.kms_key_id.is_some();
    let store = AwsAuditStore::open(
        aws_sdk_dynamodb::Client::from_conf(ddb.build()),
        aws_sdk_s3::Client::from_conf(s3.build()),
        options,
        signer,
    )
    .await?;
    // With a payload key, payloads are sealed under per-day data keys so a day can be erased; without one,
    // S3's default encryption is the only layer and erasure is not available.
    Ok(if encrypt_payloads {
        store.with_payload_kms(kms)
    } else {
        store
    })
}

/// Builds the state from a validated config. `on_lambda` refuses development identity.
pub async fn build_state(
    config: HubConfig,
    overrides: Overrides,
    on_lambda: bool,
) -> Result<AppState, StartupError> {
    // The guard engine (its expressions compiled) is the largest piece of start-up work and needs nothing
    // else: it is built on a thread of its own while the rest of the hub starts.
    let guard_profile = config.policy.guard_profile.clone();
    let guard = tokio::task::spawn_blocking(move || {
        crate::guardrails::load_engine(guard_profile.as_deref())
    });
    let mut aws = AwsBase {
        config: overrides.aws,
    };
    let policy = match &config.policy.dir {
        Some(dir) => PolicyBundle::load_dir(dir)?,
        None => PolicyBundle::embedded()?,
    };

    let verifier = match config.identity.mode {
        IdentityMode::Dev => {
            if on_lambda {
                return Err(StartupError::Config(
                    "`identity.mode = \"dev\"` is refused on AWS Lambda; configure `oidc`"
                        .to_owned(),
                ));
            }
            let key = DevKey::load_or_create(&config.data_dir.0)
                .map_err(|e| StartupError::Identity(e.to_string()))?;
            JwtVerifier::new(
                DEV_ISSUER.to_owned(),
                DEV_AUDIENCE.to_owned(),
                config.identity.leeway_secs,
                config.identity.groups_claim.clone(),
                KeySource::Static(key.jwks()),
            )
        }
        IdentityMode::Oidc => {
            let source = match (&config.identity.jwks_url, &config.identity.jwks_file) {
                (Some(url), _) => KeySource::Url(url.clone()),
                (None, Some(file)) => KeySource::File(file.clone()),
                (None, None) => return Err(StartupError::Config("no JWKS source".to_owned())),
            };
            let verifier = JwtVerifier::new(
                config.identity.issuer.clone().unwrap_or_default(),
                config.identity.audience.clone().unwrap_or_default(),
                config.identity.leeway_secs,
                config.identity.groups_claim.clone(),
                source,
            );
            verifier
                .refresh()
                .await
                .map_err(|e| StartupError::Identity(e.to_string()))?;
            verifier
        }
    };

    let sts_endpoint = reqwest::Url::parse(&config.identity.sts_endpoint)
        .map_err(|e| StartupError::Config(format!("`identity.sts_endpoint`: {e}")))?;
    let resolver: Arc<dyn CallerIdentityResolver> =
        Arc::new(StsForwarder::new(sts_endpoint.clone()));
    let registry: Arc<dyn SpokeRegistry> = match (overrides.registry, config.registry.store) {
        (Some(registry), _) => registry,
        (None, RegistryStoreKind::Config) => {
            Arc::new(EmbeddedRegistry::from_config(&config.spokes))
        }
        (None, RegistryStoreKind::Dynamodb) => Arc::new(DynamoDbRegistry::new(
            aws.dynamodb(
                config.registry.region.as_deref(),
                config.registry.endpoint_url.as_deref(),
            )
            .await,
            config.registry.table.clone().unwrap_or_default(),
        )),
    };
    let workload = WorkloadVerifier::new(
        sts_endpoint,
        config.identity.server_id.clone(),
        config.identity.workload_required(),
        resolver,
        registry,
    );

    let mut aws_store = None;
    let audit: Arc<dyn AuditSink> = match (overrides.audit, config.audit.store) {
        (Some(sink), _) => sink,
        (None, AuditStoreKind::Embedded) => Arc::new(EmbeddedStore::open_with(
            config.audit_path(),
            causeway_audit::StoreOptions {
                checkpoint_every: config.audit.checkpoint_every,
                checkpoint_interval: Duration::from_secs(config.audit.checkpoint_interval_secs),
                ..causeway_audit::StoreOptions::default()
            },
        )?),
        (None, AuditStoreKind::Aws) => {
            let store = Arc::new(open_aws_audit(&config, &mut aws, on_lambda).await?);
            aws_store = Some(Arc::clone(&store));
            store
        }
    };
    let mut providers: HashMap<ProviderKind, Arc<dyn ModelInvoker>> = HashMap::new();
    if config.providers.local.serves(config.identity.mode) {
        providers.insert(ProviderKind::Local, Arc::new(LocalModel));
    }
    match (overrides.bedrock_invoker, &config.providers.bedrock) {
        (Some(invoker), _) => {
            providers.insert(ProviderKind::Bedrock, invoker);
        }
        (None, Some(section)) => {
            providers.insert(
                ProviderKind::Bedrock,
                Arc::new(BedrockInvoker::new(section, aws.get().await)),
            );
        }
        (None, None) => {}
    }
    if let Some(section) = &config.providers.openai {
        {
            let api_key = section
                .api_key_env
                .as_deref()
                .map(|name| named_env(&overrides.env, "providers.openai.api_key_env", name))
                .transpose()?
                .map(SecretString::from);
            let http = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| StartupError::Config(format!("cannot build the HTTP client: {e}")))?;
            providers.insert(
                ProviderKind::Openai,
                Arc::new(OpenAiInvoker::new(&section.base_url, api_key, http)),
            );
        }
    }

    let budget_store: Arc<dyn BudgetStore> = match (overrides.budget_store, config.budgets.store) {
        (Some(store), _) => store,
        (None, BudgetStoreKind::Memory) => Arc::new(MemoryStore::default()),
        (None, BudgetStoreKind::Dynamodb) => Arc::new(DynamoDbStore::new(
            aws.dynamodb(
                config.budgets.region.as_deref(),
                config.budgets.endpoint_url.as_deref(),
            )
            .await,
            config.budgets.table.clone().unwrap_or_default(),
        )),
    };

    let metrics = Arc::new(Metrics::new());
    let policy = Arc::new(PolicyStore::new(policy, config.policy.dir.clone()));
    if policy.dir().is_some() {
        crate::spawn(crate::policy::watch(
            Arc::downgrade(&policy),
            Arc::downgrade(&metrics),
            Duration::from_secs(config.policy.reload_secs),
        ));
    }

    let guard = Arc::new(
        guard
            .await
            .map_err(|e| StartupError::Guard(format!("the guard engine was not built: {e}")))?
            .map_err(StartupError::Guard)?,
    );
    let console = if config.console.enabled {
        let reader: Arc<dyn causeway_audit::AuditReader> = match (config.audit.store, aws_store) {
            (AuditStoreKind::Aws, Some(store)) => {
                let section = &config.audit;
                let mut sdk = aws.get().await.to_builder();
                if let Some(region) = &section.region {
                    sdk.set_region(Some(aws_config::Region::new(region.clone())));
                }
                if let Some(endpoint) = &section.endpoint_url {
                    sdk.set_endpoint_url(Some(endpoint.clone()));
                }
                Arc::new(
                    causeway_audit_aws::AwsReader::new(sdk.build(), section.table.clone())
                        .with_bucket(section.bucket.clone())
                        .with_signing_key_id(section.signing_key_id.clone())
                        .with_path_style(section.endpoint_url.is_some())
                        .with_store(store),
                )
            }
            _ => crate::console::embedded_reader(&config)?,
        };
        let secret = config
            .console
            .oidc
            .as_ref()
            .and_then(|o| o.client_secret_env.as_deref())
            .map(|name| named_env(&overrides.env, "console.oidc.client_secret_env", name))
            .transpose()?;
        let session_key = config
            .console
            .session_key_env
            .as_deref()
            .map(|name| named_env(&overrides.env, "console.session_key_env", name))
            .transpose()?;
        crate::console::build(crate::console::Parts {
            config: &config,
            sink: Arc::clone(&audit),
            reader,
            policy: Arc::clone(&policy),
            guard: Arc::clone(&guard),
            secret,
            session_key,
            on_lambda,
        })
        .await
        .map_err(StartupError::Config)?
    } else {
        None
    };

    let refusals = Arc::new(crate::collapse::Collapser::default());
    crate::spawn(crate::collapse::close_every_second(
        Arc::downgrade(&refusals),
        Arc::downgrade(&audit),
        Arc::downgrade(&metrics),
    ));

    Ok(AppState {
        refusals,
        budgets: Arc::new(Budgets::with_store(config.budgets.limits(), budget_store)),
        admission: Arc::new(crate::admission::Admission::new(
            config.budgets.user_requests_per_minute,
            config.budgets.workload_requests_per_minute,
        )),
        config,
        policy,
        guard,
        console,
        verifier: Arc::new(verifier),
        workload: Arc::new(workload),
        audit,
        metrics,
        providers,
    })
}
