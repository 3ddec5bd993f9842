//! `org apply`: makes a plan's changes, wave by wave, with bounded concurrency inside each wave.
//!
//! Constraints:
//! - Idempotent: every change is planned from live state, so a re-run after a failure makes only what is
//!   left; a change that finds its work already done (an OU or policy that now exists) takes it over.
//! - A wave starts only when the one before it succeeded completely: later waves depend on earlier ones (an
//!   attachment needs its OU and policy). Changes in a failed wave that did succeed stay made.
//! - Slow conditions (a new account not ready, a concurrent Organizations change) are retried with backoff;
//!   throttling is retried by the SDK.
//! - External ids of new invoker roles are written to files (mode 0600) in the secrets directory, never to
//!   the output.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use futures::stream::{self, StreamExt};

use super::admin::{
    AccountCreation, Fault, InAccount, OperationState, OrgAdmin, OrgError, PolicyText,
    StackRequest, StackSetRequest, StackStatus,
};
use super::live::Live;
use super::plan::{Change, DesiredPolicy, Plan, Target};
use super::registry;
use crate::orgfile::{OrgFile, OuPath};

/// The spoke template: the agent role and its permission boundary (with the optional endpoint and DNS
/// Firewall).
pub const SPOKE_TEMPLATE: &str = include_str!("../../../infra/spoke-stackset.yaml");

/// The invoker template: the role in the hub account that a spoke's agent assumes.
pub const INVOKER_TEMPLATE: &str = include_str!("../../../infra/spoke-invoker.yaml");

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Changes in flight at once within a wave.
    pub concurrency: usize,
    /// Where new invoker roles' external ids are written.
    pub secrets_dir: Option<PathBuf>,
}

/// What happened to one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Made; with a note for people (an id, where a secret was written).
    Applied(Option<String>),
    /// Failed with this message.
    Failed(String),
    /// Not attempted: an earlier wave failed.
    Skipped,
}

/// Ids learned from live state and from changes made so far.
#[derive(Debug, Default)]
struct Ids {
    ous: BTreeMap<OuPath, String>,
    accounts: BTreeMap<String, String>,
    policies: BTreeMap<String, String>,
}

/// Everything a change needs.
#[derive(Debug)]
struct Context<'a> {
    admin: &'a dyn OrgAdmin,
    file: &'a OrgFile,
    policies: BTreeMap<String, &'a DesiredPolicy>,
    live: &'a Live,
    ids: Mutex<Ids>,
    options: &'a ApplyOptions,
}

impl Context<'_> {
    /// Calls in `account`, through its admin role.
    fn at<'a>(&'a self, account: &'a str) -> InAccount<'a> {
        InAccount {
            account,
            management: &self.live.management_account,
        }
    }

    /// Calls in the hub account.
    fn hub(&self) -> InAccount<'_> {
        self.at(&self.file.hub.account)
    }

    fn ou_id(&self, path: &[String]) -> Result<String, OrgError> {
        self.ids
            .lock()
            .map_err(|_| OrgError::Poisoned)?
            .ous
            .get(path)
            .cloned()
            .ok_or_else(|| OrgError::OuMissing(crate::orgfile::show_path(path)))
    }

    /// An account id from a plan's account field: an id, or the name of an account created in this run.
    fn account_id(&self, account: &str) -> Result<String, OrgError> {
        if crate::orgfile::is_account_id(account) {
            return Ok(account.to_owned());
        }
        self.ids
            .lock()
            .map_err(|_| OrgError::Poisoned)?
            .accounts
            .get(account)
            .cloned()
            .ok_or_else(|| OrgError::AccountNotCreated(account.to_owned()))
    }

    fn policy_id(&self, name: &str) -> Result<String, OrgError> {
        self.ids
            .lock()
            .map_err(|_| OrgError::Poisoned)?
            .policies
            .get(name)
            .cloned()
            .ok_or_else(|| OrgError::ScpMissing(name.to_owned()))
    }

    fn desired_policy(&self, name: &str) -> Result<PolicyText<'_>, OrgError> {
        let desired = self
            .policies
            .get(name)
            .ok_or_else(|| OrgError::ScpNotRendered(name.to_owned()))?;
        Ok(PolicyText {
            name: &desired.name,
            description: &desired.description,
            document: &desired.document,
        })
    }

    fn remember(&self, update: impl FnOnce(&mut Ids)) {
        if let Ok(mut ids) = self.ids.lock() {
            update(&mut ids);
        }
    }
}

