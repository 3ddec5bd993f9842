//! `causeway scp render | lint`: service control policies rendered from the model catalog and the org file.
//!
//! A template is an SCP in JSON (`policies/scp/<name>.json`) whose strings may hold placeholders, `{{name}}`.
//! Double braces never occur in IAM policy text (IAM variables are `${aws:PrincipalArn}`), so a template stays
//! valid JSON and a placeholder cannot be mistaken for an IAM variable. A string that is exactly one
//! placeholder of a list variable becomes a JSON array (inside an array, its items are spliced in); any other
//! placeholder is replaced inside its string. One-line descriptions live beside the templates in
//! `descriptions.toml`. The templates are built into the binary; `--templates DIR` reads a directory laid out
//! the same way instead.
//!
//! Constraints:
//! - The variables come from the org file and the same model catalog the hub uses, so the models a spoke may
//!   reach through the hub and the models the SCPs allow always agree.
//! - What goes to Organizations is the compact serialization of the rendered JSON; the size limit is checked
//!   on exactly those bytes.
//! - [`render_all`] refuses a set with any lint error, so `org apply` never sends a policy Organizations
//!   would reject or that still holds a placeholder.
//!
//! Exit codes: 0 success (lint: no errors, warnings allowed), [`CliExit::LintFailed`] (9) when lint finds an
//! error, 2 for usage errors (a bad org file or catalog, an unknown template), 3 when a file cannot be read or
//! written.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use causeway_contract::catalog::{Catalog, ProviderKind};
use clap::Subcommand;
use serde::Serialize;
use serde_json::{Value, json};

use crate::orgfile::{DeploymentMode, OrgFile};
use crate::{CliError, CliExit, Output};

/// SCP commands.
#[derive(Debug, Subcommand)]
pub enum ScpCommand {
    /// Render the SCPs the org file attaches, from the model catalog and the org file's hub settings.
    ///
    /// Prints each policy (or, with `--out`, writes `<policy name>.json` files, exactly the bytes sent to
    /// Organizations). Refuses a set that fails `scp lint`.
    Render {
        /// The org file.
        #[arg(long)]
        org: PathBuf,
        /// Write one `<policy name>.json` file per policy into this directory (created if missing).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Read the templates from this directory instead of the built-in ones.
        #[arg(long)]
        templates: Option<PathBuf>,
    },
    /// Check every template against the Organizations limits (minified size, policies per target), for valid
    /// JSON and for unknown variables. Exits 9 when there is an error.
    Lint {
        /// The org file.
        #[arg(long)]
        org: PathBuf,
        /// Read the templates from this directory instead of the built-in ones.
        #[arg(long)]
        templates: Option<PathBuf>,
    },
}

/// Runs an SCP command.
pub fn run(command: ScpCommand, output: Output, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        ScpCommand::Render {
            org,
            out: dir,
            templates,
        } => {
            let file = OrgFile::load(&org)?;
            let rendered = render_all_with(&file, templates.as_deref())?;
            render_command(&rendered, dir.as_deref(), output, out)
        }
        ScpCommand::Lint { org, templates } => {
            let file = OrgFile::load(&org)?;
            let findings = lint(&file, templates.as_deref())?;
            lint_command(&findings, output, out)
        }
    }
}

// === Public API ===

/// One SCP rendered for Organizations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedScp {
    /// The template name (`deny-direct-model-invocation`).
    pub template: String,
    /// The Organizations policy name (`<name_prefix>-<template>`).
    pub policy_name: String,
    /// The one-line description.
    pub description: String,
    /// The policy document as minified JSON: exactly what goes to Organizations.
    pub document: String,
}

/// How bad a lint finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Organizations would refuse the policy, or it would not say what it should; `scp lint` exits 9.
    Error,
    /// Worth a look; does not fail the lint.
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

