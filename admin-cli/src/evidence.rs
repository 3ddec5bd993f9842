//! `causeway evidence …`: read, export and verify the audit trail.
//!
//! `query` answers from the store's indexes; `export` writes a self-contained evidence pack; `verify` checks a
//! pack (no store, no AWS) or a live store. Exit codes: 0 verified, 2 usage, 3 I/O (nothing to read),
//! 5 verification failed (the first break is the error message; every break is printed to stdout).

use std::io::Write;
use std::path::{Path, PathBuf};

use causeway_audit::pack::{self, FORMAT};
use causeway_audit::{
    AuditError, AuditReader, ChainBreak, EmbeddedReader, PublicKeyInfo, RecordFilter, Verification,
};
use causeway_audit_aws::AwsReader;
use clap::{Args, Subcommand};
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, OffsetDateTime};

use crate::{CliError, CliExit, Output};

/// Where the embedded store is.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The hub's data directory (holds `audit.db` and its key files).
    #[arg(long, default_value = ".causeway", env = "CAUSEWAY_DATA_DIR")]
    pub data_dir: PathBuf,
}

/// Which audit store a command reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// The embedded store in the data directory.
    #[default]
    Embedded,
    /// The AWS store: the DynamoDB audit table (and KMS for `keys`).
    Aws,
}

/// Where the AWS store is (`--store aws`).
#[derive(Debug, Clone, Args)]
pub struct AwsStoreArgs {
    /// `embedded` (default: `--data-dir`) or `aws` (`--table`).
    #[arg(long, value_enum, default_value_t = StoreKind::Embedded)]
    pub store: StoreKind,
    /// The DynamoDB audit table (`--store aws`).
    #[arg(long)]
    pub table: Option<String>,
    /// The AWS region. Default: from the AWS environment.
    #[arg(long)]
    pub region: Option<String>,
    /// An endpoint override for DynamoDB and KMS, e.g. a VPC endpoint.
    #[arg(long)]
    pub endpoint_url: Option<String>,
}

/// Evidence commands.
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// List audit records, newest first, answered from the store's indexes.
    Query {
        /// Only this user (`sub`).
        #[arg(long)]
        user: Option<String>,
        /// Only this spoke account.
        #[arg(long)]
        account: Option<String>,
        /// Only this model alias.
        #[arg(long)]
        model: Option<String>,
        /// Only this declared purpose.
        #[arg(long)]
        purpose: Option<String>,
        /// Only this decision or outcome: answered, stream_started, stream_completed, denied, blocked,
        /// throttled, rejected, failed.
        #[arg(long, alias = "decision")]
        outcome: Option<String>,
        /// From this time: RFC 3339, a date (`2026-01-02`, UTC midnight), or an age (`90s`, `30m`, `24h`, `7d`).
        #[arg(long)]
        since: Option<String>,
        /// Until this time (exclusive), same forms as `--since`.
        #[arg(long)]
        until: Option<String>,
        /// At most this many records; 0 for all.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        store: StoreArgs,
        /// With `--store aws`, one of `--user`, `--account` and `--model` is answered from the table's indexes; other
        /// filters read the chains newest first.
        #[command(flatten)]
        aws: AwsStoreArgs,
    },
    /// Write a self-contained evidence pack of the records in a time range.
    Export {
        /// From this time (same forms as `query --since`).
        #[arg(long)]
        since: String,
        /// Until this time, exclusive. Default: now.
        #[arg(long)]
        until: Option<String>,
        /// A new (or empty) directory to write the pack to.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// With `--store aws`: the KMS key that signs the table's checkpoints; it also signs the manifest.
        #[arg(long)]
        signing_key_id: Option<String>,
        #[command(flatten)]
        aws: AwsStoreArgs,
    },
    /// Verify an evidence pack (`--pack`, needs nothing else) or the live store (`--data-dir`).
    Verify {
        /// An evidence pack directory.
        #[arg(long, conflicts_with = "data_dir")]
        pack: Option<PathBuf>,
        /// The hub's data directory. Default `.causeway`.
        #[arg(long, env = "CAUSEWAY_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Trust only the public keys in this file (the output of `causeway evidence keys`, or a pack's
        /// `public-keys.json` kept from earlier), instead of the keys the pack or store carries. Required with
        /// `--store aws`: the table does not carry its keys.
        #[arg(long)]
        key: Option<PathBuf>,
        #[command(flatten)]
        aws: AwsStoreArgs,
    },
    /// Print the public keys that sign the store's checkpoints, to keep apart and pin with `verify --key`.
    Keys {
        #[command(flatten)]
        store: StoreArgs,
        /// With `--store aws`: the KMS signing key (id, ARN or alias) whose public half to print.
        #[arg(long)]
        signing_key_id: Option<String>,
        #[command(flatten)]
        aws: AwsStoreArgs,
    },
    /// Erase a day's payloads (prompts and answers) by destroying its data key; the records still verify.
    Erase {
        /// The UTC day, `YYYY-MM-DD`; it must have ended more than a day ago.
        #[arg(long, alias = "day")]
        period: String,
        #[command(flatten)]
        store: StoreArgs,
        /// With `--store aws`: the S3 payload bucket.
        #[arg(long)]
        bucket: Option<String>,
        #[command(flatten)]
        aws: AwsStoreArgs,
    },
}

