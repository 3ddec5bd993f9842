//! The plan: every change that makes the live Organization match the org file, and nothing else.
//!
//! Constraints:
//! - Only what Causeway manages is changed: OUs and accounts the file names, SCPs named `<prefix>-<template>`,
//!   the spoke stacks, invoker roles and registry entries of the file's spokes, and those of the accounts
//!   `org apply` registered as spokes that the file no longer makes spokes. Other policies are never
//!   detached; other OUs and accounts are only reported (as untracked).
//! - The plan is computed from live state each time, so `org apply` after a failure plans only what is left.
//! - Per-target SCP counts are checked before anything is sent: the live policies Causeway does not manage
//!   plus the file's must fit `limits.scps_per_target` (a new OU or account starts with `FullAWSAccess`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::live::{Live, RoleState};
use super::registry;
use crate::orgfile::{DeploymentMode, Desired, OrgFile, OuPath, show_path};

/// An SCP as the file wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredPolicy {
    /// The Organizations name (`<prefix>-<template>`).
    pub name: String,
    /// The description.
    pub description: String,
    /// The minified document.
    pub document: String,
}

/// Where an SCP attaches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// The root or an OU, by path.
    Ou(OuPath),
    /// An account: its id, or the name of an account this apply creates.
    Account {
        /// The id, when the account exists.
        id: Option<String>,
        /// The name.
        name: String,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ou(path) => f.write_str(&show_path(path)),
            Self::Account { id: Some(id), name } => write!(f, "account {id} ({name})"),
            Self::Account { id: None, name } => write!(f, "new account ({name})"),
        }
    }
}

/// One change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    /// Enable the SCP policy type on the root.
    EnableScps,
    /// Create an OU.
    CreateOu {
        /// The OU's path.
        path: String,
        /// Parent path and name.
        #[serde(skip)]
        parts: OuPath,
    },
    /// Invite an account that is not in the Organization.
    InviteAccount {
        /// The account id.
        account: String,
        /// The account name in the file.
        name: String,
    },
    /// Create an account (and place it in its OU).
    CreateAccount {
        /// The name.
        name: String,
        /// The e-mail.
        email: String,
        /// The OU it goes to.
        ou: String,
        /// The OU's path.
        #[serde(skip)]
        ou_path: OuPath,
    },
    /// Move an account.
    MoveAccount {
        /// The account id.
        account: String,
        /// Its name.
        name: String,
        /// Where it is.
        from: String,
        /// Where the file puts it.
        to: String,
        /// The source path.
        #[serde(skip)]
        from_path: OuPath,
        /// The destination path.
        #[serde(skip)]
        to_path: OuPath,
    },
    /// Create an SCP.
    CreatePolicy {
        /// The policy name.
        policy: String,
        /// The document's size in bytes.
        bytes: usize,
    },
    /// Replace an SCP's document with the rendered one.
    UpdatePolicy {
        /// The policy name.
        policy: String,
        /// The live document's size.
        live_bytes: usize,
        /// The rendered document's size.
        bytes: usize,
    },
    /// Attach an SCP.
    AttachPolicy {
        /// The policy name.
        policy: String,
        /// The target, for people.
        target: String,
        /// The target.
        #[serde(skip)]
        to: Target,
    },
    /// Detach a Causeway SCP from a target the file does not attach it to.
    DetachPolicy {
        /// The policy name.
        policy: String,
        /// The target, for people.
        target: String,
        /// The target id.
        #[serde(skip)]
        target_id: String,
    },
    /// Delete a Causeway SCP the file no longer uses (after it is detached everywhere).
    DeletePolicy {
        /// The policy name.
        policy: String,
    },
    /// Create the spoke StackSet and/or deploy it to OUs (service-managed, auto-deployment).
    DeploySpokeStackSet {
        /// Whether the StackSet must be created first.
        create: bool,
        /// The OUs it deploys to, for people.
        ous: Vec<String>,
        /// Their paths.
        #[serde(skip)]
        paths: Vec<OuPath>,
    },
    /// Create the spoke stack in an account through its admin role.
    DeploySpokeStack {
        /// The account id (or name, for an account this apply creates).
        account: String,
    },
    /// Put the spoke role's permission boundary back.
    RepairBoundary {
        /// The account id.
        account: String,
        /// What is wrong.
        found: String,
    },
    /// Recreate the spoke stack: its role or boundary policy is gone.
    RedeploySpokeStack {
        /// The account id.
        account: String,
        /// What is wrong.
        found: String,
    },
    /// Create the spoke's invoker role stack in the hub account.
    DeployInvoker {
        /// The spoke account id (or name, for an account this apply creates).
        account: String,
    },
    /// Remove the registry entry of an account that is no longer a spoke: the hub then refuses its principal.
    DeregisterSpoke {
        /// The account id.
        account: String,
        /// The principal it is registered under.
        principal: String,
    },
    /// Delete the invoker role stack of an account that is no longer a spoke.
    RemoveInvoker {
        /// The account id.
        account: String,
    },
    /// Delete the spoke stack (the agent role and its permission boundary) of an account that is no longer a
    /// spoke, through the account's admin role (`assume_role` mode).
    RemoveSpokeRole {
        /// The account id.
        account: String,
    },
    /// Write the spoke's registry entry.
    RegisterSpoke {
        /// The spoke account id (or name, for an account this apply creates).
        account: String,
        /// Whether an entry exists and differs.
        update: bool,
        /// The attributes that differ (for an update).
        differs: Vec<String>,
    },
}

