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

use aws_sdk_cloudformation::types::{
    AutoDeployment, Capability, DeploymentTargets, Parameter, PermissionModels,
    StackSetOperationPreferences, StackSetOperationStatus, StackStatus,
};
use aws_sdk_organizations::types::PolicyType;
use futures::stream::{self, StreamExt};

use super::aws::{Aws, is_busy, retry, sdk_error};
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
    aws: &'a Aws,
    file: &'a OrgFile,
    policies: BTreeMap<String, &'a DesiredPolicy>,
    live: &'a Live,
    ids: Mutex<Ids>,
    options: &'a ApplyOptions,
}

impl Context<'_> {
    fn ou_id(&self, path: &[String]) -> Result<String, String> {
        self.ids
            .lock()
            .map_err(|_| "internal state poisoned".to_owned())?
            .ous
            .get(path)
            .cloned()
            .ok_or_else(|| format!("OU {} does not exist", crate::orgfile::show_path(path)))
    }

    /// An account id from a plan's account field: an id, or the name of an account created in this run.
    fn account_id(&self, account: &str) -> Result<String, String> {
        if crate::orgfile::is_account_id(account) {
            return Ok(account.to_owned());
        }
        self.ids
            .lock()
            .map_err(|_| "internal state poisoned".to_owned())?
            .accounts
            .get(account)
            .cloned()
            .ok_or_else(|| format!("account `{account}` was not created"))
    }

    fn policy_id(&self, name: &str) -> Result<String, String> {
        self.ids
            .lock()
            .map_err(|_| "internal state poisoned".to_owned())?
            .policies
            .get(name)
            .cloned()
            .ok_or_else(|| format!("SCP {name} does not exist"))
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
    aws: &Aws,
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
        aws,
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
                        Err(message) => Outcome::Failed(message),
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

async fn execute(context: &Context<'_>, change: &Change) -> Result<Option<String>, String> {
    let aws = context.aws;
    let org = aws.organizations();
    match change {
        Change::EnableScps => {
            retry(aws, "organizations:EnablePolicyType", is_busy, || {
                org.enable_policy_type()
                    .root_id(&context.live.root_id)
                    .policy_type(PolicyType::ServiceControlPolicy)
                    .send()
            })
            .await?;
            Ok(None)
        }
        Change::CreateOu { parts, .. } => {
            let (name, parent) = parts.split_last().ok_or("the root cannot be created")?;
            let parent_id = context.ou_id(parent)?;
            let created = retry(
                aws,
                "organizations:CreateOrganizationalUnit",
                is_busy,
                || {
                    org.create_organizational_unit()
                        .parent_id(&parent_id)
                        .name(name)
                        .send()
                },
            )
            .await;
            let id = match created {
                Ok(out) => out
                    .organizational_unit()
                    .and_then(|ou| ou.id())
                    .ok_or("organizations:CreateOrganizationalUnit returned no id")?
                    .to_owned(),
                // Created by an earlier run whose answer was lost: take it over.
                Err(e) if e.contains("DuplicateOrganizationalUnitException") => {
                    find_ou(aws, &parent_id, name).await?
                }
                Err(e) => return Err(e),
            };
            context.remember(|ids| {
                ids.ous.insert(parts.clone(), id.clone());
            });
            Ok(Some(id))
        }
        Change::InviteAccount { account, .. } => {
            use aws_sdk_organizations::types::{HandshakeParty, HandshakePartyType};
            let target = HandshakeParty::builder()
                .id(account)
                .r#type(HandshakePartyType::Account)
                .build()
                .map_err(|e| format!("organizations:InviteAccountToOrganization: {e}"))?;
            let out = retry(
                aws,
                "organizations:InviteAccountToOrganization",
                is_busy,
                || {
                    org.invite_account_to_organization()
                        .target(target.clone())
                        .notes("Causeway onboarding: accept to join the Organization")
                        .send()
                },
            )
            .await?;
            let handshake = out.handshake().and_then(|h| h.id()).unwrap_or_default();
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
            retry(aws, "organizations:MoveAccount", is_busy, || {
                org.move_account()
                    .account_id(account)
                    .source_parent_id(&from)
                    .destination_parent_id(&to)
                    .send()
            })
            .await?;
            Ok(None)
        }
        Change::CreatePolicy { policy, .. } => {
            let desired = context
                .policies
                .get(policy)
                .ok_or_else(|| format!("SCP {policy} was not rendered"))?;
            // The tag marks the SCP as Causeway's: the admin role may manage only SCPs that carry it.
            let tag = aws_sdk_organizations::types::Tag::builder()
                .key(crate::scp::MANAGED_SCP_TAG)
                .value(&context.file.name_prefix)
                .build()
                .map_err(|e| format!("the SCP tag cannot be built: {e}"))?;
            let created = retry(aws, "organizations:CreatePolicy", is_busy, || {
                org.create_policy()
                    .name(&desired.name)
                    .description(&desired.description)
                    .content(&desired.document)
                    .r#type(PolicyType::ServiceControlPolicy)
                    .tags(tag.clone())
                    .send()
            })
            .await?;
            let id = created
                .policy()
                .and_then(|p| p.policy_summary())
                .and_then(|s| s.id())
                .ok_or("organizations:CreatePolicy returned no id")?
                .to_owned();
            context.remember(|ids| {
                ids.policies.insert(policy.clone(), id.clone());
            });
            Ok(Some(id))
        }
        Change::UpdatePolicy { policy, .. } => {
            let desired = context
                .policies
                .get(policy)
                .ok_or_else(|| format!("SCP {policy} was not rendered"))?;
            let id = context.policy_id(policy)?;
            retry(aws, "organizations:UpdatePolicy", is_busy, || {
                org.update_policy()
                    .policy_id(&id)
                    .description(&desired.description)
                    .content(&desired.document)
                    .send()
            })
            .await?;
            Ok(None)
        }
        Change::AttachPolicy { policy, to, .. } => {
            let policy_id = context.policy_id(policy)?;
            let target_id = match to {
                Target::Ou(path) => context.ou_id(path)?,
                Target::Account { id: Some(id), .. } => id.clone(),
                Target::Account { id: None, name } => context.account_id(name)?,
            };
            let attached = retry(aws, "organizations:AttachPolicy", is_busy, || {
                org.attach_policy()
                    .policy_id(&policy_id)
                    .target_id(&target_id)
                    .send()
            })
            .await;
            match attached {
                Err(e) if !e.contains("DuplicatePolicyAttachmentException") => Err(e),
                _ => Ok(None),
            }
        }
        Change::DetachPolicy {
            policy, target_id, ..
        } => {
            let policy_id = context.policy_id(policy)?;
            let detached = retry(aws, "organizations:DetachPolicy", is_busy, || {
                org.detach_policy()
                    .policy_id(&policy_id)
                    .target_id(target_id)
                    .send()
            })
            .await;
            match detached {
                Err(e) if !e.contains("PolicyNotAttachedException") => Err(e),
                _ => Ok(None),
            }
        }
        Change::DeletePolicy { policy } => {
            let policy_id = context.policy_id(policy)?;
            retry(aws, "organizations:DeletePolicy", is_busy, || {
                org.delete_policy().policy_id(&policy_id).send()
            })
            .await?;
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
            let session = context
                .aws
                .session(account, &context.live.management_account)
                .await?;
            let cfn = aws.cloudformation(&session);
            if context.file.spoke_deployment.mode == crate::orgfile::DeploymentMode::Stackset {
                return Err(format!(
                    "the StackSet instance in account {account} no longer matches its resources; delete the \
                     stack instance (`aws cloudformation delete-stack-instances --stack-set-name {} \
                     --deployment-targets OrganizationalUnitIds=<its OU> --regions {}`) and run `org apply` \
                     again",
                    context.file.stackset_name(),
                    context.file.hub.region
                ));
            }
            cfn.delete_stack()
                .stack_name(context.file.spoke_stack_name())
                .send()
                .await
                .map_err(|e| sdk_error("cloudformation:DeleteStack", &e))?;
            wait_for_stack(context, &cfn, &context.file.spoke_stack_name(), true).await?;
            deploy_spoke_stack(context, account).await?;
            Ok(None)
        }
        Change::RepairBoundary { account, .. } => {
            super::spoke_role::repair_boundary(
                aws,
                context.file,
                account,
                &context.live.management_account,
            )
            .await?;
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
            deregister(context, principal).await?;
            Ok(None)
        }
        Change::RemoveInvoker { account } => {
            let hub = context
                .aws
                .session(&context.file.hub.account, &context.live.management_account)
                .await?;
            let cfn = aws.cloudformation(&hub);
            let name = context.file.invoker_stack_name(account);
            cfn.delete_stack()
                .stack_name(&name)
                .send()
                .await
                .map_err(|e| sdk_error("cloudformation:DeleteStack", &e))?;
            wait_for_stack(context, &cfn, &name, true).await?;
            Ok(None)
        }
        Change::RemoveSpokeRole { account } => {
            remove_spoke_stack(context, account).await?;
            Ok(None)
        }
    }
}

async fn find_ou(aws: &Aws, parent: &str, name: &str) -> Result<String, String> {
    let pages = aws
        .organizations()
        .list_organizational_units_for_parent()
        .parent_id(parent)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| sdk_error("organizations:ListOrganizationalUnitsForParent", &e))?;
    pages
        .into_iter()
        .flat_map(|p| p.organizational_units.unwrap_or_default())
        .find(|ou| ou.name() == Some(name))
        .and_then(|ou| ou.id)
        .ok_or_else(|| format!("OU {name} exists but cannot be found under {parent}"))
}

