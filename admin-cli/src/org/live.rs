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

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt, TryStreamExt};

use super::admin::{Fault, InAccount, OrgAdmin, OrgError, RegistryItem};
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
pub async fn read(
    admin: &dyn OrgAdmin,
    file: &OrgFile,
    options: ReadOptions,
) -> Result<Live, OrgError> {
    let organization = admin.organization().await?;
    let mut live = Live {
        organization_id: organization.id,
        management_account: organization.management_account,
        ..Live::default()
    };
    let root = admin.root().await?;
    live.root_id = root.id;
    live.scp_enabled = root.scp_enabled;
    read_tree(admin, &mut live, options.concurrency).await?;
    read_policies(admin, file, &mut live, options.concurrency).await?;
    if options.hub_side {
        read_hub_side(admin, file, &mut live).await?;
    }
    read_spokes(admin, file, &mut live, options).await?;
    Ok(live)
}

/// The OU tree and the accounts in it, one level at a time.
async fn read_tree(
    admin: &dyn OrgAdmin,
    live: &mut Live,
    concurrency: usize,
) -> Result<(), OrgError> {
    live.ous.insert(Vec::new(), live.root_id.clone());
    let mut level: Vec<(OuPath, String)> = vec![(Vec::new(), live.root_id.clone())];
    while !level.is_empty() {
        let results: Vec<_> = stream::iter(level.iter().cloned())
            .map(|(path, id)| async move {
                let ous = admin.ous_under(&id).await?;
                let accounts = admin.accounts_under(&id).await?;
                Ok::<_, OrgError>((path, ous, accounts))
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await?;
        let mut next = Vec::new();
        for (path, ous, accounts) in results {
            for ou in ous {
                let mut child = path.clone();
                child.push(ou.name);
                live.ous.insert(child.clone(), ou.id.clone());
                next.push((child, ou.id));
            }
            for account in accounts {
                live.accounts.insert(
                    account.id.clone(),
                    LiveAccount {
                        id: account.id,
                        name: account.name,
                        email: account.email,
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
    admin: &dyn OrgAdmin,
    file: &OrgFile,
    live: &mut Live,
    concurrency: usize,
) -> Result<(), OrgError> {
    if !live.scp_enabled {
        return Ok(());
    }
    let summaries = admin.scps().await?;
    let policies: Vec<LivePolicy> = stream::iter(summaries)
        .map(|summary| {
            let managed = file.template_of(&summary.name).is_some();
            async move {
                let targets = admin.scp_targets(&summary.id).await?;
                let document = if managed {
                    admin
                        .scp_document(&summary.id)
                        .await?
                        .as_deref()
                        .map(minify)
                } else {
                    None
                };
                Ok::<_, OrgError>(LivePolicy {
                    id: summary.id,
                    name: summary.name,
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
    admin: &dyn OrgAdmin,
    file: &OrgFile,
    live: &mut Live,
    options: ReadOptions,
) -> Result<(), OrgError> {
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
            if let Some(targets) = read_stackset(admin, file).await? {
                live.stackset_exists = true;
                live.stackset_ous = targets.ous;
                live.spoke_stacks = targets.accounts;
            }
        }
        DeploymentMode::AssumeRole => {
            let stack = file.spoke_stack_name();
            let found: Vec<Option<String>> = stream::iter(spokes.iter().chain(&former).cloned())
                .map(|account| {
                    let stack = &stack;
                    let management = &management;
                    async move {
                        let at = InAccount {
                            account: &account,
                            management,
                        };
                        let exists = stack_exists(admin, at, stack).await?;
                        Ok::<_, OrgError>(exists.then_some(account))
                    }
                })
                .buffer_unordered(options.concurrency.max(1))
                .try_collect()
                .await?;
            live.spoke_stacks = found.into_iter().flatten().collect();
        }
    }
    if options.hub_side && !spokes.is_empty() {
        let hub = InAccount {
            account: &file.hub.account,
            management: &management,
        };
        live.registry = read_registry(admin, file, hub, &spokes).await?;
    }
    if options.spoke_roles {
        let roles: Vec<(String, RoleState)> = stream::iter(spokes)
            .map(|account| {
                let management = &management;
                async move {
                    let at = InAccount {
                        account: &account,
                        management,
                    };
                    let state = super::spoke_role::state(admin, file, at).await;
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

/// The hub account's side: which spokes have an invoker stack, and which accounts `org apply` registered.
async fn read_hub_side(
    admin: &dyn OrgAdmin,
    file: &OrgFile,
    live: &mut Live,
) -> Result<(), OrgError> {
    let hub = InAccount {
        account: &file.hub.account,
        management: &live.management_account,
    };
    let prefix = format!("{}-invoker-", file.name_prefix);
    let mut invoker_stacks = BTreeSet::new();
    for stack in admin.stacks(hub).await? {
        if stack.status.is_live()
            && let Some(account) = stack.name.strip_prefix(&prefix)
        {
            invoker_stacks.insert(account.to_owned());
        }
    }
    // No registry table yet: nothing is registered.
    let items = managed_entries(admin, file, hub, Some("pk, account"))
        .await?
        .unwrap_or_default();
    live.invoker_stacks = invoker_stacks;
    live.registered = items
        .iter()
        .filter_map(|item| {
            let account = item.get("account").and_then(|a| a.as_s())?;
            let principal = item.get("pk").and_then(|p| p.as_s())?;
            Some((account.to_owned(), principal.to_owned()))
        })
        .collect();
    Ok(())
}

/// The registry entries `org apply` wrote (`managed_by = causeway-org`), read in the hub account (`hub`),
/// with only the `projection` attributes when given; `None` when the registry table does not exist (no hub
/// yet).
pub async fn managed_entries(
    admin: &dyn OrgAdmin,
    file: &OrgFile,
    hub: InAccount<'_>,
    projection: Option<&str>,
) -> Result<Option<Vec<RegistryItem>>, OrgError> {
    admin
        .managed_registry_items(hub, &file.registry_table(), projection)
        .await
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
pub async fn read_stackset(
    admin: &dyn OrgAdmin,
    file: &OrgFile,
) -> Result<Option<StackSetTargets>, OrgError> {
    let Some(instances) = admin.stack_set_instances(&file.stackset_name()).await? else {
        return Ok(None);
    };
    let mut targets = StackSetTargets::default();
    for instance in instances {
        if let Some(ou) = instance.ou {
            targets.ous.insert(ou);
        }
        if instance.current
            && instance.region.as_deref() == Some(file.hub.region.as_str())
            && let Some(account) = instance.account
        {
            targets.accounts.insert(account);
        }
    }
    Ok(Some(targets))
}

/// Whether a live stack (not deleted, not failed to create) with this name exists in the account.
pub async fn stack_exists(
    admin: &dyn OrgAdmin,
    at: InAccount<'_>,
    name: &str,
) -> Result<bool, OrgError> {
    match admin.stack_status(at, name).await {
        Ok(status) => Ok(status.is_some_and(|s| s.is_live())),
        Err(e) if e.fault() == Fault::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads the registry entries of the spoke accounts (by their invoker principal).
async fn read_registry(
    admin: &dyn OrgAdmin,
    file: &OrgFile,
    hub: InAccount<'_>,
    spokes: &[String],
) -> Result<BTreeMap<String, RegistryEntry>, OrgError> {
    let principals: Vec<String> = spokes
        .iter()
        .map(|account| file.invoker_role_arn(account))
        .collect();
    let mut entries = BTreeMap::new();
    for item in admin
        .registry_items(hub, &file.registry_table(), &principals)
        .await?
    {
        let attributes = super::registry::attributes_as_text(&item);
        if let Some(account) = attributes.get("account") {
            entries.insert(account.clone(), RegistryEntry { attributes });
        }
    }
    Ok(entries)
}
