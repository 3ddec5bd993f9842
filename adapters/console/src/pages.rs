//! The console's pages, rendered on the server.
//!
//! Constraints:
//! - Every handler but the assets starts with [`reviewer`]: no session, no page (a redirect to sign-in).
//! - Every form that changes something (a verification run, an export, a payload read, sign-out) carries
//!   the session's CSRF token and is refused without it.
//! - Errors of the store are shown as a page that says what happened and what to do, never as a blank page;
//!   a store that cannot answer a query (the AWS store filters by one of user, account or model) says which
//!   filters it can.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Form;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use causeway_audit::{
    AuditError, AuditRecord, ChainSummary, PayloadState, RecordFilter, Verification,
};
use causeway_contract::audit::{AuditEvent, Outcome};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::auth::{CsrfForm, Session, check_csrf};
use crate::charts::{Series, stacked_bars};
pub(crate) use crate::view::{Page, refusal};
use crate::{Console, VerifyRun};

/// Records on a search page.
const PAGE_SIZE: usize = 50;
/// Most records in one CSV or JSON download.
const DOWNLOAD_MAX: usize = 10_000;
/// Most records a dashboard reads.
const DASHBOARD_MAX: usize = 200_000;
/// A stated reason for a payload read: at least and at most this many characters.
const REASON_CHARS: (usize, usize) = (10, 500);

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

/// The page around a signed-in reviewer's view.
fn page<'a>(console: &'a Console, session: &'a Session, title: &'a str) -> Page<'a> {
    Page::signed_in(
        title,
        (&session.viewer.sub, &session.csrf),
        &console.config.source,
    )
}

/// Headers on every console response: a strict Content-Security-Policy, no framing, no caching, no sniffing,
/// no referrer.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A signed-in reviewer's session; without one the request is sent to sign in.
pub(crate) struct Reviewer(pub Session);

impl axum::extract::FromRequestParts<Arc<Console>> for Reviewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Self::Rejection> {
        console
            .sessions
            .current(&parts.headers)
            .map(Reviewer)
            .ok_or_else(|| Redirect::to("/console/login").into_response())
    }
}

fn store_error(e: &AuditError) -> Response {
    match e {
        AuditError::Unsupported(what) => refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not available for this evidence",
            &format!("{what}."),
        ),
        other => {
            tracing::warn!(error = %other, "console: the audit store failed");
            refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "The audit store did not answer",
                &format!("{other}. Try again; if it persists, check the hub's audit store."),
            )
        }
    }
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A time for people: UTC in the text, the exact instant in `datetime` (the script adds local time on hover).
fn when(t: OffsetDateTime) -> Markup {
    let exact = t.format(&Rfc3339).unwrap_or_default();
    let shown = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    html! { time datetime=(exact) title=(shown) { (shown) } }
}

/// Reads a time given in a form: RFC 3339, a `datetime-local` value or a date (both UTC), or an age before
/// `now` (`90m`, `24h`, `7d`).
fn parse_time(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    for format in [
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    ] {
        if let Ok(t) = PrimitiveDateTime::parse(text, format) {
            return Ok(t.assume_utc());
        }
    }
    if let Ok(d) = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        return Ok(d.midnight().assume_utc());
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let amount: i64 = number.parse().map_err(|_| {
        format!("`{text}` is not a time: use 2026-01-02T15:04, 2026-01-02, or an age like 24h")
    })?;
    let age = match unit {
        "m" => Duration::minutes(amount),
        "h" => Duration::hours(amount),
        "d" => Duration::days(amount),
        _ => return Err(format!("`{text}` is not a time: an age ends in m, h or d")),
    };
    Ok(now - age)
}

/// The search form's fields.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct SearchParams {
    #[serde(default)]
    user: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    application: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    entity: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    cursor: String,
}

impl SearchParams {
    fn filter(&self, limit: usize) -> Result<RecordFilter, String> {
        let now = OffsetDateTime::now_utc();
        let set = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
        let time = |v: &str| set(v).map(|v| parse_time(&v, now).map(unix_ms)).transpose();
        let outcome = set(&self.outcome);
        if let Some(o) = &outcome
            && !Outcome::NAMES.contains(&o.as_str())
        {
            return Err(format!(
                "`{o}` is not an outcome: use one of {}",
                Outcome::NAMES.join(", ")
            ));
        }
        let before = set(&self.cursor)
            .map(|c| {
                c.split_once('.')
                    .and_then(|(ts, id)| Some((ts.parse::<i64>().ok()?, id.to_owned())))
                    .ok_or_else(|| {
                        "the page cursor is not valid: start the search again".to_owned()
                    })
            })
            .transpose()?;
        Ok(RecordFilter {
            user_sub: set(&self.user),
            spoke_account: set(&self.account),
            model_alias: set(&self.model),
            purpose: set(&self.purpose),
            outcome,
            application: set(&self.application),
            guard_entity: set(&self.entity),
            since_unix_ms: time(&self.since)?,
            until_unix_ms: time(&self.until)?,
            before,
            record_id: None,
            limit,
        })
    }

    fn query_string(&self, cursor: Option<&str>) -> String {
        let fields = [
            ("user", self.user.as_str()),
            ("account", &self.account),
            ("application", &self.application),
            ("model", &self.model),
            ("purpose", &self.purpose),
            ("outcome", &self.outcome),
            ("entity", &self.entity),
            ("since", &self.since),
            ("until", &self.until),
        ];
        encode_query(
            fields
                .into_iter()
                .map(|(k, v)| (k, v.trim()))
                .filter(|(_, v)| !v.is_empty())
                .chain(cursor.map(|c| ("cursor", c))),
        )
    }
}

