//! The compliance console: audit evidence a reviewer reads in a browser.
//!
//! One router ([`router`]) over one [`AuditReader`], mounted by the hub at `/console` (reading its
//! configured store) and served by `causeway console` over an evidence pack or a local embedded store. Pages:
//! search (filters, cursor paging, CSV and JSON download), a record (every index field, reasons, guard
//! events, usage, its chain position and whether it verifies, its payload on request), dashboards (charts
//! drawn as SVG on the server), integrity (chains, checkpoints, a verification run) and export (an evidence
//! pack for a time range, as a zip).
//!
//! Constraints:
//! - **Signed in or nothing.** Every page but sign-in needs a session of a member of a reviewer group
//!   ([`ConsoleConfig::reviewer_groups`]). A session is sealed (AES-256-GCM) in a `HttpOnly`,
//!   `SameSite=Strict` cookie (`Secure` unless served over plain loopback HTTP), so any instance with the
//!   console's key serves it; it expires, and carries a CSRF token every form posts back.
//! - **A payload read is evidence first.** Reading a record's prompt and answer needs a payload group and a
//!   stated reason, and writes a `payload_read` audit record to the chain before the payload is read; if
//!   that record cannot be written, nothing is shown (fail closed).
//! - **Pages work without JavaScript.** Everything is rendered on the server (HTML escaped by construction,
//!   charts as SVG); the one script only adds local times on hover. A strict Content-Security-Policy allows
//!   nothing from elsewhere.
//! - Nothing here logs record contents, payloads or tokens.

mod auth;
mod charts;
mod pages;
mod view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::routing::{get, post};
use causeway_audit::{AuditReader, AuditSink, PublicKeyInfo, Verification};

pub use auth::{NoRandomness, Oidc, Viewer, random_token};

/// How reviewers sign in.
#[derive(Debug)]
pub enum SignIn {
    /// The organisation's OIDC provider, authorization code with PKCE (Cognito works).
    Oidc(Oidc),
    /// A form that names the user and groups: only for a hub in development identity mode, which serves
    /// loopback only.
    Development,
    /// A one-time link with this token, printed by `causeway console` for the person who started it.
    Link {
        /// The secret in the link.
        token: String,
    },
}

/// What the host tells the console about the evidence it writes when a payload is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventContext {
    /// The catalog version in force.
    pub catalog_version: String,
    /// The guard profile in force and its version.
    pub guard_profile: String,
    /// Its version.
    pub guard_profile_version: String,
    /// The policy set hash in force.
    pub policy_hash: String,
}

/// Supplies the [`EventContext`] at the time of a payload read (policies reload while the hub runs).
pub trait ContextSource: Send + Sync + std::fmt::Debug {
    /// The context now.
    fn context(&self) -> EventContext;
}

/// Where payload reads are recorded.
#[derive(Debug, Clone)]
pub struct PayloadAudit {
    /// The store's writer: the read is appended to the chain before the payload is read.
    pub sink: Arc<dyn AuditSink>,
    /// The versions in force, for the record.
    pub context: Arc<dyn ContextSource>,
}

/// The console's settings.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Members of any of these groups may read the console.
    pub reviewer_groups: Vec<String>,
    /// Members of any of these groups may also read payloads (with a stated reason).
    pub payload_groups: Vec<String>,
    /// Mark the session cookie `Secure` (off only for plain HTTP on loopback).
    pub secure_cookies: bool,
    /// What is being read, shown on every page: `store .causeway`, `evidence pack ./pack-2026-01`.
    pub source: String,
    /// Budgets per spoke account in US dollars a month, drawn beside the spend.
    pub account_budgets_usd: HashMap<String, f64>,
    /// Pinned checkpoint keys to verify against (else the keys the store or pack carries).
    pub trusted_keys: Option<Vec<PublicKeyInfo>>,
    /// The key that seals session cookies, shared by every instance serving this console; `None`: a random
    /// key of this process (one instance; a restart signs everyone out).
    pub session_key: Option<[u8; 32]>,
}

/// A verification started from the integrity page.
#[derive(Debug, Clone, Default)]
enum VerifyRun {
    /// None yet.
    #[default]
    Never,
    /// Running since this time.
    Running {
        started: time::OffsetDateTime,
        by: String,
        /// Records checked so far.
        progress: Arc<causeway_audit::Progress>,
        /// Records in the chains when it started, if the store could say.
        total: Option<u64>,
    },
    /// Finished.
    Done {
        started: time::OffsetDateTime,
        finished: time::OffsetDateTime,
        by: String,
        result: Result<Verification, String>,
    },
}

/// The console: its reader, sign-in, sessions and the last verification run.
#[derive(Debug)]
pub struct Console {
    reader: Arc<dyn AuditReader>,
    payloads: Option<PayloadAudit>,
    sign_in: SignIn,
    config: ConsoleConfig,
    sessions: auth::Sessions,
    verify: Mutex<VerifyRun>,
    /// The verification made when the evidence was opened (a pack), shown until a run replaces it.
    opened: Option<Verification>,
}

impl Console {
    /// A console over `reader`, signing reviewers in with `sign_in`; payload reads are offered only with
    /// `payloads` (a store the console can write the read's audit record to).
    ///
    /// # Errors
    ///
    /// When no session key is given and the system cannot make one.
    pub fn new(
        reader: Arc<dyn AuditReader>,
        sign_in: SignIn,
        config: ConsoleConfig,
        payloads: Option<PayloadAudit>,
    ) -> Result<Self, NoRandomness> {
        Ok(Self {
            reader,
            payloads,
            sign_in,
            sessions: auth::Sessions::new(config.session_key)?,
            config,
            verify: Mutex::new(VerifyRun::Never),
            opened: None,
        })
    }

    /// Shows `verification` (made when the evidence was opened) on the integrity page until a run.
    #[must_use]
    pub fn with_opened_verification(mut self, verification: Verification) -> Self {
        self.opened = Some(verification);
        self
    }
}

/// Reads a [`Viewer`] from a verified ID token: implemented by the host with its token verifier.
#[async_trait]
pub trait TokenCheck: Send + Sync + std::fmt::Debug {
    /// The viewer the token names, or why it is refused.
    async fn viewer(&self, id_token: &str) -> Result<Viewer, String>;
}

/// The console's routes, under `/console`, to merge into a host's router (whatever its state).
pub fn router<S: Clone + Send + Sync + 'static>(console: Arc<Console>) -> Router<S> {
    Router::new()
        .route("/console", get(pages::search))
        .route("/console/", get(pages::search))
        .route("/console/search.csv", get(pages::search_csv))
        .route("/console/search.json", get(pages::search_json))
        .route("/console/record", get(pages::record))
        .route("/console/record/payload", post(pages::payload))
        .route("/console/dashboards", get(pages::dashboards))
        .route("/console/integrity", get(pages::integrity))
        .route("/console/integrity/verify", post(pages::verify))
        .route(
            "/console/export",
            get(pages::export_form).post(pages::export),
        )
        .route("/console/login", get(auth::login).post(auth::login_form))
        .route("/console/callback", get(auth::callback))
        .route("/console/logout", post(auth::logout))
        .route("/console/assets/console.css", get(pages::css))
        .route("/console/assets/console.js", get(pages::js))
        .layer(axum::middleware::map_response(pages::security_headers))
        .with_state(console)
}

/// Serves the console alone on `listener` until `shutdown` completes (`causeway console`).
///
/// # Errors
///
/// When the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    console: Arc<Console>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router::<()>(console))
        .with_graceful_shutdown(shutdown)
        .await
}