impl Change {
    /// The wave a change runs in: every change of a wave may run concurrently; a wave starts when the one
    /// before it is done. OUs are created one depth at a time.
    pub fn wave(&self) -> usize {
        match self {
            Self::EnableScps => 0,
            Self::CreateOu { parts, .. } => parts.len(),
            Self::CreatePolicy { .. } | Self::UpdatePolicy { .. } => 100,
            Self::InviteAccount { .. } | Self::CreateAccount { .. } | Self::MoveAccount { .. } => {
                101
            }
            Self::AttachPolicy { .. } | Self::DetachPolicy { .. } => 102,
            Self::DeletePolicy { .. } => 103,
            Self::DeploySpokeStackSet { .. }
            | Self::DeploySpokeStack { .. }
            | Self::RedeploySpokeStack { .. } => 104,
            Self::RepairBoundary { .. } => 105,
            Self::DeployInvoker { .. } => 106,
            Self::RegisterSpoke { .. } => 107,
            // Access goes first (the hub refuses the account once its entry is gone), then the agent role, and
            // the invoker role last: its stack, named after the account, is how a re-run after a failure still
            // finds a former spoke.
            Self::DeregisterSpoke { .. } => 108,
            Self::RemoveSpokeRole { .. } => 109,
            Self::RemoveInvoker { .. } => 110,
        }
    }

    /// `+` create, `~` change, `-` remove.
    pub fn sign(&self) -> char {
        match self {
            Self::UpdatePolicy { .. }
            | Self::MoveAccount { .. }
            | Self::RepairBoundary { .. }
            | Self::RedeploySpokeStack { .. }
            | Self::RegisterSpoke { update: true, .. } => '~',
            Self::DetachPolicy { .. }
            | Self::DeletePolicy { .. }
            | Self::DeregisterSpoke { .. }
            | Self::RemoveInvoker { .. }
            | Self::RemoveSpokeRole { .. } => '-',
            _ => '+',
        }
    }

