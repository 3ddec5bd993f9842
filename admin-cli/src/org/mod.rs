//! `causeway org init | plan | apply | drift | schema`: the Organization as code.
//!
//! `plan` prints the exact changes that would make the live Organization match the org file and nothing
//! else; `apply` makes them (idempotently, resumable after a failure); `drift` reports every difference with a
//! non-zero exit code; `init` writes an org file from the live Organization and the hub's spoke registry.
//!
//! Exit codes: 0 nothing to do / applied / no drift, [`CliExit::ChangesPending`] (7) when `plan` has changes,
//! [`CliExit::DriftFound`] (8) when `drift` finds differences, 1 when a change or an AWS call failed, 2 for a
//! bad org file or arguments, 3 when a file cannot be read or written.

pub mod apply;
pub mod aws;
pub mod live;
pub mod plan;
pub mod registry;
pub mod spoke_role;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::json;

use self::apply::{ApplyOptions, Outcome};
use self::aws::Aws;
use self::live::{Live, ReadOptions};
use self::plan::{Change, DesiredPolicy, Plan};
use crate::orgfile::{
    AccountSpec, DeploymentMode, HubSettings, OrgFile, OuSpec, RootSpec, SpokeDeployment,
    SpokeSettings, show_path,
};
use crate::{CliError, CliExit, Output, block_on};

/// The AWS connection options every org command takes.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// The AWS region of the API calls (default: the standard provider chain's).
    #[arg(long)]
    pub region: Option<String>,
    /// An endpoint override for every AWS API (e.g. a local emulator).
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// API calls in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