/// Applies `plan`, calling `report` after each change in completion order (for progress and JSON lines).
/// Returns every change with its outcome, in plan order.
pub async fn apply(
    admin: &dyn OrgAdmin,
    file: &OrgFile,
    policies: &BTreeMap<String, DesiredPolicy>,
    live: &Live,
    plan: &Plan,
    options: &ApplyOptions,
    report: &mut dyn FnMut(&Change, &Outcome),
) -> Vec<(Change, Outcome)> {
    let mut ids = Ids {
        ous: live.ous.clone(),
        ..Ids::default()
    };
    for account in live.accounts.values() {
        ids.accounts
            .insert(account.name.clone(), account.id.clone());
    }
    for policy in live.policies.values() {
        ids.policies.insert(policy.name.clone(), policy.id.clone());
    }
    let context = Context {
        admin,
        file,
        policies: policies.values().map(|p| (p.name.clone(), p)).collect(),
        live,
        ids: Mutex::new(ids),
        options,
    };
    let mut waves: BTreeMap<usize, Vec<(usize, &Change)>> = BTreeMap::new();
    for (index, change) in plan.changes.iter().enumerate() {
        waves
            .entry(change.wave())
            .or_default()
            .push((index, change));
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; plan.changes.len()];
    let mut failed = false;
    for wave in waves.into_values() {
        if failed {
            for (index, change) in wave {
                report(change, &Outcome::Skipped);
                outcomes[index] = Some(Outcome::Skipped);
            }
            continue;
        }
        let mut running = stream::iter(wave)
            .map(|(index, change)| {
                let context = &context;
                async move {
                    let outcome = match execute(context, change).await {
                        Ok(note) => Outcome::Applied(note),
                        Err(error) => Outcome::Failed(error.to_string()),
                    };
                    (index, change, outcome)
                }
            })
            .buffer_unordered(options.concurrency.max(1));
        while let Some((index, change, outcome)) = running.next().await {
            failed |= matches!(outcome, Outcome::Failed(_));
            report(change, &outcome);
            outcomes[index] = Some(outcome);
        }
    }
    plan.changes
        .iter()
        .cloned()
        .zip(outcomes.into_iter().map(|o| o.unwrap_or(Outcome::Skipped)))
        .collect()
}