    /// What the change does, in a few words.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::EnableScps => "enable SCPs",
            Self::CreateOu { .. } => "create OU",
            Self::InviteAccount { .. } => "invite account",
            Self::CreateAccount { .. } => "create account",
            Self::MoveAccount { .. } => "move account",
            Self::CreatePolicy { .. } => "create SCP",
            Self::UpdatePolicy { .. } => "update SCP",
            Self::AttachPolicy { .. } => "attach SCP",
            Self::DetachPolicy { .. } => "detach SCP",
            Self::DeletePolicy { .. } => "delete SCP",
            Self::DeploySpokeStackSet { .. } => "deploy spoke StackSet",
            Self::DeploySpokeStack { .. } => "deploy spoke role",
            Self::RepairBoundary { .. } => "repair boundary",
            Self::RedeploySpokeStack { .. } => "redeploy spoke role",
            Self::DeployInvoker { .. } => "deploy invoker role",
            Self::RegisterSpoke { update: false, .. } => "register spoke",
            Self::RegisterSpoke { update: true, .. } => "update spoke",
            Self::DeregisterSpoke { .. } => "deregister spoke",
            Self::RemoveInvoker { .. } => "remove invoker role",
            Self::RemoveSpokeRole { .. } => "remove spoke role",
        }
    }

    /// The subject and details, for people.
    pub fn detail(&self) -> String {
        match self {
            Self::EnableScps => "service control policies on the root".to_owned(),
            Self::CreateOu { path, .. } => path.clone(),
            Self::InviteAccount { account, name } => {
                format!(
                    "{account} ({name}): not in the Organization; the invitation must be accepted"
                )
            }
            Self::CreateAccount {
                name, email, ou, ..
            } => format!("{name} <{email}> in {ou}"),
            Self::MoveAccount {
                account,
                name,
                from,
                to,
                ..
            } => format!("{account} ({name}): {from} → {to}"),
            Self::CreatePolicy { policy, bytes } => format!("{policy} ({bytes} bytes)"),
            Self::UpdatePolicy {
                policy,
                live_bytes,
                bytes,
            } => format!(
                "{policy}: the live document differs from the rendered one ({live_bytes} → {bytes} bytes)"
            ),
            Self::AttachPolicy { policy, target, .. } => format!("{policy} → {target}"),
            Self::DetachPolicy { policy, target, .. } => format!("{policy} ✕ {target}"),
            Self::DeletePolicy { policy } => format!("{policy}: no longer in the org file"),
            Self::DeploySpokeStackSet { create, ous, .. } => format!(
                "{}to {}",
                if *create {
                    "create, deploy "
                } else {
                    "deploy "
                },
                ous.join(", ")
            ),
            Self::DeploySpokeStack { account } | Self::DeployInvoker { account } => account.clone(),
            Self::DeregisterSpoke { account, .. }
            | Self::RemoveInvoker { account }
            | Self::RemoveSpokeRole { account } => {
                format!("{account}: no longer a spoke in the org file")
            }
            Self::RepairBoundary { account, found }
            | Self::RedeploySpokeStack { account, found } => format!("{account}: {found}"),
            Self::RegisterSpoke {
                account, differs, ..
            } => {
                if differs.is_empty() {
                    account.clone()
                } else {
                    format!("{account}: {} differ", differs.join(", "))
                }
            }
        }
    }
}

/// The plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// The changes, in the order they run.
    pub changes: Vec<Change>,
    /// OUs and accounts in the Organization that the file does not name (left alone).
    pub untracked: Vec<String>,
}

