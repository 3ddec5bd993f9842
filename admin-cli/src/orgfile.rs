//! The declarative org file: the OU tree, the accounts in it, which Causeway SCPs attach where, which
//! accounts are spokes (and so get the spoke role with its permission boundary, an invoker role in the hub
//! and a registry entry), and the hub settings the SCPs are rendered with.
//!
//! Constraints:
//! - YAML (`.yaml`, `.yml`) or TOML (`.toml`); unknown keys are refused with their location, so a typo never
//!   silently drops a guardrail. `causeway org schema` prints the JSON Schema for editor completion.
//! - The file names Causeway SCPs by template name (`policies/scp/<name>.json`); the Organizations policy is
//!   called `<name_prefix>-<name>`. Policies the file does not manage (`FullAWSAccess`, a customer's own) are
//!   never detached or edited; they only count towards the per-target limit.
//! - An account is either existing (`id`) or new (`name` and `email`, created by `org apply`).
//! - In `stackset` mode spokes are deployed per OU (service-managed StackSet with auto-deployment), so an
//!   account-level `spoke` block must sit under an OU that has one; `assume_role` mode deploys per account.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use causeway_contract::classification::DataClassification;

use crate::CliError;

/// The org file's format version this CLI reads.
pub const VERSION: u32 = 1;

/// The whole org file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgFile {
    /// Format version; must be 1.
    pub version: u32,
    /// Prefix of every name Causeway creates (SCPs, StackSet, roles); the same as the hub stack's
    /// `NamePrefix`.
    #[serde(default = "default_prefix")]
    pub name_prefix: String,
    /// Where the hub runs and the names the SCPs protect.
    pub hub: HubSettings,
    /// How spoke roles reach the spoke accounts.
    #[serde(default)]
    pub spoke_deployment: SpokeDeployment,
    /// Organizations quotas, adjustable where AWS has raised them for this Organization.
    #[serde(default)]
    pub limits: Limits,
    /// The organization root: SCPs on the root, and the tree below it.
    pub root: RootSpec,
}

fn default_prefix() -> String {
    "causeway".to_owned()
}

/// The hub account and the resources the SCPs name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HubSettings {
    /// The hub account id (12 digits).
    pub account: String,
    /// The hub's region.
    pub region: String,
    /// Regions where model access is allowed at all (the hub's region and its inference-profile regions).
    pub approved_regions: Vec<String>,
    /// The hub API id (hub stack output `ApiId`), for the spoke invoker roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_id: Option<String>,
    /// The hub API stage (hub stack output `ApiStage`).
    #[serde(default = "default_stage")]
    pub api_stage: String,
    /// The spoke registry table. Default `<prefix>-spoke-registry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_table: Option<String>,
    /// The audit index table. Default `<prefix>-audit-index`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_table: Option<String>,
    /// The audit payload bucket. Default `<prefix>-audit-<hub account>-<hub region>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_bucket: Option<String>,
    /// The Bedrock guardrail every model call must name (its ARN), if the hub uses one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrail_arn: Option<String>,
    /// The model catalog, relative to the org file. Default: the catalog built into this CLI
    /// (`policies/catalog.toml`), the one the hub ships with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<PathBuf>,
}

fn default_stage() -> String {
    "v1".to_owned()
}

/// How the spoke role and its boundary reach spoke accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpokeDeployment {
    /// `stackset` (service-managed StackSet, auto-deployment to OUs) or `assume_role` (a stack created in each
    /// account through its admin role).
    #[serde(default)]
    pub mode: DeploymentMode,
    /// The admin role assumed in member accounts (and in the hub account when it is not the management
    /// account).
    #[serde(default = "default_admin_role")]
    pub admin_role: String,
    /// The agent's trusted service in spoke accounts (`ecs-tasks.amazonaws.com`, `ec2.amazonaws.com`,
    /// `lambda.amazonaws.com`).
    #[serde(default = "default_trusted_service")]
    pub agent_trusted_service: String,
}

impl Default for SpokeDeployment {
    fn default() -> Self {
        Self {
            mode: DeploymentMode::default(),
            admin_role: default_admin_role(),
            agent_trusted_service: default_trusted_service(),
        }
    }
}

fn default_admin_role() -> String {
    "OrganizationAccountAccessRole".to_owned()
}

fn default_trusted_service() -> String {
    "ecs-tasks.amazonaws.com".to_owned()
}