/// `pairs` as a URL query string (form-encoded).
fn encode_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    // A base only to borrow the URL crate's form encoder.
    let mut url = reqwest::Url::parse("http://console.invalid/")
        .unwrap_or_else(|_| unreachable!("a valid URL"));
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

fn cursor_of(record: &AuditRecord) -> String {
    format!("{}.{}", unix_ms(record.event.timestamp), record.event.id)
}

fn search_form(params: &SearchParams) -> Markup {
    let field = |name: &str, label: &str, value: &str, hint: &str| {
        html! {
            div.field {
                label for=(name) { (label) }
                input id=(name) name=(name) value=(value) placeholder=(hint) autocomplete="off";
            }
        }
    };
    html! {
        form.search method="get" action="/console" role="search" aria-label="Search records" {
            (field("user", "User", &params.user, "sub"))
            (field("account", "Spoke account", &params.account, "111122223333"))
            (field("application", "Application", &params.application, ""))
            (field("model", "Model", &params.model, "alias"))
            (field("purpose", "Purpose", &params.purpose, ""))
            div.field {
                label for="outcome" { "Outcome" }
                select id="outcome" name="outcome" {
                    option value="" { "any" }
                    @for name in Outcome::NAMES {
                        option value=(name) selected[params.outcome == name] { (name) }
                    }
                }
            }
            (field("entity", "Guard finding", &params.entity, "EMAIL, prompt_injection"))
            (field("since", "From (UTC)", &params.since, "2026-01-02T09:00 or 24h"))
            (field("until", "Until (UTC)", &params.until, ""))
            div.actions { button type="submit" { "Search" } }
        }
    }
}

fn records_table(rows: &[(AuditRecord, String)]) -> Markup {
    html! {
        table {
            caption.visually-hidden { "Audit records, newest first" }
            thead { tr {
                th scope="col" { "Time" } th scope="col" { "Outcome" } th scope="col" { "User" }
                th scope="col" { "Account" } th scope="col" { "Application" } th scope="col" { "Model" }
                th scope="col" { "Purpose" } th scope="col" { "Reasons" } th scope="col" { "Record" }
            } }
            tbody {
                @for (record, _) in rows {
                    @let e = &record.event;
                    tr {
                        td { (when(e.timestamp)) }
                        td { span class=(format!("outcome {}", e.outcome.as_str())) { (e.outcome.as_str()) } }
                        td { (e.user_sub.as_deref().unwrap_or("—")) }
                        td { (e.spoke_account.as_deref().unwrap_or("—")) }
                        td { (e.application.as_deref().unwrap_or("—")) }
                        td { (e.model_alias.as_deref().unwrap_or("—")) }
                        td { (e.purpose.as_deref().unwrap_or("—")) }
                        td.reasons { (e.reasons.join(", ")) }
                        td { a href=(record_link(record, "")) { "Open " span.visually-hidden { "record " (e.id) } } }
                    }
                }
            }
        }
    }
}

/// `GET /console`: the search page.
pub(crate) async fn search(
    State(console): State<Arc<Console>>,
    Reviewer(session): Reviewer,
    Query(params): Query<SearchParams>,
) -> Response {
    let filter = match params.filter(PAGE_SIZE + 1) {
        Ok(f) => f,
        Err(why) => return refusal(StatusCode::BAD_REQUEST, "The search is not valid", &why),
    };
    let mut rows = match console.reader.query(&filter).await {
        Ok(rows) => rows,
        Err(e) => return store_error(&e),
    };
    let more = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);
    let next = more
        .then(|| {
            rows.last()
                .map(|(r, _)| params.query_string(Some(&cursor_of(r))))
        })
        .flatten();
    let here = params.query_string(None);
    page(&console, &session, "Search")
        .body(html! {
            (search_form(&params))
            @if rows.is_empty() {
                p.empty { "No record matches. Widen the time range or clear a filter; the store answers exact values (a user's "
                    code { "sub" } ", an account id, a model alias)." }
            } @else {
                p.downloads {
                    "Download this search (up to " (DOWNLOAD_MAX) " records): "
                    a href=(format!("/console/search.csv?{here}")) download { "CSV" } " · "
                    a href=(format!("/console/search.json?{here}")) download { "JSON" }
                }
                (records_table(&rows))
                nav.pager aria-label="Pages" {
                    @if !params.cursor.is_empty() { a href=(format!("/console?{here}")) { "First page" } }
                    @if let Some(next) = next { a rel="next" href=(format!("/console?{next}")) { "Older records" } }
                }
            }
        })
        .into_response()
}

async fn download_rows(
    console: &Console,
    params: &SearchParams,
) -> Result<Vec<(AuditRecord, String)>, Box<Response>> {
    let filter = params.filter(DOWNLOAD_MAX).map_err(|why| {
        Box::new(refusal(
            StatusCode::BAD_REQUEST,
            "The search is not valid",
            &why,
        ))
    })?;
    console
        .reader
        .query(&filter)
        .await
        .map_err(|e| Box::new(store_error(&e)))
}