/// Plans the changes that make `live` match `file`, with `policies` the rendered SCPs by template name.
pub fn plan(
    file: &OrgFile,
    policies: &BTreeMap<String, DesiredPolicy>,
    live: &Live,
) -> Result<Plan, String> {
    let desired = file.desired();
    let mut changes = Vec::new();
    let uses_scps = desired.ous.iter().any(|o| !o.scps.is_empty())
        || desired.accounts.iter().any(|a| !a.scps.is_empty());
    if uses_scps && !live.scp_enabled {
        changes.push(Change::EnableScps);
    }
    for ou in &desired.ous {
        if !ou.path.is_empty() && !live.ous.contains_key(&ou.path) {
            changes.push(Change::CreateOu {
                path: show_path(&ou.path),
                parts: ou.path.clone(),
            });
        }
    }

    // Accounts: where each is (or will be), keyed by the name the plan uses for it.
    let mut account_ids: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut invited = BTreeSet::new();
    for account in &desired.accounts {
        let found = match &account.id {
            Some(id) => live.accounts.get(id),
            None => live.find_account(&account.name, account.email.as_deref()),
        };
        match (found, &account.id) {
            (Some(existing), _) => {
                account_ids.insert(account.name.clone(), Some(existing.id.clone()));
                if existing.parent != account.ou {
                    changes.push(Change::MoveAccount {
                        account: existing.id.clone(),
                        name: account.name.clone(),
                        from: show_path(&existing.parent),
                        to: show_path(&account.ou),
                        from_path: existing.parent.clone(),
                        to_path: account.ou.clone(),
                    });
                }
            }
            (None, Some(id)) => {
                invited.insert(account.name.clone());
                changes.push(Change::InviteAccount {
                    account: id.clone(),
                    name: account.name.clone(),
                });
            }
            (None, None) => {
                account_ids.insert(account.name.clone(), None);
                changes.push(Change::CreateAccount {
                    name: account.name.clone(),
                    email: account.email.clone().unwrap_or_default(),
                    ou: show_path(&account.ou),
                    ou_path: account.ou.clone(),
                });
            }
        }
    }

    // Policies: create or update what the file uses, delete Causeway's that it no longer uses.
    for policy in policies.values() {
        match live.policies.get(&policy.name) {
            None => changes.push(Change::CreatePolicy {
                policy: policy.name.clone(),
                bytes: policy.document.len(),
            }),
            Some(existing) if existing.document.as_deref() != Some(policy.document.as_str()) => {
                changes.push(Change::UpdatePolicy {
                    policy: policy.name.clone(),
                    live_bytes: existing.document.as_deref().map_or(0, str::len),
                    bytes: policy.document.len(),
                });
            }
            Some(_) => {}
        }
    }

    // Attachments: every target the file names, and every live target of a Causeway policy.
    let mut wanted: BTreeMap<Target, BTreeSet<String>> = BTreeMap::new();
    for ou in &desired.ous {
        wanted.insert(
            Target::Ou(ou.path.clone()),
            ou.scps.iter().map(|t| file.policy_name(t)).collect(),
        );
    }
    for account in &desired.accounts {
        if invited.contains(&account.name) {
            continue;
        }
        let id = account_ids.get(&account.name).cloned().flatten();
        wanted.insert(
            Target::Account {
                id,
                name: account.name.clone(),
            },
            account.scps.iter().map(|t| file.policy_name(t)).collect(),
        );
    }
    let mut wanted_ids: BTreeSet<String> = BTreeSet::new();
    for (target, names) in &wanted {
        let target_id = match target {
            Target::Ou(path) => live.ous.get(path).cloned(),
            Target::Account { id, .. } => id.clone(),
        };
        let attached: BTreeSet<&str> = target_id
            .as_deref()
            .map(|id| live.attached_to(id))
            .unwrap_or_default();
        let unmanaged = match &target_id {
            Some(_) => attached
                .iter()
                .filter(|n| file.template_of(n).is_none())
                .count(),
            None => 1,
        };
        if unmanaged + names.len() > file.limits.scps_per_target {
            return Err(format!(
                "{target} would have {} SCPs ({unmanaged} not managed by Causeway + {} from the org file); \
                 Organizations allows {} per target (`limits.scps_per_target`)",
                unmanaged + names.len(),
                names.len(),
                file.limits.scps_per_target
            ));
        }
        for name in names {
            if !attached.contains(name.as_str()) {
                changes.push(Change::AttachPolicy {
                    policy: name.clone(),
                    target: target.to_string(),
                    to: target.clone(),
                });
            }
        }
        if let Some(id) = target_id {
            for name in attached {
                if file.template_of(name).is_some() && !names.contains(name) {
                    changes.push(Change::DetachPolicy {
                        policy: name.to_owned(),
                        target: target.to_string(),
                        target_id: id.clone(),
                    });
                }
            }
            wanted_ids.insert(id);
        }
    }
    let labels = target_labels(live);
    for policy in live.policies.values() {
        if file.template_of(&policy.name).is_none() {
            continue;
        }
        for target in policy.targets.difference(&wanted_ids) {
            changes.push(Change::DetachPolicy {
                policy: policy.name.clone(),
                target: labels
                    .get(target)
                    .cloned()
                    .unwrap_or_else(|| target.clone()),
                target_id: target.clone(),
            });
        }
        if !policies.values().any(|p| p.name == policy.name) {
            changes.push(Change::DeletePolicy {
                policy: policy.name.clone(),
            });
        }
    }

    spoke_changes(file, &desired, live, &account_ids, &mut changes)?;
    // Accounts that were spokes and no longer are: their registry entry, then (in `assume_role` mode) their
    // spoke stack, then their invoker role.
    let spoke_ids: BTreeSet<String> = desired
        .accounts
        .iter()
        .filter(|a| a.spoke.is_some())
        .filter_map(|a| account_ids.get(&a.name).cloned().flatten())
        .collect();
    for (account, principal) in &live.registered {
        if !spoke_ids.contains(account) {
            changes.push(Change::DeregisterSpoke {
                account: account.clone(),
                principal: principal.clone(),
            });
        }
    }
    // The invoker stack goes last: while it is there, a re-run after a failure still finds the former spoke.
    for account in live.invoker_stacks.difference(&spoke_ids) {
        changes.push(Change::RemoveInvoker {
            account: account.clone(),
        });
    }
    remove_spoke_roles(file, live, &spoke_ids, &mut changes);
    changes.sort_by_key(Change::wave);
    Ok(Plan {
        changes,
        untracked: untracked(&desired, live),
    })
}

