//! `causeway org init | plan | apply | drift | schema`: the Organization as code.
//!
//! `plan` prints the exact changes that would make the live Organization match the org file and nothing
//! else; `apply` makes them (idempotently, resumable after a failure); `drift` reports every difference with a
//! non-zero exit code; `init` writes an org file from the live Organization and the hub's spoke registry.
//!
//! Exit codes: 0 nothing to do / applied / no drift, [`CliExit::ChangesPending`] (7) when `plan` has changes,
//! [`CliExit::DriftFound`] (8) when `drift` finds differences, 1 when a change or an AWS call failed, 2 for a
//! bad org file or arguments, 3 when a file cannot be read or written.
//!
//! This module dispatches; `args` holds what clap parses and `output` what is printed. The plan, apply and
//! drift logic ([`plan`], [`apply`], [`live`], [`spoke_role`], `init`) speaks to AWS only through
//! [`admin::OrgAdmin`], which [`aws::Aws`] implements over the real SDK clients.

pub mod admin;
pub mod apply;
mod args;
pub mod aws;
pub mod error;
mod init;
pub mod live;
mod output;
pub mod plan;
pub mod registry;
pub mod spoke_role;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use self::admin::OrgAdmin;
use self::apply::{ApplyOptions, Outcome};
pub use self::args::{AwsArgs, OrgCommand};
use self::aws::Aws;
pub use self::init::{InitOptions, init};
use self::live::{Live, ReadOptions};
use self::output::{ApplySummary, print_apply_summary, print_drift, print_plan, progress_line};
use self::plan::{Change, DesiredPolicy, Plan};
use crate::orgfile::{OrgFile, SpokeDeployment};
use crate::{CliError, CliExit, Output, block_on};

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

pub(crate) fn aws_error(message: String) -> CliError {
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
pub async fn plan_org(
    admin: &dyn OrgAdmin,
    file: &OrgFile,
    concurrency: usize,
) -> Result<Planned, CliError> {
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
        admin,
        file,
        ReadOptions {
            concurrency,
            spoke_roles: true,
            hub_side: true,
        },
    )
    .await?;
    let plan = plan::plan(file, &policies, &live).map_err(CliError::usage)?;
    Ok(Planned {
        live,
        policies,
        plan,
    })
}

/// Plans and applies, reporting progress; fails when any change failed.
pub async fn apply_org(
    admin: &dyn OrgAdmin,
    file: &OrgFile,
    options: &ApplyOptions,
    output: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let planned = plan_org(admin, file, options.concurrency).await?;
    apply_changes(admin, file, &planned, options, output, out).await
}

/// Applies a plan (or part of one), reporting progress; fails when any change failed.
pub async fn apply_changes(
    admin: &dyn OrgAdmin,
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
        let line = progress_line(change, outcome, output);
        progress.suspend(|| {
            if let Err(e) = writeln!(out, "{line}")
                && write_failure.is_none()
            {
                write_failure = Some(e);
            }
        });
    };
    let results = apply::apply(
        admin,
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
    let summary = ApplySummary {
        total,
        applied,
        failed,
        skipped,
        calls: admin.calls(),
        elapsed: started.elapsed(),
    };
    print_apply_summary(&summary, output, out)?;
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

#[cfg(test)]
mod tests;
