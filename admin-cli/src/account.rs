//! `causeway account create | onboard`: one account at a time, through the same plan and apply as
//! `causeway org apply`, so an account is set up exactly as the org file says and a re-run finishes the job.
//!
//! - `create` makes a new account (CreateAccount), waits with progress until Organizations reports it and its
//!   admin role can be assumed, and places it in its OU. The account must be in the org file (by name and
//!   e-mail), so the file stays the one description of the Organization.
//! - `onboard` brings an account the org file names to what the file says: invites it if it is outside the
//!   Organization (it joins when the invitation is accepted; run `onboard` again then), moves it, attaches its
//!   SCPs, deploys the spoke role with its permission boundary, the hub's invoker role, and registers the spoke.
//!   Organization-wide prerequisites it needs (its OU, the SCP documents, the StackSet's deployment to its OU)
//!   are part of its changes; changes for other accounts are not.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use crate::org::apply::ApplyOptions;
use crate::org::plan::{Change, Target};
use crate::org::{AwsArgs, apply_changes, plan_org, session_for};
use crate::orgfile::{DesiredAccount, OrgFile};
use crate::{CliError, Output};

/// Account commands.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create the org file's new account `--name`, wait until it is usable, and place it in its OU.
    Create {
        /// The org file.
        #[arg(long)]
        org: PathBuf,
        /// The account's name in the org file (an entry with `name` and `email`, no `id`).
        #[arg(long)]
        name: String,
        /// AWS options.
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Bring one account to what the org file says: invite or move it, attach its SCPs, deploy the spoke role
    /// with its boundary and the hub's invoker role, register the spoke.
    Onboard {
        /// The org file.
        #[arg(long)]
        org: PathBuf,
        /// The account id (or, for an account the file creates, its name).
        #[arg(long)]
        account: String,
        /// Where the external id of a new invoker role is written (a 0600 file).
        #[arg(long)]
        secrets_dir: Option<PathBuf>,
        /// AWS options.
        #[command(flatten)]
        aws: AwsArgs,
    },
}

/// Runs an account command with the standard AWS provider chain.
pub fn run(command: AccountCommand, output: Output, out: &mut dyn Write) -> Result<(), CliError> {
    run_with_aws(command, output, out, None)
}

/// Runs an account command starting from `base` (credentials, region, endpoint) when given.
pub fn run_with_aws(
    command: AccountCommand,
    output: Output,
    out: &mut dyn Write,
    base: Option<&aws_config::SdkConfig>,
) -> Result<(), CliError> {
    let (org, wanted, secrets_dir, aws, create) = match command {
        AccountCommand::Create { org, name, aws } => (org, name, None, aws, true),
        AccountCommand::Onboard {
            org,
            account,
            secrets_dir,
            aws,
        } => (org, account, secrets_dir, aws, false),
    };
    let file = OrgFile::load(&org)?;
    let desired = file.desired();
    let entry = find(&desired.accounts, &wanted).ok_or_else(|| {
        CliError::usage(format!(
            "{} does not name account `{wanted}`: add it to the org file first (the file is the one description \
             of the Organization)",
            org.display()
        ))
    })?;
    if create && entry.id.is_some() {
        return Err(CliError::usage(format!(
            "account `{wanted}` already has an id in {}; `account onboard` sets up existing accounts",
            org.display()
        )));
    }
    crate::block_on(async {
        let session = session_for(&aws, &file, base).await;
        let mut planned = plan_org(&session, &file, usize::from(aws.concurrency)).await?;
        let live_id = entry.id.clone().or_else(|| {
            planned
                .live
                .find_account(&entry.name, entry.email.as_deref())
                .map(|a| a.id.clone())
        });
        if create && live_id.is_some() {
            writeln!(
                out,
                "account {} exists already ({}); nothing to create",
                entry.name,
                live_id.as_deref().unwrap_or_default()
            )
            .map_err(crate::org::write_error)?;
            return Ok(());
        }
        // The SCPs the account's OUs and the account itself carry.
        let needed: Vec<String> = desired
            .ous
            .iter()
            .filter(|o| entry.ou.starts_with(&o.path))
            .flat_map(|o| o.scps.iter())
            .chain(entry.scps.iter())
            .map(|t| file.policy_name(t))
            .collect();
        let keep = |change: &Change| concerns(change, entry, live_id.as_deref(), &needed, create);
        planned.plan.changes.retain(keep);
        planned.plan.untracked.clear();
        let options = ApplyOptions {
            concurrency: usize::from(aws.concurrency),
            secrets_dir,
        };
        apply_changes(&session, &file, &planned, &options, output, out).await
    })
}

fn find<'a>(accounts: &'a [DesiredAccount], wanted: &str) -> Option<&'a DesiredAccount> {
    accounts
        .iter()
        .find(|a| a.id.as_deref() == Some(wanted))
        .or_else(|| accounts.iter().find(|a| a.name == wanted))
}

/// Whether a planned change is part of setting up this one account (with `create`, only creating it and
/// what creating needs).
fn concerns(
    change: &Change,
    entry: &DesiredAccount,
    id: Option<&str>,
    needed: &[String],
    create: bool,
) -> bool {
    let this = |account: &str| Some(account) == id || account == entry.name;
    let on_path = |path: &[String]| entry.ou.starts_with(path);
    let needed_policy = |policy: &str| needed.iter().any(|name| name == policy);
    match change {
        Change::EnableScps => true,
        Change::CreateOu { parts, .. } => on_path(parts),
        Change::CreateAccount { name, .. } => *name == entry.name,
        _ if create => false,
        Change::InviteAccount { account, .. } | Change::MoveAccount { account, .. } => {
            this(account)
        }
        Change::CreatePolicy { policy, .. } | Change::UpdatePolicy { policy, .. } => {
            needed_policy(policy)
        }
        Change::AttachPolicy { to, .. } => match to {
            Target::Ou(path) => on_path(path),
            Target::Account { id: target, name } => {
                target.as_deref().is_some_and(this) || *name == entry.name
            }
        },
        Change::DetachPolicy { target, .. } => {
            id.is_some_and(|id| target.starts_with(&format!("account {id} ")))
        }
        Change::DeletePolicy { .. }
        | Change::DeregisterSpoke { .. }
        | Change::RemoveInvoker { .. }
        | Change::RemoveSpokeRole { .. } => false,
        Change::DeploySpokeStackSet { paths, .. } => paths.iter().any(|p| on_path(p)),
        Change::DeploySpokeStack { account }
        | Change::RepairBoundary { account, .. }
        | Change::RedeploySpokeStack { account, .. }
        | Change::DeployInvoker { account }
        | Change::RegisterSpoke { account, .. } => this(account),
    }
}