fn attachment(content_type: &'static str, name: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /console/search.csv`.
pub(crate) async fn search_csv(
    State(console): State<Arc<Console>>,
    _reviewer: Reviewer,
    Query(params): Query<SearchParams>,
) -> Response {
    let rows = match download_rows(&console, &params).await {
        Ok(rows) => rows,
        Err(r) => return *r,
    };
    let mut csv = String::from(
        "timestamp,id,call_id,outcome,user_sub,spoke_account,application,model_alias,purpose,data_classification,reasons,guard_entities,input_tokens,output_tokens,cost_micro_usd,chain_id,sequence,record_hash\n",
    );
    for (record, hash) in &rows {
        let e = &record.event;
        let entities: BTreeSet<&str> = e.guard_events.iter().map(|g| g.entity.as_str()).collect();
        let cells = [
            e.timestamp.format(&Rfc3339).unwrap_or_default(),
            e.id.to_string(),
            e.call_id.to_string(),
            e.outcome.as_str().to_owned(),
            e.user_sub.clone().unwrap_or_default(),
            e.spoke_account.clone().unwrap_or_default(),
            e.application.clone().unwrap_or_default(),
            e.model_alias.clone().unwrap_or_default(),
            e.purpose.clone().unwrap_or_default(),
            e.data_classification.clone().unwrap_or_default(),
            e.reasons.join(" "),
            entities.into_iter().collect::<Vec<_>>().join(" "),
            e.usage.input_tokens.to_string(),
            e.usage.output_tokens.to_string(),
            e.cost_micro_usd.to_string(),
            record.chain_id.clone(),
            record.sequence.to_string(),
            hash.clone(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        let _ = writeln!(csv, "{}", line.join(","));
    }
    attachment("text/csv; charset=utf-8", "causeway-records.csv", csv)
}

/// A CSV cell, quoted when needed; a leading `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet does
/// not run it as a formula.
fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// `GET /console/search.json`: the records as stored, each with its hash.
pub(crate) async fn search_json(
    State(console): State<Arc<Console>>,
    _reviewer: Reviewer,
    Query(params): Query<SearchParams>,
) -> Response {
    let rows = match download_rows(&console, &params).await {
        Ok(rows) => rows,
        Err(r) => return *r,
    };
    let records: Vec<serde_json::Value> = rows
        .iter()
        .map(|(record, hash)| serde_json::json!({"record_hash": hash, "record": record}))
        .collect();
    attachment(
        "application/json",
        "causeway-records.json",
        serde_json::to_string_pretty(&serde_json::json!({ "records": records }))
            .unwrap_or_default(),
    )
}

/// Where a record is: its chain and its sequence in it (every store is keyed by this).
#[derive(Debug, Deserialize)]
pub(crate) struct RecordAt {
    chain: String,
    seq: u64,
}

/// The console's address of a record.
fn record_link(record: &AuditRecord, suffix: &str) -> String {
    let sequence = record.sequence.to_string();
    let query = encode_query([("chain", record.chain_id.as_str()), ("seq", &sequence)]);
    format!("/console/record{suffix}?{query}")
}

async fn find_record(
    console: &Console,
    at: &RecordAt,
) -> Result<(AuditRecord, String), Box<Response>> {
    match console.reader.record(&at.chain, at.seq).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(Box::new(refusal(
            StatusCode::NOT_FOUND,
            "No such record",
            "This evidence holds no record at that chain and sequence; open records from the search page.",
        ))),
        Err(e) => Err(Box::new(store_error(&e))),
    }
}

/// The last verification that ran to the end: a run from the page, else the one made when the evidence was
/// opened.
fn last_verification(console: &Console) -> Option<Verification> {
    match &*console
        .verify
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        VerifyRun::Done { result: Ok(v), .. } => Some(v.clone()),
        _ => console.opened.clone(),
    }
}

fn field_rows(e: &AuditEvent) -> Vec<(&'static str, String)> {
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".to_owned());
    vec![
        ("Record id", e.id.to_string()),
        ("Call id", e.call_id.to_string()),
        ("Request id", e.request_id.clone()),
        ("Door", e.api.clone()),
        ("Outcome", e.outcome.as_str().to_owned()),
        ("Error code", o(&e.error_code)),
        ("User", o(&e.user_sub)),
        ("Issuer", o(&e.user_issuer)),
        ("Workload principal", o(&e.workload_principal)),
        ("Spoke account", o(&e.spoke_account)),
        ("Application", o(&e.application)),
        ("Purpose", o(&e.purpose)),
        ("Data classification", o(&e.data_classification)),
        ("Model", o(&e.model_alias)),
        ("Provider model", o(&e.model_id)),
        ("Model version", o(&e.model_version)),
        ("Provider", o(&e.provider)),
        ("Catalog version", e.catalog_version.clone()),
        (
            "Guard profile",
            format!("{} v{}", e.guard_profile, e.guard_profile_version),
        ),
        ("Policy set", e.policy_hash.clone()),
        (
            "Injection score",
            format!("{:.3}", f64::from(e.injection_permille) / 1000.0),
        ),
        ("Low trust", e.low_trust.to_string()),
        ("Input tokens", e.usage.input_tokens.to_string()),
        ("Output tokens", e.usage.output_tokens.to_string()),
        ("Cost", format!("${:.6}", e.cost_micro_usd as f64 / 1e6)),
        ("Latency", format!("{:.1} ms", e.latency_us as f64 / 1000.0)),
        ("Prompt SHA-256", o(&e.prompt_sha256)),
        ("Answer SHA-256", o(&e.response_sha256)),
    ]
}

fn record_body(
    console: &Console,
    session: &Session,
    record: &AuditRecord,
    hash: &str,
    chain: Option<&ChainSummary>,
    payload: Option<Markup>,
) -> Markup {
    let e = &record.event;
    let hash_ok = record.record_hash().is_ok_and(|h| h == hash);
    let covered = chain
        .and_then(|c| c.checkpoint_sequence.map(|s| (s, c.checkpoint_unix_ms)))
        .filter(|(s, _)| *s >= record.sequence);
    let verification = last_verification(console);
    let breaks: Vec<String> = verification
        .as_ref()
        .map(|v| {
            v.breaks
                .iter()
                .map(ToString::to_string)
                .filter(|b| b.contains(&record.chain_id))
                .collect()
        })
        .unwrap_or_default();
    let may_read = console.payloads.is_some()
        && session
            .viewer
            .groups
            .iter()
            .any(|g| console.config.payload_groups.contains(g));
    html! {
        p { (when(e.timestamp)) " · " span class=(format!("outcome {}", e.outcome.as_str())) { (e.outcome.as_str()) } }
        section aria-labelledby="integrity-h" {
            h2 id="integrity-h" { "Integrity" }
            dl {
                dt { "Chain" } dd { code { (record.chain_id) } }
                dt { "Sequence" } dd { (record.sequence) }
                dt { "Record hash" } dd { code { (hash) } }
                dt { "Links to" } dd { code { (record.prev_hash) } }
                dt { "Hash of its bytes" } dd {
                    @if hash_ok { span.ok { "matches the stored hash" } }
                    @else { span.bad role="alert" { "does not match the stored hash: the record was altered" } }
                }
                dt { "Covering checkpoint" } dd {
                    @match covered {
                        Some((s, at)) => {
                            "signed checkpoint of the chain up to sequence " (s)
                            @if let Some(at) = at.and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()) { ", made " (when(at)) }
                        }
                        None => { "none yet: the next checkpoint of the chain will cover it" }
                    }
                }
                dt { "Chain verification" } dd {
                    @match &verification {
                        None => { "not run yet — " a href="/console/integrity" { "run one" } }
                        Some(_) if breaks.is_empty() => { span.ok { "the last run found this chain intact" } }
                        Some(_) => { span.bad role="alert" { "the last run found breaks in this chain:" } ul { @for b in &breaks { li { (b) } } } }
                    }
                }
            }
        }
        section aria-labelledby="fields-h" {
            h2 id="fields-h" { "Fields" }
            dl.fields { @for (k, v) in field_rows(e) { dt { (k) } dd { (v) } } }
        }
        section aria-labelledby="reasons-h" {
            h2 id="reasons-h" { "Policies and reasons that decided" }
            @if e.reasons.is_empty() { p.empty { "None recorded." } }
            @else { ul { @for r in &e.reasons { li { code { (r) } } } } }
        }
        section aria-labelledby="guard-h" {
            h2 id="guard-h" { "Guard events" }
            @if e.guard_events.is_empty() { p.empty { "No guard finding." } }
            @else {
                table {
                    thead { tr { th scope="col" { "Stage" } th scope="col" { "Kind" } th scope="col" { "Entity" } th scope="col" { "Action" } th scope="col" { "Count" } th scope="col" { "Source" } } }
                    tbody { @for g in &e.guard_events { tr {
                        td { (format!("{:?}", g.stage).to_lowercase()) } td { (g.kind) } td { (g.entity) }
                        td { (format!("{:?}", g.action).to_lowercase()) } td { (g.count) } td { (g.source) }
                    } } }
                }
            }
        }
        section aria-labelledby="payload-h" {
            h2 id="payload-h" { "Payload" }
            @if let Some(payload) = payload { (payload) }
            @else if may_read {
                form method="post" action=(record_link(record, "/payload")) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    p { "Reading the prompt and answer is itself recorded in the audit chain, with your name and reason." }
                    label for="reason" { "Reason for reading (" (REASON_CHARS.0) " to " (REASON_CHARS.1) " characters)" }
                    textarea id="reason" name="reason" required minlength=(REASON_CHARS.0) maxlength=(REASON_CHARS.1) rows="2" {}
                    button type="submit" { "Read the payload" }
                }
            } @else if console.payloads.is_none() {
                p.empty { "Payloads cannot be read here: this console reads " (console.config.source) ", which it cannot record a payload read in." }
            } @else {
                p.empty { "Reading payloads needs membership of a payload group (" (console.config.payload_groups.join(", ")) ")." }
            }
        }
    }
}

