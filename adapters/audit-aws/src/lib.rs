//! The AWS audit store: records in a DynamoDB index table, payloads in S3.
//!
//! This adapter owns every AWS call of the audit trail. [`AwsAuditStore`] is the hub's writer; [`AwsReader`]
//! is the read side compliance uses (`causeway_audit::AuditReader`). It implements the same [`AuditSink`] as the embedded store, with the same record and checkpoint encodings
//! (`shared/audit/RULES.md`), so `causeway_audit::verify` checks it record by record:
//!
//! - **Records**: one item per record, `pk = "chain#<chain_id>"`, `sk = sequence`, with the canonical bytes in
//!   `body` and the indexed attributes beside them. Every write is a PartiQL `INSERT`, which fails on an
//!   existing key, so two writers can never put two records at one position: a stale writer fails (and its
//!   caller gets a 503) instead of forking the chain, and nothing the hub writes can replace an item. Global secondary indexes `by_user`, `by_account` and `by_model` (each
//!   keyed by the attribute and `ts`, milliseconds) answer "one user over a day" without a scan.
//! - **Checkpoints**: items `pk = "checkpoints"`, `sk = log sequence`, inserted the same way, so
//!   the one log of the table stays linear across every instance. A chain's start is a genesis checkpoint.
//! - **Payloads**: S3 objects `payloads/<UTC day>/<record id>.json`, put *before* the record, with SSE-KMS
//!   (`aws:kms`, the configured key) and Object Lock in compliance mode until the retention date; a lifecycle
//!   rule ([`configure_bucket`]) expires them after it. The record keeps only their SHA-256.
//! - **Payload encryption and erasure** ([`AwsAuditStore::with_payload_kms`]): payloads are also sealed
//!   client-side (AES-256-GCM bound to record id and day, as in the embedded store) under a per-UTC-day data
//!   key from KMS `GenerateDataKey`, stored wrapped in the table (`pk = "datakey#<day>"`). [`erase_period`]
//!   deletes that item and records `erased#<day>`: the day's payloads can no longer be read, the records still
//!   verify.
//!
//! INVARIANT (as for every sink): `append` returns `Ok` only when the record's `INSERT` succeeded — DynamoDB
//! acknowledges a write once it is durable in several availability zones.
//!
//! Each writer (a Lambda instance, a container) owns its own chain and serialises its appends; a Lambda
//! instance handles one request at a time, so this costs no concurrency there.

pub mod kms;
mod reader;

pub use reader::AwsReader;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, DefaultRetention, ExpirationStatus, LifecycleExpiration,
    LifecycleRule, LifecycleRuleFilter, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockMode,
    ObjectLockRetentionMode, ObjectLockRule, ServerSideEncryption,
};
use causeway_audit::verify::{ChainCheck, CheckpointLog, Verification, Voucher};
use causeway_audit::{
    AuditError, AuditReceipt, AuditSink, CheckpointSigner, DataKeys, ErasedPeriod, Payload,
    PublicKeyInfo, period_of,
};
use causeway_contract::audit::{
    AuditEvent, AuditRecord, Checkpoint, CheckpointKind, GENESIS_HASH, sha256_hex,
};
use time::OffsetDateTime;
use tokio::sync::Mutex;

/// The partition of the checkpoint log.
const CHECKPOINTS_PK: &str = "checkpoints";
/// Conflicting checkpoint writers retry this often before giving up (the record is durable either way).
const CHECKPOINT_TRIES: usize = 8;
/// The global secondary indexes: name, attribute.
pub const INDEXES: [(&str, &str); 3] = [
    ("by_user", "user_sub"),
    ("by_account", "spoke_account"),
    ("by_model", "model_alias"),
];

/// The attribute an index query selects on, in the order of [`INDEXES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKey {
    /// `by_user`: the user's `sub`.
    User = 0,
    /// `by_account`: the spoke account.
    Account = 1,
    /// `by_model`: the model alias.
    Model = 2,
}

/// Where and how the AWS store writes.
#[derive(Debug, Clone)]
pub struct AwsAuditOptions {
    /// The DynamoDB table (partition key `pk` string, sort key `sk` number; see [`create_table`]).
    pub table: String,
    /// The S3 bucket for payloads (Object Lock enabled at creation).
    pub bucket: String,
    /// The KMS key for SSE-KMS; `None` uses the bucket's default `aws:kms` key.
    pub kms_key_id: Option<String>,
    /// How long payloads are locked (compliance mode) and kept.
    pub retention_days: u32,
    /// This writer's chain, e.g. `lambda-<uuid v7>` per instance.
    pub chain_id: String,
    /// A checkpoint every this many records.
    pub checkpoint_every: u64,
    /// A checkpoint at the first append after this long without one.
    pub checkpoint_interval: Duration,
}

struct Head {
    sequence: u64,
    hash: String,
    checkpointed: u64,
    checkpointed_at: Instant,
}