/// Org commands.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Write an org file from the live Organization (OU tree, accounts, the Causeway SCPs attached) and the
    /// hub's spoke registry (a `spoke` block for every account `org apply` registered).
    Init {
        /// Where to write it (`.yaml` or `.toml`); standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Overwrite `--out` if it exists.
        #[arg(long)]
        force: bool,
        /// The hub account (default: the management account).
        #[arg(long)]
        hub_account: Option<String>,
        /// The hub region (default: `--region` or the provider chain's region).
        #[arg(long)]
        hub_region: Option<String>,
        /// An approved region; repeat for several (default: the hub region).
        #[arg(long = "approved-region")]
        approved_regions: Vec<String>,
        /// The name prefix of Causeway's resources.
        #[arg(long, default_value = "causeway")]
        name_prefix: String,
        /// The hub API id (hub stack output `ApiId`); required when the hub's registry has spokes
        /// `org apply` registered, which the file then keeps.
        #[arg(long)]
        hub_api_id: Option<String>,
        /// The hub API stage (hub stack output `ApiStage`).
        #[arg(long, default_value = "v1")]
        hub_api_stage: String,
        /// The hub's spoke registry table (default: `<name-prefix>-spoke-registry`).
        #[arg(long)]
        registry_table: Option<String>,
        /// How spoke roles are deployed (default: `stackset` when the spoke StackSet exists or no spoke is
        /// registered, `assume_role` otherwise).
        #[arg(long, value_enum)]
        spoke_deployment: Option<DeploymentMode>,
        /// AWS options.
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Print the changes that would make the Organization match the org file. Exits 7 when there are some.
    Plan {
        /// The org file.
        #[arg(long)]
        org: PathBuf,
        /// AWS options.
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Make the planned changes. Safe to re-run: it plans again and finishes what is left.
    Apply {
        /// The org file.
        #[arg(long)]
        org: PathBuf,
        /// Where the external ids of new spoke invoker roles are written (one 0600 file per spoke).
        #[arg(long)]
        secrets_dir: Option<PathBuf>,
        /// AWS options.
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Report every difference between the org file and the live Organization. Exits 8 when there are some.
    Drift {
        /// The org file.
        #[arg(long)]
        org: PathBuf,
        /// AWS options.
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Print the org file's JSON Schema (for editor completion).
    Schema,
}

/// Runs an org command with the standard AWS provider chain.
pub fn run(command: OrgCommand, output: Output, out: &mut dyn Write) -> Result<(), CliError> {
    run_with_aws(command, output, out, None)
}

/// Runs an org command starting from `base` (credentials, region, endpoint) when given.
pub fn run_with_aws(
    command: OrgCommand,
    output: Output,
    out: &mut dyn Write,
    base: Option<&aws_config::SdkConfig>,
) -> Result<(), CliError> {
    match command {
        OrgCommand::Schema => {
            let schema = serde_json::to_string_pretty(&OrgFile::schema())
                .map_err(|e| CliError::usage(format!("cannot print the schema: {e}")))?;
            writeln!(out, "{schema}").map_err(write_error)
        }
        OrgCommand::Plan { org, aws } => block_on(async {
            let file = OrgFile::load(&org)?;
            let session = session_for(&aws, &file, base).await;
            let started = Instant::now();
            let planned = plan_org(&session, &file, usize::from(aws.concurrency)).await?;
            print_plan(
                &org,
                &planned,
                session.calls(),
                started.elapsed(),
                output,
                out,
            )?;
            if planned.plan.changes.is_empty() {
                Ok(())
            } else {
                Err(CliError {
                    exit: CliExit::ChangesPending,
                    message: format!(
                        "{} change(s) pending; `causeway org apply --org {}` makes them",
                        planned.plan.changes.len(),
                        org.display()
                    ),
                })
            }
        }),
        OrgCommand::Apply {
            org,
            secrets_dir,
            aws,
        } => block_on(async {
            let file = OrgFile::load(&org)?;
            let session = session_for(&aws, &file, base).await;
            let options = ApplyOptions {
                concurrency: usize::from(aws.concurrency),
                secrets_dir,
            };
            apply_org(&session, &file, &options, output, out).await
        }),
        OrgCommand::Drift { org, aws } => block_on(async {
            let file = OrgFile::load(&org)?;
            let session = session_for(&aws, &file, base).await;
            let planned = plan_org(&session, &file, usize::from(aws.concurrency)).await?;
            print_drift(&org, &planned, output, out)
        }),
        OrgCommand::Init {
            out: path,
            force,
            hub_account,
            hub_region,
            approved_regions,
            name_prefix,
            hub_api_id,
            hub_api_stage,
            registry_table,
            spoke_deployment,
            aws,
        } => block_on(async {
            if let Some(path) = &path
                && path.exists()
                && !force
            {
                return Err(CliError::usage(format!(
                    "{} exists; pass --force to overwrite it",
                    path.display()
                )));
            }
            let base = sdk_config(&aws, base).await;
            let region = hub_region
                .or_else(|| base.region().map(ToString::to_string))
                .ok_or_else(|| CliError::usage("no region: pass --hub-region or --region"))?;
            let session = Aws::new(&base, &SpokeDeployment::default().admin_role);
            let options = InitOptions {
                hub_account,
                hub_region: region,
                approved_regions,
                name_prefix,
                hub_api_id,
                hub_api_stage,
                registry_table,
                spoke_deployment,
                concurrency: usize::from(aws.concurrency),
            };
            let file = init(&session, options).await?;
            let text = match &path {
                Some(p) if p.extension().is_some_and(|e| e == "toml") => toml::to_string(&file)
                    .map_err(|e| CliError::usage(format!("cannot write TOML: {e}")))?,
                _ => file.to_yaml()?,
            };
            match &path {
                Some(p) => {
                    std::fs::write(p, text)
                        .map_err(|e| CliError::io(format!("cannot write {}: {e}", p.display())))?;
                    let summary = file.desired();
                    writeln!(
                        out,
                        "wrote {}: {} OUs, {} accounts, {} spokes",
                        p.display(),
                        summary.ous.len() - 1,
                        summary.accounts.len(),
                        summary
                            .accounts
                            .iter()
                            .filter(|a| a.spoke.is_some())
                            .count()
                    )
                    .map_err(write_error)
                }
                None => out.write_all(text.as_bytes()).map_err(write_error),
            }
        }),
    }
}

async fn sdk_config(args: &AwsArgs, base: Option<&aws_config::SdkConfig>) -> aws_config::SdkConfig {
    crate::aws_sdk_config(args.region.as_deref(), args.endpoint_url.as_deref(), base).await
}

/// The sessions for `file`'s organization from `args` on top of `base`.
pub async fn session_for(
    args: &AwsArgs,
    file: &OrgFile,
    base: Option<&aws_config::SdkConfig>,
) -> Aws {
    Aws::new(
        &sdk_config(args, base).await,
        &file.spoke_deployment.admin_role,
    )
}

pub(crate) fn write_error(e: std::io::Error) -> CliError {
    CliError::io(format!("cannot write the output: {e}"))
}

fn aws_error(message: String) -> CliError {
    CliError {
        exit: CliExit::Failure,
        message,
    }
}

/// A plan with what it was computed from.
#[derive(Debug)]
pub struct Planned {
    /// The live state read.
    pub live: Live,
    /// The rendered SCPs by template name.
    pub policies: BTreeMap<String, DesiredPolicy>,
    /// The changes.
    pub plan: Plan,
}

/// Renders the SCPs, reads the live Organization, and plans.
pub async fn plan_org(aws: &Aws, file: &OrgFile, concurrency: usize) -> Result<Planned, CliError> {
    let policies: BTreeMap<String, DesiredPolicy> = crate::scp::render_all(file)?
        .into_iter()
        .map(|(template, rendered)| {
            (
                template,
                DesiredPolicy {
                    name: rendered.policy_name,
                    description: rendered.description,
                    document: live::minify(&rendered.document),
                },
            )
        })
        .collect();
    let live = live::read(
        aws,
        file,
        ReadOptions {
            concurrency,
            spoke_roles: true,
            hub_side: true,
        },
    )
    .await
    .map_err(aws_error)?;
    let plan = plan::plan(file, &policies, &live).map_err(CliError::usage)?;
    Ok(Planned {
        live,
        policies,
        plan,
    })
}

fn change_json(change: &Change) -> serde_json::Value {
    let mut value = serde_json::to_value(change).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("sign".into(), json!(change.sign().to_string()));
        map.insert(
            "summary".into(),
            json!(format!("{} {}", change.verb(), change.detail())),
        );
    }
    value
}

fn print_plan(
    org: &Path,
    planned: &Planned,
    calls: u64,
    elapsed: Duration,
    output: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let plan = &planned.plan;
    match output {
        Output::Json => {
            let document = json!({
                "organization": planned.live.organization_id,
                "changes": plan.changes.iter().map(change_json).collect::<Vec<_>>(),
                "untracked": plan.untracked,
                "api_calls": calls,
                "seconds": elapsed.as_secs_f64(),
            });
            writeln!(out, "{document}").map_err(write_error)
        }
        Output::Text => {
            writeln!(
                out,
                "Plan for {} from {} ({calls} API calls, {:.1} s):",
                planned.live.organization_id,
                org.display(),
                elapsed.as_secs_f64()
            )
            .map_err(write_error)?;
            if plan.changes.is_empty() {
                writeln!(out, "  no changes: the Organization matches the org file")
                    .map_err(write_error)?;
            }
            for change in &plan.changes {
                writeln!(
                    out,
                    "  {} {:<22} {}",
                    change.sign(),
                    change.verb(),
                    change.detail()
                )
                .map_err(write_error)?;
            }
            let count = |sign| plan.changes.iter().filter(|c| c.sign() == sign).count();
            if !plan.changes.is_empty() {
                writeln!(
                    out,
                    "{} change(s): {} to add, {} to change, {} to remove",
                    plan.changes.len(),
                    count('+'),
                    count('~'),
                    count('-')
                )
                .map_err(write_error)?;
            }
            if !plan.untracked.is_empty() {
                writeln!(
                    out,
                    "not in the org file (left alone): {}",
                    plan.untracked.join("; ")
                )
                .map_err(write_error)?;
            }
            Ok(())
        }
    }
}

fn print_drift(
    org: &Path,
    planned: &Planned,
    output: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let plan = &planned.plan;
    let differences: Vec<String> = plan
        .changes
        .iter()
        .map(drift_text)
        .chain(
            plan.untracked
                .iter()
                .map(|u| format!("{u} is not in the org file")),
        )
        .collect();
    match output {
        Output::Json => writeln!(
            out,
            "{}",
            json!({
                "organization": planned.live.organization_id,
                "drift": plan.changes.iter().map(|c| {
                    let mut value = change_json(c);
                    if let Some(map) = value.as_object_mut() {
                        map.insert("difference".into(), json!(drift_text(c)));
                    }
                    value
                }).collect::<Vec<_>>(),
                "untracked": plan.untracked,
            })
        )
        .map_err(write_error)?,
        Output::Text => {
            if differences.is_empty() {
                writeln!(
                    out,
                    "no drift: {} matches {}",
                    planned.live.organization_id,
                    org.display()
                )
                .map_err(write_error)?;
            }
            for difference in &differences {
                writeln!(out, "  {difference}").map_err(write_error)?;
            }
        }
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(CliError {
            exit: CliExit::DriftFound,
            message: format!(
                "{} difference(s) between {} and the live Organization",
                differences.len(),
                org.display()
            ),
        })
    }
}

/// A change described as what differs now.
fn drift_text(change: &Change) -> String {
    match change {
        Change::EnableScps => "SCPs are not enabled on the root".to_owned(),
        Change::CreateOu { path, .. } => format!("OU {path} does not exist"),
        Change::InviteAccount { account, name } => {
            format!("account {account} ({name}) is not in the Organization")
        }
        Change::CreateAccount { name, .. } => format!("account {name} does not exist"),
        Change::MoveAccount {
            account,
            name,
            from,
            to,
            ..
        } => format!("account {account} ({name}) is in {from}, the org file puts it in {to}"),
        Change::CreatePolicy { policy, .. } => format!("SCP {policy} does not exist"),
        Change::UpdatePolicy { policy, .. } => format!(
            "SCP {policy} was edited outside Causeway: its document differs from the rendered template"
        ),
        Change::AttachPolicy { policy, target, .. } => {
            format!("SCP {policy} is not attached to {target}")
        }
        Change::DetachPolicy { policy, target, .. } => {
            format!(
                "SCP {policy} is attached to {target}, which the org file does not attach it to"
            )
        }
        Change::DeletePolicy { policy } => {
            format!("SCP {policy} exists but the org file no longer uses it")
        }
        Change::DeploySpokeStackSet { create: true, .. } => {
            "the spoke StackSet does not exist".to_owned()
        }
        Change::DeploySpokeStackSet { ous, .. } => {
            format!("the spoke StackSet is not deployed to {}", ous.join(", "))
        }
        Change::DeploySpokeStack { account } => {
            format!("account {account} has no spoke role stack")
        }
        Change::RepairBoundary { account, found }
        | Change::RedeploySpokeStack { account, found } => {
            format!("account {account}: {found}")
        }
        Change::DeployInvoker { account } => {
            format!("spoke {account} has no invoker role in the hub account")
        }
        Change::RegisterSpoke {
            account,
            update: false,
            ..
        } => format!("spoke {account} is not in the hub's registry"),
        Change::DeregisterSpoke { account, .. } => {
            format!(
                "account {account} is registered as a spoke but the org file no longer makes it one"
            )
        }
        Change::RemoveInvoker { account } => format!(
            "account {account} has an invoker role in the hub but the org file no longer makes it a spoke"
        ),
        Change::RemoveSpokeRole { account } => format!(
            "account {account} still has the spoke role stack but the org file no longer makes it a spoke"
        ),
        Change::RegisterSpoke {
            account, differs, ..
        } => format!(
            "spoke {account}'s registry entry differs: {}",
            differs.join(", ")
        ),
    }
}

/// Plans and applies, reporting progress; fails when any change failed.
pub async fn apply_org(
    aws: &Aws,
    file: &OrgFile,
    options: &ApplyOptions,
    output: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let planned = plan_org(aws, file, options.concurrency).await?;
    apply_changes(aws, file, &planned, options, output, out).await
}

/// Applies a plan (or part of one), reporting progress; fails when any change failed.
pub async fn apply_changes(
    aws: &Aws,
    file: &OrgFile,
    planned: &Planned,
    options: &ApplyOptions,
    output: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let started = Instant::now();
    let total = planned.plan.changes.len();
    if options.secrets_dir.is_none()
        && planned
            .plan
            .changes
            .iter()
            .any(|c| matches!(c, Change::DeployInvoker { .. }))
    {
        return Err(CliError::usage(
            "the plan deploys spoke invoker roles: pass --secrets-dir, where their external ids are written",
        ));
    }
    let progress = match output {
        Output::Text => indicatif::ProgressBar::with_draw_target(
            Some(total as u64),
            indicatif::ProgressDrawTarget::stderr(),
        ),
        Output::Json => indicatif::ProgressBar::hidden(),
    };
    progress.enable_steady_tick(Duration::from_millis(250));
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {elapsed} {msg}")
    {
        progress.set_style(style.progress_chars("=> "));
    }
    let mut write_failure: Option<std::io::Error> = None;
    let mut report = |change: &Change, outcome: &Outcome| {
        progress.inc(1);
        progress.set_message(change.verb());
        let line = match output {
            Output::Json => {
                let (status, message) = match outcome {
                    Outcome::Applied(note) => ("applied", note.clone()),
                    Outcome::Failed(message) => ("failed", Some(message.clone())),
                    Outcome::Skipped => ("skipped", None),
                };
                json!({"event": "change", "status": status, "change": change_json(change), "message": message})
                    .to_string()
            }
            Output::Text => {
                let (mark, note) = match outcome {
                    Outcome::Applied(note) => ("done", note.clone()),
                    Outcome::Failed(message) => ("FAILED", Some(message.clone())),
                    Outcome::Skipped => ("skipped", None),
                };
                let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
                format!("{mark:>7} {} {}{note}", change.verb(), change.detail())
            }
        };
        progress.suspend(|| {
            if let Err(e) = writeln!(out, "{line}")
                && write_failure.is_none()
            {
                write_failure = Some(e);
            }
        });
    };
    let results = apply::apply(
        aws,
        file,
        &planned.policies,
        &planned.live,
        &planned.plan,
        options,
        &mut report,
    )
    .await;
    progress.finish_and_clear();
    if let Some(e) = write_failure {
        return Err(write_error(e));
    }
    let applied = results
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Applied(_)))
        .count();
    let failed = results
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
        .count();
    let skipped = total - applied - failed;
    let seconds = started.elapsed().as_secs_f64();
    match output {
        Output::Json => writeln!(
            out,
            "{}",
            json!({"event": "summary", "changes": total, "applied": applied, "failed": failed,
                   "skipped": skipped, "api_calls": aws.calls(), "seconds": seconds})
        ),
        Output::Text => writeln!(
            out,
            "{applied} of {total} change(s) applied, {failed} failed, {skipped} not attempted ({} API calls, {seconds:.1} s)",
            aws.calls()
        ),
    }
    .map_err(write_error)?;
    if failed == 0 {
        Ok(())
    } else {
        Err(CliError {
            exit: CliExit::Failure,
            message: format!(
                "{failed} change(s) failed; fix the cause and run `causeway org apply` again to finish the \
                 {} left",
                failed + skipped
            ),
        })
    }
}