/// Spoke deployment mode.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum DeploymentMode {
    /// A service-managed StackSet with auto-deployment to the OUs that have a `spoke` block.
    #[default]
    Stackset,
    /// A stack per spoke account, created through the account's admin role.
    AssumeRole,
}

/// Organizations quotas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest SCP document, in bytes of minified JSON (Organizations: 5,120).
    #[serde(default = "default_scp_bytes")]
    pub scp_max_bytes: usize,
    /// Most SCPs attached to one root, OU or account, counting those Causeway does not manage
    /// (Organizations: 5).
    #[serde(default = "default_scps_per_target")]
    pub scps_per_target: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            scp_max_bytes: default_scp_bytes(),
            scps_per_target: default_scps_per_target(),
        }
    }
}

fn default_scp_bytes() -> usize {
    5120
}

fn default_scps_per_target() -> usize {
    5
}

/// The organization root.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RootSpec {
    /// Causeway SCPs attached to the root (template names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scps: Vec<String>,
    /// Accounts directly under the root (the management account usually).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountSpec>,
    /// Top-level OUs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ous: Vec<OuSpec>,
}

/// An organizational unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OuSpec {
    /// The OU's name, unique among its siblings.
    pub name: String,
    /// Causeway SCPs attached to this OU (template names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scps: Vec<String>,
    /// Every account in this OU and below is a spoke with these settings (accounts may override them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spoke: Option<SpokeSettings>,
    /// Accounts directly in this OU.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountSpec>,
    /// Child OUs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ous: Vec<OuSpec>,
}

/// An account: existing (`id`) or to be created (`name` and `email`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// The account id (12 digits); absent for an account `org apply` creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The account name.
    pub name: String,
    /// The root user's e-mail; required to create the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Causeway SCPs attached to this account (template names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scps: Vec<String>,
    /// Spoke settings; the account's OU settings apply when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spoke: Option<SpokeSettings>,
}

/// A spoke's settings, written to the hub's spoke registry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpokeSettings {
    /// The owning team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Applications that may call the hub from this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applications: Option<Vec<String>>,
    /// Model aliases this spoke may use (catalog aliases); empty means every model its policies allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<Vec<String>>,
    /// Budgets recorded with the spoke.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budgets: Option<SpokeBudgets>,
    /// `active` (default) or `suspended`: a suspended spoke is refused by the hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended: Option<bool>,
    /// The floor of the data classification of the spoke's calls (`public`, `internal`, `confidential`,
    /// `restricted`); a caller may raise it, never lower it. Absent: the hub's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_classification: Option<String>,
    /// An application's own floor, where it differs from the spoke's (`{ claims-triage: restricted }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_classifications: Option<BTreeMap<String, String>>,
}

impl SpokeSettings {
    /// These settings with `base`'s where these have none.
    fn over(&self, base: &Self) -> Self {
        Self {
            team: self.team.clone().or_else(|| base.team.clone()),
            applications: self
                .applications
                .clone()
                .or_else(|| base.applications.clone()),
            allowed_models: self
                .allowed_models
                .clone()
                .or_else(|| base.allowed_models.clone()),
            budgets: self.budgets.clone().or_else(|| base.budgets.clone()),
            suspended: self.suspended.or(base.suspended),
            data_classification: self
                .data_classification
                .clone()
                .or_else(|| base.data_classification.clone()),
            application_classifications: self
                .application_classifications
                .clone()
                .or_else(|| base.application_classifications.clone()),
        }
    }

    /// Refuses a classification the hub would refuse (so the spoke's calls would all fail), and an
    /// application floor for an application the spoke does not list.
    fn validate_classifications(&self, at: &str) -> Result<(), String> {
        let known = |class: &str| DataClassification::NAMES.contains(&class);
        let choices = || DataClassification::choices();
        if let Some(class) = self.data_classification.as_deref().filter(|c| !known(c)) {
            return Err(format!(
                "{at}: `spoke.data_classification` `{class}` must be one of {}",
                choices()
            ));
        }
        let applications = self.applications.as_deref().unwrap_or_default();
        for (application, class) in self.application_classifications.iter().flatten() {
            if !applications.contains(application) {
                return Err(format!(
                    "{at}: `spoke.application_classifications` names `{application}`, which is not in `spoke.applications`"
                ));
            }
            if !known(class) {
                return Err(format!(
                    "{at}: `spoke.application_classifications.{application}` `{class}` must be one of {}",
                    choices()
                ));
            }
        }
        Ok(())
    }
}