/// Creates an account, waits until Organizations reports it, and moves it into its OU.
async fn create_account(
    context: &Context<'_>,
    name: &str,
    email: &str,
    ou_path: &[String],
) -> Result<String, String> {
    use aws_sdk_organizations::types::CreateAccountState;
    let aws = context.aws;
    let org = aws.organizations();
    let request = retry(aws, "organizations:CreateAccount", is_busy, || {
        org.create_account().account_name(name).email(email).send()
    })
    .await?;
    let request_id = request
        .create_account_status()
        .and_then(|s| s.id())
        .ok_or("organizations:CreateAccount returned no request id")?
        .to_owned();
    let mut wait = aws.backoff();
    let account_id = loop {
        let status = org
            .describe_create_account_status()
            .create_account_request_id(&request_id)
            .send()
            .await
            .map_err(|e| sdk_error("organizations:DescribeCreateAccountStatus", &e))?;
        let status = status
            .create_account_status()
            .ok_or("organizations:DescribeCreateAccountStatus returned no status")?;
        match status.state() {
            Some(CreateAccountState::Succeeded) => {
                break status
                    .account_id()
                    .ok_or("the new account has no id")?
                    .to_owned();
            }
            Some(CreateAccountState::Failed) => {
                return Err(format!(
                    "creating account {name} failed: {}",
                    status
                        .failure_reason()
                        .map_or_else(|| "no reason given".to_owned(), |r| r.as_str().to_owned())
                ));
            }
            _ => {
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
        retry(aws, "organizations:MoveAccount", is_busy, || {
            org.move_account()
                .account_id(&account_id)
                .source_parent_id(&from)
                .destination_parent_id(&to)
                .send()
        })
        .await?;
    }
    // A new account is usable when its admin role can be assumed; spoke deployment needs that.
    context
        .aws
        .session(&account_id, &context.live.management_account)
        .await?;
    Ok(account_id)
}

fn parameter(key: &str, value: &str) -> Parameter {
    Parameter::builder()
        .parameter_key(key)
        .parameter_value(value)
        .build()
}

fn spoke_parameters(file: &OrgFile) -> Vec<Parameter> {
    vec![
        parameter("HubAccountId", &file.hub.account),
        parameter("NamePrefix", &file.name_prefix),
        parameter(
            "AgentTrustedService",
            &file.spoke_deployment.agent_trusted_service,
        ),
    ]
}

async fn deploy_stackset(
    context: &Context<'_>,
    create: bool,
    paths: &[OuPath],
) -> Result<String, String> {
    let aws = context.aws;
    let file = context.file;
    let cfn = aws.cloudformation(aws.management());
    let name = file.stackset_name();
    if create {
        let created = cfn
            .create_stack_set()
            .stack_set_name(&name)
            .description("Causeway spoke: agent role with its permission boundary, optional endpoint and DNS Firewall")
            .template_body(SPOKE_TEMPLATE)
            .set_parameters(Some(spoke_parameters(file)))
            .permission_model(PermissionModels::ServiceManaged)
            .auto_deployment(
                AutoDeployment::builder()
                    .enabled(true)
                    .retain_stacks_on_account_removal(false)
                    .build(),
            )
            .capabilities(Capability::CapabilityNamedIam)
            .send()
            .await;
        if let Err(e) = created {
            let text = sdk_error("cloudformation:CreateStackSet", &e);
            if !text.contains("NameAlreadyExists") && !text.contains("already exists") {
                return Err(text);
            }
        }
    }
    if paths.is_empty() {
        return Ok(name);
    }
    let ou_ids = paths
        .iter()
        .map(|p| context.ou_id(p))
        .collect::<Result<Vec<_>, _>>()?;
    let operation = retry(
        aws,
        "cloudformation:CreateStackInstances",
        |t| t.contains("OperationInProgress"),
        || {
            cfn.create_stack_instances()
                .stack_set_name(&name)
                .deployment_targets(
                    DeploymentTargets::builder()
                        .set_organizational_unit_ids(Some(ou_ids.clone()))
                        .build(),
                )
                .regions(&file.hub.region)
                .operation_preferences(
                    StackSetOperationPreferences::builder()
                        .max_concurrent_percentage(100)
                        .failure_tolerance_percentage(0)
                        .build(),
                )
                .send()
        },
    )
    .await?;
    let operation_id = operation
        .operation_id()
        .ok_or("cloudformation:CreateStackInstances returned no operation id")?
        .to_owned();
    let mut wait = aws.backoff();
    loop {
        let described = cfn
            .describe_stack_set_operation()
            .stack_set_name(&name)
            .operation_id(&operation_id)
            .send()
            .await
            .map_err(|e| sdk_error("cloudformation:DescribeStackSetOperation", &e))?;
        match described.stack_set_operation().and_then(|o| o.status()) {
            Some(StackSetOperationStatus::Succeeded) => return Ok(operation_id),
            Some(status @ (StackSetOperationStatus::Failed | StackSetOperationStatus::Stopped)) => {
                return Err(format!(
                    "StackSet operation {operation_id} ended {}",
                    status.as_str()
                ));
            }
            _ => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(20));
            }
        }
    }
}