/// What `org init` is told about the hub.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The hub account (default: the management account).
    pub hub_account: Option<String>,
    /// The hub region.
    pub hub_region: String,
    /// Approved regions (default: the hub region).
    pub approved_regions: Vec<String>,
    /// The name prefix.
    pub name_prefix: String,
    /// The hub API id.
    pub hub_api_id: Option<String>,
    /// The hub API stage.
    pub hub_api_stage: String,
    /// The registry table, when not the default one.
    pub registry_table: Option<String>,
    /// The spoke deployment mode (default: found out, see [`OrgCommand::Init`]).
    pub spoke_deployment: Option<DeploymentMode>,
    /// Calls in flight at once.
    pub concurrency: usize,
}

/// An org file describing the live Organization, with a `spoke` block for every account in it that `org apply`
/// registered in the hub's registry, so that `org plan` with the file offboards no spoke.
pub async fn init(aws: &Aws, options: InitOptions) -> Result<OrgFile, CliError> {
    let InitOptions {
        hub_account,
        hub_region,
        approved_regions,
        name_prefix,
        hub_api_id,
        hub_api_stage,
        registry_table,
        spoke_deployment,
        concurrency,
    } = options;
    let mut file = OrgFile {
        version: crate::orgfile::VERSION,
        name_prefix,
        hub: HubSettings {
            account: hub_account
                .clone()
                .unwrap_or_else(|| "000000000000".to_owned()),
            region: hub_region.clone(),
            approved_regions: if approved_regions.is_empty() {
                vec![hub_region]
            } else {
                approved_regions
            },
            api_id: hub_api_id,
            api_stage: hub_api_stage,
            registry_table,
            audit_table: None,
            audit_bucket: None,
            guardrail_arn: None,
            catalog: None,
        },
        spoke_deployment: SpokeDeployment::default(),
        limits: crate::orgfile::Limits::default(),
        root: RootSpec::default(),
    };
    let live = live::read(
        aws,
        &file,
        ReadOptions {
            concurrency,
            spoke_roles: false,
            hub_side: false,
        },
    )
    .await
    .map_err(aws_error)?;
    if hub_account.is_none() {
        file.hub.account.clone_from(&live.management_account);
    }
    let spokes = registered_spokes(aws, &file, &live).await?;
    // In `stackset` mode a spoke must sit under an OU with a `spoke` block: the OUs the StackSet deploys to get
    // an empty one (so each account's settings are its own), and so does the OU of a spoke with a current
    // instance (instances do not always name their OU).
    let mut spoke_ous: BTreeSet<String> = BTreeSet::new();
    if !spokes.is_empty() {
        if file.hub.api_id.is_none() {
            return Err(CliError::usage(format!(
                "the hub's registry `{}` has {} spoke(s) `org apply` registered: pass --hub-api-id (the hub \
                 stack's `ApiId` output) so that the org file keeps them",
                file.registry_table(),
                spokes.len()
            )));
        }
        let stackset = live::read_stackset(aws, &file).await.map_err(aws_error)?;
        file.spoke_deployment.mode = spoke_deployment.unwrap_or(if stackset.is_some() {
            DeploymentMode::Stackset
        } else {
            DeploymentMode::AssumeRole
        });
        if file.spoke_deployment.mode == DeploymentMode::Stackset {
            let targets = stackset.unwrap_or_default();
            spoke_ous.extend(targets.ous);
            for account in spokes.keys().filter_map(|id| live.accounts.get(id)) {
                if !live.ous.iter().any(|(path, id)| {
                    spoke_ous.contains(id) && account.parent.starts_with(path) && !path.is_empty()
                }) {
                    if account.parent.is_empty() {
                        return Err(CliError::usage(format!(
                            "account {} ({}) is a registered spoke in {}, where `stackset` mode cannot deploy \
                             spokes: pass --spoke-deployment assume_role",
                            account.id,
                            account.name,
                            show_path(&account.parent)
                        )));
                    }
                    if let Some(id) = live.ous.get(&account.parent) {
                        spoke_ous.insert(id.clone());
                    }
                }
            }
        }
    } else if let Some(mode) = spoke_deployment {
        file.spoke_deployment.mode = mode;
    }
    let templates_on = |target: &str| -> Vec<String> {
        live.attached_to(target)
            .into_iter()
            .filter_map(|name| file.template_of(name).map(str::to_owned))
            .collect()
    };
    let accounts_in = |path: &[String]| -> Vec<AccountSpec> {
        live.accounts
            .values()
            .filter(|a| a.parent == path)
            .map(|a| AccountSpec {
                id: Some(a.id.clone()),
                name: a.name.clone(),
                email: None,
                scps: templates_on(&a.id),
                spoke: spokes.get(&a.id).cloned(),
            })
            .collect()
    };
    fn children(
        live: &Live,
        path: &[String],
        spoke_ous: &BTreeSet<String>,
        templates_on: &dyn Fn(&str) -> Vec<String>,
        accounts_in: &dyn Fn(&[String]) -> Vec<AccountSpec>,
    ) -> Vec<OuSpec> {
        live.ous
            .iter()
            .filter(|(p, _)| p.len() == path.len() + 1 && p.starts_with(path))
            .map(|(p, id)| OuSpec {
                name: p.last().cloned().unwrap_or_default(),
                scps: templates_on(id),
                spoke: spoke_ous.contains(id).then(SpokeSettings::default),
                accounts: accounts_in(p),
                ous: children(live, p, spoke_ous, templates_on, accounts_in),
            })
            .collect()
    }
    let root = RootSpec {
        scps: templates_on(&live.root_id),
        accounts: accounts_in(&[]),
        ous: children(&live, &[], &spoke_ous, &templates_on, &accounts_in),
    };
    file.root = root;
    Ok(file)
}

/// The spoke settings of every account in the Organization that `org apply` registered, by account id, read
/// from the hub's registry through the hub account; none when the registry table does not exist yet.
async fn registered_spokes(
    aws: &Aws,
    file: &OrgFile,
    live: &Live,
) -> Result<BTreeMap<String, SpokeSettings>, CliError> {
    let hub = aws
        .session(&file.hub.account, &live.management_account)
        .await
        .map_err(aws_error)?;
    let entries = live::managed_entries(aws, file, &hub, None)
        .await
        .map_err(aws_error)?
        .unwrap_or_default();
    let mut spokes = BTreeMap::new();
    for entry in &entries {
        let Some(account) = entry
            .get("account")
            .and_then(|a| a.as_s().ok())
            .and_then(|id| live.accounts.get(id))
        else {
            continue;
        };
        let settings = registry::spoke_settings(entry, &account.name).map_err(aws_error)?;
        spokes.insert(account.id.clone(), settings);
    }
    Ok(spokes)
}