/// Parses `--since` / `--until`: RFC 3339, a date, or an age before `now`.
pub fn parse_time(value: &str, now: OffsetDateTime) -> Result<OffsetDateTime, CliError> {
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t);
    }
    if let Ok(date) = Date::parse(
        value,
        &time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        return Ok(date.midnight().assume_utc());
    }
    let unit = value.chars().last().unwrap_or(' ');
    let amount = value[..value.len() - unit.len_utf8().min(value.len())]
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0);
    let age = match (amount, unit) {
        (Some(n), 's') => Some(Duration::seconds(n)),
        (Some(n), 'm') => Some(Duration::minutes(n)),
        (Some(n), 'h') => Some(Duration::hours(n)),
        (Some(n), 'd') => Some(Duration::days(n)),
        _ => None,
    };
    age.and_then(|age| now.checked_sub(age)).ok_or_else(|| {
        CliError::usage(format!(
            "`{value}` is not a time: use RFC 3339 (`2026-01-02T03:04:05Z`), a date (`2026-01-02`) or an age (`90s`, `30m`, `24h`, `7d`)"
        ))
    })
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Opens the store a command reads: the one place the store's kind matters. `bucket` and
/// `signing_key_id` are the AWS store's own settings, refused for the embedded store.
async fn open_reader(
    data_dir: &Path,
    args: &AwsStoreArgs,
    bucket: Option<String>,
    signing_key_id: Option<String>,
    base: Option<&aws_config::SdkConfig>,
) -> Result<Box<dyn AuditReader>, CliError> {
    match args.store {
        StoreKind::Embedded => {
            if signing_key_id.is_some() {
                return Err(CliError::usage("`--signing-key-id` needs `--store aws`"));
            }
            if bucket.is_some() {
                return Err(CliError::usage("`--bucket` needs `--store aws`"));
            }
            Ok(Box::new(EmbeddedReader::open(data_dir).map_err(io)?))
        }
        StoreKind::Aws => {
            let sdk = aws_sdk_config(args, base).await;
            Ok(Box::new(
                AwsReader::new(sdk, args.table.clone())
                    .with_bucket(bucket)
                    .with_signing_key_id(signing_key_id)
                    .with_path_style(args.endpoint_url.is_some()),
            ))
        }
    }
}

/// A store error: what the store cannot do without a setting is a usage error, the rest is I/O.
fn store_err(e: AuditError) -> CliError {
    match e {
        AuditError::Unsupported(message) => CliError::usage(message),
        other => io(other),
    }
}

/// Runs `future` on a runtime with one worker thread, where the AWS store's export may block on KMS.
fn block_on<T>(
    future: impl std::future::Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| CliError::io(format!("cannot start the async runtime: {e}")))?
        .block_on(future)
}

fn io(e: impl std::fmt::Display) -> CliError {
    CliError::io(e.to_string())
}