async fn execute(context: &Context<'_>, change: &Change) -> Result<Option<String>, OrgError> {
    let admin = context.admin;
    match change {
        Change::EnableScps => {
            admin.enable_scps(&context.live.root_id).await?;
            Ok(None)
        }
        Change::CreateOu { parts, .. } => {
            let (name, parent) = parts.split_last().ok_or(OrgError::RootNotCreatable)?;
            let parent_id = context.ou_id(parent)?;
            let id = match admin.create_ou(&parent_id, name).await {
                Ok(id) => id,
                // Created by an earlier run whose answer was lost: take it over.
                Err(e) if e.fault() == Fault::AlreadyExists => {
                    find_ou(admin, &parent_id, name).await?
                }
                Err(e) => return Err(e),
            };
            context.remember(|ids| {
                ids.ous.insert(parts.clone(), id.clone());
            });
            Ok(Some(id))
        }
        Change::InviteAccount { account, .. } => {
            let handshake = admin.invite_account(account).await?;
            Ok(Some(format!(
                "invitation {handshake} sent; accept it in account {account}, then run `org apply` again"
            )))
        }
        Change::CreateAccount {
            name,
            email,
            ou_path,
            ..
        } => create_account(context, name, email, ou_path)
            .await
            .map(Some),
        Change::MoveAccount {
            account,
            from_path,
            to_path,
            ..
        } => {
            let from = context.ou_id(from_path)?;
            let to = context.ou_id(to_path)?;
            admin.move_account(account, &from, &to).await?;
            Ok(None)
        }
        Change::CreatePolicy { policy, .. } => {
            let desired = context.desired_policy(policy)?;
            let id = admin.create_scp(desired, &context.file.name_prefix).await?;
            context.remember(|ids| {
                ids.policies.insert(policy.clone(), id.clone());
            });
            Ok(Some(id))
        }
        Change::UpdatePolicy { policy, .. } => {
            let desired = context.desired_policy(policy)?;
            let id = context.policy_id(policy)?;
            admin.update_scp(&id, desired).await?;
            Ok(None)
        }
        Change::AttachPolicy { policy, to, .. } => {
            let policy_id = context.policy_id(policy)?;
            let target_id = match to {
                Target::Ou(path) => context.ou_id(path)?,
                Target::Account { id: Some(id), .. } => id.clone(),
                Target::Account { id: None, name } => context.account_id(name)?,
            };
            match admin.attach_scp(&policy_id, &target_id).await {
                Err(e) if e.fault() != Fault::AlreadyAttached => Err(e),
                _ => Ok(None),
            }
        }
        Change::DetachPolicy {
            policy, target_id, ..
        } => {
            let policy_id = context.policy_id(policy)?;
            match admin.detach_scp(&policy_id, target_id).await {
                Err(e) if e.fault() != Fault::NotAttached => Err(e),
                _ => Ok(None),
            }
        }
        Change::DeletePolicy { policy } => {
            let policy_id = context.policy_id(policy)?;
            admin.delete_scp(&policy_id).await?;
            Ok(None)
        }
        Change::DeploySpokeStackSet { create, paths, .. } => {
            deploy_stackset(context, *create, paths).await.map(Some)
        }
        Change::DeploySpokeStack { account } => {
            let id = context.account_id(account)?;
            deploy_spoke_stack(context, &id).await?;
            Ok(None)
        }
        Change::RedeploySpokeStack { account, .. } => {
            let at = context.at(account);
            admin.enter(at).await?;
            if context.file.spoke_deployment.mode == crate::orgfile::DeploymentMode::Stackset {
                return Err(OrgError::StackSetInstanceDrifted {
                    account: account.clone(),
                    stackset: context.file.stackset_name(),
                    region: context.file.hub.region.clone(),
                });
            }
            let name = context.file.spoke_stack_name();
            admin.delete_stack(at, &name).await?;
            wait_for_stack(context, at, &name, true).await?;
            deploy_spoke_stack(context, account).await?;
            Ok(None)
        }
        Change::RepairBoundary { account, .. } => {
            super::spoke_role::repair_boundary(admin, context.file, context.at(account)).await?;
            Ok(None)
        }
        Change::DeployInvoker { account } => {
            let id = context.account_id(account)?;
            deploy_invoker(context, &id).await.map(Some)
        }
        Change::RegisterSpoke { account, .. } => {
            let id = context.account_id(account)?;
            register(context, &id).await?;
            Ok(None)
        }
        Change::DeregisterSpoke { principal, .. } => {
            let table = context.file.registry_table();
            match admin
                .delete_managed_registry_item(context.hub(), &table, principal)
                .await
            {
                // Gone already, or no longer Causeway's: nothing to remove.
                Err(e) if e.fault() != Fault::ConditionFailed => Err(e),
                _ => Ok(None),
            }
        }
        Change::RemoveInvoker { account } => {
            let hub = context.hub();
            let name = context.file.invoker_stack_name(account);
            admin.delete_stack(hub, &name).await?;
            wait_for_stack(context, hub, &name, true).await?;
            Ok(None)
        }
        Change::RemoveSpokeRole { account } => {
            remove_spoke_stack(context, account).await?;
            Ok(None)
        }
    }
}

/// The id of the OU `name` under `parent`, which creating it found already there.
async fn find_ou(admin: &dyn OrgAdmin, parent: &str, name: &str) -> Result<String, OrgError> {
    admin
        .ous_under(parent)
        .await?
        .into_iter()
        .find(|ou| ou.name == name)
        .map(|ou| ou.id)
        .ok_or_else(|| OrgError::OuNotListed {
            name: name.to_owned(),
            parent: parent.to_owned(),
        })
}