async fn deploy_spoke_stack(context: &Context<'_>, account: &str) -> Result<(), String> {
    let session = context
        .aws
        .session(account, &context.live.management_account)
        .await?;
    let cfn = context.aws.cloudformation(&session);
    let name = context.file.spoke_stack_name();
    let created = cfn
        .create_stack()
        .stack_name(&name)
        .client_request_token(request_token()?)
        .template_body(SPOKE_TEMPLATE)
        .set_parameters(Some(spoke_parameters(context.file)))
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await;
    if let Err(e) = created {
        let text = sdk_error("cloudformation:CreateStack", &e);
        if !text.contains("AlreadyExists") {
            return Err(format!("account {account}: {text}"));
        }
    }
    wait_for_stack(context, &cfn, &name, false)
        .await
        .map_err(|e| format!("account {account}: {e}"))
}

/// Deletes the spoke stack (the agent role and its boundary) in a former spoke account through its admin
/// role, as [`deploy_spoke_stack`] created it, and waits until it is gone.
async fn remove_spoke_stack(context: &Context<'_>, account: &str) -> Result<(), String> {
    let session = context
        .aws
        .session(account, &context.live.management_account)
        .await?;
    let cfn = context.aws.cloudformation(&session);
    let name = context.file.spoke_stack_name();
    cfn.delete_stack()
        .stack_name(&name)
        .send()
        .await
        .map_err(|e| {
            format!(
                "account {account}: {}",
                sdk_error("cloudformation:DeleteStack", &e)
            )
        })?;
    wait_for_stack(context, &cfn, &name, true)
        .await
        .map_err(|e| format!("account {account}: {e}"))
}