/// A spoke's budgets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpokeBudgets {
    /// Requests per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_day: Option<u64>,
    /// Tokens per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<u64>,
    /// Cost per month in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd_per_month: Option<f64>,
}

/// An OU path from the root: `Root/Workloads/Prod` is `["Workloads", "Prod"]`; the root is empty.
pub type OuPath = Vec<String>;

/// Renders an OU path for people.
pub fn show_path(path: &[String]) -> String {
    if path.is_empty() {
        "Root".to_owned()
    } else {
        format!("Root/{}", path.join("/"))
    }
}

/// One account as the file wants it, with its place and effective settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredAccount {
    /// The account id, if it exists.
    pub id: Option<String>,
    /// The name.
    pub name: String,
    /// The e-mail (for creation).
    pub email: Option<String>,
    /// The OU path it must be in.
    pub ou: OuPath,
    /// Causeway SCPs attached to the account itself.
    pub scps: BTreeSet<String>,
    /// Effective spoke settings, if the account is a spoke.
    pub spoke: Option<SpokeSettings>,
}

/// One OU as the file wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredOu {
    /// Its path (empty for the root).
    pub path: OuPath,
    /// Causeway SCPs attached to it.
    pub scps: BTreeSet<String>,
    /// Whether it deploys spokes to every account below it (stackset mode targets it).
    pub spoke_target: bool,
}

/// The file flattened: OUs in creation order (parents first), accounts in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// The root and every OU, parents before children.
    pub ous: Vec<DesiredOu>,
    /// Every account.
    pub accounts: Vec<DesiredAccount>,
}