/// The AWS audit store. See the module documentation.
pub struct AwsAuditStore {
    ddb: aws_sdk_dynamodb::Client,
    reader: AwsAuditReader,
    s3: aws_sdk_s3::Client,
    options: AwsAuditOptions,
    signer: Arc<dyn CheckpointSigner>,
    head: Mutex<Head>,
    data_keys: Option<Arc<dyn DataKeys>>,
    day_keys: Mutex<DayKeys>,
}

/// The unwrapped data keys of the days this store used, cached for the process's life.
#[derive(Default)]
struct DayKeys(HashMap<String, [u8; 32]>);

impl std::fmt::Debug for DayKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DayKeys")
            .field("days", &self.0.len())
            .finish_non_exhaustive()
    }
}

fn datakey_pk(day: &str) -> String {
    format!("datakey#{day}")
}

fn erased_pk(day: &str) -> String {
    format!("erased#{day}")
}

fn erased_error(day: &str) -> AuditError {
    AuditError::Read(format!(
        "the payloads of {day} are erased: its data key is destroyed"
    ))
}

fn format_day(day: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

impl std::fmt::Debug for AwsAuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsAuditStore")
            .field("options", &self.options)
            .field("key_id", &self.signer.public_key().key_id)
            .finish_non_exhaustive()
    }
}

fn write(e: impl std::fmt::Display) -> AuditError {
    AuditError::Write(e.to_string())
}

fn read(e: impl std::fmt::Display) -> AuditError {
    AuditError::Read(e.to_string())
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Pushes a chain's items, in sequence order, through `check`.
fn check_items<'c>(
    mut check: ChainCheck<'c>,
    items: &[HashMap<String, AttributeValue>],
) -> ChainCheck<'c> {
    for item in items {
        check.push(
            get_s(item, "body").unwrap_or_default().as_bytes(),
            get_s(item, "record_hash"),
        );
    }
    check
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &HashMap<String, AttributeValue>, key: &str) -> Option<u64> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn chain_pk(chain_id: &str) -> String {
    format!("chain#{chain_id}")
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Adds `item` to `table` unless an item with its key is there already, in which case `Ok(false)`.
///
/// A PartiQL `INSERT`, not a conditional `PutItem`: an `INSERT` can never replace an item, and IAM can grant
/// it on its own (`dynamodb:PartiQLInsert`), while it has no condition that makes a `PutItem` conditional. So
/// the hub role appends records, checkpoints and day keys and cannot overwrite one (`infra/hub.yaml`).
async fn insert(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    item: HashMap<String, AttributeValue>,
) -> Result<bool, AuditError> {
    let mut attributes: Vec<(String, AttributeValue)> = item.into_iter().collect();
    attributes.sort_by(|a, b| a.0.cmp(&b.0));
    // Table names are `[A-Za-z0-9_.-]` and attribute names are this module's constants: neither can close
    // the quotes they sit in. Every value is a parameter.
    let fields = attributes
        .iter()
        .map(|(name, _)| format!("'{name}': ?"))
        .collect::<Vec<_>>()
        .join(", ");
    let inserted = ddb
        .execute_statement()
        .statement(format!("INSERT INTO \"{table}\" VALUE {{{fields}}}"))
        .set_parameters(Some(attributes.into_iter().map(|(_, v)| v).collect()))
        .send()
        .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_duplicate_item_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(write(aws_sdk_dynamodb::error::DisplayErrorContext(e))),
    }
}

impl AwsAuditStore {
    /// Opens the store for `options.chain_id`: reads the chain's head, and registers the chain with a genesis
    /// checkpoint when it is new (or checkpoints the head a previous writer of the chain left).
    pub async fn open(
        ddb: aws_sdk_dynamodb::Client,
        s3: aws_sdk_s3::Client,
        options: AwsAuditOptions,
        signer: Arc<dyn CheckpointSigner>,
    ) -> Result<Self, AuditError> {
        let store = Self {
            reader: AwsAuditReader::new(ddb.clone(), options.table.clone()),
            ddb,
            s3,
            signer,
            data_keys: None,
            day_keys: Mutex::new(DayKeys::default()),
            head: Mutex::new(Head {
                sequence: 0,
                hash: GENESIS_HASH.to_owned(),
                checkpointed: 0,
                checkpointed_at: Instant::now(),
            }),
            options,
        };
        let (sequence, hash) = store
            .chain_head()
            .await
            .map_err(|e| AuditError::Unavailable(e.to_string()))?;
        {
            let mut head = store.head.lock().await;
            head.sequence = sequence;
            head.hash.clone_from(&hash);
            head.checkpointed = sequence;
        }
        let kind = if sequence == 0 {
            CheckpointKind::Genesis
        } else {
            CheckpointKind::Periodic
        };
        store
            .append_checkpoint(kind, sequence, &hash)
            .await
            .map_err(|e| AuditError::Unavailable(e.to_string()))?;
        Ok(store)
    }

    /// Envelope-encrypts payloads client-side: a per-UTC-day data key from KMS `GenerateDataKey` under
    /// `kms_key_id`, wrapped in the table (`pk = "datakey#<day>"`), AES-256-GCM bound to record id and day.
    /// Required for [`Self::payload`] and for payload writes once set; [`Self::erase_period`] destroys a day.
    #[must_use]
    pub fn with_payload_kms(self, kms: aws_sdk_kms::Client) -> Self {
        let key_id = self.options.kms_key_id.clone();
        self.with_data_keys(Arc::new(kms::KmsDataKeys::new(kms, key_id)))
    }