/// Waits for a stack to finish creating (or deleting, with `gone`).
async fn wait_for_stack(
    context: &Context<'_>,
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
    gone: bool,
) -> Result<(), String> {
    let mut wait = context.aws.backoff();
    loop {
        let described = cfn.describe_stacks().stack_name(name).send().await;
        let status = match described {
            Ok(out) => out.stacks().first().and_then(|s| s.stack_status()).cloned(),
            Err(e) => {
                let text = sdk_error("cloudformation:DescribeStacks", &e);
                if gone && text.contains("does not exist") {
                    return Ok(());
                }
                return Err(text);
            }
        };
        match status {
            Some(StackStatus::CreateComplete | StackStatus::UpdateComplete) if !gone => {
                return Ok(());
            }
            Some(StackStatus::DeleteComplete) if gone => return Ok(()),
            Some(
                s @ (StackStatus::CreateFailed
                | StackStatus::RollbackComplete
                | StackStatus::RollbackFailed
                | StackStatus::DeleteFailed),
            ) => return Err(format!("stack {name} ended {}", s.as_str())),
            _ => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(20));
            }
        }
    }
}

/// `n` random bytes from the system source, hex.
fn random_hex(n: usize) -> Result<String, String> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "the system random source failed".to_owned())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh external id: 32 random bytes, hex.
fn external_id() -> Result<String, String> {
    random_hex(32)
}

