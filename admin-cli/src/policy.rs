//! `causeway policy check`: would this principal be allowed? Decides one request against a policy directory
//! (or the policies built into the hub) exactly as the hub would, with no hub and no AWS access, and names the
//! policies that decided.
//!
//! Exit codes: 0 allow, [`CliExit::Denied`] (6) deny, 2 for usage errors (unknown model, purpose or
//! classification, a policy set that does not validate), 3 when a policy file cannot be read.

use std::io::Write;
use std::path::PathBuf;

use causeway_contract::classification::DataClassification;
use causeway_policy::{AccessRequest, PolicyBundle, PolicyError};
use clap::Subcommand;
use serde_json::json;

use crate::{CliError, CliExit, Output};

/// Policy commands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Decide one request (user, groups, model alias, purpose, workload context) and print the decision and
    /// the policies that made it. Exits 0 on allow and 6 on deny.
    Check {
        /// The user (`sub`).
        #[arg(long)]
        user: String,
        /// A group the user belongs to; repeat for several.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// The model alias.
        #[arg(long)]
        model: String,
        /// The declared purpose.
        #[arg(long)]
        purpose: String,
        /// The spoke account the call comes from.
        #[arg(long, default_value = "")]
        spoke_account: String,
        /// The spoke account's organizational unit.
        #[arg(long, default_value = "")]
        ou: String,
        /// The calling application.
        #[arg(long, default_value = "")]
        application: String,
        /// The data classification.
        #[arg(long, default_value = "internal")]
        classification: String,
        /// A tool the call offers the model (its name); repeat for several.
        #[arg(long = "tool")]
        tools: Vec<String>,
        /// The call carries images.
        #[arg(long)]
        images: bool,
        /// The call carries documents.
        #[arg(long)]
        documents: bool,
        /// A directory laid out like `policies/`. Default: the policies built into the hub.
        #[arg(long)]
        policy_dir: Option<PathBuf>,
    },
}

fn load(dir: Option<&PathBuf>) -> Result<PolicyBundle, CliError> {
    let loaded = match dir {
        Some(dir) => PolicyBundle::load_dir(dir),
        None => PolicyBundle::embedded(),
    };
    loaded.map_err(|err| match err {
        PolicyError::Read { .. } => CliError::io(err.to_string()),
        other => CliError::usage(format!("the policy set is invalid: {other}")),
    })
}

fn or_dash(value: &str) -> &str {
    if value.is_empty() { "-" } else { value }
}

fn write_err(err: &std::io::Error) -> CliError {
    CliError::io(format!("cannot write the output: {err}"))
}