/// The spoke stacks of former spokes: accounts `org apply` registered, or gave an invoker stack, that the file
/// no longer makes spokes.
///
/// Only in `assume_role` mode, where Causeway created each stack through the account's admin role and so
/// must delete it the same way. In `stackset` mode nothing is planned: the service-managed StackSet is created
/// with auto-deployment and `retain_stacks_on_account_removal(false)`, so CloudFormation deletes the stack
/// instance (and with it the agent role and its boundary) when the account leaves the spoke OUs; an account
/// that stays in a spoke OU keeps its instance, as the StackSet deploys to whole OUs.
fn remove_spoke_roles(
    file: &OrgFile,
    live: &Live,
    spoke_ids: &BTreeSet<String>,
    changes: &mut Vec<Change>,
) {
    if file.spoke_deployment.mode != DeploymentMode::AssumeRole {
        return;
    }
    let former: BTreeSet<&String> = live
        .registered
        .keys()
        .chain(&live.invoker_stacks)
        .filter(|account| !spoke_ids.contains(*account))
        .collect();
    for account in former {
        if live.spoke_stacks.contains(account) {
            changes.push(Change::RemoveSpokeRole {
                account: account.clone(),
            });
        }
    }
}

fn spoke_changes(
    file: &OrgFile,
    desired: &Desired,
    live: &Live,
    account_ids: &BTreeMap<String, Option<String>>,
    changes: &mut Vec<Change>,
) -> Result<(), String> {
    let spokes: Vec<_> = desired
        .accounts
        .iter()
        .filter(|a| a.spoke.is_some() && account_ids.contains_key(&a.name))
        .collect();
    if spokes.is_empty() {
        return Ok(());
    }
    if file.hub.api_id.is_none() {
        return Err(
            "the org file has spokes but no `hub.api_id` (the hub stack's `ApiId` output): the spokes' \
             invoker roles are scoped to it"
                .to_owned(),
        );
    }
    if file.spoke_deployment.mode == DeploymentMode::Stackset {
        let mut paths: BTreeSet<OuPath> = BTreeSet::new();
        // An OU target is deployed when the StackSet lists it, or when every spoke account it holds has a
        // current instance (instances do not always name their OU).
        for ou in desired.ous.iter().filter(|o| o.spoke_target) {
            let listed = live
                .ous
                .get(&ou.path)
                .is_some_and(|id| live.stackset_ous.contains(id));
            let mut held = spokes
                .iter()
                .filter(|a| a.ou.starts_with(&ou.path))
                .map(|a| account_ids.get(&a.name).cloned().flatten())
                .peekable();
            let covered = held.peek().is_some()
                && held.all(|id| id.is_some_and(|id| live.spoke_stacks.contains(&id)));
            if !listed && !covered {
                paths.insert(ou.path.clone());
            }
        }
        for account in &spokes {
            let id = account_ids.get(&account.name).cloned().flatten();
            let missing = id.as_ref().is_none_or(|id| !live.spoke_stacks.contains(id));
            if missing
                && let Some(target) = desired
                    .ous
                    .iter()
                    .filter(|o| o.spoke_target && account.ou.starts_with(&o.path))
                    .max_by_key(|o| o.path.len())
            {
                paths.insert(target.path.clone());
            }
        }
        if !paths.is_empty() || !live.stackset_exists {
            let paths: Vec<OuPath> = paths.into_iter().collect();
            changes.push(Change::DeploySpokeStackSet {
                create: !live.stackset_exists,
                ous: paths.iter().map(|p| show_path(p)).collect(),
                paths,
            });
        }
    }
    for account in spokes {
        let id = account_ids.get(&account.name).cloned().flatten();
        let shown = id.clone().unwrap_or_else(|| account.name.clone());
        let has_stack = id.as_ref().is_some_and(|id| live.spoke_stacks.contains(id));
        if file.spoke_deployment.mode == DeploymentMode::AssumeRole && !has_stack {
            changes.push(Change::DeploySpokeStack {
                account: shown.clone(),
            });
        }
        if has_stack && let Some(id) = &id {
            match live.roles.get(id) {
                Some(RoleState::BoundaryDetached) => changes.push(Change::RepairBoundary {
                    account: id.clone(),
                    found: "the agent role has no permission boundary".to_owned(),
                }),
                Some(RoleState::BoundaryReplaced(arn)) => changes.push(Change::RepairBoundary {
                    account: id.clone(),
                    found: format!("the agent role's boundary is {arn}"),
                }),
                Some(RoleState::Missing) => changes.push(Change::RedeploySpokeStack {
                    account: id.clone(),
                    found: "the agent role is gone".to_owned(),
                }),
                Some(RoleState::BoundaryPolicyMissing) => {
                    changes.push(Change::RedeploySpokeStack {
                        account: id.clone(),
                        found: "the boundary policy is gone".to_owned(),
                    })
                }
                Some(RoleState::Unreadable(why)) => {
                    return Err(format!("cannot read the spoke role in account {id}: {why}"));
                }
                Some(RoleState::Ok) | None => {}
            }
        }
        if id
            .as_ref()
            .is_none_or(|id| !live.invoker_stacks.contains(id))
        {
            changes.push(Change::DeployInvoker {
                account: shown.clone(),
            });
        }
        let spoke = account.spoke.clone().unwrap_or_default();
        let wanted = id
            .as_ref()
            .map(|id| registry::item(file, id, account, &spoke))
            .transpose()?
            .map(|item| registry::attributes_as_text(&item));
        match (id.as_ref().and_then(|id| live.registry.get(id)), wanted) {
            (None, _) | (_, None) => changes.push(Change::RegisterSpoke {
                account: shown,
                update: false,
                differs: Vec::new(),
            }),
            (Some(existing), Some(wanted)) if existing.attributes != wanted => {
                let differs = wanted
                    .keys()
                    .chain(existing.attributes.keys())
                    .filter(|k| wanted.get(*k) != existing.attributes.get(*k))
                    .cloned()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                changes.push(Change::RegisterSpoke {
                    account: shown,
                    update: true,
                    differs,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Target ids to labels for people.
fn target_labels(live: &Live) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = live
        .ous
        .iter()
        .map(|(path, id)| (id.clone(), show_path(path)))
        .collect();
    labels.extend(
        live.accounts
            .values()
            .map(|a| (a.id.clone(), format!("account {} ({})", a.id, a.name))),
    );
    labels
}

/// OUs and accounts the file does not name.
fn untracked(desired: &Desired, live: &Live) -> Vec<String> {
    let paths: BTreeSet<&OuPath> = desired.ous.iter().map(|o| &o.path).collect();
    let mut out: Vec<String> = live
        .ous
        .keys()
        .filter(|p| !paths.contains(p))
        .map(|p| format!("OU {}", show_path(p)))
        .collect();
    for account in live.accounts.values() {
        let named = desired.accounts.iter().any(|a| {
            a.id.as_deref() == Some(account.id.as_str())
                || (a.id.is_none()
                    && a.email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(&account.email)))
        });
        if !named {
            out.push(format!(
                "account {} ({}) in {}",
                account.id,
                account.name,
                show_path(&account.parent)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::live::LiveAccount;
    use crate::orgfile::OrgFile;

    const FORMER: &str = "222222222222";

    /// An org file that names the former spoke as a plain account at the root.
    fn file(mode: &str) -> OrgFile {
        OrgFile::parse(
            "org.yaml",
            &format!(
                "version: 1\n\
                 hub: {{ account: \"111111111111\", region: us-east-1, approved_regions: [us-east-1] }}\n\
                 spoke_deployment: {{ mode: {mode} }}\n\
                 root:\n  accounts:\n    - {{ id: \"{FORMER}\", name: claims-prod }}\n"
            ),
        )
        .unwrap()
    }

    /// The former spoke as `org apply` left it: registered, with its invoker and spoke stacks.
    fn live() -> Live {
        let mut live = Live {
            management_account: "111111111111".to_owned(),
            root_id: "r-root".to_owned(),
            ..Live::default()
        };
        live.ous.insert(Vec::new(), "r-root".to_owned());
        live.accounts.insert(
            FORMER.to_owned(),
            LiveAccount {
                id: FORMER.to_owned(),
                name: "claims-prod".to_owned(),
                email: "claims-prod@example.com".to_owned(),
                parent: Vec::new(),
            },
        );
        live.registered.insert(
            FORMER.to_owned(),
            format!("arn:aws:iam::111111111111:role/causeway-invoker-{FORMER}"),
        );
        live.invoker_stacks.insert(FORMER.to_owned());
        live.spoke_stacks.insert(FORMER.to_owned());
        live
    }

    fn actions(plan: &Plan) -> Vec<(&'static str, char, String)> {
        plan.changes
            .iter()
            .map(|c| (c.verb(), c.sign(), c.detail()))
            .collect()
    }

    #[test]
    fn a_former_spoke_loses_its_entry_then_its_spoke_role_then_its_invoker() {
        let plan = plan(&file("assume_role"), &BTreeMap::new(), &live()).unwrap();
        let gone = format!("{FORMER}: no longer a spoke in the org file");
        assert_eq!(
            actions(&plan),
            [
                ("deregister spoke", '-', gone.clone()),
                ("remove spoke role", '-', gone.clone()),
                ("remove invoker role", '-', gone),
            ]
        );
        assert!(
            plan.changes.windows(2).all(|w| w[0].wave() < w[1].wave()),
            "each waits for the one before"
        );
    }

    #[test]
    fn a_rerun_after_the_entry_went_still_removes_the_roles() {
        // An apply that deregistered the spoke and then failed: the invoker stack still names the account.
        let mut live = live();
        live.registered.clear();
        let plan = plan(&file("assume_role"), &BTreeMap::new(), &live).unwrap();
        assert_eq!(
            plan.changes.iter().map(Change::verb).collect::<Vec<_>>(),
            ["remove spoke role", "remove invoker role"]
        );
    }

    #[test]
    fn a_former_spoke_without_its_stack_has_no_spoke_role_to_remove() {
        let mut live = live();
        live.spoke_stacks.clear();
        let plan = plan(&file("assume_role"), &BTreeMap::new(), &live).unwrap();
        assert!(
            !plan
                .changes
                .iter()
                .any(|c| matches!(c, Change::RemoveSpokeRole { .. })),
            "{plan:?}"
        );
    }

    #[test]
    fn stackset_mode_leaves_the_spoke_role_to_cloudformation() {
        // Even with a current instance listed, the StackSet's auto-deployment removes it, not Causeway.
        let plan = plan(&file("stackset"), &BTreeMap::new(), &live()).unwrap();
        assert_eq!(
            plan.changes.iter().map(Change::verb).collect::<Vec<_>>(),
            ["deregister spoke", "remove invoker role"]
        );
    }

    #[test]
    fn once_offboarded_nothing_is_planned() {
        let mut live = live();
        live.registered.clear();
        live.invoker_stacks.clear();
        live.spoke_stacks.clear();
        let plan = plan(&file("assume_role"), &BTreeMap::new(), &live).unwrap();
        assert!(plan.changes.is_empty(), "{plan:?}");
    }
}