impl OrgFile {
    /// Reads and validates an org file; YAML or TOML by extension.
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::io(format!("cannot read org file {}: {e}", path.display())))?;
        let mut file = Self::parse(&path.display().to_string(), &text)?;
        if let Some(catalog) = &file.hub.catalog
            && catalog.is_relative()
            && let Some(dir) = path.parent()
        {
            file.hub.catalog = Some(dir.join(catalog));
        }
        Ok(file)
    }

    /// Parses and validates org file text; `name` decides the format (`.toml` is TOML, anything else YAML).
    pub fn parse(name: &str, text: &str) -> Result<Self, CliError> {
        let file: Self = if name.ends_with(".toml") {
            toml::from_str(text).map_err(|e| {
                CliError::usage(format!(
                    "{name}: {}",
                    e.to_string().lines().collect::<Vec<_>>().join(" ")
                ))
            })?
        } else {
            serde_saphyr::from_str(text).map_err(|e| {
                CliError::usage(format!(
                    "{name}: {}",
                    e.to_string().lines().collect::<Vec<_>>().join(" ")
                ))
            })?
        };
        file.validate()
            .map_err(|e| CliError::usage(format!("{name}: {e}")))?;
        Ok(file)
    }

    /// The file as YAML (`causeway org init`).
    pub fn to_yaml(&self) -> Result<String, CliError> {
        serde_saphyr::to_string(self)
            .map_err(|e| CliError::usage(format!("cannot write the org file as YAML: {e}")))
    }

    /// The JSON Schema of the org file.
    pub fn schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(OrgFile)).unwrap_or_default()
    }

    fn validate(&self) -> Result<(), String> {
        if self.version != VERSION {
            return Err(format!(
                "`version` is {}, this causeway reads version {VERSION}",
                self.version
            ));
        }
        let prefix_ok = self.name_prefix.len() >= 2
            && self.name_prefix.len() <= 21
            && self
                .name_prefix
                .starts_with(|c: char| c.is_ascii_lowercase())
            && self
                .name_prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !prefix_ok {
            return Err(format!(
                "`name_prefix` {:?} must be 2–21 characters: a lowercase letter, then lowercase letters, digits or `-`",
                self.name_prefix
            ));
        }
        if !is_account_id(&self.hub.account) {
            return Err(format!(
                "`hub.account` {:?} is not a 12-digit account id",
                self.hub.account
            ));
        }
        if self.hub.approved_regions.is_empty() {
            return Err(
                "`hub.approved_regions` is empty: name at least the hub's region".to_owned(),
            );
        }
        if !self.hub.approved_regions.contains(&self.hub.region) {
            return Err(format!(
                "`hub.approved_regions` does not include the hub's region `{}`",
                self.hub.region
            ));
        }
        let desired = self.desired();
        let mut seen_ids = BTreeSet::new();
        let mut seen_names = BTreeSet::new();
        for account in &desired.accounts {
            let at = format!("account `{}` in {}", account.name, show_path(&account.ou));
            if account.name.trim().is_empty() {
                return Err(format!(
                    "an account in {} has an empty name",
                    show_path(&account.ou)
                ));
            }
            match &account.id {
                Some(id) if !is_account_id(id) => {
                    return Err(format!("{at}: `id` {id:?} is not a 12-digit account id"));
                }
                Some(id) => {
                    if !seen_ids.insert(id.clone()) {
                        return Err(format!("account id {id} appears more than once"));
                    }
                }
                None => match &account.email {
                    Some(email) if email.contains('@') => {}
                    Some(email) => {
                        return Err(format!("{at}: `email` {email:?} is not an e-mail address"));
                    }
                    None => {
                        return Err(format!(
                            "{at} has neither `id` (an existing account) nor `email` (to create it)"
                        ));
                    }
                },
            }
            if !seen_names.insert(account.name.clone()) {
                return Err(format!(
                    "account name `{}` appears more than once",
                    account.name
                ));
            }
            if let Some(spoke) = &account.spoke {
                spoke.validate_classifications(&at)?;
            }
            if self.spoke_deployment.mode == DeploymentMode::Stackset
                && account.spoke.is_some()
                && !desired.spoke_target_covers(&account.ou)
            {
                return Err(format!(
                    "{at} has a `spoke` block but no OU above it has one; in `stackset` mode spokes are deployed \
                     per OU (give its OU a `spoke` block, or use `spoke_deployment.mode: assume_role`)"
                ));
            }
        }
        let mut paths = BTreeSet::new();
        for ou in &desired.ous {
            if let Some(name) = ou.path.last()
                && (name.trim().is_empty() || name.len() > 128)
            {
                return Err(format!(
                    "an OU under {} has a name that is empty or longer than 128 characters",
                    show_path(&ou.path[..ou.path.len() - 1])
                ));
            }
            if !paths.insert(ou.path.clone()) {
                return Err(format!("OU {} appears more than once", show_path(&ou.path)));
            }
        }
        Ok(())
    }

    /// The file flattened into OUs and accounts with effective settings.
    pub fn desired(&self) -> Desired {
        let mut desired = Desired {
            ous: vec![DesiredOu {
                path: Vec::new(),
                scps: self.root.scps.iter().cloned().collect(),
                spoke_target: false,
            }],
            accounts: Vec::new(),
        };
        for account in &self.root.accounts {
            desired.accounts.push(desired_account(account, &[], None));
        }
        for ou in &self.root.ous {
            flatten(ou, &[], None, &mut desired);
        }
        desired
    }

    /// The registry table's name.
    pub fn registry_table(&self) -> String {
        self.hub
            .registry_table
            .clone()
            .unwrap_or_else(|| format!("{}-spoke-registry", self.name_prefix))
    }

    /// The audit index table's name.
    pub fn audit_table(&self) -> String {
        self.hub
            .audit_table
            .clone()
            .unwrap_or_else(|| format!("{}-audit-index", self.name_prefix))
    }

    /// The audit bucket's name.
    pub fn audit_bucket(&self) -> String {
        self.hub.audit_bucket.clone().unwrap_or_else(|| {
            format!(
                "{}-audit-{}-{}",
                self.name_prefix, self.hub.account, self.hub.region
            )
        })
    }

    /// The Organizations name of a Causeway SCP template.
    pub fn policy_name(&self, template: &str) -> String {
        format!("{}-{template}", self.name_prefix)
    }

    /// The template name of a Causeway-managed Organizations policy, if `policy_name` is one.
    pub fn template_of<'a>(&self, policy_name: &'a str) -> Option<&'a str> {
        policy_name
            .strip_prefix(&self.name_prefix)
            .and_then(|rest| rest.strip_prefix('-'))
            .filter(|rest| !rest.is_empty())
    }

    /// The spoke StackSet's name.
    pub fn stackset_name(&self) -> String {
        format!("{}-spoke", self.name_prefix)
    }

    /// The name of the per-account spoke stack (`assume_role` mode).
    pub fn spoke_stack_name(&self) -> String {
        format!("{}-spoke", self.name_prefix)
    }

    /// The name of a spoke's invoker stack in the hub account.
    pub fn invoker_stack_name(&self, account: &str) -> String {
        format!("{}-invoker-{account}", self.name_prefix)
    }

    /// The ARN of a spoke's invoker role in the hub account: the principal the registry knows it by.
    pub fn invoker_role_arn(&self, account: &str) -> String {
        format!(
            "arn:aws:iam::{}:role/{}-invoker-{account}",
            self.hub.account, self.name_prefix
        )
    }

    /// The spoke agent role's name in spoke accounts.
    pub fn agent_role_name(&self) -> String {
        format!("{}-agent", self.name_prefix)
    }

    /// The agent permission boundary's name in spoke accounts.
    pub fn boundary_name(&self) -> String {
        format!("{}-agent-boundary", self.name_prefix)
    }

    /// Every target with the Causeway SCPs the file attaches to it, labelled for people (`Root`,
    /// `Root/Workloads`, `account 111122223333 (payments-prod)`).
    pub fn scp_attachments(&self) -> Vec<(String, BTreeSet<String>)> {
        let desired = self.desired();
        let mut out: Vec<(String, BTreeSet<String>)> = desired
            .ous
            .iter()
            .map(|ou| (show_path(&ou.path), ou.scps.clone()))
            .collect();
        out.extend(desired.accounts.iter().map(|a| {
            (
                format!("account {} ({})", a.id.as_deref().unwrap_or("new"), a.name),
                a.scps.clone(),
            )
        }));
        out
    }

    /// Every SCP template name the file uses.
    pub fn scp_templates(&self) -> BTreeSet<String> {
        self.scp_attachments()
            .into_iter()
            .flat_map(|(_, scps)| scps)
            .collect()
    }
}