    /// Envelope-encrypts payloads under per-day keys from `keys` (see [`Self::with_payload_kms`]).
    #[must_use]
    pub fn with_data_keys(mut self, keys: Arc<dyn DataKeys>) -> Self {
        self.data_keys = Some(keys);
        self
    }

    /// The chain this store appends to.
    pub fn chain_id(&self) -> &str {
        &self.options.chain_id
    }

    async fn chain_head(&self) -> Result<(u64, String), AuditError> {
        let out = self
            .ddb
            .query()
            .table_name(&self.options.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(chain_pk(&self.options.chain_id)))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| read(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(match out.items().first() {
            Some(item) => (
                get_n(item, "sk").unwrap_or(0),
                get_s(item, "record_hash")
                    .unwrap_or(GENESIS_HASH)
                    .to_owned(),
            ),
            None => (0, GENESIS_HASH.to_owned()),
        })
    }

    /// Appends a checkpoint to the table's log: reads the log head, links to it, signs, and inserts it;
    /// retries when another writer took the position.
    async fn append_checkpoint(
        &self,
        kind: CheckpointKind,
        chain_sequence: u64,
        chain_head_hash: &str,
    ) -> Result<Checkpoint, AuditError> {
        for _ in 0..CHECKPOINT_TRIES {
            let out = self
                .ddb
                .query()
                .table_name(&self.options.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(CHECKPOINTS_PK))
                .scan_index_forward(false)
                .limit(1)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| read(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
            let (last, prev_hash) = out.items().first().map_or((0, GENESIS_HASH), |item| {
                (
                    get_n(item, "sk").unwrap_or(0),
                    get_s(item, "checkpoint_hash").unwrap_or(GENESIS_HASH),
                )
            });
            let checkpoint = Checkpoint {
                schema_version: Checkpoint::SCHEMA_VERSION,
                sequence: last + 1,
                prev_hash: prev_hash.to_owned(),
                kind,
                timestamp: OffsetDateTime::now_utc(),
                chain_id: self.options.chain_id.clone(),
                chain_sequence,
                chain_head_hash: chain_head_hash.to_owned(),
                key_id: self.signer.public_key().key_id.clone(),
            };
            let bytes = checkpoint
                .canonical_bytes()
                .map_err(|e| AuditError::Encode(e.to_string()))?;
            let signature = hex::encode(self.signer.sign_async(&bytes).await?);
            let body = String::from_utf8(bytes).map_err(|e| AuditError::Encode(e.to_string()))?;
            let item = HashMap::from([
                ("pk".to_owned(), s(CHECKPOINTS_PK)),
                ("sk".to_owned(), n(checkpoint.sequence)),
                ("chain_id".to_owned(), s(&self.options.chain_id)),
                ("chain_sequence".to_owned(), n(chain_sequence)),
                ("checkpoint_hash".to_owned(), s(sha256_hex(body.as_bytes()))),
                ("signature".to_owned(), s(signature)),
                ("body".to_owned(), s(body)),
            ]);
            // When another instance took this position first, read the log's head again.
            if insert(&self.ddb, &self.options.table, item).await? {
                return Ok(checkpoint);
            }
        }
        Err(AuditError::Write(format!(
            "the checkpoint log stayed contended for {CHECKPOINT_TRIES} tries"
        )))
    }

    async fn item(&self, pk: &str) -> Result<Option<HashMap<String, AttributeValue>>, AuditError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.options.table)
            .key("pk", s(pk))
            .key("sk", n(0))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| read(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(out.item().cloned())
    }

    async fn unwrap_key(
        &self,
        keys: &dyn DataKeys,
        day: &str,
        item: &HashMap<String, AttributeValue>,
    ) -> Result<[u8; 32], AuditError> {
        let wrapped = item
            .get("wrapped_key")
            .and_then(|v| v.as_b().ok())
            .ok_or_else(|| read(format!("the data key item of {day} has no wrapped key")))?;
        keys.unwrap(day, wrapped.as_ref()).await
    }

    /// The data key of `day`: from the cache, else unwrapped from the table, else (when `create`) generated by
    /// KMS and stored wrapped. An erased day is refused.
    async fn day_key(&self, day: &str, create: bool) -> Result<[u8; 32], AuditError> {
        let keys = self.data_keys.as_deref().ok_or_else(|| {
            AuditError::Unavailable("the store has no data keys for payloads".into())
        })?;
        // The cache serves writes of the current days only: a day that can already be erased (ended a full
        // day ago) and every read go to the table, so an erasure made elsewhere is seen at once.
        let today = OffsetDateTime::now_utc().date();
        let recent = today
            .previous_day()
            .is_some_and(|yesterday| day >= format_day(yesterday).as_str());
        if create
            && recent
            && let Some(key) = self.day_keys.lock().await.0.get(day)
        {
            return Ok(*key);
        }
        for _ in 0..2 {
            if let Some(item) = self.item(&datakey_pk(day)).await? {
                let key = self.unwrap_key(keys, day, &item).await?;
                self.day_keys.lock().await.0.insert(day.to_owned(), key);
                return Ok(key);
            }
            if self.item(&erased_pk(day)).await?.is_some() {
                return Err(erased_error(day));
            }
            if !create {
                return Err(read(format!("no data key for {day}")));
            }
            let causeway_audit::NewDataKey { key, wrapped } = keys.generate(day).await?;
            let item = HashMap::from([
                ("pk".to_owned(), s(datakey_pk(day))),
                ("sk".to_owned(), n(0)),
                (
                    "wrapped_key".to_owned(),
                    AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(wrapped)),
                ),
                ("created".to_owned(), n(unix_ms(OffsetDateTime::now_utc()))),
            ]);
            // When another instance made the day's key first, the next round reads and uses that one.
            if insert(&self.ddb, &self.options.table, item).await? {
                self.day_keys.lock().await.0.insert(day.to_owned(), key);
                return Ok(key);
            }
        }
        Err(write(format!("the data key of {day} stayed contended")))
    }