/// `GET /console/record?chain=…&seq=…`.
pub(crate) async fn record(
    State(console): State<Arc<Console>>,
    Reviewer(session): Reviewer,
    Query(at): Query<RecordAt>,
) -> Response {
    let (record, hash) = match find_record(&console, &at).await {
        Ok(found) => found,
        Err(r) => return *r,
    };
    let chains = console.reader.chains().await.unwrap_or_default();
    let chain = chains.iter().find(|c| c.chain_id == record.chain_id);
    let title = format!("Record {}", record.event.id);
    page(&console, &session, &title)
        .body(record_body(&console, &session, &record, &hash, chain, None))
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct PayloadForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/record/payload?chain=…&seq=…`: records the read in the chain, then shows the payload.
pub(crate) async fn payload(
    State(console): State<Arc<Console>>,
    Reviewer(session): Reviewer,
    Query(at): Query<RecordAt>,
    Form(form): Form<PayloadForm>,
) -> Response {
    if let Err(r) = check_csrf(&session, &form.csrf) {
        return *r;
    }
    let Some(audit) = &console.payloads else {
        return refusal(
            StatusCode::FORBIDDEN,
            "Payloads cannot be read here",
            "This console cannot record a payload read, so it reads none.",
        );
    };
    if !session
        .viewer
        .groups
        .iter()
        .any(|g| console.config.payload_groups.contains(g))
    {
        tracing::warn!(user = %session.viewer.sub, "console: payload read refused (not in a payload group)");
        return refusal(
            StatusCode::FORBIDDEN,
            "Not allowed to read payloads",
            &format!(
                "Reading a payload needs membership of a payload group ({}); you can still read every record's fields.",
                console.config.payload_groups.join(", ")
            ),
        );
    }
    let reason: String = form
        .reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned();
    let length = reason.chars().count();
    if length < REASON_CHARS.0 || length > REASON_CHARS.1 {
        return refusal(
            StatusCode::BAD_REQUEST,
            "A reason is needed",
            &format!(
                "State why you read this payload in {} to {} characters; it is recorded with the read.",
                REASON_CHARS.0, REASON_CHARS.1
            ),
        );
    }
    let (record, hash) = match find_record(&console, &at).await {
        Ok(found) => found,
        Err(r) => return *r,
    };
    let context = audit.context.context();
    let now = OffsetDateTime::now_utc();
    let event = AuditEvent {
        id: uuid::Uuid::now_v7(),
        call_id: uuid::Uuid::now_v7(),
        timestamp: now,
        request_id: uuid::Uuid::now_v7().to_string(),
        api: "console".to_owned(),
        workload_principal: None,
        spoke_account: None,
        application: None,
        user_sub: Some(session.viewer.sub.clone()),
        user_issuer: Some(session.viewer.issuer.clone()),
        purpose: None,
        data_classification: record.event.data_classification.clone(),
        model_alias: None,
        model_id: None,
        model_version: None,
        provider: None,
        development_model: false,
        catalog_version: context.catalog_version,
        guard_profile: context.guard_profile,
        guard_profile_version: context.guard_profile_version,
        policy_hash: context.policy_hash,
        outcome: Outcome::PayloadRead,
        error_code: None,
        reasons: vec![
            format!("record:{}", record.event.id),
            format!("reason:{reason}"),
        ],
        guard_events: Vec::new(),
        injection_permille: 0,
        grounding_permille: None,
        low_trust: false,
        usage: Default::default(),
        cost_micro_usd: 0,
        latency_us: 0,
        prompt_sha256: None,
        response_sha256: None,
        content: Default::default(),
    };
    // Evidence first: no record of the read, no payload.
    if let Err(e) = audit.sink.append(event, None).await {
        tracing::error!(error = %e, "console: the payload read could not be recorded; nothing shown");
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "The read could not be recorded",
            "The audit store did not take the record of this read, so the payload is not shown. Try again later.",
        );
    }
    tracing::info!(user = %session.viewer.sub, record = %record.event.id, "console: payload read");
    let shown = match console.reader.payload(&record).await {
        Ok(PayloadState::Stored(p)) => html! {
            p.notice { "This read is recorded in the audit chain (outcome " code { "payload_read" } ")." }
            h3 { "Prompt" } pre.payload { (p.prompt) }
            h3 { "Answer" } pre.payload { (p.response) }
        },
        Ok(PayloadState::Erased { period }) => html! {
            p.empty { "The payloads of " (period) " were erased: the day's data key is destroyed. The record and its hashes remain and still verify." }
        },
        Ok(PayloadState::Absent) => html! {
            p.empty { "No payload was stored for this record (refusals store none)." }
        },
        Err(e) => return store_error(&e),
    };
    let chains = console.reader.chains().await.unwrap_or_default();
    let chain = chains.iter().find(|c| c.chain_id == record.chain_id);
    let title = format!("Record {}", record.event.id);
    page(&console, &session, &title)
        .body(record_body(
            &console,
            &session,
            &record,
            &hash,
            chain,
            Some(shown),
        ))
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct DashboardParams {
    days: Option<i64>,
}

fn count_by<'a>(items: impl Iterator<Item = &'a str>) -> Vec<(String, f64)> {
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();
    for item in items {
        *counts.entry(item.to_owned()).or_default() += 1.0;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    counts
}

fn chart_section(id: &str, title: &str, svg: Result<String, String>, table: Markup) -> Markup {
    html! {
        section.chart aria-labelledby=(id) {
            h2 id=(id) { (title) }
            @match svg {
                Ok(svg) => { figure role="img" aria-label=(title) { (PreEscaped(svg)) } }
                Err(e) => { p.error { "The chart could not be drawn (" (e) "); the numbers are below." } }
            }
            details { summary { "The numbers" } (table) }
        }
    }
}

fn simple_table(head: &[&str], rows: &[Vec<String>]) -> Markup {
    html! {
        table {
            thead { tr { @for h in head { th scope="col" { (h) } } } }
            tbody { @for row in rows { tr { @for c in row { td { (c) } } } } }
        }
    }
}

/// `GET /console/dashboards`.
pub(crate) async fn dashboards(
    State(console): State<Arc<Console>>,
    Reviewer(session): Reviewer,
    Query(params): Query<DashboardParams>,
) -> Response {
    let days = params.days.unwrap_or(7).clamp(1, 90);
    let now = OffsetDateTime::now_utc();
    let since = (now - Duration::days(days - 1))
        .date()
        .midnight()
        .assume_utc();
    let filter = RecordFilter {
        since_unix_ms: Some(unix_ms(since)),
        limit: DASHBOARD_MAX,
        ..RecordFilter::default()
    };
    let rows = match console.reader.query(&filter).await {
        Ok(rows) => rows,
        Err(e) => return store_error(&e),
    };
    let events: Vec<&AuditEvent> = rows
        .iter()
        .map(|(r, _)| &r.event)
        .filter(|e| e.outcome != Outcome::PayloadRead)
        .collect();
    let dates: Vec<time::Date> = (0..days)
        .map(|d| since.date() + Duration::days(d))
        .collect();
    let labels: Vec<String> = dates
        .iter()
        .map(|d| format!("{:02}-{:02}", u8::from(d.month()), d.day()))
        .collect();
    let day_of = |e: &AuditEvent| dates.iter().position(|d| *d == e.timestamp.date());

    // Calls over time by outcome.
    let outcomes: BTreeSet<&str> = events.iter().map(|e| e.outcome.as_str()).collect();
    let by_outcome: Vec<Series> = outcomes
        .iter()
        .map(|o| {
            let mut values = vec![0.0; dates.len()];
            for e in events.iter().filter(|e| e.outcome.as_str() == *o) {
                if let Some(i) = day_of(e) {
                    values[i] += 1.0;
                }
            }
            Series {
                name: (*o).to_owned(),
                values,
            }
        })
        .collect();
    let outcome_rows: Vec<Vec<String>> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            std::iter::once(l.clone())
                .chain(by_outcome.iter().map(|s| format!("{}", s.values[i])))
                .collect()
        })
        .collect();
    let mut outcome_head = vec!["day"];
    outcome_head.extend(outcomes.iter().copied());

    // Denials and guard blocks by reason.
    let refusals = count_by(
        events
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Denied | Outcome::Blocked))
            .flat_map(|e| e.reasons.iter().map(String::as_str)),
    );
    let top: Vec<_> = refusals.iter().take(12).cloned().collect();

    // Spend per account and application.
    let mut spend: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for e in &events {
        let key = (
            e.spoke_account
                .clone()
                .unwrap_or_else(|| "direct".to_owned()),
            e.application.clone().unwrap_or_else(|| "—".to_owned()),
        );
        let entry = spend.entry(key).or_default();
        entry.0 += e.cost_micro_usd as f64 / 1e6;
        entry.1 += f64::from(e.usage.input_tokens + e.usage.output_tokens);
    }
    let mut accounts: BTreeMap<String, f64> = BTreeMap::new();
    for ((account, _), (cost, _)) in &spend {
        *accounts.entry(account.clone()).or_default() += cost;
    }
    let account_names: Vec<String> = accounts.keys().cloned().collect();
    let budgets: Vec<Option<f64>> = account_names
        .iter()
        .map(|a| {
            console
                .config
                .account_budgets_usd
                .get(a)
                .map(|monthly| monthly * days as f64 / 30.0)
        })
        .collect();

    // Guard findings by entity type over time.
    let entities: BTreeSet<&str> = events
        .iter()
        .flat_map(|e| e.guard_events.iter().map(|g| g.entity.as_str()))
        .collect();
    let by_entity: Vec<Series> = entities
        .iter()
        .map(|entity| {
            let mut values = vec![0.0; dates.len()];
            for e in &events {
                if let Some(i) = day_of(e) {
                    values[i] += e
                        .guard_events
                        .iter()
                        .filter(|g| g.entity == *entity)
                        .map(|g| f64::from(g.count))
                        .sum::<f64>();
                }
            }
            Series {
                name: (*entity).to_owned(),
                values,
            }
        })
        .collect();

    let models = count_by(events.iter().filter_map(|e| e.model_alias.as_deref()));

    let body = html! {
        form.inline method="get" action="/console/dashboards" {
            label for="days" { "Days" }
            select id="days" name="days" {
                @for d in [1, 7, 30, 90] { option value=(d) selected[d == days] { (d) } }
            }
            button type="submit" { "Show" }
        }
        p { (events.len()) " calls since " (when(since))
            @if rows.len() >= DASHBOARD_MAX { " (the first " (DASHBOARD_MAX) " records; narrow the range for all)" } "." }
        @if events.is_empty() {
            p.empty { "No calls in this range yet. Calls appear here as soon as the hub records them." }
        } @else {
            (chart_section("calls-h", "Calls over time by outcome",
                stacked_bars("Calls per day by outcome", &labels, &by_outcome, None),
                simple_table(&outcome_head, &outcome_rows)))
            (chart_section("refusals-h", "Denials and guard blocks by reason",
                stacked_bars("Denied and blocked calls by reason", &top.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(),
                    &[Series { name: "refusals".to_owned(), values: top.iter().map(|(_, n)| *n).collect() }], None),
                simple_table(&["reason", "calls"], &refusals.iter().map(|(r, n)| vec![r.clone(), n.to_string()]).collect::<Vec<_>>())))
            (chart_section("spend-h", "Cost per spoke account against its budget",
                stacked_bars("Cost (USD) per spoke account", &account_names,
                    &[Series { name: "cost".to_owned(), values: account_names.iter().map(|a| accounts[a]).collect() }], Some(&budgets)),
                simple_table(&["account", "application", "cost (USD)", "tokens"],
                    &spend.iter().map(|((a, app), (c, t))| vec![a.clone(), app.clone(), format!("{c:.6}"), format!("{t}")]).collect::<Vec<_>>())))
            (chart_section("entities-h", "Guard findings by entity type over time",
                stacked_bars("Guard findings per day by entity type", &labels, &by_entity, None),
                simple_table(&["entity", "findings"], &by_entity.iter().map(|s| vec![s.name.clone(), s.values.iter().sum::<f64>().to_string()]).collect::<Vec<_>>())))
            (chart_section("models-h", "Models used",
                stacked_bars("Calls per model", &models.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
                    &[Series { name: "calls".to_owned(), values: models.iter().map(|(_, n)| *n).collect() }], None),
                simple_table(&["model", "calls"], &models.iter().map(|(m, n)| vec![m.clone(), n.to_string()]).collect::<Vec<_>>())))
        }
    };
    page(&console, &session, "Dashboards")
        .body(body)
        .into_response()
}

fn ms_time(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

fn age(t: OffsetDateTime) -> String {
    let secs = (OffsetDateTime::now_utc() - t).whole_seconds().max(0);
    match secs {
        0..120 => format!("{secs} s ago"),
        120..7200 => format!("{} min ago", secs / 60),
        7200..172_800 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// `GET /console/integrity`.
pub(crate) async fn integrity(
    State(console): State<Arc<Console>>,
    Reviewer(session): Reviewer,
) -> Response {
    let chains = console.reader.chains().await;
    let keys = console.reader.public_keys().await.unwrap_or_default();
    let run = console
        .verify
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let running = matches!(run, VerifyRun::Running { .. });
    let verification_view = |v: &Verification| {
        html! {
            @if v.is_ok() {
                p.ok role="status" { "Intact: " (v.records) " records in " (v.chains) " chains and " (v.checkpoints) " checkpoints verify." }
            } @else {
                p.bad role="alert" { (v.breaks.len()) " breaks found (" (v.records) " records, " (v.chains) " chains, " (v.checkpoints) " checkpoints checked):" }
                ol.breaks { @for b in &v.breaks { li { (b.to_string()) } } }
            }
            @if let Some(head) = &v.log_head { p { "Checkpoint log head: " code { (head) } " — compare it with a copy kept elsewhere." } }
        }
    };
    let body = html! {
        section aria-labelledby="chains-h" {
            h2 id="chains-h" { "Chains" }
            @match &chains {
                Ok(chains) if chains.is_empty() => { p.empty { "No record yet." } }
                Ok(chains) => {
                    table {
                        thead { tr { th scope="col" { "Chain" } th scope="col" { "Head" } th scope="col" { "Head hash" } th scope="col" { "Last record" } th scope="col" { "Last signed checkpoint" } } }
                        tbody { @for c in chains { tr {
                            td { code { (c.chain_id) } }
                            td { (c.head_sequence) }
                            td { code.hash { (c.head_hash) } }
                            td { @if let Some(t) = ms_time(c.head_unix_ms) { (when(t)) } }
                            td {
                                @match (c.checkpoint_sequence, c.checkpoint_unix_ms.and_then(ms_time)) {
                                    (Some(s), Some(t)) => { "up to " (s) ", " (when(t)) " (" (age(t)) ")"
                                        @if s < c.head_sequence { " — " (c.head_sequence - s) " newer records await the next checkpoint" } }
                                    _ => { span.bad { "none" } }
                                }
                            }
                        } } }
                    }
                }
                Err(e) => { p.empty { (e.to_string()) } }
            }
        }
        section aria-labelledby="keys-h" {
            h2 id="keys-h" { "Checkpoint keys" }
            @if keys.is_empty() { p.empty { "The store names no key." } }
            @else { ul { @for k in &keys { li { code { (k.key_id) } " (" (k.algorithm) ")" } } } }
            @if console.config.trusted_keys.is_some() { p { "Signatures are checked against pinned keys." } }
        }
        section aria-labelledby="verify-h" {
            h2 id="verify-h" { "Verification" }
            @match &run {
                VerifyRun::Never => {
                    @if let Some(v) = &console.opened { p { "When this evidence was opened:" } (verification_view(v)) }
                    @else { p.empty { "Not run since the console started." } }
                }
                VerifyRun::Running { started, by, progress, total } => {
                    meta http-equiv="refresh" content="2";
                    p role="status" { "Running since " (when(*started)) ", started by " (by) ": "
                        (progress.checked())
                        @if let Some(total) = total { " of " (total) }
                        " records checked; this page refreshes until it ends." }
                    @match total {
                        Some(total) => { progress aria-label="Records checked" value=(progress.checked().min(*total)) max=((*total).max(1)) {} }
                        None => { progress aria-label="Verification running" {} }
                    }
                }
                VerifyRun::Done { started, finished, by, result } => {
                    p { "Run by " (by) " from " (when(*started)) ", took " (format!("{:.1}", (*finished - *started).as_seconds_f64())) " s." }
                    @match result {
                        Ok(v) => { (verification_view(v)) }
                        Err(e) => { p.bad role="alert" { "The verification could not run: " (e) } }
                    }
                }
            }
            @if !running {
                form method="post" action="/console/integrity/verify" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button type="submit" { "Run a verification" }
                }
            }
        }
    };
    page(&console, &session, "Integrity")
        .body(body)
        .into_response()
}

/// `POST /console/integrity/verify`: starts a verification in the background.
pub(crate) async fn verify(
    State(console): State<Arc<Console>>,
    Reviewer(session): Reviewer,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = check_csrf(&session, &form.csrf) {
        return *r;
    }
    let started = OffsetDateTime::now_utc();
    // The records to check, when the store can say: what the progress bar counts up to.
    let total = console
        .reader
        .chains()
        .await
        .ok()
        .map(|chains| chains.iter().map(|c| c.head_sequence).sum());
    {
        let mut run = console
            .verify
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !matches!(*run, VerifyRun::Running { .. }) {
            let progress = Arc::new(causeway_audit::Progress::default());
            *run = VerifyRun::Running {
                started,
                by: session.viewer.sub.clone(),
                progress: Arc::clone(&progress),
                total,
            };
            let console = Arc::clone(&console);
            let by = session.viewer.sub.clone();
            causeway_server::spawn(async move {
                let result = console
                    .reader
                    .verify(console.config.trusted_keys.as_deref(), &progress)
                    .await
                    .map_err(|e| e.to_string());
                *console
                    .verify
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = VerifyRun::Done {
                    started,
                    finished: OffsetDateTime::now_utc(),
                    by,
                    result,
                };
            });
        }
    }
    Redirect::to("/console/integrity").into_response()
}

/// `GET /console/export`.
pub(crate) async fn export_form(
    State(console): State<Arc<Console>>,
    Reviewer(session): Reviewer,
) -> Response {
    let today = OffsetDateTime::now_utc().date();
    let body = html! {
        p { "An evidence pack holds the records of a time range with everything needed to verify them without the store: the checkpoint log, the public keys and a signed manifest. Open it offline with "
            code { "causeway console --pack DIR" } " or verify it with " code { "causeway evidence verify --pack DIR" } "." }
        form method="post" action="/console/export" {
            input type="hidden" name="csrf" value=(session.csrf);
            div.field { label for="since" { "From (UTC)" } input id="since" name="since" required value=(format!("{}", today - Duration::days(7))); }
            div.field { label for="until" { "Until (UTC, exclusive)" } input id="until" name="until" required value=(format!("{}", today + Duration::days(1))); }
            button type="submit" { "Download the pack (zip)" }
        }
    };
    page(&console, &session, "Export")
        .body(body)
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct ExportForm {
    csrf: String,
    since: String,
    until: String,
}

/// `POST /console/export`: an evidence pack for the range, as a zip.
pub(crate) async fn export(
    State(console): State<Arc<Console>>,
    Reviewer(session): Reviewer,
    Form(form): Form<ExportForm>,
) -> Response {
    if let Err(r) = check_csrf(&session, &form.csrf) {
        return *r;
    }
    let now = OffsetDateTime::now_utc();
    let (since, until) = match (parse_time(&form.since, now), parse_time(&form.until, now)) {
        (Ok(s), Ok(u)) if s < u => (s, u),
        (Ok(_), Ok(_)) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                "The range is empty",
                "`From` must be before `Until`.",
            );
        }
        (Err(e), _) | (_, Err(e)) => {
            return refusal(StatusCode::BAD_REQUEST, "The range is not valid", &e);
        }
    };
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            return refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "No room for the pack",
                &format!("A temporary directory could not be made: {e}."),
            );
        }
    };
    let pack = dir.path().join("pack");
    let summary = match console.reader.export(since, until, &pack).await {
        Ok(s) => s,
        Err(e) => return store_error(&e),
    };
    tracing::info!(user = %session.viewer.sub, records = summary.records, "console: evidence pack exported");
    let zipped = tokio::task::spawn_blocking(move || zip_dir(&pack)).await;
    let bytes = match zipped {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            return refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The pack could not be zipped",
                &e,
            );
        }
        Err(e) => {
            return refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The pack could not be zipped",
                &e.to_string(),
            );
        }
    };
    let name = format!("causeway-evidence-{}-{}.zip", since.date(), until.date());
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
        ],
        Body::from(bytes),
    )
        .into_response()
}

/// The files of a pack directory as a zip, under a folder named like the pack.
fn zip_dir(dir: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Write as _;
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(entry.path()).map_err(|e| e.to_string())?;
            zip.start_file(format!("evidence-pack/{name}"), options)
                .map_err(|e| e.to_string())?;
            zip.write_all(&bytes).map_err(|e| e.to_string())?;
        }
        zip.finish().map_err(|e| e.to_string())?;
    }
    Ok(out.into_inner())
}

/// `GET /console/assets/console.css`.
pub(crate) async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

/// `GET /console/assets/console.js`.
pub(crate) async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_in_every_form_the_pages_offer() {
        let now = time::macros::datetime!(2026-01-02 12:00 UTC);
        assert_eq!(
            parse_time("2026-01-01T09:30", now).unwrap(),
            time::macros::datetime!(2026-01-01 09:30 UTC)
        );
        assert_eq!(
            parse_time("2026-01-01", now).unwrap(),
            time::macros::datetime!(2026-01-01 00:00 UTC)
        );
        assert_eq!(
            parse_time("24h", now).unwrap(),
            time::macros::datetime!(2026-01-01 12:00 UTC)
        );
        assert_eq!(
            parse_time("2026-01-01T09:30:00Z", now).unwrap(),
            time::macros::datetime!(2026-01-01 09:30 UTC)
        );
        assert!(
            parse_time("yesterday", now)
                .unwrap_err()
                .contains("`yesterday`")
        );
    }

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("plain"), "plain");
    }

    #[test]
    fn a_search_keeps_its_filters_across_pages_and_refuses_a_bad_cursor() {
        let params = SearchParams {
            user: "alice".to_owned(),
            outcome: "denied".to_owned(),
            ..SearchParams::default()
        };
        assert_eq!(
            params.query_string(Some("5.x")),
            "user=alice&outcome=denied&cursor=5.x"
        );
        let filter = SearchParams {
            cursor: "17.abc".to_owned(),
            ..params.clone()
        }
        .filter(10)
        .unwrap();
        assert_eq!(filter.before, Some((17, "abc".to_owned())));
        assert_eq!(filter.user_sub.as_deref(), Some("alice"));
        assert!(
            SearchParams {
                cursor: "x".to_owned(),
                ..params.clone()
            }
            .filter(10)
            .is_err()
        );
        assert!(
            SearchParams {
                outcome: "won".to_owned(),
                ..params
            }
            .filter(10)
            .unwrap_err()
            .contains("`won`")
        );
    }
}