/// One lint finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// What it is about: a template name, a target (`Root/Workloads`) or a catalog model.
    pub subject: String,
    /// The rule: `json`, `shape`, `size`, `unknown-variable`, `list-in-string`, `empty-list`, `per-target`,
    /// `unknown-template`, `description`, `model-region`, `model-arn`.
    pub rule: &'static str,
    /// One line, lowercase.
    pub message: String,
}

impl Finding {
    fn error(subject: impl Into<String>, rule: &'static str, message: String) -> Self {
        Self {
            severity: Severity::Error,
            subject: subject.into(),
            rule,
            message,
        }
    }

    fn warning(subject: impl Into<String>, rule: &'static str, message: String) -> Self {
        Self {
            severity: Severity::Warning,
            subject: subject.into(),
            rule,
            message,
        }
    }
}

/// Renders every template the org file attaches, with the built-in templates, keyed by template name.
///
/// An unknown template name is a usage error naming it and the target that uses it; a template with a lint
/// error (size, unknown variable, invalid JSON) is a usage error naming the template.
pub fn render_all(file: &OrgFile) -> Result<BTreeMap<String, RenderedScp>, CliError> {
    render_all_with(file, None)
}

/// [`render_all`] with the templates read from `templates` (a directory) when given.
pub fn render_all_with(
    file: &OrgFile,
    templates: Option<&Path>,
) -> Result<BTreeMap<String, RenderedScp>, CliError> {
    let set = TemplateSet::load(templates)?;
    let vars = Variables::from_org(file)?;
    for (target, scps) in file.scp_attachments() {
        if let Some(unknown) = scps.iter().find(|name| !set.templates.contains_key(*name)) {
            return Err(CliError::usage(format!(
                "{target} attaches unknown SCP template `{unknown}`; the templates are {}",
                set.names()
            )));
        }
    }
    let mut rendered = BTreeMap::new();
    for name in file.scp_templates() {
        let Some(template) = set.templates.get(&name) else {
            continue;
        };
        let outcome = render_template(template, &vars, file.limits.scp_max_bytes);
        if let Some(first) = outcome
            .findings
            .iter()
            .find(|f| f.severity == Severity::Error)
        {
            return Err(CliError::usage(format!(
                "SCP template `{name}` fails lint ({}): {}",
                first.rule, first.message
            )));
        }
        let Some(document) = outcome.document else {
            return Err(CliError::usage(format!(
                "SCP template `{name}` did not render"
            )));
        };
        rendered.insert(
            name.clone(),
            RenderedScp {
                template: name.clone(),
                policy_name: file.policy_name(&name),
                description: template.description.clone().unwrap_or_default(),
                document,
            },
        );
    }
    Ok(rendered)
}

/// Checks every template in the set (used by the org file or not) and every target the org file attaches
/// SCPs to. Errors and warnings come back as findings; only unreadable or unusable input is an `Err`.
pub fn lint(file: &OrgFile, templates: Option<&Path>) -> Result<Vec<Finding>, CliError> {
    let set = TemplateSet::load(templates)?;
    let vars = Variables::from_org(file)?;
    let mut findings = Vec::new();
    for template in set.templates.values() {
        findings.extend(render_template(template, &vars, file.limits.scp_max_bytes).findings);
    }
    let limit = file.limits.scps_per_target;
    for (target, scps) in file.scp_attachments() {
        for unknown in scps
            .iter()
            .filter(|name| !set.templates.contains_key(*name))
        {
            findings.push(Finding::error(
                unknown.clone(),
                "unknown-template",
                format!(
                    "{target} attaches `{unknown}`, which is not a template; the templates are {}",
                    set.names()
                ),
            ));
        }
        if scps.is_empty() {
            continue;
        }
        // INVARIANT: Organizations keeps `FullAWSAccess` attached to every target while SCPs are enabled, so
        // it always takes one of the places.
        let count = scps.len() + 1;
        if count > limit {
            findings.push(Finding::error(
                target.clone(),
                "per-target",
                format!(
                    "{count} SCPs would be attached ({} from causeway plus `FullAWSAccess`, which Organizations \
                     attaches to every target), over the limit of {limit}",
                    scps.len()
                ),
            ));
        }
    }
    findings.extend(vars.catalog_findings);
    Ok(findings)
}