    /// Reads the payload of record `id` made on UTC day `day`, decrypted and decoded. A day erased with
    /// [`Self::erase_period`] gives an error naming the day as erased.
    pub async fn payload(&self, id: uuid::Uuid, day: time::Date) -> Result<Payload, AuditError> {
        let day = format_day(day);
        let object = self
            .s3
            .get_object()
            .bucket(&self.options.bucket)
            .key(format!("payloads/{day}/{id}.json"))
            .send()
            .await
            .map_err(|e| read(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        let sealed = object.body.collect().await.map_err(read)?.into_bytes();
        let key = self.day_key(&day, false).await?;
        let plain = causeway_audit::open_payload(&key, &id.to_string(), &day, &sealed)?
            .ok_or_else(|| read(format!("the payload of {id} does not decrypt")))?;
        serde_json::from_slice(&plain)
            .map_err(|e| read(format!("the payload of {id} does not decode: {e}")))
    }

    /// What is stored of `record`'s payload: decrypted and checked against the record's hashes, erased with
    /// its day, or absent (a refusal stores none).
    pub async fn payload_state(
        &self,
        record: &AuditRecord,
    ) -> Result<causeway_audit::PayloadState, AuditError> {
        let event = &record.event;
        if event.prompt_sha256.is_none() && event.response_sha256.is_none() {
            return Ok(causeway_audit::PayloadState::Absent);
        }
        let day = event.timestamp.date();
        if self.item(&erased_pk(&format_day(day))).await?.is_some() {
            return Ok(causeway_audit::PayloadState::Erased {
                period: format_day(day),
            });
        }
        let payload = self.payload(event.id, day).await?;
        if !payload.matches(event) {
            return Err(read(format!(
                "the payload of {} does not match its record's hashes",
                event.id
            )));
        }
        Ok(causeway_audit::PayloadState::Stored(payload))
    }

    /// Erases a UTC day: records the erasure (`erased#<day>`, so no later write of the day gets a key) and
    /// deletes the day's wrapped data key, so its payloads can no longer be decrypted. Records and checkpoints
    /// are untouched and still verify. Refused until a whole day has passed since the day ended.
    pub async fn erase_period(&self, period: time::Date) -> Result<ErasedPeriod, AuditError> {
        let erased = erase_period(
            &self.ddb,
            &self.s3,
            &self.options.table,
            &self.options.bucket,
            period,
        )
        .await?;
        self.day_keys.lock().await.0.remove(&erased.period);
        Ok(erased)
    }

    async fn put_payload(&self, event: &AuditEvent, payload: &Payload) -> Result<(), AuditError> {
        let day = period_of(event.timestamp);
        let key = format!("payloads/{day}/{}.json", event.id);
        let mut body =
            serde_json::to_vec(payload).map_err(|e| AuditError::Encode(e.to_string()))?;
        if self.data_keys.is_some() {
            let data_key = self.day_key(&day, true).await.map_err(|e| match e {
                AuditError::Read(m) => AuditError::Write(m),
                other => other,
            })?;
            body = causeway_audit::seal_payload(&data_key, &event.id.to_string(), &day, &body)?;
        }
        let until = OffsetDateTime::now_utc()
            + time::Duration::days(i64::from(self.options.retention_days));
        self.s3
            .put_object()
            .bucket(&self.options.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .content_type(if self.data_keys.is_some() {
                "application/octet-stream"
            } else {
                "application/json"
            })
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .set_ssekms_key_id(self.options.kms_key_id.clone())
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(DateTime::from_secs(until.unix_timestamp()))
            // Never over an existing payload (each record's key is new); the hub role may not put without it.
            .if_none_match("*")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| write(aws_sdk_s3::error::DisplayErrorContext(e)))
    }

    /// Records of one user in `[since, until)` (Unix ms), newest first, from the `by_user` index.
    pub async fn query_user(
        &self,
        user_sub: &str,
        since_unix_ms: i64,
        until_unix_ms: i64,
    ) -> Result<Vec<AuditRecord>, AuditError> {
        self.reader
            .query_user(user_sub, since_unix_ms, until_unix_ms)
            .await
    }

    /// Verifies the table; see [`AwsAuditReader::verify_report`].
    pub async fn verify_report(
        &self,
        trusted: &[PublicKeyInfo],
    ) -> Result<Verification, AuditError> {
        self.reader.verify_report(trusted).await
    }
}

/// Erases a UTC day of the AWS store (`table`, `bucket`): records the erasure (`erased#<day>`, so no later
/// write of the day gets a key) and deletes the day's wrapped data key, so its payloads can no longer be
/// decrypted. Records and checkpoints are untouched and still verify. Refused until a whole day has passed
/// since the day ended. Counts the day's payload objects (S3 `ListObjectsV2`).
pub async fn erase_period(
    ddb: &aws_sdk_dynamodb::Client,
    s3: &aws_sdk_s3::Client,
    table: &str,
    bucket: &str,
    period: time::Date,
) -> Result<ErasedPeriod, AuditError> {
    let today = OffsetDateTime::now_utc().date();
    let name = format_day(period);
    if period.next_day().is_none_or(|next| next >= today) {
        return Err(AuditError::Write(format!(
            "period {name} can be erased from {} on",
            period
                .next_day()
                .and_then(time::Date::next_day)
                .map_or_else(|| "never".to_owned(), format_day)
        )));
    }
    ddb.put_item()
        .table_name(table)
        .item("pk", s(erased_pk(&name)))
        .item("sk", n(0))
        .item("erased", n(unix_ms(OffsetDateTime::now_utc())))
        .send()
        .await
        .map_err(|e| write(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    let deleted = ddb
        .delete_item()
        .table_name(table)
        .key("pk", s(datakey_pk(&name)))
        .key("sk", n(0))
        .condition_expression("attribute_exists(pk)")
        .send()
        .await;
    match deleted {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
        Err(e) => return Err(write(aws_sdk_dynamodb::error::DisplayErrorContext(e))),
    }
    let mut payloads = 0_u64;
    let mut token = None;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(format!("payloads/{name}/"))
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| read(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        payloads += u64::try_from(out.contents().len()).unwrap_or(0);
        token = out.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    Ok(ErasedPeriod {
        period: name,
        payloads,
    })
}

/// [`erase_period`] with DynamoDB and S3 clients built from `sdk` (S3 path-style when `path_style`, as an
/// endpoint override such as a local emulator needs): what `causeway evidence erase --store aws` runs.
pub async fn erase_period_with(
    sdk: &aws_config::SdkConfig,
    path_style: bool,
    table: &str,
    bucket: &str,
    period: time::Date,
) -> Result<ErasedPeriod, AuditError> {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .build(),
    );
    erase_period(
        &aws_sdk_dynamodb::Client::new(sdk),
        &s3,
        table,
        bucket,
        period,
    )
    .await
}

// === impl AwsAuditReader ===

/// Reads an AWS audit table without writing to it: queries and verification (`causeway evidence`).
#[derive(Debug, Clone)]
pub struct AwsAuditReader {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
}

impl AwsAuditReader {
    /// A reader of `table`.
    pub fn new(ddb: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            ddb,
            table: table.into(),
        }
    }

    /// Records of one user in `[since, until)` (Unix ms), newest first, from the `by_user` index.
    pub async fn query_user(
        &self,
        user_sub: &str,
        since_unix_ms: i64,
        until_unix_ms: i64,
    ) -> Result<Vec<AuditRecord>, AuditError> {
        let rows = self
            .query_index(IndexKey::User, user_sub, since_unix_ms, until_unix_ms, 0)
            .await?;
        Ok(rows.into_iter().map(|(record, _)| record).collect())
    }

    /// Records whose `key` attribute is `value`, in `[since, until)` (Unix ms), newest first, with their stored
    /// `record_hash`, from that attribute's index; at most `limit` (0 for all).
    pub async fn query_index(
        &self,
        key: IndexKey,
        value: &str,
        since_unix_ms: i64,
        until_unix_ms: i64,
        limit: usize,
    ) -> Result<Vec<(AuditRecord, String)>, AuditError> {
        let (index, attribute) = INDEXES[key as usize];
        let mut records = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .ddb
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#k = :v AND ts BETWEEN :a AND :b")
                .expression_attribute_names("#k", attribute)
                .expression_attribute_values(":v", s(value))
                .expression_attribute_values(":a", n(since_unix_ms))
                .expression_attribute_values(":b", n(until_unix_ms.saturating_sub(1)))
                .scan_index_forward(false)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| read(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
            for item in out.items() {
                let body = get_s(item, "body").unwrap_or_default();
                let hash = get_s(item, "record_hash").unwrap_or_default().to_owned();
                records.push((serde_json::from_str(body).map_err(read)?, hash));
                if records.len() == limit {
                    return Ok(records);
                }
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(records);
            }
        }
    }

    async fn partition(
        &self,
        pk: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, AuditError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| read(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
            items.extend(out.items().iter().cloned());
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// The record at `sequence` of `chain_id`, read consistently by its key.
    pub async fn record(
        &self,
        chain_id: &str,
        sequence: u64,
    ) -> Result<Option<(AuditRecord, String)>, AuditError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", s(chain_pk(chain_id)))
            .key("sk", n(sequence))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| read(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        out.item()
            .map(|item| {
                let body = get_s(item, "body").unwrap_or_default();
                let hash = get_s(item, "record_hash").unwrap_or_default().to_owned();
                serde_json::from_str(body).map(|r| (r, hash)).map_err(read)
            })
            .transpose()
    }

    /// The records `filter` selects, read chain by chain newest first (by sequence, which follows time) and
    /// merged newest first, for filters no index of the table answers. Each chain is read only down to
    /// `since` (less a minute: records are stamped just before they are sequenced) and only until it gave
    /// `limit` matches; without `since` a rare filter reads whole chains.
    pub async fn query_chains(
        &self,
        filter: &causeway_audit::RecordFilter,
    ) -> Result<Vec<(AuditRecord, String)>, AuditError> {
        let floor = filter
            .since_unix_ms
            .map(|since| since.saturating_sub(60_000));
        let mut found = Vec::new();
        for chain in self.latest_checkpoints().await?.into_keys() {
            let mut start = None;
            let mut matched = 0;
            'chain: loop {
                let out = self.newest_first(&chain, start, None).await?;
                for item in out.items() {
                    let record: AuditRecord =
                        serde_json::from_str(get_s(item, "body").unwrap_or_default())
                            .map_err(read)?;
                    if floor.is_some_and(|floor| unix_ms(record.event.timestamp) < floor) {
                        break 'chain;
                    }
                    if filter.matches(&record) {
                        let hash = get_s(item, "record_hash").unwrap_or_default().to_owned();
                        found.push((record, hash));
                        matched += 1;
                        if filter.limit > 0 && matched >= filter.limit {
                            break 'chain;
                        }
                    }
                }
                start = out.last_evaluated_key().cloned();
                if start.is_none() {
                    break;
                }
            }
        }
        found.sort_by(|(a, _), (b, _)| {
            (b.event.timestamp, b.event.id).cmp(&(a.event.timestamp, a.event.id))
        });
        if filter.limit > 0 {
            found.truncate(filter.limit);
        }
        Ok(found)
    }

    /// Per chain the checkpoint log registered, its latest checkpoint: the chain sequence it covers and when
    /// it was made (Unix milliseconds).
    async fn latest_checkpoints(
        &self,
    ) -> Result<std::collections::BTreeMap<String, (u64, i64)>, AuditError> {
        let mut latest: std::collections::BTreeMap<String, (u64, i64)> = Default::default();
        for item in self.partition(CHECKPOINTS_PK).await? {
            let body = get_s(&item, "body").unwrap_or_default();
            let checkpoint: Checkpoint = serde_json::from_str(body).map_err(read)?;
            let at = unix_ms(checkpoint.timestamp);
            let entry = latest.entry(checkpoint.chain_id).or_insert((0, at));
            if checkpoint.chain_sequence >= entry.0 {
                *entry = (checkpoint.chain_sequence, at);
            }
        }
        Ok(latest)
    }

    /// One page of `chain`'s records, newest (highest sequence) first, from `start`, at most `limit` of
    /// them; read consistently.
    async fn newest_first(
        &self,
        chain: &str,
        start: Option<HashMap<String, AttributeValue>>,
        limit: Option<i32>,
    ) -> Result<aws_sdk_dynamodb::operation::query::QueryOutput, AuditError> {
        self.ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(chain_pk(chain)))
            .scan_index_forward(false)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .set_limit(limit)
            .send()
            .await
            .map_err(|e| read(aws_sdk_dynamodb::error::DisplayErrorContext(e)))
    }

    /// Each chain the checkpoint log registered: its head (the last record, read by key order) and its
    /// latest checkpoint.
    pub async fn chains(&self) -> Result<Vec<causeway_audit::ChainSummary>, AuditError> {
        let latest = self.latest_checkpoints().await?;
        let mut chains = Vec::with_capacity(latest.len());
        for (chain_id, (checkpoint, checkpoint_at)) in latest {
            let out = self.newest_first(&chain_id, None, Some(1)).await?;
            let Some(head) = out.items().first() else {
                continue;
            };
            let record: AuditRecord =
                serde_json::from_str(get_s(head, "body").unwrap_or_default()).map_err(read)?;
            chains.push(causeway_audit::ChainSummary {
                chain_id,
                head_sequence: record.sequence,
                head_hash: get_s(head, "record_hash").unwrap_or_default().to_owned(),
                head_unix_ms: unix_ms(record.event.timestamp),
                checkpoint_sequence: Some(checkpoint),
                checkpoint_unix_ms: Some(checkpoint_at),
            });
        }
        Ok(chains)
    }

    /// Verifies the table: the checkpoint log (signatures by `trusted`), then every chain it registered, record
    /// by record, against it. (A chain written without a genesis checkpoint would need a table scan to find;
    /// every writer registers its chain on open.)
    pub async fn verify_report(
        &self,
        trusted: &[PublicKeyInfo],
    ) -> Result<Verification, AuditError> {
        self.verify_report_counting(trusted, None).await
    }

    /// [`Self::verify_report`], counting the records checked into `progress` as it goes.
    pub async fn verify_report_counting(
        &self,
        trusted: &[PublicKeyInfo],
        progress: Option<&causeway_audit::Progress>,
    ) -> Result<Verification, AuditError> {
        let checkpoints = self.partition(CHECKPOINTS_PK).await?;
        let rows: Vec<(&str, &str, &str)> = checkpoints
            .iter()
            .map(|item| {
                (
                    get_s(item, "body").unwrap_or_default(),
                    get_s(item, "checkpoint_hash").unwrap_or_default(),
                    get_s(item, "signature").unwrap_or_default(),
                )
            })
            .collect();
        let log =
            CheckpointLog::check(rows.iter().map(|(b, h, s)| (b.as_bytes(), *h, *s)), trusted);
        let mut report = Verification {
            chains: log.registered.len(),
            checkpoints: log.count,
            log_head: log.head_hash.clone(),
            ..Verification::default()
        };
        for chain in log.registered.keys() {
            let items = self.partition(&chain_pk(chain)).await?;
            let anchors = log.anchors.get(chain);
            let mut check = check_items(
                ChainCheck::new(chain, anchors, 1, GENESIS_HASH)
                    .counting(progress)
                    .trusting_vouched_form(),
                &items,
            );
            if check.needs_full_check() {
                check = check_items(ChainCheck::new(chain, anchors, 1, GENESIS_HASH), &items);
            }
            report.records += check.count();
            let end = log
                .vouched_end(chain)
                .map(|(seq, cp)| (seq, Voucher::Checkpoint(cp)));
            report.breaks.extend(check.finish(end));
        }
        report.breaks.extend(log.broken);
        Ok(report)
    }
}

// === impl AwsPackSource ===

/// The table read once for `causeway evidence export`: the checkpoint log and every registered chain in full
/// (records are found by time only within a chain, so each chain is read whole), served to
/// [`causeway_audit::pack::export`] from memory.
#[derive(Debug)]
pub struct AwsPackSource {
    checkpoints: Vec<(String, String, String)>,
    /// Per chain: `(sequence, ts, body, record_hash)` in sequence order.
    chains: std::collections::BTreeMap<String, Vec<(u64, i64, String, String)>>,
    keys: Vec<PublicKeyInfo>,
}

impl AwsAuditReader {
    /// Reads the table for an export; `keys` are the public keys the pack carries (the KMS key's).
    pub async fn pack_source(&self, keys: Vec<PublicKeyInfo>) -> Result<AwsPackSource, AuditError> {
        let items = self.partition(CHECKPOINTS_PK).await?;
        let mut chains = std::collections::BTreeMap::new();
        let mut checkpoints = Vec::with_capacity(items.len());
        for item in &items {
            if let Some(chain) = get_s(item, "chain_id") {
                chains.entry(chain.to_owned()).or_insert_with(Vec::new);
            }
            checkpoints.push((
                get_s(item, "body").unwrap_or_default().to_owned(),
                get_s(item, "checkpoint_hash")
                    .unwrap_or_default()
                    .to_owned(),
                get_s(item, "signature").unwrap_or_default().to_owned(),
            ));
        }
        for (chain, records) in &mut chains {
            for item in self.partition(&chain_pk(chain)).await? {
                records.push((
                    get_n(&item, "sk").unwrap_or(0),
                    item.get("ts")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    get_s(&item, "body").unwrap_or_default().to_owned(),
                    get_s(&item, "record_hash").unwrap_or_default().to_owned(),
                ));
            }
        }
        Ok(AwsPackSource {
            checkpoints,
            chains,
            keys,
        })
    }
}

impl causeway_audit::pack::PackSource for AwsPackSource {
    fn chain_ranges(
        &self,
        since_unix_ms: i64,
        until_unix_ms: i64,
    ) -> Result<Vec<(String, u64, u64)>, AuditError> {
        Ok(self
            .chains
            .iter()
            .filter_map(|(chain, records)| {
                let mut inside = records
                    .iter()
                    .filter(|(_, ts, _, _)| (since_unix_ms..until_unix_ms).contains(ts))
                    .map(|(sequence, _, _, _)| *sequence);
                let first = inside.next()?;
                let last = inside.next_back().unwrap_or(first);
                Some((chain.clone(), first, last))
            })
            .collect())
    }

    fn for_each_record(
        &self,
        chain_id: &str,
        first: u64,
        last: u64,
        f: &mut dyn FnMut(&str, &str) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        for (_, _, body, hash) in self
            .chains
            .get(chain_id)
            .into_iter()
            .flatten()
            .filter(|(sequence, _, _, _)| (first..=last).contains(sequence))
        {
            f(body, hash)?;
        }
        Ok(())
    }

    fn checkpoint_rows(&self) -> Result<Vec<(String, String, String)>, AuditError> {
        Ok(self.checkpoints.clone())
    }

    fn public_keys(&self) -> Result<Vec<PublicKeyInfo>, AuditError> {
        Ok(self.keys.clone())
    }
}

#[async_trait]
impl AuditSink for AwsAuditStore {
    async fn append(
        &self,
        mut event: AuditEvent,
        payload: Option<Payload>,
    ) -> Result<AuditReceipt, AuditError> {
        if let Some(payload) = &payload {
            payload.stamp(&mut event);
        }
        let mut head = self.head.lock().await;
        // The payload first: a record never points at a payload that is not stored.
        if let Some(payload) = &payload {
            self.put_payload(&event, payload).await?;
        }
        let chain_id = self.options.chain_id.clone();
        let sequence = head.sequence + 1;
        let record = AuditRecord {
            schema_version: AuditRecord::SCHEMA_VERSION,
            chain_id: chain_id.clone(),
            sequence,
            prev_hash: head.hash.clone(),
            event,
        };
        let bytes = record
            .canonical_bytes()
            .map_err(|e| AuditError::Encode(e.to_string()))?;
        let hash = sha256_hex(&bytes);
        let body = String::from_utf8(bytes).map_err(|e| AuditError::Encode(e.to_string()))?;
        let e = &record.event;
        let mut item = HashMap::from([
            ("pk".to_owned(), s(chain_pk(&chain_id))),
            ("sk".to_owned(), n(sequence)),
            ("id".to_owned(), s(e.id.to_string())),
            ("ts".to_owned(), n(unix_ms(e.timestamp))),
            ("outcome".to_owned(), s(e.outcome.as_str())),
            ("record_hash".to_owned(), s(&hash)),
            ("body".to_owned(), s(body)),
        ]);
        for (name, value) in [
            ("user_sub", &e.user_sub),
            ("spoke_account", &e.spoke_account),
            ("model_alias", &e.model_alias),
            ("purpose", &e.purpose),
        ] {
            if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
                item.insert(name.to_owned(), s(value));
            }
        }
        if !insert(&self.ddb, &self.options.table, item).await? {
            // Another writer holds this chain: never fork it. Re-read the head so the next append is placed
            // right, and fail this one.
            if let Ok((seq, hash)) = self.chain_head().await {
                head.sequence = seq;
                head.hash = hash;
            }
            return Err(AuditError::Write(format!(
                "chain `{chain_id}` already has a record {sequence}: another writer appends to it"
            )));
        }
        head.sequence = sequence;
        head.hash.clone_from(&hash);
        if sequence - head.checkpointed >= self.options.checkpoint_every
            || head.checkpointed_at.elapsed() >= self.options.checkpoint_interval
        {
            // The record is durable whatever happens here; a failed checkpoint is retried next time.
            match self
                .append_checkpoint(CheckpointKind::Periodic, sequence, &hash)
                .await
            {
                Ok(_) => {
                    head.checkpointed = sequence;
                    head.checkpointed_at = Instant::now();
                }
                Err(err) => tracing::error!(error = %err, "audit checkpoint failed"),
            }
        }
        Ok(AuditReceipt {
            id: record.event.id,
            chain_id,
            sequence,
            record_hash: hash,
        })
    }

    async fn health(&self) -> Result<(), AuditError> {
        self.ddb
            .describe_table()
            .table_name(&self.options.table)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                AuditError::Unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
            })
    }

