//! The live Organization, read with as few calls as the APIs allow.
//!
//! Cost, for an organization of `o` OUs, `a` accounts, `p` SCPs with `t` attachments and `s` spokes:
//! `1 + 2(o + 1)` listing calls (OUs and accounts per parent, plus pages of 20), `1 + p` for the policies and
//! their contents (contents only for Causeway's), `p + t/20` for the attachments (listed per policy, not per
//! target), and for spokes: one paged listing of the StackSet's instances or the hub's stacks, `s/100`
//! registry reads, and three calls per spoke account for its role and boundary (assume the admin role,
//! `GetRole`, `GetPolicy`), all with bounded concurrency. In `assume_role` mode the spoke stack is described
//! in each spoke account and in each former spoke (registered, or with an invoker stack, but no longer a spoke)
//! (`DescribeStacks` through the account's admin role), so that a former spoke's stack can be removed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_organizations::types::{PolicyType, PolicyTypeStatus};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::aws::{Aws, sdk_error};
use crate::orgfile::{DeploymentMode, OrgFile, OuPath};

/// One account as Organizations has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveAccount {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
    /// The root user's e-mail.
    pub email: String,
    /// Where it is.
    pub parent: OuPath,
}

/// One SCP as Organizations has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePolicy {
    /// The policy id.
    pub id: String,
    /// The name.
    pub name: String,
    /// The document, minified; read only for Causeway's policies.
    pub document: Option<String>,
    /// The ids of the roots, OUs and accounts it is attached to.
    pub targets: BTreeSet<String>,
}

/// The spoke role in a spoke account, seen through the account's IAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleState {
    /// The role exists with the Causeway boundary attached, and the boundary policy exists.
    Ok,
    /// There is no agent role.
    Missing,
    /// The role exists without a permission boundary.
    BoundaryDetached,
    /// The role's boundary is another policy (its ARN).
    BoundaryReplaced(String),
    /// The boundary policy itself is gone.
    BoundaryPolicyMissing,
    /// The account could not be looked into (the message says why).
    Unreadable(String),
}

/// A spoke's registry entry, as the hub reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    /// Every attribute, rendered as text for comparison (`applications` sorted and comma-joined).
    pub attributes: BTreeMap<String, String>,
}

/// Everything Causeway manages, as it is now.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// The organization id (`o-…`).
    pub organization_id: String,
    /// The management account id.
    pub management_account: String,
    /// The root id.
    pub root_id: String,
    /// Whether the SCP policy type is enabled on the root.
    pub scp_enabled: bool,
    /// OU ids by path (the root under the empty path).
    pub ous: BTreeMap<OuPath, String>,
    /// Accounts by id.
    pub accounts: BTreeMap<String, LiveAccount>,
    /// SCPs by name.
    pub policies: BTreeMap<String, LivePolicy>,
    /// Whether the spoke StackSet exists (`stackset` mode).
    pub stackset_exists: bool,
    /// OU ids the StackSet deploys to, and accounts with a current stack instance.
    pub stackset_ous: BTreeSet<String>,
    /// Spoke accounts with a current spoke stack (an instance of the StackSet, or the per-account stack); in
    /// `assume_role` mode also the former spokes (in `registered` or `invoker_stacks`, no longer spokes in the
    /// file) that still have their per-account stack.
    pub spoke_stacks: BTreeSet<String>,
    /// Spoke accounts whose invoker stack exists in the hub account.
    pub invoker_stacks: BTreeSet<String>,
    /// Registry entries by spoke account.
    pub registry: BTreeMap<String, RegistryEntry>,
    /// Every spoke account `org apply` registered (entries marked `managed_by = causeway-org`), whether or not
    /// the file still names it, with the principal it is registered under.
    pub registered: BTreeMap<String, String>,
    /// The spoke role's state by spoke account (accounts that have a spoke stack).
    pub roles: BTreeMap<String, RoleState>,
}

impl Live {
    /// The SCP names attached to a target id.
    pub fn attached_to(&self, target: &str) -> BTreeSet<&str> {
        self.policies
            .values()
            .filter(|p| p.targets.contains(target))
            .map(|p| p.name.as_str())
            .collect()
    }