// === Templates ===

/// The templates built into the binary: `policies/scp/`.
pub mod embedded {
    /// `policies/scp/descriptions.toml`
    pub const DESCRIPTIONS: &str = include_str!("../../policies/scp/descriptions.toml");

    /// Every template: name and JSON text.
    pub const TEMPLATES: &[(&str, &str)] = &[
        (
            "approved-models-only",
            include_str!("../../policies/scp/approved-models-only.json"),
        ),
        (
            "approved-regions",
            include_str!("../../policies/scp/approved-regions.json"),
        ),
        (
            "deny-bedrock-api-keys",
            include_str!("../../policies/scp/deny-bedrock-api-keys.json"),
        ),
        (
            "deny-direct-model-invocation",
            include_str!("../../policies/scp/deny-direct-model-invocation.json"),
        ),
        (
            "deny-leave-organization",
            include_str!("../../policies/scp/deny-leave-organization.json"),
        ),
        (
            "deny-model-customization",
            include_str!("../../policies/scp/deny-model-customization.json"),
        ),
        (
            "protect-audit-store",
            include_str!("../../policies/scp/protect-audit-store.json"),
        ),
        (
            "protect-cloudtrail",
            include_str!("../../policies/scp/protect-cloudtrail.json"),
        ),
        (
            "protect-spoke-role",
            include_str!("../../policies/scp/protect-spoke-role.json"),
        ),
        (
            "require-hub-guardrail",
            include_str!("../../policies/scp/require-hub-guardrail.json"),
        ),
    ];
}

/// The descriptions file inside a templates directory.
pub const DESCRIPTIONS_FILE: &str = "descriptions.toml";

/// Organizations' longest policy description.
const MAX_DESCRIPTION_CHARS: usize = 512;

#[derive(Debug, Clone)]
struct Template {
    name: String,
    text: String,
    description: Option<String>,
}

#[derive(Debug)]
struct TemplateSet {
    templates: BTreeMap<String, Template>,
}

impl TemplateSet {
    fn load(dir: Option<&Path>) -> Result<Self, CliError> {
        match dir {
            None => Self::from_parts(
                embedded::TEMPLATES
                    .iter()
                    .map(|(name, text)| ((*name).to_owned(), (*text).to_owned())),
                Some(("policies/scp/descriptions.toml", embedded::DESCRIPTIONS)),
            ),
            Some(dir) => {
                let entries = std::fs::read_dir(dir).map_err(|e| {
                    CliError::io(format!(
                        "cannot read templates directory {}: {e}",
                        dir.display()
                    ))
                })?;
                let mut templates = Vec::new();
                for entry in entries {
                    let path = entry
                        .map_err(|e| {
                            CliError::io(format!(
                                "cannot read templates directory {}: {e}",
                                dir.display()
                            ))
                        })?
                        .path();
                    if path.extension().and_then(|e| e.to_str()) != Some("json") {
                        continue;
                    }
                    let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                        continue;
                    };
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        CliError::io(format!("cannot read template {}: {e}", path.display()))
                    })?;
                    templates.push((name.to_owned(), text));
                }
                if templates.is_empty() {
                    return Err(CliError::usage(format!(
                        "templates directory {} holds no `*.json` templates",
                        dir.display()
                    )));
                }
                let descriptions_path = dir.join(DESCRIPTIONS_FILE);
                let descriptions = match std::fs::read_to_string(&descriptions_path) {
                    Ok(text) => Some(text),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => {
                        return Err(CliError::io(format!(
                            "cannot read {}: {e}",
                            descriptions_path.display()
                        )));
                    }
                };
                let shown = descriptions_path.display().to_string();
                Self::from_parts(
                    templates,
                    descriptions.as_deref().map(|text| (shown.as_str(), text)),
                )
            }
        }
    }

    fn from_parts(
        templates: impl IntoIterator<Item = (String, String)>,
        descriptions: Option<(&str, &str)>,
    ) -> Result<Self, CliError> {
        let descriptions: BTreeMap<String, String> = match descriptions {
            Some((file, text)) => toml::from_str(text).map_err(|e| {
                CliError::usage(format!(
                    "{file}: {} (each line is `template-name = \"one-line description\"`)",
                    e.message()
                ))
            })?,
            None => BTreeMap::new(),
        };
        let templates = templates
            .into_iter()
            .map(|(name, text)| {
                let description = descriptions.get(&name).cloned();
                (
                    name.clone(),
                    Template {
                        name,
                        text,
                        description,
                    },
                )
            })
            .collect();
        Ok(Self { templates })
    }

    fn names(&self) -> String {
        self.templates
            .keys()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

// === Variables ===

/// A variable's value: one string, or a list that a whole-string placeholder expands to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum VarValue {
    One(String),
    List(Vec<String>),
}

