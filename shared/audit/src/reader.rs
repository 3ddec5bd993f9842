//! The read side of an audit store, the same for every store: what compliance does with evidence (query,
//! verify, export a pack, erase a period, read the checkpoint keys). A tool opens one `dyn AuditReader`
//! whatever the store is, and never matches on its kind again.
//!
//! The embedded store's implementation is [`EmbeddedReader`]; the AWS store's lives with the store, in its
//! adapter crate. A store that cannot do something without a setting it was not given says so with
//! [`AuditError::Unsupported`], naming the setting.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use time::{Date, OffsetDateTime};

use crate::keys::Ed25519FileSigner;
use crate::pack::{self, ExportSummary};
use crate::verify::Progress;
use crate::{
    AuditError, AuditRecord, ChainSummary, EmbeddedStore, ErasedPeriod, PayloadState,
    PublicKeyInfo, RecordFilter, Verification,
};

/// Runs `work` (seconds of reading and hashing) where it does not hold up an async worker: in place on a
/// multi-threaded runtime, whose other workers take over; directly elsewhere (a current-thread runtime has no
/// other worker to hand over to).
pub(crate) fn off_the_workers<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// The file of the embedded store inside its data directory.
pub const EMBEDDED_STORE_FILE: &str = "audit.db";

/// Reads an audit store.
#[async_trait]
pub trait AuditReader: Send + Sync + std::fmt::Debug {
    /// What is read, for reports: `store .causeway`, `table causeway-audit-index`.
    fn describe(&self) -> String;

    /// The records `filter` selects, newest first, each with its record hash.
    async fn query(&self, filter: &RecordFilter) -> Result<Vec<(AuditRecord, String)>, AuditError>;

    /// Verifies every chain and the checkpoint log; signatures against `trusted` when given, else against
    /// the keys the store carries. Counts the records checked into `progress` as it goes.
    async fn verify(
        &self,
        trusted: Option<&[PublicKeyInfo]>,
        progress: &Progress,
    ) -> Result<Verification, AuditError>;

    /// Writes the records of `[since, until)` with everything needed to verify them as an evidence pack in
    /// `dir` (new or empty), its manifest signed with the store's checkpoint key.
    async fn export(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        dir: &Path,
    ) -> Result<ExportSummary, AuditError>;

    /// Erases the payloads of UTC day `period` (its data key is destroyed; the records still verify).
    async fn erase_period(&self, period: Date) -> Result<ErasedPeriod, AuditError>;

    /// The public keys of the keys that sign checkpoints.
    async fn public_keys(&self) -> Result<Vec<PublicKeyInfo>, AuditError>;

    /// Each chain's head and its latest checkpoint.
    async fn chains(&self) -> Result<Vec<ChainSummary>, AuditError>;

    /// The record at `sequence` of chain `chain_id`, with its hash (every store is keyed by this position).
    async fn record(
        &self,
        chain_id: &str,
        sequence: u64,
    ) -> Result<Option<(AuditRecord, String)>, AuditError>;

    /// The payload (prompt and answer) of `record`, decrypted and checked against its hashes; whether it
    /// was erased or never stored. Callers audit the read first (see the console).
    async fn payload(&self, record: &AuditRecord) -> Result<PayloadState, AuditError>;
}

/// The embedded store of a data directory, opened for reading (erasure aside, nothing is written).
#[derive(Debug)]
pub struct EmbeddedReader {
    store: EmbeddedStore,
    data_dir: PathBuf,
}

impl EmbeddedReader {
    /// Opens the store in `data_dir` (its payload key beside it).
    ///
    /// # Errors
    ///
    /// When there is no store there, or it cannot be opened.
    pub fn open(data_dir: &Path) -> Result<Self, AuditError> {
        Self::open_at(&data_dir.join(EMBEDDED_STORE_FILE), data_dir)
    }

    /// Opens the store file `path` with its key files in `key_dir` (a store kept apart from its data
    /// directory).
    ///
    /// # Errors
    ///
    /// When there is no store there, or it cannot be opened.
    pub fn open_at(path: &Path, key_dir: &Path) -> Result<Self, AuditError> {
        let store = EmbeddedStore::open_read_only(path.to_owned(), Some(key_dir.to_owned()))?;
        Ok(Self {
            store,
            data_dir: key_dir.to_owned(),
        })
    }

    /// The store.
    pub const fn store(&self) -> &EmbeddedStore {
        &self.store
    }
}

#[async_trait]
impl AuditReader for EmbeddedReader {
    fn describe(&self) -> String {
        format!("store {}", self.data_dir.display())
    }

    async fn query(&self, filter: &RecordFilter) -> Result<Vec<(AuditRecord, String)>, AuditError> {
        self.store.query(filter)
    }

    async fn verify(
        &self,
        trusted: Option<&[PublicKeyInfo]>,
        progress: &Progress,
    ) -> Result<Verification, AuditError> {
        off_the_workers(|| self.store.verify_report_counting(trusted, Some(progress)))
    }

    async fn export(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        dir: &Path,
    ) -> Result<ExportSummary, AuditError> {
        let signer = Ed25519FileSigner::load(self.store.key_dir())?;
        off_the_workers(|| pack::export(&self.store, &signer, since, until, dir))
    }

    async fn erase_period(&self, period: Date) -> Result<ErasedPeriod, AuditError> {
        self.store.erase_period(period)
    }

    async fn public_keys(&self) -> Result<Vec<PublicKeyInfo>, AuditError> {
        self.store.public_keys()
    }

    async fn chains(&self) -> Result<Vec<ChainSummary>, AuditError> {
        self.store.chains()
    }

    async fn record(
        &self,
        chain_id: &str,
        sequence: u64,
    ) -> Result<Option<(AuditRecord, String)>, AuditError> {
        self.store.record(chain_id, sequence)
    }

    async fn payload(&self, record: &AuditRecord) -> Result<PayloadState, AuditError> {
        self.store.payload(record.event.id)
    }
}