    /// The live account with this name or e-mail (how a created account is found again on a re-run).
    pub fn find_account(&self, name: &str, email: Option<&str>) -> Option<&LiveAccount> {
        self.accounts.values().find(|a| {
            email.is_some_and(|e| a.email.eq_ignore_ascii_case(e))
                || (email.is_none() && a.name == name)
        })
    }
}

/// How far to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Look into each spoke account's IAM (role and boundary). Without it, `RoleState` is not read.
    pub spoke_roles: bool,
    /// Read the hub account's side (invoker stacks, registry). `org init` reads the registry itself
    /// ([`managed_entries`]), before its file names any spoke.
    pub hub_side: bool,
}

/// Reads the live Organization and the spoke side of what `file` manages.
pub async fn read(aws: &Aws, file: &OrgFile, options: ReadOptions) -> Result<Live, String> {
    let org = aws.organizations();
    let organization = org
        .describe_organization()
        .send()
        .await
        .map_err(|e| sdk_error("organizations:DescribeOrganization", &e))?;
    let organization = organization
        .organization()
        .ok_or("organizations:DescribeOrganization returned no organization")?;
    let mut live = Live {
        organization_id: organization.id().unwrap_or_default().to_owned(),
        management_account: organization
            .master_account_id()
            .unwrap_or_default()
            .to_owned(),
        ..Live::default()
    };
    let roots = org
        .list_roots()
        .send()
        .await
        .map_err(|e| sdk_error("organizations:ListRoots", &e))?;
    let root = roots
        .roots()
        .first()
        .ok_or("organizations:ListRoots returned no root")?;
    live.root_id = root.id().unwrap_or_default().to_owned();
    live.scp_enabled = root.policy_types().iter().any(|t| {
        t.r#type() == Some(&PolicyType::ServiceControlPolicy)
            && t.status() == Some(&PolicyTypeStatus::Enabled)
    });
    read_tree(aws, &mut live, options.concurrency).await?;
    read_policies(aws, file, &mut live, options.concurrency).await?;
    if options.hub_side {
        read_hub_side(aws, file, &mut live).await?;
    }
    read_spokes(aws, file, &mut live, options).await?;
    Ok(live)
}