/// The variables templates may use, computed from the org file and the model catalog.
#[derive(Debug)]
struct Variables {
    values: BTreeMap<&'static str, VarValue>,
    /// Why a variable that exists in general is absent for this org file.
    missing_because: BTreeMap<&'static str, &'static str>,
    /// Findings about the catalog itself (model regions, models named by ARN).
    catalog_findings: Vec<Finding>,
}

/// Cross-region inference profile id prefixes (`us.anthropic…`): the geography, then the model id.
const PROFILE_GEOGRAPHIES: &[&str] = &["us", "eu", "apac", "jp", "au", "ca", "us-gov", "global"];

/// The tag `causeway org apply` puts on every SCP it creates, with the org file's `name_prefix` as value.
/// The admin role (`infra/admin.yaml`) may update, attach, detach and delete only SCPs that carry it, so it
/// cannot lift a guardrail the organisation set outside Causeway.
pub const MANAGED_SCP_TAG: &str = "causeway:managed-by";

/// A cross-region inference profile id (`us.anthropic.claude…`) split into its geography and the foundation
/// model it routes to; `None` for a foundation model id or an ARN.
pub(crate) fn inference_profile(id: &str) -> Option<(&str, &str)> {
    id.split_once('.')
        .filter(|(geo, _)| PROFILE_GEOGRAPHIES.contains(geo))
}

impl Variables {
    fn from_org(file: &OrgFile) -> Result<Self, CliError> {
        let catalog = load_catalog(file)?;
        let hub = &file.hub;
        let (approved_model_arns, catalog_findings) = approved_model_arns(&catalog, file);
        let hub_role_arn = format!("arn:aws:iam::{}:role/{}-hub", hub.account, file.name_prefix);
        let spoke_deployer_arns = match file.spoke_deployment.mode {
            // Service-managed StackSets create and update stacks in member accounts through the
            // `stacksets-exec-*` role they create there.
            DeploymentMode::Stackset => vec!["arn:aws:iam::*:role/stacksets-exec-*".to_owned()],
            DeploymentMode::AssumeRole => vec![format!(
                "arn:aws:iam::*:role/{}",
                file.spoke_deployment.admin_role
            )],
        };
        let mut values = BTreeMap::from([
            ("name_prefix", VarValue::One(file.name_prefix.clone())),
            ("hub_account", VarValue::One(hub.account.clone())),
            ("hub_region", VarValue::One(hub.region.clone())),
            ("hub_role_arn", VarValue::One(hub_role_arn)),
            (
                "hub_deployer_arn",
                VarValue::One(format!(
                    "arn:aws:iam::{}:role/{}",
                    hub.account, file.spoke_deployment.admin_role
                )),
            ),
            (
                "approved_regions",
                VarValue::List(hub.approved_regions.clone()),
            ),
            ("approved_model_arns", VarValue::List(approved_model_arns)),
            ("audit_bucket", VarValue::One(file.audit_bucket())),
            ("audit_table", VarValue::One(file.audit_table())),
            ("registry_table", VarValue::One(file.registry_table())),
            (
                "audit_key_aliases",
                VarValue::List(vec![
                    format!("alias/{}-payloads", file.name_prefix),
                    format!("alias/{}-checkpoints", file.name_prefix),
                ]),
            ),
            ("agent_role_name", VarValue::One(file.agent_role_name())),
            ("boundary_name", VarValue::One(file.boundary_name())),
            ("stackset_name", VarValue::One(file.stackset_name())),
            ("spoke_deployer_arns", VarValue::List(spoke_deployer_arns)),
        ]);
        let mut missing_because = BTreeMap::new();
        match &hub.guardrail_arn {
            Some(arn) => {
                values.insert(
                    "guardrail_identifier",
                    VarValue::One(guardrail_identifier(arn)),
                );
            }
            None => {
                missing_because.insert(
                    "guardrail_identifier",
                    "the org file sets no `hub.guardrail_arn`",
                );
            }
        }
        Ok(Self {
            values,
            missing_because,
            catalog_findings,
        })
    }
}