impl Desired {
    /// Whether an OU at `path` or one above it deploys spokes.
    pub fn spoke_target_covers(&self, path: &[String]) -> bool {
        self.ous
            .iter()
            .any(|ou| ou.spoke_target && path.starts_with(&ou.path))
    }

    /// The desired OU at `path`.
    pub fn ou(&self, path: &[String]) -> Option<&DesiredOu> {
        self.ous.iter().find(|ou| ou.path == path)
    }

    /// Accounts by id (existing accounts only).
    pub fn accounts_by_id(&self) -> BTreeMap<&str, &DesiredAccount> {
        self.accounts
            .iter()
            .filter_map(|a| a.id.as_deref().map(|id| (id, a)))
            .collect()
    }
}

fn desired_account(
    account: &AccountSpec,
    path: &[String],
    inherited: Option<&SpokeSettings>,
) -> DesiredAccount {
    let spoke = match (&account.spoke, inherited) {
        (Some(own), Some(base)) => Some(own.over(base)),
        (Some(own), None) => Some(own.clone()),
        (None, Some(base)) => Some(base.clone()),
        (None, None) => None,
    };
    DesiredAccount {
        id: account.id.clone(),
        name: account.name.clone(),
        email: account.email.clone(),
        ou: path.to_vec(),
        scps: account.scps.iter().cloned().collect(),
        spoke,
    }
}

fn flatten(ou: &OuSpec, parent: &[String], inherited: Option<&SpokeSettings>, out: &mut Desired) {
    let mut path = parent.to_vec();
    path.push(ou.name.clone());
    let spoke = match (&ou.spoke, inherited) {
        (Some(own), Some(base)) => Some(own.over(base)),
        (Some(own), None) => Some(own.clone()),
        (None, base) => base.cloned(),
    };
    out.ous.push(DesiredOu {
        path: path.clone(),
        scps: ou.scps.iter().cloned().collect(),
        spoke_target: ou.spoke.is_some(),
    });
    for account in &ou.accounts {
        out.accounts
            .push(desired_account(account, &path, spoke.as_ref()));
    }
    for child in &ou.ous {
        flatten(child, &path, spoke.as_ref(), out);
    }
}

/// Whether `id` is a 12-digit AWS account id.
pub fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
version: 1
hub:
  account: "111111111111"
  region: us-east-1
  approved_regions: [us-east-1, us-west-2]
root:
  scps: [deny-leave-organization]
  accounts:
    - { id: "000000000000", name: management }
  ous:
    - name: Workloads
      scps: [deny-direct-model-invocation]
      spoke: { team: platform, applications: [chat] }
      ous:
        - name: Prod
          accounts:
            - { id: "222222222222", name: payments-prod, spoke: { team: payments } }
            - { name: claims-prod, email: claims-prod@example.com }