/// A `ClientRequestToken` for `CreateStack`: the SDK's retries of one request then create one stack, never
/// fail on the stack their first attempt created.
fn request_token() -> Result<String, String> {
    Ok(format!("causeway-{}", random_hex(16)?))
}

async fn deploy_invoker(context: &Context<'_>, account: &str) -> Result<String, String> {
    let file = context.file;
    let dir = context.options.secrets_dir.as_ref().ok_or(
        "new invoker roles need `--secrets-dir`: their external ids are written there for the spoke agents",
    )?;
    let api_id = file
        .hub
        .api_id
        .as_deref()
        .ok_or("`hub.api_id` is not set in the org file")?;
    let hub = context
        .aws
        .session(&file.hub.account, &context.live.management_account)
        .await?;
    let cfn = context.aws.cloudformation(&hub);
    let name = file.invoker_stack_name(account);
    let secret = external_id()?;
    let path = dir.join(format!("{account}.external-id"));
    write_secret(&path, &secret)?;
    let created = cfn
        .create_stack()
        .stack_name(&name)
        .client_request_token(request_token()?)
        .template_body(INVOKER_TEMPLATE)
        .parameters(parameter("SpokeAccountId", account))
        .parameters(parameter("ExternalId", &secret))
        .parameters(parameter("OrganizationId", &context.live.organization_id))
        .parameters(parameter("NamePrefix", &file.name_prefix))
        .parameters(parameter("HubApiId", api_id))
        .parameters(parameter("HubApiStage", &file.hub.api_stage))
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await;
    if let Err(e) = created {
        // Do not leave a secret that no role trusts.
        let _ = std::fs::remove_file(&path);
        return Err(sdk_error("cloudformation:CreateStack", &e));
    }
    wait_for_stack(context, &cfn, &name, false).await?;
    Ok(format!("external id written to {}", path.display()))
}

fn write_secret(path: &std::path::Path, secret: &str) -> Result<(), String> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut handle = options
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    handle
        .write_all(secret.as_bytes())
        .and_then(|()| handle.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

async fn register(context: &Context<'_>, account: &str) -> Result<(), String> {
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
        .ok_or_else(|| format!("account {account} is not in the org file"))?;
    let spoke = entry.spoke.clone().unwrap_or_default();
    let item = registry::item(file, account, entry, &spoke);
    let hub = context
        .aws
        .session(&file.hub.account, &context.live.management_account)
        .await?;
    let dynamodb: aws_sdk_dynamodb::Client = context.aws.dynamodb(&hub);
    dynamodb
        .put_item()
        .table_name(file.registry_table())
        .set_item(Some(item))
        .send()
        .await
        .map_err(|e| sdk_error("dynamodb:PutItem", &e))?;
    Ok(())
}

/// Removes a registry entry by its principal, only if `org apply` wrote it.
async fn deregister(context: &Context<'_>, principal: &str) -> Result<(), String> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let file = context.file;
    let hub = context
        .aws
        .session(&file.hub.account, &context.live.management_account)
        .await?;
    let dynamodb: aws_sdk_dynamodb::Client = context.aws.dynamodb(&hub);
    let deleted = dynamodb
        .delete_item()
        .table_name(file.registry_table())
        .key("pk", AttributeValue::S(principal.to_owned()))
        .condition_expression("managed_by = :causeway")
        .expression_attribute_values(
            ":causeway",
            AttributeValue::S(registry::MANAGED_BY.to_owned()),
        )
        .send()
        .await;
    match deleted {
        Ok(_) => Ok(()),
        // Gone already, or no longer Causeway's: nothing to remove.
        Err(e) if format!("{e:?}").contains("ConditionalCheckFailed") => Ok(()),
        Err(e) => Err(sdk_error("dynamodb:DeleteItem", &e)),
    }
}