/// The model catalog the org file names (`hub.catalog`), or the one built into this CLI.
pub(crate) fn load_catalog(file: &OrgFile) -> Result<Catalog, CliError> {
    let (name, text) = match &file.hub.catalog {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|e| {
                CliError::io(format!(
                    "cannot read the model catalog {}: {e}",
                    path.display()
                ))
            })?,
        ),
        None => (
            "the built-in catalog".to_owned(),
            causeway_policy::embedded::CATALOG.to_owned(),
        ),
    };
    Catalog::from_toml(&name, &text)
        .map_err(|e| CliError::usage(format!("the model catalog is invalid: {e}")))
}

/// The `bedrock:GuardrailIdentifier` value to require. Bedrock compares the guardrail ARN with its version
/// (`…:guardrail/<id>:<version>`); an ARN without a version accepts any version of that guardrail.
fn guardrail_identifier(arn: &str) -> String {
    let versioned = arn
        .rsplit_once("guardrail/")
        .is_some_and(|(_, rest)| rest.contains(':'));
    if versioned {
        arn.to_owned()
    } else {
        format!("{arn}:*")
    }
}

/// Every ARN a call to a catalog Bedrock model is authorized against, and findings about the catalog.
///
/// A foundation model id gives its foundation-model ARN in each of the model's regions. A cross-region
/// inference profile id (`us.anthropic…`) gives the profile's ARN in each region (any account: each account
/// invokes the system-defined profile under its own account id) and the underlying foundation model in each
/// region, because Bedrock authorizes the call against both the profile and the model in the region it routes
/// to. A global profile also needs the region-less foundation-model ARN.
fn approved_model_arns(catalog: &Catalog, file: &OrgFile) -> (Vec<String>, Vec<Finding>) {
    let mut arns = BTreeSet::new();
    let mut findings = Vec::new();
    let approved: BTreeSet<&str> = file
        .hub
        .approved_regions
        .iter()
        .map(String::as_str)
        .collect();
    for (alias, model) in &catalog.models {
        if model.provider != ProviderKind::Bedrock {
            continue;
        }
        let subject = format!("model {alias}");
        let id = model.model_id.as_str();
        if id.starts_with("arn:") {
            arns.insert(id.to_owned());
            findings.push(Finding::warning(
                subject,
                "model-arn",
                format!(
                    "`{id}` is an ARN, so only it is approved; if it is an inference profile, its foundation \
                     models are denied unless the catalog lists them too"
                ),
            ));
            continue;
        }
        let regions: Vec<&str> = if model.regions.is_empty() {
            vec![file.hub.region.as_str()]
        } else {
            model.regions.iter().map(String::as_str).collect()
        };
        for region in &regions {
            if !approved.contains(region) {
                findings.push(Finding::warning(
                    subject.clone(),
                    "model-region",
                    format!(
                        "region `{region}` of `{id}` is not in `hub.approved_regions`, so `approved-regions` denies \
                         calls there (cross-region inference is authorized in the region it routes to)"
                    ),
                ));
            }
        }
        match inference_profile(id) {
            Some((geo, foundation)) => {
                for region in &regions {
                    arns.insert(format!("arn:aws:bedrock:{region}:*:inference-profile/{id}"));
                    arns.insert(format!(
                        "arn:aws:bedrock:{region}::foundation-model/{foundation}"
                    ));
                }
                if geo == "global" {
                    arns.insert(format!("arn:aws:bedrock:::foundation-model/{foundation}"));
                }
            }
            None => {
                for region in &regions {
                    arns.insert(format!("arn:aws:bedrock:{region}::foundation-model/{id}"));
                }
            }
        }
    }
    (arns.into_iter().collect(), findings)
}