    fn kind(&self) -> &'static str {
        "aws"
    }
}

/// Creates the index table: `pk` (S) / `sk` (N), on-demand, with the `by_user`, `by_account` and `by_model`
/// indexes keyed by their attribute and `ts`. Infrastructure templates declare the same.
pub async fn create_table(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), AuditError> {
    let attr = |name: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .map_err(write)
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(write)
    };
    let mut request = ddb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S)?)
        .attribute_definitions(attr("sk", ScalarAttributeType::N)?)
        .attribute_definitions(attr("ts", ScalarAttributeType::N)?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?);
    for (index, attribute) in INDEXES {
        request = request
            .attribute_definitions(attr(attribute, ScalarAttributeType::S)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index)
                    .key_schema(key(attribute, KeyType::Hash)?)
                    .key_schema(key("ts", KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(write)?,
            );
    }
    request
        .send()
        .await
        .map(|_| ())
        .map_err(|e| write(aws_sdk_dynamodb::error::DisplayErrorContext(e)))
}

/// Sets the payload bucket's rules: default Object Lock retention (compliance mode, `retention_days`) and a
/// lifecycle rule expiring payloads the day after their retention ends. The bucket must have been created
/// with Object Lock enabled.
pub async fn configure_bucket(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    retention_days: u32,
) -> Result<(), AuditError> {
    let days = i32::try_from(retention_days).map_err(write)?;
    s3.put_object_lock_configuration()
        .bucket(bucket)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Compliance)
                                .days(days)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(|e| write(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(
                    LifecycleRule::builder()
                        .id("causeway-payload-retention")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("payloads/").build())
                        .expiration(LifecycleExpiration::builder().days(days + 1).build())
                        .build()
                        .map_err(write)?,
                )
                .build()
                .map_err(write)?,
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|e| write(aws_sdk_s3::error::DisplayErrorContext(e)))
}