/// The OU tree and the accounts in it, one level at a time.
async fn read_tree(aws: &Aws, live: &mut Live, concurrency: usize) -> Result<(), String> {
    let org = aws.organizations();
    live.ous.insert(Vec::new(), live.root_id.clone());
    let mut level: Vec<(OuPath, String)> = vec![(Vec::new(), live.root_id.clone())];
    while !level.is_empty() {
        let results: Vec<_> = stream::iter(level.iter().cloned())
            .map(|(path, id)| {
                let org = org.clone();
                async move {
                    let ous: Vec<_> = org
                        .list_organizational_units_for_parent()
                        .parent_id(&id)
                        .into_paginator()
                        .send()
                        .collect::<Result<Vec<_>, _>>()
                        .await
                        .map_err(|e| {
                            sdk_error("organizations:ListOrganizationalUnitsForParent", &e)
                        })?
                        .into_iter()
                        .flat_map(|page| page.organizational_units.unwrap_or_default())
                        .collect();
                    let accounts: Vec<_> = org
                        .list_accounts_for_parent()
                        .parent_id(&id)
                        .into_paginator()
                        .send()
                        .collect::<Result<Vec<_>, _>>()
                        .await
                        .map_err(|e| sdk_error("organizations:ListAccountsForParent", &e))?
                        .into_iter()
                        .flat_map(|page| page.accounts.unwrap_or_default())
                        .collect();
                    Ok::<_, String>((path, ous, accounts))
                }
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await?;
        let mut next = Vec::new();
        for (path, ous, accounts) in results {
            for ou in ous {
                let mut child = path.clone();
                child.push(ou.name().unwrap_or_default().to_owned());
                let id = ou.id().unwrap_or_default().to_owned();
                live.ous.insert(child.clone(), id.clone());
                next.push((child, id));
            }
            for account in accounts {
                let id = account.id().unwrap_or_default().to_owned();
                live.accounts.insert(
                    id.clone(),
                    LiveAccount {
                        id,
                        name: account.name().unwrap_or_default().to_owned(),
                        email: account.email().unwrap_or_default().to_owned(),
                        parent: path.clone(),
                    },
                );
            }
        }
        level = next;
    }
    Ok(())
}

/// Every SCP with its targets; Causeway's with their documents.
async fn read_policies(
    aws: &Aws,
    file: &OrgFile,
    live: &mut Live,
    concurrency: usize,
) -> Result<(), String> {
    if !live.scp_enabled {
        return Ok(());
    }
    let org = aws.organizations();
    let summaries = org
        .list_policies()
        .filter(PolicyType::ServiceControlPolicy)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| sdk_error("organizations:ListPolicies", &e))?
        .into_iter()
        .flat_map(|page| page.policies.unwrap_or_default())
        .collect::<Vec<_>>();
    let policies: Vec<LivePolicy> = stream::iter(summaries)
        .map(|summary| {
            let org = org.clone();
            let managed = file
                .template_of(summary.name().unwrap_or_default())
                .is_some();
            async move {
                let id = summary.id().unwrap_or_default().to_owned();
                let targets = org
                    .list_targets_for_policy()
                    .policy_id(&id)
                    .into_paginator()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
                    .await
                    .map_err(|e| sdk_error("organizations:ListTargetsForPolicy", &e))?
                    .into_iter()
                    .flat_map(|page| page.targets.unwrap_or_default())
                    .filter_map(|t| t.target_id)
                    .collect();
                let document = if managed {
                    let described = org
                        .describe_policy()
                        .policy_id(&id)
                        .send()
                        .await
                        .map_err(|e| sdk_error("organizations:DescribePolicy", &e))?;
                    described.policy().and_then(|p| p.content()).map(minify)
                } else {
                    None
                };
                Ok::<_, String>(LivePolicy {
                    id,
                    name: summary.name().unwrap_or_default().to_owned(),
                    document,
                    targets,
                })
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    live.policies = policies.into_iter().map(|p| (p.name.clone(), p)).collect();
    Ok(())
}

/// A policy document minified, so that documents compare by meaning of layout (Organizations may return
/// the text as stored); text that is not JSON is kept as it is and so compares unequal.
pub fn minify(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .map_or_else(|_| text.to_owned(), |v| v.to_string())
}

/// The spoke side: stacks, invoker roles, registry entries, and the roles in the spoke accounts.
async fn read_spokes(
    aws: &Aws,
    file: &OrgFile,
    live: &mut Live,
    options: ReadOptions,
) -> Result<(), String> {
    let desired = file.desired();
    let spokes: Vec<String> = desired
        .accounts
        .iter()
        .filter(|a| a.spoke.is_some())
        .filter_map(|a| {
            a.id.clone().or_else(|| {
                live.find_account(&a.name, a.email.as_deref())
                    .map(|l| l.id.clone())
            })
        })
        .filter(|id| live.accounts.contains_key(id))
        .collect();
    // Former spokes (registered, or with an invoker stack, but no longer spokes in the file) still in the
    // Organization, so their admin role is assumable: in `assume_role` mode their stack is Causeway's to remove.
    // In `stackset` mode CloudFormation removes the instance itself when the account leaves the spoke OUs.
    let former: Vec<String> = if file.spoke_deployment.mode == DeploymentMode::AssumeRole {
        let former: BTreeSet<&String> = live
            .registered
            .keys()
            .chain(&live.invoker_stacks)
            .filter(|id| !spokes.contains(id) && live.accounts.contains_key(*id))
            .collect();
        former.into_iter().cloned().collect()
    } else {
        Vec::new()
    };
    if spokes.is_empty() && former.is_empty() {
        return Ok(());
    }
    let management = live.management_account.clone();
    match file.spoke_deployment.mode {
        DeploymentMode::Stackset => {
            if let Some(targets) = read_stackset(aws, file).await? {
                live.stackset_exists = true;
                live.stackset_ous = targets.ous;
                live.spoke_stacks = targets.accounts;
            }
        }
        DeploymentMode::AssumeRole => {
            let stack = file.spoke_stack_name();
            let found: Vec<Option<String>> = stream::iter(spokes.iter().chain(&former).cloned())
                .map(|account| {
                    let stack = stack.clone();
                    let management = management.clone();
                    async move {
                        let session = aws.session(&account, &management).await?;
                        let exists = stack_exists(aws, &session, &stack).await?;
                        Ok::<_, String>(exists.then_some(account))
                    }
                })
                .buffer_unordered(options.concurrency.max(1))
                .try_collect()
                .await?;
            live.spoke_stacks = found.into_iter().flatten().collect();
        }
    }
    if options.hub_side && !spokes.is_empty() {
        let hub = aws.session(&file.hub.account, &management).await?;
        live.registry = read_registry(aws, file, &hub, &spokes).await?;
    }
    if options.spoke_roles {
        let roles: Vec<(String, RoleState)> = stream::iter(spokes)
            .map(|account| {
                let management = management.clone();
                async move {
                    let state = super::spoke_role::state(aws, file, &account, &management).await;
                    (account, state)
                }
            })
            .buffer_unordered(options.concurrency.max(1))
            .collect()
            .await;
        live.roles = roles.into_iter().collect();
    }
    Ok(())
}

fn is_not_found<E: std::error::Error + 'static>(err: &E) -> bool {
    let text = aws_smithy_types::error::display::DisplayErrorContext(err).to_string();
    text.contains("StackSetNotFound") || text.contains("does not exist")
}

/// The hub account's side: which spokes have an invoker stack, and which accounts `org apply` registered.
async fn read_hub_side(aws: &Aws, file: &OrgFile, live: &mut Live) -> Result<(), String> {
    let management = live.management_account.clone();
    let hub = aws.session(&file.hub.account, &management).await?;
    let hub_cfn = aws.cloudformation(&hub);
    let prefix = format!("{}-invoker-", file.name_prefix);
    let summaries = hub_cfn
        .list_stacks()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| sdk_error("cloudformation:ListStacks", &e))?;
    for summary in summaries {
        let alive = summary.stack_status().is_some_and(|s| {
            use aws_sdk_cloudformation::types::StackStatus as S;
            matches!(
                s,
                S::CreateComplete | S::UpdateComplete | S::UpdateRollbackComplete
            )
        });
        if alive && let Some(account) = summary.stack_name().and_then(|n| n.strip_prefix(&prefix)) {
            live.invoker_stacks.insert(account.to_owned());
        }
    }
    // No registry table yet: nothing is registered.
    let items = managed_entries(aws, file, &hub, Some("pk, account"))
        .await?
        .unwrap_or_default();
    live.registered = items
        .iter()
        .filter_map(|item| {
            let account = item.get("account").and_then(|a| a.as_s().ok())?;
            let principal = item.get("pk").and_then(|p| p.as_s().ok())?;
            Some((account.clone(), principal.clone()))
        })
        .collect();
    Ok(())
}

/// The registry entries `org apply` wrote (`managed_by = causeway-org`), read through `hub` (a session in the
/// hub account), with only the `projection` attributes when given; `None` when the registry table does not
/// exist (no hub yet).
pub async fn managed_entries(
    aws: &Aws,
    file: &OrgFile,
    hub: &aws_config::SdkConfig,
    projection: Option<&str>,
) -> Result<Option<Vec<HashMap<String, AttributeValue>>>, String> {
    let pages = aws
        .dynamodb(hub)
        .scan()
        .table_name(file.registry_table())
        .filter_expression("managed_by = :causeway")
        .expression_attribute_values(
            ":causeway",
            AttributeValue::S(super::registry::MANAGED_BY.to_owned()),
        )
        .set_projection_expression(projection.map(str::to_owned))
        .consistent_read(true)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await;
    match pages {
        Ok(items) => Ok(Some(items)),
        Err(e) if format!("{e:?}").contains("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(sdk_error("dynamodb:Scan", &e)),
    }
}

/// What the spoke StackSet deploys, in the hub's region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackSetTargets {
    /// OU ids its instances name.
    pub ous: BTreeSet<String>,
    /// Accounts with a current instance.
    pub accounts: BTreeSet<String>,
}

/// The spoke StackSet's targets, read in the management account; `None` when the StackSet does not exist.
pub async fn read_stackset(aws: &Aws, file: &OrgFile) -> Result<Option<StackSetTargets>, String> {
    let cfn = aws.cloudformation(aws.management());
    let name = file.stackset_name();
    match cfn.describe_stack_set().stack_set_name(&name).send().await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(sdk_error("cloudformation:DescribeStackSet", &e)),
    }
    let instances = cfn
        .list_stack_instances()
        .stack_set_name(&name)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| sdk_error("cloudformation:ListStackInstances", &e))?;
    let mut targets = StackSetTargets::default();
    for instance in instances {
        if let Some(ou) = instance.organizational_unit_id() {
            targets.ous.insert(ou.to_owned());
        }
        let current = instance
            .status()
            .is_some_and(|s| *s == aws_sdk_cloudformation::types::StackInstanceStatus::Current);
        if current
            && instance.region() == Some(file.hub.region.as_str())
            && let Some(account) = instance.account()
        {
            targets.accounts.insert(account.to_owned());
        }
    }
    Ok(Some(targets))
}