/// Runs a policy command.
pub fn run(command: PolicyCommand, output: Output, out: &mut dyn Write) -> Result<(), CliError> {
    let PolicyCommand::Check {
        user,
        groups,
        model,
        purpose,
        spoke_account,
        ou,
        application,
        classification,
        tools,
        images,
        documents,
        policy_dir,
    } = command;
    let bundle = load(policy_dir.as_ref())?;
    let Some(entry) = bundle.catalog().get(&model) else {
        let known: Vec<String> = bundle
            .catalog()
            .models
            .keys()
            .map(|k| format!("`{k}`"))
            .collect();
        return Err(CliError::usage(format!(
            "unknown model `{model}`; the catalog has {}",
            known.join(", ")
        )));
    };
    if !bundle.purposes().contains(&purpose) {
        return Err(CliError::usage(format!(
            "unknown purpose `{purpose}`; declare one of {}",
            bundle.purposes().allowed_list()
        )));
    }
    if !DataClassification::NAMES.contains(&classification.as_str()) {
        return Err(CliError::usage(format!(
            "`--classification` must be one of {}",
            DataClassification::choices()
        )));
    }
    let decision = bundle.authorize(&AccessRequest {
        user: &user,
        groups: &groups,
        model_alias: &model,
        purpose: &purpose,
        data_classification: &classification,
        spoke_account: &spoke_account,
        ou: &ou,
        application: &application,
        tools: &tools,
        has_images: images,
        has_documents: documents,
    });
    let verdict = if decision.is_allowed() {
        "allow"
    } else {
        "deny"
    };
    let reasons = decision.audit_reasons();
    match output {
        Output::Json => {
            let document = json!({
                "decision": verdict,
                "reasons": reasons,
                "errors": decision.errors,
                "request": {
                    "user": user, "groups": groups, "model": model,
                    "provider": entry.provider.as_str(), "purpose": purpose,
                    "data_classification": classification, "spoke_account": spoke_account,
                    "ou": ou, "application": application,
                    "tools": tools, "images": images, "documents": documents,
                },
                "policy_hash": bundle.hash(),
            });
            writeln!(out, "{document}").map_err(|e| write_err(&e))?;
        }
        Output::Text => {
            let groups_text = if groups.is_empty() {
                "-".to_owned()
            } else {
                groups.join(", ")
            };
            let lines = [
                ("decision", verdict.to_owned()),
                ("policies", reasons.join(", ")),
                ("user", user.clone()),
                ("groups", groups_text),
                ("model", format!("{model} ({})", entry.provider.as_str())),
                ("purpose", purpose.clone()),
                ("classification", classification.clone()),
                ("spoke account", or_dash(&spoke_account).to_owned()),
                ("ou", or_dash(&ou).to_owned()),
                ("application", or_dash(&application).to_owned()),
                (
                    "tools",
                    if tools.is_empty() {
                        "-".to_owned()
                    } else {
                        tools.join(", ")
                    },
                ),
                (
                    "carries",
                    match (images, documents) {
                        (true, true) => "images, documents",
                        (true, false) => "images",
                        (false, true) => "documents",
                        (false, false) => "text only",
                    }
                    .to_owned(),
                ),
                ("policy hash", bundle.hash().to_owned()),
            ];
            for (label, value) in lines {
                writeln!(out, "{label:<15} {value}").map_err(|e| write_err(&e))?;
            }
        }
    }
    if decision.is_allowed() {
        Ok(())
    } else {
        Err(CliError {
            exit: CliExit::Denied,
            message: format!(
                "denied: `{user}` may not use `{model}` for `{purpose}` ({})",
                reasons.join(", ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::{Cli, CliExit, run};

    fn check(args: &[&str]) -> (String, Result<(), crate::CliError>) {
        let cli = Cli::try_parse_from(["causeway", "policy", "check"].iter().chain(args).copied())
            .unwrap();
        let mut out = Vec::new();
        let result = run(cli, &mut out);
        (String::from_utf8(out).unwrap(), result)
    }

    #[test]
    fn an_allowed_request_names_its_permit_and_exits_0() {
        let (out, result) = check(&[
            "--user",
            "alice",
            "--group",
            "analysts",
            "--model",
            "claude-sonnet",
            "--purpose",
            "analytics",
        ]);
        assert!(result.is_ok());
        let out: Vec<&str> = out.lines().take(2).collect();
        insta::assert_snapshot!(out.join("\n"), @r"
        decision        allow
        policies        permit:analysts-analytics
        ");
    }

    #[test]
    fn a_denied_request_names_the_forbid_and_exits_6() {
        let (out, result) = check(&[
            "--user",
            "dave",
            "--model",
            "local-dev",
            "--purpose",
            "evaluation",
            "--ou",
            "sandbox",
            "--spoke-account",
            "777788889999",
            "--application",
            "lab",
            "--output",
            "json",
        ]);
        let err = result.unwrap_err();
        assert_eq!(err.exit, CliExit::Denied);
        assert_eq!(CliExit::Denied as u8, 6);
        assert_eq!(
            err.to_string(),
            "denied: `dave` may not use `local-dev` for `evaluation` (forbid:sandbox-ou-public-data-only)"
        );
        let document: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(document["decision"], "deny");
        assert_eq!(
            document["reasons"],
            serde_json::json!(["forbid:sandbox-ou-public-data-only"])
        );
        assert_eq!(document["request"]["ou"], "sandbox");
        assert_eq!(document["policy_hash"].as_str().unwrap().len(), 64);

        // Default deny names no policy but says so.
        let (_, result) = check(&[
            "--user",
            "alice",
            "--model",
            "claude-sonnet",
            "--purpose",
            "analytics",
        ]);
        assert!(result.unwrap_err().to_string().ends_with("(default_deny)"));
    }

    #[test]
    fn tools_images_and_documents_reach_the_policies() {
        let support = [
            "--user",
            "sam",
            "--group",
            "support-agents",
            "--model",
            "claude-haiku",
            "--purpose",
            "customer_support",
        ];
        let (_, result) = check(&support);
        assert!(result.is_ok());
        let with_tool: Vec<&str> = support
            .iter()
            .copied()
            .chain(["--tool", "refund"])
            .collect();
        let (_, result) = check(&with_tool);
        assert!(
            result
                .unwrap_err()
                .to_string()
                .ends_with("(forbid:customer-support-no-tools)")
        );

        let restricted = [
            "--user",
            "alice",
            "--group",
            "engineers",
            "--model",
            "claude-haiku",
            "--purpose",
            "evaluation",
            "--classification",
            "restricted",
            "--output",
            "json",
        ];
        let (_, result) = check(&restricted);
        assert!(result.is_ok());
        let with_images: Vec<&str> = restricted.iter().copied().chain(["--images"]).collect();
        let (out, result) = check(&with_images);
        assert_eq!(result.unwrap_err().exit, CliExit::Denied);
        let document: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            document["reasons"],
            serde_json::json!(["forbid:restricted-data-no-images"])
        );
        assert_eq!(document["request"]["images"], true);
        assert_eq!(document["request"]["documents"], false);
    }

    #[test]
    fn unknown_names_and_broken_policy_sets_are_usage_errors() {
        let (_, result) = check(&["--user", "a", "--model", "gpt-9", "--purpose", "analytics"]);
        let err = result.unwrap_err();
        assert_eq!(err.exit, CliExit::Usage);
        assert!(
            err.to_string()
                .starts_with("unknown model `gpt-9`; the catalog has")
        );

        let (_, result) = check(&["--user", "a", "--model", "local-dev", "--purpose", "fun"]);
        assert!(
            result
                .unwrap_err()
                .to_string()
                .starts_with("unknown purpose `fun`")
        );

        let dir = tempfile::tempdir().unwrap();
        let sources = causeway_policy::PolicySources::embedded();
        std::fs::create_dir_all(dir.path().join("cedar")).unwrap();
        std::fs::write(dir.path().join("catalog.toml"), &sources.catalog).unwrap();
        std::fs::write(dir.path().join("purposes.toml"), &sources.purposes).unwrap();
        std::fs::write(
            dir.path().join("cedar/causeway.cedarschema"),
            &sources.schema,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("cedar/causeway.cedar"),
            "@id(\"typo\")\npermit(principal, action, resource) when { context.purpos == \"x\" };\n",
        )
        .unwrap();
        let dir_arg = dir.path().to_str().unwrap();
        let (_, result) = check(&[
            "--user",
            "a",
            "--model",
            "local-dev",
            "--purpose",
            "evaluation",
            "--policy-dir",
            dir_arg,
        ]);
        let err = result.unwrap_err();
        assert_eq!(err.exit, CliExit::Usage);
        assert!(
            err.to_string()
                .starts_with("the policy set is invalid: cedar policies: policy `typo`"),
            "{err}"
        );

        let missing = dir.path().join("nowhere");
        let (_, result) = check(&[
            "--user",
            "a",
            "--model",
            "local-dev",
            "--purpose",
            "evaluation",
            "--policy-dir",
            missing.to_str().unwrap(),
        ]);
        assert_eq!(result.unwrap_err().exit, CliExit::Io);
    }
}