fn write_err(e: std::io::Error) -> CliError {
    CliError::io(format!("cannot write the output: {e}"))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

const OUTCOMES: [&str; 9] = causeway_contract::audit::Outcome::NAMES;

/// Runs an evidence command.
pub fn run(command: EvidenceCommand, output: Output, out: &mut dyn Write) -> Result<(), CliError> {
    run_with_aws(command, output, out, None)
}

/// The SDK config for `--store aws`: `base` (or the standard provider chain) with `--region` and
/// `--endpoint-url` on top.
async fn aws_sdk_config(
    args: &AwsStoreArgs,
    base: Option<&aws_config::SdkConfig>,
) -> aws_config::SdkConfig {
    crate::aws_sdk_config(args.region.as_deref(), args.endpoint_url.as_deref(), base).await
}

/// Runs an evidence command; `--store aws` starts from `aws` (credentials, region, endpoint) when given.
pub fn run_with_aws(
    command: EvidenceCommand,
    output: Output,
    out: &mut dyn Write,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<(), CliError> {
    let now = OffsetDateTime::now_utc();
    match command {
        EvidenceCommand::Query {
            user,
            account,
            model,
            purpose,
            outcome,
            since,
            until,
            limit,
            store,
            aws: aws_store,
        } => {
            if let Some(outcome) = &outcome
                && !OUTCOMES.contains(&outcome.as_str())
            {
                return Err(CliError::usage(format!(
                    "unknown outcome `{outcome}`; use one of {}",
                    OUTCOMES.join(", ")
                )));
            }
            let filter = RecordFilter {
                user_sub: user,
                spoke_account: account,
                model_alias: model,
                purpose,
                outcome,
                since_unix_ms: since.map(|s| parse_time(&s, now)).transpose()?.map(unix_ms),
                until_unix_ms: until.map(|s| parse_time(&s, now)).transpose()?.map(unix_ms),
                limit,
                ..RecordFilter::default()
            };
            let rows = block_on(async {
                let reader = open_reader(&store.data_dir, &aws_store, None, None, aws).await?;
                reader.query(&filter).await.map_err(store_err)
            })?;
            match output {
                Output::Json => {
                    let records: Vec<serde_json::Value> = rows
                        .iter()
                        .map(|(record, hash)| {
                            let mut value = serde_json::to_value(record).unwrap_or_default();
                            if let Some(map) = value.as_object_mut() {
                                map.insert("record_hash".into(), hash.clone().into());
                            }
                            value
                        })
                        .collect();
                    writeln!(out, "{}", serde_json::Value::Array(records)).map_err(write_err)
                }
                Output::Text => {
                    let dash = || "-".to_owned();
                    let mut table = vec![[
                        "TIME".to_owned(),
                        "USER".to_owned(),
                        "ACCOUNT".to_owned(),
                        "MODEL".to_owned(),
                        "PURPOSE".to_owned(),
                        "OUTCOME".to_owned(),
                        "AUDIT ID".to_owned(),
                    ]];
                    for (record, _) in &rows {
                        let e = &record.event;
                        table.push([
                            rfc3339(e.timestamp),
                            e.user_sub.clone().unwrap_or_else(dash),
                            e.spoke_account.clone().unwrap_or_else(dash),
                            e.model_alias.clone().unwrap_or_else(dash),
                            e.purpose.clone().unwrap_or_else(dash),
                            e.outcome.as_str().to_owned(),
                            e.id.to_string(),
                        ]);
                    }
                    let widths: Vec<usize> = (0..7)
                        .map(|i| {
                            table
                                .iter()
                                .map(|row| row[i].chars().count())
                                .max()
                                .unwrap_or(0)
                        })
                        .collect();
                    for row in &table {
                        let line = row
                            .iter()
                            .zip(&widths)
                            .map(|(cell, w)| format!("{cell:<w$}"))
                            .collect::<Vec<_>>()
                            .join("  ");
                        writeln!(out, "{}", line.trim_end()).map_err(write_err)?;
                    }
                    writeln!(out, "{} record(s)", rows.len()).map_err(write_err)
                }
            }
        }
        EvidenceCommand::Export {
            since,
            until,
            out: dir,
            store,
            signing_key_id,
            aws: aws_store,
        } => {
            let since = parse_time(&since, now)?;
            let until = until
                .map(|u| parse_time(&u, now))
                .transpose()?
                .unwrap_or(now);
            if until <= since {
                return Err(CliError::usage("`--until` must be after `--since`"));
            }
            let summary = block_on(async {
                let reader =
                    open_reader(&store.data_dir, &aws_store, None, signing_key_id, aws).await?;
                reader.export(since, until, &dir).await.map_err(store_err)
            })?;
            // Check what was written, so a pack is never handed over broken.
            let report = pack::verify_pack(&dir, None).map_err(io)?;
            if let Some(first) = report.breaks.first() {
                return Err(failed(first, &report));
            }
            match output {
                Output::Json => writeln!(
                    out,
                    "{}",
                    serde_json::json!({
                        "pack": dir.display().to_string(), "format": FORMAT,
                        "records": summary.records, "chains": summary.chains,
                        "checkpoints": summary.checkpoints,
                        "since": rfc3339(since), "until": rfc3339(until),
                    })
                ),
                Output::Text => writeln!(
                    out,
                    "wrote {}: {} record(s) in {} chain(s), {} checkpoint(s), {} to {}",
                    dir.display(),
                    summary.records,
                    summary.chains,
                    summary.checkpoints,
                    rfc3339(since),
                    rfc3339(until)
                ),
            }
            .map_err(write_err)
        }
        EvidenceCommand::Verify {
            pack: pack_dir,
            data_dir,
            key,
            aws: store,
        } => {
            let trusted = key.as_deref().map(read_keys).transpose()?;
            let (what, report) = match pack_dir {
                Some(_) if store.store == StoreKind::Aws => {
                    return Err(CliError::usage(
                        "`--pack` and `--store aws` cannot be used together",
                    ));
                }
                Some(dir) => {
                    let report = pack::verify_pack(&dir, trusted.as_deref()).map_err(io)?;
                    (format!("pack {}", dir.display()), report)
                }
                None => {
                    let dir = data_dir.unwrap_or_else(|| PathBuf::from(".causeway"));
                    block_on(async {
                        let reader = open_reader(&dir, &store, None, None, aws).await?;
                        let report = reader
                            .verify(trusted.as_deref(), &causeway_audit::Progress::default())
                            .await
                            .map_err(store_err)?;
                        Ok((reader.describe(), report))
                    })?
                }
            };
            print_report(out, output, &what, &report, trusted.is_some())?;
            match report.breaks.first() {
                Some(first) => Err(failed(first, &report)),
                None => Ok(()),
            }
        }
        EvidenceCommand::Keys {
            store,
            signing_key_id,
            aws: aws_store,
        } => {
            let keys = block_on(async {
                let reader =
                    open_reader(&store.data_dir, &aws_store, None, signing_key_id, aws).await?;
                reader.public_keys().await.map_err(store_err)
            })?;
            let text = serde_json::to_string_pretty(&keys).map_err(io)?;
            writeln!(out, "{text}").map_err(write_err)
        }
        EvidenceCommand::Erase {
            period,
            store,
            bucket,
            aws: aws_store,
        } => {
            let date = Date::parse(
                &period,
                &time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map_err(|_| CliError::usage(format!("`{period}` is not a date (`YYYY-MM-DD`)")))?;
            let erased = block_on(async {
                let reader = open_reader(&store.data_dir, &aws_store, bucket, None, aws).await?;
                reader.erase_period(date).await.map_err(store_err)
            })?;
            match output {
                Output::Json => writeln!(
                    out,
                    "{}",
                    serde_json::json!({"period": erased.period, "payloads": erased.payloads})
                ),
                Output::Text => writeln!(
                    out,
                    "erased {}: the data key is destroyed; {} payload(s) can no longer be read",
                    erased.period, erased.payloads
                ),
            }
            .map_err(write_err)
        }
    }
}

pub(crate) fn read_keys(path: &Path) -> Result<Vec<PublicKeyInfo>, CliError> {
    let bytes =
        std::fs::read(path).map_err(|e| CliError::io(format!("`{}`: {e}", path.display())))?;
    serde_json::from_slice::<Vec<PublicKeyInfo>>(&bytes)
        .or_else(|_| serde_json::from_slice::<PublicKeyInfo>(&bytes).map(|k| vec![k]))
        .map_err(|e| {
            CliError::usage(format!(
                "`{}` is not a public key file (`causeway evidence keys` writes one): {e}",
                path.display()
            ))
        })
}

fn failed(first: &ChainBreak, report: &Verification) -> CliError {
    let more = report.breaks.len() - 1;
    CliError {
        exit: CliExit::VerificationFailed,
        message: if more == 0 {
            format!("verification failed: {first}")
        } else {
            format!("verification failed: {first} (and {more} more)")
        },
    }
}

fn print_report(
    out: &mut dyn Write,
    output: Output,
    what: &str,
    report: &Verification,
    pinned: bool,
) -> Result<(), CliError> {
    match output {
        Output::Json => writeln!(
            out,
            "{}",
            serde_json::json!({
                "verified": report.is_ok(), "target": what, "records": report.records,
                "chains": report.chains, "checkpoints": report.checkpoints,
                "checkpoint_log_head": report.log_head, "keys_pinned": pinned,
                "breaks": report.breaks.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        )
        .map_err(write_err),
        Output::Text => {
            let summary = format!(
                "{} record(s) in {} chain(s), {} checkpoint(s)",
                report.records, report.chains, report.checkpoints
            );
            if report.is_ok() {
                writeln!(out, "verified {what}: {summary}").map_err(write_err)?;
            } else {
                writeln!(out, "FAILED {what}: {summary}").map_err(write_err)?;
                for found in &report.breaks {
                    writeln!(out, "  - {found}").map_err(write_err)?;
                }
            }
            if let Some(head) = &report.log_head {
                writeln!(out, "checkpoint log head: {head}").map_err(write_err)?;
            }
            if !pinned {
                writeln!(
                    out,
                    "signatures checked against the keys it carries; pin a key kept elsewhere with `--key`"
                )
                .map_err(write_err)?;
            }
            Ok(())
        }
    }
}