// === Rendering ===

#[derive(Debug)]
struct Outcome {
    /// The minified document, when the template rendered to JSON.
    document: Option<String>,
    findings: Vec<Finding>,
}

/// Renders one template and checks it: JSON, shape, variables, size, description.
fn render_template(template: &Template, vars: &Variables, max_bytes: usize) -> Outcome {
    let name = template.name.as_str();
    let mut findings = Vec::new();
    match &template.description {
        None => findings.push(Finding::warning(
            name,
            "description",
            format!("no description in `{DESCRIPTIONS_FILE}`; the Organizations policy gets none"),
        )),
        Some(text) if text.chars().count() > MAX_DESCRIPTION_CHARS || text.contains('\n') => {
            findings.push(Finding::error(
                name,
                "description",
                format!(
                    "the description must be one line of at most {MAX_DESCRIPTION_CHARS} characters"
                ),
            ));
        }
        Some(_) => {}
    }
    let parsed: Value = match serde_json::from_str(&template.text) {
        Ok(value) => value,
        Err(e) => {
            findings.push(Finding::error(name, "json", format!("not valid JSON: {e}")));
            return Outcome {
                document: None,
                findings,
            };
        }
    };
    let mut expander = Expander {
        vars,
        unknown: BTreeSet::new(),
        list_in_string: BTreeSet::new(),
        empty: BTreeSet::new(),
    };
    let rendered = expander.value(parsed);
    for var in &expander.unknown {
        let why = vars
            .missing_because
            .get(var.as_str())
            .map(|why| format!(" ({why})"))
            .unwrap_or_default();
        findings.push(Finding::error(
            name,
            "unknown-variable",
            format!("`{{{{{var}}}}}` is not defined{why}"),
        ));
    }
    for var in &expander.list_in_string {
        findings.push(Finding::error(
            name,
            "list-in-string",
            format!(
                "`{{{{{var}}}}}` is a list; it must be a whole JSON string of its own to become an array"
            ),
        ));
    }
    for var in &expander.empty {
        findings.push(Finding::error(
            name,
            "empty-list",
            format!("`{{{{{var}}}}}` is empty here, and IAM refuses an empty list"),
        ));
    }
    if let Some(problem) = shape_problem(&rendered) {
        findings.push(Finding::error(name, "shape", problem));
    }
    let document = rendered.to_string();
    let bytes = document.len();
    if bytes > max_bytes {
        findings.push(Finding::error(
            name,
            "size",
            format!(
                "{bytes} bytes minified, over the limit of {max_bytes} bytes by {}",
                bytes - max_bytes
            ),
        ));
    } else if bytes * 10 > max_bytes * 9 {
        findings.push(Finding::warning(
            name,
            "size",
            format!("{bytes} of {max_bytes} bytes minified, over 90% of the limit"),
        ));
    }
    Outcome {
        document: Some(document),
        findings,
    }
}