/// Creates an account, waits until Organizations reports it, and moves it into its OU.
async fn create_account(
    context: &Context<'_>,
    name: &str,
    email: &str,
    ou_path: &[String],
) -> Result<String, OrgError> {
    let admin = context.admin;
    let request_id = admin.create_account(name, email).await?;
    let mut wait = admin.backoff();
    let account_id = loop {
        match admin.account_creation(&request_id).await? {
            AccountCreation::Succeeded(id) => break id.ok_or(OrgError::NewAccountWithoutId)?,
            AccountCreation::Failed(reason) => {
                return Err(OrgError::AccountCreationFailed {
                    name: name.to_owned(),
                    reason: reason.unwrap_or_else(|| "no reason given".to_owned()),
                });
            }
            AccountCreation::InProgress => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(20));
            }
        }
    };
    context.remember(|ids| {
        ids.accounts.insert(name.to_owned(), account_id.clone());
    });
    if !ou_path.is_empty() {
        let from = context.ou_id(&[])?;
        let to = context.ou_id(ou_path)?;
        admin.move_account(&account_id, &from, &to).await?;
    }
    // A new account is usable when its admin role can be assumed; spoke deployment needs that.
    admin.enter(context.at(&account_id)).await?;
    Ok(account_id)
}

fn spoke_parameters(file: &OrgFile) -> Vec<(String, String)> {
    vec![
        ("HubAccountId".to_owned(), file.hub.account.clone()),
        ("NamePrefix".to_owned(), file.name_prefix.clone()),
        (
            "AgentTrustedService".to_owned(),
            file.spoke_deployment.agent_trusted_service.clone(),
        ),
    ]
}

async fn deploy_stackset(
    context: &Context<'_>,
    create: bool,
    paths: &[OuPath],
) -> Result<String, OrgError> {
    let admin = context.admin;
    let file = context.file;
    let name = file.stackset_name();
    if create {
        let created = admin
            .create_stack_set(StackSetRequest {
                name: &name,
                description: "Causeway spoke: agent role with its permission boundary, optional endpoint \
                              and DNS Firewall",
                template: SPOKE_TEMPLATE,
                parameters: &spoke_parameters(file),
            })
            .await;
        match created {
            Err(e) if e.fault() != Fault::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    if paths.is_empty() {
        return Ok(name);
    }
    let ou_ids = paths
        .iter()
        .map(|p| context.ou_id(p))
        .collect::<Result<Vec<_>, _>>()?;
    let operation_id = admin
        .create_stack_instances(&name, &ou_ids, &file.hub.region)
        .await?;
    let mut wait = admin.backoff();
    loop {
        match admin.stack_set_operation(&name, &operation_id).await? {
            OperationState::Succeeded => return Ok(operation_id),
            OperationState::Ended(status) => {
                return Err(OrgError::StackSetOperationEnded {
                    operation: operation_id,
                    status,
                });
            }
            OperationState::Running => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(20));
            }
        }
    }
}

async fn deploy_spoke_stack(context: &Context<'_>, account: &str) -> Result<(), OrgError> {
    let at = context.at(account);
    let in_account = |e: OrgError| e.in_account(account);
    context.admin.enter(at).await?;
    let name = context.file.spoke_stack_name();
    let created = context
        .admin
        .create_stack(
            at,
            StackRequest {
                name: &name,
                token: &request_token()?,
                template: SPOKE_TEMPLATE,
                parameters: &spoke_parameters(context.file),
            },
        )
        .await;
    match created {
        Err(e) if e.fault() != Fault::AlreadyExists => return Err(in_account(e)),
        _ => {}
    }
    wait_for_stack(context, at, &name, false)
        .await
        .map_err(in_account)
}

/// Deletes the spoke stack (the agent role and its boundary) in a former spoke account through its admin
/// role, as [`deploy_spoke_stack`] created it, and waits until it is gone.
async fn remove_spoke_stack(context: &Context<'_>, account: &str) -> Result<(), OrgError> {
    let at = context.at(account);
    let in_account = |e: OrgError| e.in_account(account);
    context.admin.enter(at).await?;
    let name = context.file.spoke_stack_name();
    context
        .admin
        .delete_stack(at, &name)
        .await
        .map_err(in_account)?;
    wait_for_stack(context, at, &name, true)
        .await
        .map_err(in_account)
}

