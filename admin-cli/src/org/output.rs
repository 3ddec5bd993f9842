//! What the org commands print: plans, drift and apply progress, as a table for people or JSON for scripts.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::apply::Outcome;
use super::plan::Change;
use super::{Planned, write_error};
use crate::{CliError, CliExit, Output};

pub(super) fn change_json(change: &Change) -> serde_json::Value {
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

pub(super) fn print_plan(
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

pub(super) fn print_drift(
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

/// One line for a change `org apply` finished: a JSON event, or a status column and the change for people.
pub(super) fn progress_line(change: &Change, outcome: &Outcome, output: Output) -> String {
    match output {
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
    }
}

/// The counts `org apply` ends with.
#[derive(Debug, Clone, Copy)]
pub(super) struct ApplySummary {
    pub total: usize,
    pub applied: usize,
    pub failed: usize,
    pub skipped: usize,
    /// API requests made, retries included.
    pub calls: u64,
    pub elapsed: Duration,
}

/// The last line of `org apply`.
pub(super) fn print_apply_summary(
    summary: &ApplySummary,
    output: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let ApplySummary {
        total,
        applied,
        failed,
        skipped,
        calls,
        elapsed,
    } = *summary;
    let seconds = elapsed.as_secs_f64();
    match output {
        Output::Json => writeln!(
            out,
            "{}",
            json!({"event": "summary", "changes": total, "applied": applied, "failed": failed,
                   "skipped": skipped, "api_calls": calls, "seconds": seconds})
        ),
        Output::Text => writeln!(
            out,
            "{applied} of {total} change(s) applied, {failed} failed, {skipped} not attempted ({calls} API calls, {seconds:.1} s)"
        ),
    }
    .map_err(write_error)
}