/// What makes a rendered document not an SCP, if anything.
fn shape_problem(document: &Value) -> Option<String> {
    let Some(object) = document.as_object() else {
        return Some("the policy must be a JSON object".to_owned());
    };
    if object.get("Version").and_then(Value::as_str) != Some("2012-10-17") {
        return Some("`Version` must be \"2012-10-17\"".to_owned());
    }
    let statements = match object.get("Statement") {
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect::<Vec<_>>(),
        Some(item @ Value::Object(_)) => vec![item],
        _ => return Some("`Statement` must be a statement or a non-empty list of them".to_owned()),
    };
    for (n, statement) in statements.iter().enumerate() {
        let effect = statement.get("Effect").and_then(Value::as_str);
        if !matches!(effect, Some("Allow" | "Deny")) {
            return Some(format!(
                "statement {} needs `Effect` \"Allow\" or \"Deny\"",
                n + 1
            ));
        }
        let has = |key: &str| statement.get(key).is_some();
        if has("Action") == has("NotAction") {
            return Some(format!(
                "statement {} needs exactly one of `Action` and `NotAction`",
                n + 1
            ));
        }
        if has("Resource") == has("NotResource") {
            return Some(format!(
                "statement {} needs exactly one of `Resource` and `NotResource`",
                n + 1
            ));
        }
    }
    None
}

/// Expands placeholders in a JSON tree, noting what it cannot expand.
struct Expander<'a> {
    vars: &'a Variables,
    unknown: BTreeSet<String>,
    list_in_string: BTreeSet<String>,
    empty: BTreeSet<String>,
}