"#;

    #[test]
    fn flattens_the_tree_with_inherited_spoke_settings() {
        let file = OrgFile::parse("org.yaml", SAMPLE).unwrap();
        let desired = file.desired();
        let paths: Vec<String> = desired.ous.iter().map(|o| show_path(&o.path)).collect();
        assert_eq!(paths, ["Root", "Root/Workloads", "Root/Workloads/Prod"]);
        let payments = &desired.accounts[1];
        assert_eq!(payments.ou, ["Workloads", "Prod"]);
        let spoke = payments.spoke.as_ref().unwrap();
        assert_eq!(spoke.team.as_deref(), Some("payments"));
        assert_eq!(
            spoke.applications.as_deref(),
            Some(&["chat".to_owned()][..])
        );
        assert!(desired.accounts[0].spoke.is_none());
        assert!(desired.spoke_target_covers(&["Workloads".into(), "Prod".into()]));
        assert_eq!(
            file.scp_templates().into_iter().collect::<Vec<_>>(),
            ["deny-direct-model-invocation", "deny-leave-organization"]
        );
    }

    #[test]
    fn yaml_and_toml_read_the_same_model() {
        let yaml = OrgFile::parse("org.yaml", SAMPLE).unwrap();
        let toml_text = toml::to_string(&yaml).unwrap();
        assert_eq!(OrgFile::parse("org.toml", &toml_text).unwrap(), yaml);
        let again = OrgFile::parse("org.yaml", &yaml.to_yaml().unwrap()).unwrap();
        assert_eq!(again, yaml);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (
                SAMPLE.replace("approved_regions", "aproved_regions"),
                "aproved_regions",
            ),
            (
                SAMPLE.replace("\"222222222222\"", "\"2222\""),
                "not a 12-digit account id",
            ),
            (
                SAMPLE.replace(", email: claims-prod@example.com", ""),
                "neither `id`",
            ),
            (SAMPLE.replace("version: 1", "version: 2"), "version"),
            (
                SAMPLE.replace("name: claims-prod", "name: payments-prod"),
                "more than once",
            ),
            (
                SAMPLE.replace(
                    "      spoke: { team: platform, applications: [chat] }\n",
                    "",
                ),
                "no OU above it",
            ),
            (
                SAMPLE.replace("[us-east-1, us-west-2]", "[us-west-2]"),
                "does not include the hub's region",
            ),
            (
                SAMPLE.replace(
                    "spoke: { team: payments }",
                    "spoke: { team: payments, data_classification: secret }",
                ),
                "`spoke.data_classification` `secret` must be one of",
            ),
            (
                SAMPLE.replace(
                    "spoke: { team: payments }",
                    "spoke: { team: payments, application_classifications: { fraud: restricted } }",
                ),
                "names `fraud`, which is not in `spoke.applications`",
            ),
        ];
        for (text, expected) in cases {
            let err = OrgFile::parse("org.yaml", &text).unwrap_err();
            assert!(
                err.message.contains(expected),
                "expected {expected:?} in {:?}",
                err.message
            );
            assert_eq!(err.exit, crate::CliExit::Usage);
        }
    }

    #[test]
    fn the_schema_names_every_section() {
        let schema = OrgFile::schema().to_string();
        for key in [
            "name_prefix",
            "approved_regions",
            "spoke_deployment",
            "scps_per_target",
            "allowed_models",
        ] {
            assert!(schema.contains(key), "{key} missing from the schema");
        }
    }

    #[test]
    fn the_committed_schema_and_example_are_current() {
        let committed: serde_json::Value =
            serde_json::from_str(include_str!("../../policies/org.schema.json")).unwrap();
        assert_eq!(
            committed,
            OrgFile::schema(),
            "policies/org.schema.json is stale: `causeway org schema > policies/org.schema.json`"
        );
        let example = OrgFile::parse(
            "org.example.yaml",
            include_str!("../../policies/org.example.yaml"),
        )
        .unwrap();
        assert!(!example.scp_templates().is_empty());
    }

    #[test]
    fn managed_policy_names_round_trip() {
        let file = OrgFile::parse("org.yaml", SAMPLE).unwrap();
        let name = file.policy_name("deny-leave-organization");
        assert_eq!(name, "causeway-deny-leave-organization");
        assert_eq!(file.template_of(&name), Some("deny-leave-organization"));
        assert_eq!(file.template_of("FullAWSAccess"), None);
        assert_eq!(file.template_of("causeway-"), None);
    }
}