/// Whether a live stack (not deleted, not failed to create) with this name exists in the session's account.
pub async fn stack_exists(
    aws: &Aws,
    session: &aws_config::SdkConfig,
    name: &str,
) -> Result<bool, String> {
    let cfn = aws.cloudformation(session);
    match cfn.describe_stacks().stack_name(name).send().await {
        Ok(out) => Ok(out.stacks().iter().any(|s| {
            use aws_sdk_cloudformation::types::StackStatus as S;
            s.stack_status().is_some_and(|st| {
                matches!(
                    st,
                    S::CreateComplete | S::UpdateComplete | S::UpdateRollbackComplete
                )
            })
        })),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(sdk_error("cloudformation:DescribeStacks", &e)),
    }
}

/// Reads the registry entries of the spoke accounts (by their invoker principal), 100 keys per call.
async fn read_registry(
    aws: &Aws,
    file: &OrgFile,
    hub: &aws_config::SdkConfig,
    spokes: &[String],
) -> Result<BTreeMap<String, RegistryEntry>, String> {
    use aws_sdk_dynamodb::types::KeysAndAttributes;
    let dynamodb = aws.dynamodb(hub);
    let table = file.registry_table();
    let mut entries = BTreeMap::new();
    for chunk in spokes.chunks(100) {
        let mut keys: Vec<_> = chunk
            .iter()
            .map(|account| {
                HashMap::from([(
                    "pk".to_owned(),
                    AttributeValue::S(file.invoker_role_arn(account)),
                )])
            })
            .collect();
        while !keys.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut keys)))
                .consistent_read(true)
                .build()
                .map_err(|e| format!("dynamodb:BatchGetItem: {e}"))?;
            let out = dynamodb
                .batch_get_item()
                .request_items(&table, request)
                .send()
                .await
                .map_err(|e| sdk_error("dynamodb:BatchGetItem", &e))?;
            for item in out
                .responses()
                .and_then(|r| r.get(&table))
                .into_iter()
                .flatten()
            {
                let attributes = super::registry::attributes_as_text(item);
                if let Some(account) = attributes.get("account") {
                    entries.insert(account.clone(), RegistryEntry { attributes });
                }
            }
            if let Some(unprocessed) = out.unprocessed_keys().and_then(|u| u.get(&table)) {
                keys = unprocessed.keys().to_vec();
                if !keys.is_empty() {
                    tokio::time::sleep(aws.backoff()).await;
                }
            }
        }
    }
    Ok(entries)
}