impl Expander<'_> {
    fn value(&mut self, value: Value) -> Value {
        match value {
            Value::String(text) => self.whole_string(text),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let spliced = matches!(&item, Value::String(s) if self.list_name(s).is_some());
                    match self.value(item) {
                        Value::Array(inner) if spliced => out.extend(inner),
                        other => out.push(other),
                    }
                }
                Value::Array(out)
            }
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(key, value)| (self.inside_string(&key), self.value(value)))
                    .collect(),
            ),
            other => other,
        }
    }

    /// The list variable `text` is exactly a placeholder of, if any.
    fn list_name(&self, text: &str) -> Option<&'static str> {
        let name = sole_placeholder(text)?;
        self.vars
            .values
            .get_key_value(name)
            .and_then(|(key, value)| matches!(value, VarValue::List(_)).then_some(*key))
    }

    fn whole_string(&mut self, text: String) -> Value {
        if let Some(name) = sole_placeholder(&text)
            && let Some(VarValue::List(items)) = self.vars.values.get(name)
        {
            if items.is_empty() {
                self.empty.insert(name.to_owned());
            }
            return Value::Array(items.iter().cloned().map(Value::String).collect());
        }
        Value::String(self.inside_string(&text))
    }

    fn inside_string(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            let Some(len) = rest[start + 2..].find("}}") else {
                break;
            };
            out.push_str(&rest[..start]);
            let raw = &rest[start..start + 2 + len + 2];
            let name = rest[start + 2..start + 2 + len].trim();
            match self.vars.values.get(name) {
                Some(VarValue::One(value)) => out.push_str(value),
                Some(VarValue::List(_)) => {
                    self.list_in_string.insert(name.to_owned());
                    out.push_str(raw);
                }
                None => {
                    self.unknown.insert(name.to_owned());
                    out.push_str(raw);
                }
            }
            rest = &rest[start + 2 + len + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// The variable name when `text` is exactly one placeholder, `{{name}}`.
fn sole_placeholder(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner.trim())
}

// === Output ===

fn write_err(err: &std::io::Error) -> CliError {
    CliError::io(format!("cannot write the output: {err}"))
}

fn render_command(
    rendered: &BTreeMap<String, RenderedScp>,
    dir: Option<&Path>,
    output: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut files = BTreeMap::new();
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::io(format!("cannot create {}: {e}", dir.display())))?;
        for scp in rendered.values() {
            let path = dir.join(format!("{}.json", scp.policy_name));
            std::fs::write(&path, &scp.document)
                .map_err(|e| CliError::io(format!("cannot write {}: {e}", path.display())))?;
            files.insert(scp.template.clone(), path);
        }
    }
    match output {
        Output::Json => {
            let policies: Vec<Value> = rendered
                .values()
                .map(|scp| {
                    let document: Value =
                        serde_json::from_str(&scp.document).unwrap_or(Value::Null);
                    json!({
                        "template": scp.template,
                        "policy_name": scp.policy_name,
                        "description": scp.description,
                        "bytes": scp.document.len(),
                        "file": files.get(&scp.template).map(|p| p.display().to_string()),
                        "document": document,
                    })
                })
                .collect();
            writeln!(out, "{}", json!({ "policies": policies })).map_err(|e| write_err(&e))?;
        }
        Output::Text => {
            if rendered.is_empty() {
                writeln!(out, "the org file attaches no SCPs").map_err(|e| write_err(&e))?;
                return Ok(());
            }
            let width = rendered
                .values()
                .map(|s| s.policy_name.len())
                .max()
                .unwrap_or(0)
                .max("POLICY".len());
            writeln!(out, "{:<width$}  {:>5}  DESCRIPTION", "POLICY", "BYTES")
                .map_err(|e| write_err(&e))?;
            for scp in rendered.values() {
                writeln!(
                    out,
                    "{:<width$}  {:>5}  {}",
                    scp.policy_name,
                    scp.document.len(),
                    scp.description
                )
                .map_err(|e| write_err(&e))?;
            }
            if dir.is_some() {
                for path in files.values() {
                    writeln!(out, "wrote {}", path.display()).map_err(|e| write_err(&e))?;
                }
            } else {
                for scp in rendered.values() {
                    let pretty = serde_json::from_str::<Value>(&scp.document)
                        .ok()
                        .and_then(|v| serde_json::to_string_pretty(&v).ok())
                        .unwrap_or_else(|| scp.document.clone());
                    writeln!(out, "\n# {}\n{pretty}", scp.policy_name)
                        .map_err(|e| write_err(&e))?;
                }
            }
        }
    }
    Ok(())
}

fn lint_command(findings: &[Finding], output: Output, out: &mut dyn Write) -> Result<(), CliError> {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    match output {
        Output::Json => {
            let document = json!({ "findings": findings, "errors": errors, "warnings": warnings });
            writeln!(out, "{document}").map_err(|e| write_err(&e))?;
        }
        Output::Text => {
            if findings.is_empty() {
                writeln!(out, "no findings").map_err(|e| write_err(&e))?;
            } else {
                let subject_width = findings
                    .iter()
                    .map(|f| f.subject.len())
                    .max()
                    .unwrap_or(0)
                    .max("SUBJECT".len());
                let rule_width = findings
                    .iter()
                    .map(|f| f.rule.len())
                    .max()
                    .unwrap_or(0)
                    .max("RULE".len());
                writeln!(
                    out,
                    "{:<8} {:<subject_width$}  {:<rule_width$}  MESSAGE",
                    "SEVERITY", "SUBJECT", "RULE"
                )
                .map_err(|e| write_err(&e))?;
                for f in findings {
                    writeln!(
                        out,
                        "{:<8} {:<subject_width$}  {:<rule_width$}  {}",
                        f.severity.as_str(),
                        f.subject,
                        f.rule,
                        f.message
                    )
                    .map_err(|e| write_err(&e))?;
                }
            }
        }
    }
    if errors > 0 {
        return Err(CliError {
            exit: CliExit::LintFailed,
            message: format!("scp lint found {errors} errors and {warnings} warnings"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