/// Waits for a stack to finish creating (or deleting, with `gone`).
async fn wait_for_stack(
    context: &Context<'_>,
    at: InAccount<'_>,
    name: &str,
    gone: bool,
) -> Result<(), OrgError> {
    let mut wait = context.admin.backoff();
    loop {
        let status = match context.admin.stack_status(at, name).await {
            Ok(status) => status,
            Err(e) if gone && e.fault() == Fault::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        match status {
            Some(StackStatus::CreateComplete | StackStatus::UpdateComplete) if !gone => {
                return Ok(());
            }
            Some(StackStatus::DeleteComplete) if gone => return Ok(()),
            Some(StackStatus::Failed(status)) => {
                return Err(OrgError::StackEnded {
                    name: name.to_owned(),
                    status,
                });
            }
            _ => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(20));
            }
        }
    }
}

/// `n` random bytes from the system source, hex.
fn random_hex(n: usize) -> Result<String, OrgError> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| OrgError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh external id: 32 random bytes, hex.
fn external_id() -> Result<String, OrgError> {
    random_hex(32)
}

/// A `ClientRequestToken` for `CreateStack`: the SDK's retries of one request then create one stack, never
/// fail on the stack their first attempt created.
fn request_token() -> Result<String, OrgError> {
    Ok(format!("causeway-{}", random_hex(16)?))
}

async fn deploy_invoker(context: &Context<'_>, account: &str) -> Result<String, OrgError> {
    let file = context.file;
    let dir = context.options.secrets_dir.as_ref().ok_or(OrgError::Missing(
        "new invoker roles need `--secrets-dir`: their external ids are written there for the spoke agents",
    ))?;
    let api_id = file
        .hub
        .api_id
        .as_deref()
        .ok_or(OrgError::Missing("`hub.api_id` is not set in the org file"))?;
    let hub = context.hub();
    context.admin.enter(hub).await?;
    let name = file.invoker_stack_name(account);
    let secret = external_id()?;
    let path = dir.join(format!("{account}.external-id"));
    write_secret(&path, &secret)?;
    let parameters = [
        ("SpokeAccountId", account),
        ("ExternalId", &secret),
        ("OrganizationId", &context.live.organization_id),
        ("NamePrefix", &file.name_prefix),
        ("HubApiId", api_id),
        ("HubApiStage", &file.hub.api_stage),
    ]
    .map(|(key, value)| (key.to_owned(), value.to_owned()));
    let created = context
        .admin
        .create_stack(
            hub,
            StackRequest {
                name: &name,
                token: &request_token()?,
                template: INVOKER_TEMPLATE,
                parameters: &parameters,
            },
        )
        .await;
    if let Err(e) = created {
        // Do not leave a secret that no role trusts.
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    wait_for_stack(context, hub, &name, false).await?;
    Ok(format!("external id written to {}", path.display()))
}

fn write_secret(path: &std::path::Path, secret: &str) -> Result<(), OrgError> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(file_error("create", dir))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut handle = options.open(path).map_err(file_error("write", path))?;
    handle
        .write_all(secret.as_bytes())
        .and_then(|()| handle.sync_all())
        .map_err(file_error("write", path))
}

async fn register(context: &Context<'_>, account: &str) -> Result<(), OrgError> {
    let file = context.file;
    let desired = file.desired();
    let entry = desired
        .accounts
        .iter()
        .find(|a| {
            a.id.as_deref() == Some(account)
                || context
                    .ids
                    .lock()
                    .is_ok_and(|ids| ids.accounts.get(&a.name).map(String::as_str) == Some(account))
        })
        .ok_or_else(|| OrgError::NotInOrgFile(account.to_owned()))?;
    let spoke = entry.spoke.clone().unwrap_or_default();
    let item = registry::item(file, account, entry, &spoke).map_err(OrgError::SpokeSettings)?;
    context
        .admin
        .put_registry_item(context.hub(), &file.registry_table(), item)
        .await
}

/// A failed file operation on `path`, for `map_err`.
fn file_error(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> OrgError {
    let path = path.display().to_string();
    move |e| OrgError::File {
        action,
        path,
        message: e.to_string(),
    }
}
