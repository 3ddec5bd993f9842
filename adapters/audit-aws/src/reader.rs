//! The AWS audit store as a [`AuditReader`]: what `causeway evidence --store aws` does with the table, the
//! bucket and the checkpoint key, with the credentials of whoever runs it (a compliance role for reading, the
//! hub account's admin role for erasure), never the hub's.

use std::path::Path;

use async_trait::async_trait;
use causeway_audit::pack::{self, ExportSummary};
use causeway_audit::{
    AuditError, AuditReader, AuditRecord, ChainSummary, CheckpointSigner as _, ErasedPeriod,
    PayloadState, PublicKeyInfo, RecordFilter, Verification,
};
use time::{Date, OffsetDateTime};

use crate::kms::{KmsSigner, public_key};
use crate::{AwsAuditReader, IndexKey, erase_period_with};

/// The AWS audit store for evidence work, from the settings given: the index table (queries, verification,
/// exports, erasure), the payload bucket (erasure) and the KMS key that signs checkpoints (exports, public
/// keys). A method whose setting is missing says which with [`AuditError::Unsupported`].
#[derive(Debug, Clone)]
pub struct AwsReader {
    sdk: aws_config::SdkConfig,
    table: Option<String>,
    bucket: Option<String>,
    signing_key_id: Option<String>,
    path_style: bool,
    store: Option<std::sync::Arc<crate::AwsAuditStore>>,
}

impl AwsReader {
    /// A reader with the clients `sdk` makes, of `table` when given.
    pub const fn new(sdk: aws_config::SdkConfig, table: Option<String>) -> Self {
        Self {
            sdk,
            table,
            bucket: None,
            signing_key_id: None,
            path_style: false,
            store: None,
        }
    }

    /// The store's writer, whose data keys open payloads (the hub's console reads payloads through it).
    #[must_use]
    pub fn with_store(mut self, store: std::sync::Arc<crate::AwsAuditStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The payload bucket, for erasure.
    #[must_use]
    pub fn with_bucket(mut self, bucket: Option<String>) -> Self {
        self.bucket = bucket;
        self
    }

    /// The KMS key that signs checkpoints, for exports and public keys.
    #[must_use]
    pub fn with_signing_key_id(mut self, key_id: Option<String>) -> Self {
        self.signing_key_id = key_id;
        self
    }

    /// Path-style S3 addressing (an S3-compatible endpoint other than AWS's).
    #[must_use]
    pub const fn with_path_style(mut self, path_style: bool) -> Self {
        self.path_style = path_style;
        self
    }

    fn table(&self) -> Result<&str, AuditError> {
        self.table.as_deref().ok_or_else(|| {
            AuditError::Unsupported("the AWS store needs its index table (`--table`)".into())
        })
    }

    fn table_reader(&self) -> Result<AwsAuditReader, AuditError> {
        Ok(AwsAuditReader::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            self.table()?,
        ))
    }

    fn signing_key_id(&self) -> Result<&str, AuditError> {
        self.signing_key_id.as_deref().ok_or_else(|| {
            AuditError::Unsupported(
                "the AWS store needs the KMS key that signs its checkpoints (`--signing-key-id`)"
                    .into(),
            )
        })
    }
}

#[async_trait]
impl AuditReader for AwsReader {
    fn describe(&self) -> String {
        self.table.as_ref().map_or_else(
            || "the AWS store".to_owned(),
            |table| format!("table {table}"),
        )
    }

    async fn query(&self, filter: &RecordFilter) -> Result<Vec<(AuditRecord, String)>, AuditError> {
        // One of the table's indexes answers a filter on exactly one of user, account and model; every other
        // filter is read from the chains, newest first.
        let (key, value) = match (&filter.user_sub, &filter.spoke_account, &filter.model_alias) {
            (Some(user), None, None) => (IndexKey::User, user),
            (None, Some(account), None) => (IndexKey::Account, account),
            (None, None, Some(model)) => (IndexKey::Model, model),
            _ => return self.table_reader()?.query_chains(filter).await,
        };
        // Conditions the index does not hold are checked on what it returns, so it is read whole then.
        let narrowed = filter.purpose.is_some()
            || filter.outcome.is_some()
            || filter.application.is_some()
            || filter.guard_entity.is_some()
            || filter.record_id.is_some();
        // A cursor ends the range at its time; records of that very millisecond are kept only below its id.
        let until = filter.until_unix_ms.unwrap_or(i64::MAX);
        let until = filter
            .before
            .as_ref()
            .map_or(until, |(ts, _)| until.min(ts.saturating_add(1)));
        let mut records = self
            .table_reader()?
            .query_index(
                key,
                value,
                filter.since_unix_ms.unwrap_or(0),
                until,
                if narrowed || filter.limit == 0 {
                    0
                } else if filter.before.is_some() {
                    // The cursor's own millisecond may hold records at or above it, dropped below.
                    filter.limit + 64
                } else {
                    filter.limit
                },
            )
            .await?;
        records.retain(|(record, _)| filter.matches(record));
        if filter.limit > 0 {
            records.truncate(filter.limit);
        }
        Ok(records)
    }

    async fn verify(
        &self,
        trusted: Option<&[PublicKeyInfo]>,
        progress: &causeway_audit::Progress,
    ) -> Result<Verification, AuditError> {
        let keys = trusted.ok_or_else(|| {
            AuditError::Unsupported(
                "the table does not carry its public keys: pin them with `--key` (print them with `causeway evidence keys --store aws --signing-key-id …`)"
                    .into(),
            )
        })?;
        self.table_reader()?
            .verify_report_counting(keys, Some(progress))
            .await
    }

    async fn export(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        dir: &Path,
    ) -> Result<ExportSummary, AuditError> {
        let signer =
            KmsSigner::new(aws_sdk_kms::Client::new(&self.sdk), self.signing_key_id()?).await?;
        let source = self
            .table_reader()?
            .pack_source(vec![signer.public_key().clone()])
            .await?;
        // The pack is written synchronously and the signer blocks on KMS: off the async workers.
        tokio::task::block_in_place(|| pack::export(&source, &signer, since, until, dir))
    }

    async fn erase_period(&self, period: Date) -> Result<ErasedPeriod, AuditError> {
        let bucket = self.bucket.as_deref().ok_or_else(|| {
            AuditError::Unsupported(
                "erasing needs the payload bucket of the AWS store (`--bucket`)".into(),
            )
        })?;
        erase_period_with(&self.sdk, self.path_style, self.table()?, bucket, period).await
    }

    async fn public_keys(&self) -> Result<Vec<PublicKeyInfo>, AuditError> {
        let key = public_key(&aws_sdk_kms::Client::new(&self.sdk), self.signing_key_id()?).await?;
        Ok(vec![key])
    }

    async fn chains(&self) -> Result<Vec<ChainSummary>, AuditError> {
        self.table_reader()?.chains().await
    }

    async fn record(
        &self,
        chain_id: &str,
        sequence: u64,
    ) -> Result<Option<(AuditRecord, String)>, AuditError> {
        self.table_reader()?.record(chain_id, sequence).await
    }

    async fn payload(&self, record: &AuditRecord) -> Result<PayloadState, AuditError> {
        match &self.store {
            Some(store) => store.payload_state(record).await,
            None => Err(AuditError::Unsupported(
                "payloads of the AWS store are read with its data keys, which only the hub holds: read them in the hub's console"
                    .into(),
            )),
        }
    }
}
