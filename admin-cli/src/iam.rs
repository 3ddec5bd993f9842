//! `causeway iam hub-parameters`: the Bedrock models the hub role may invoke, rendered from the model catalog.
//!
//! The hub stack (`infra/hub.yaml`) grants the hub function exactly the catalog's Bedrock models through two
//! parameters, one per kind of model, and the guardrail the stack creates. This command renders those
//! parameters from the catalog the org file names (the one `causeway scp render` builds the SCPs from, and
//! the hub resolves aliases with), so the models the hub may call and the models the catalog lists agree:
//!
//! - `ChatModelArns`: chat models, invoked with Converse and ConverseStream, which IAM authorizes as
//!   `bedrock:InvokeModel` and `bedrock:InvokeModelWithResponseStream`.
//! - `EmbeddingModelArns`: embedding models, invoked with `bedrock:InvokeModel` only.
//!
//! A foundation model id gives its ARN in the hub's region, where the hub invokes it. A cross-region
//! inference profile id (`us.anthropic…`) gives the profile's ARN in the hub's region and account, and the
//! foundation model's ARN in every region of the catalog entry (the regions the profile routes to), because
//! Bedrock authorizes a profile call against the profile and against the model in the region that serves it;
//! a `global.` profile also needs the region-less foundation-model ARN. A model named by ARN is granted that
//! ARN only. An empty list grants nothing of that kind (the stack then creates no statement for it).
//!
//! Exit codes: 0 success, 2 for a bad org file or catalog, 3 when a file cannot be read.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;

use causeway_contract::catalog::{Catalog, ModelKind, ProviderKind};
use clap::Subcommand;
use serde::Serialize;
use serde_json::json;

use crate::orgfile::OrgFile;
use crate::scp::{inference_profile, load_catalog};
use crate::{CliError, Output};

/// IAM commands.
#[derive(Debug, Subcommand)]
pub enum IamCommand {
    /// Render the hub stack's model parameters (`ChatModelArns`, `EmbeddingModelArns`) from the model catalog
    /// and the org file's hub account and region.
    ///
    /// Prints one `Key=Value` line per parameter, as `aws cloudformation deploy --parameter-overrides` takes
    /// them; `--output json` adds each model's ARNs.
    HubParameters {
        /// The org file.
        #[arg(long)]
        org: PathBuf,
    },
}

/// Runs an IAM command.
pub fn run(command: IamCommand, output: Output, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        IamCommand::HubParameters { org } => {
            let file = OrgFile::load(&org)?;
            let rendered = hub_model_arns(&file)?;
            write_parameters(&rendered, output, out)
        }
    }
}

/// One hub stack parameter that grants a kind of model, and what the stack grants on its ARNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubModelGrant {
    /// The `infra/hub.yaml` parameter (a comma-delimited list of ARNs).
    pub parameter: &'static str,
    /// The models it lists.
    pub kind: ModelKind,
    /// The IAM actions the stack allows on them.
    pub actions: &'static [&'static str],
}

/// The hub stack's model parameters: what `infra/hub.yaml` grants on each (a test holds the template to it).
pub const HUB_MODEL_GRANTS: [HubModelGrant; 2] = [
    HubModelGrant {
        parameter: "ChatModelArns",
        kind: ModelKind::Chat,
        actions: &[
            "bedrock:InvokeModel",
            "bedrock:InvokeModelWithResponseStream",
        ],
    },
    HubModelGrant {
        parameter: "EmbeddingModelArns",
        kind: ModelKind::Embedding,
        actions: &["bedrock:InvokeModel"],
    },
];

/// The ARNs one catalog model is invoked under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelArns {
    /// The catalog alias.
    pub alias: String,
    /// `chat` or `embedding`.
    pub kind: &'static str,
    /// The catalog's model id, inference-profile id or ARN.
    pub model_id: String,
    /// Every ARN the hub's call is authorized against.
    pub arns: Vec<String>,
}

/// The rendered parameters: per parameter, the sorted ARNs; and per model, its ARNs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubModelArns {
    /// Parameter name to ARNs, in [`HUB_MODEL_GRANTS`] order.
    pub parameters: BTreeMap<&'static str, Vec<String>>,
    /// Each catalog Bedrock model with its ARNs, by alias.
    pub models: Vec<ModelArns>,
}

impl HubModelArns {
    /// The ARNs of `parameter` (empty for an unknown one).
    pub fn arns(&self, parameter: &str) -> &[String] {
        self.parameters.get(parameter).map_or(&[], Vec::as_slice)
    }

    /// `Key=Value` per parameter, as `aws cloudformation deploy --parameter-overrides` takes them.
    pub fn parameter_overrides(&self) -> Vec<String> {
        HUB_MODEL_GRANTS
            .iter()
            .map(|grant| {
                format!(
                    "{}={}",
                    grant.parameter,
                    self.arns(grant.parameter).join(",")
                )
            })
            .collect()
    }
}

/// Renders the hub stack's model parameters for the org file's catalog, hub account and hub region.
pub fn hub_model_arns(file: &OrgFile) -> Result<HubModelArns, CliError> {
    let catalog = load_catalog(file)?;
    Ok(render(&catalog, &file.hub.account, &file.hub.region))
}

/// [`hub_model_arns`] for a catalog and a hub account and region.
pub fn render(catalog: &Catalog, hub_account: &str, hub_region: &str) -> HubModelArns {
    let mut by_kind: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let mut models = Vec::new();
    for (alias, model) in &catalog.models {
        if model.provider != ProviderKind::Bedrock {
            continue;
        }
        let arns = model_arns(&model.model_id, &model.regions, hub_account, hub_region);
        if let Some(grant) = HUB_MODEL_GRANTS.iter().find(|g| g.kind == model.kind) {
            by_kind
                .entry(grant.parameter)
                .or_default()
                .extend(arns.iter().cloned());
        }
        models.push(ModelArns {
            alias: alias.clone(),
            kind: model.kind.as_str(),
            model_id: model.model_id.clone(),
            arns,
        });
    }
    let parameters = HUB_MODEL_GRANTS
        .iter()
        .map(|grant| {
            let arns = by_kind.remove(grant.parameter).unwrap_or_default();
            (grant.parameter, arns.into_iter().collect())
        })
        .collect();
    HubModelArns { parameters, models }
}

/// The ARNs the hub's call to one model id is authorized against (see the module documentation).
fn model_arns(id: &str, regions: &[String], hub_account: &str, hub_region: &str) -> Vec<String> {
    if id.starts_with("arn:") {
        return vec![id.to_owned()];
    }
    let mut arns = BTreeSet::new();
    match inference_profile(id) {
        Some((geo, foundation)) => {
            arns.insert(format!(
                "arn:aws:bedrock:{hub_region}:{hub_account}:inference-profile/{id}"
            ));
            let routed: Vec<&str> = if regions.is_empty() {
                vec![hub_region]
            } else {
                regions.iter().map(String::as_str).collect()
            };
            for region in routed {
                arns.insert(format!(
                    "arn:aws:bedrock:{region}::foundation-model/{foundation}"
                ));
            }
            if geo == "global" {
                arns.insert(format!("arn:aws:bedrock:::foundation-model/{foundation}"));
            }
        }
        None => {
            arns.insert(format!(
                "arn:aws:bedrock:{hub_region}::foundation-model/{id}"
            ));
        }
    }
    arns.into_iter().collect()
}

fn write_parameters(
    rendered: &HubModelArns,
    output: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let written = match output {
        Output::Json => writeln!(
            out,
            "{}",
            json!({
                "parameters": rendered.parameters,
                "parameter_overrides": rendered.parameter_overrides(),
                "models": rendered.models,
            })
        ),
        Output::Text => rendered
            .parameter_overrides()
            .iter()
            .try_for_each(|line| writeln!(out, "{line}")),
    };
    written.map_err(|e| CliError::io(format!("cannot write the output: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = r#"
version: 1
hub:
  account: "111111111111"
  region: us-east-1
  approved_regions: [us-east-1, us-east-2, us-west-2]
root:
  accounts:
    - { id: "000000000000", name: management }
"#;

    fn built_in() -> HubModelArns {
        hub_model_arns(&OrgFile::parse("org.yaml", ORG).unwrap()).unwrap()
    }

    #[test]
    fn a_cross_region_profile_grants_the_profile_and_its_model_in_every_routed_region() {
        let rendered = built_in();
        let chat = rendered.arns("ChatModelArns");
        for arn in [
            "arn:aws:bedrock:us-east-1:111111111111:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0",
            "arn:aws:bedrock:us-east-2::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0",
            "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0",
        ] {
            assert!(chat.iter().any(|a| a == arn), "{arn} missing from {chat:?}");
        }
        assert!(
            !chat.iter().any(|a| a.contains("embed")),
            "embedding models are not chat models: {chat:?}"
        );
    }

    #[test]
    fn embedding_models_get_their_own_parameter_in_the_hub_region() {
        let rendered = built_in();
        assert_eq!(
            rendered.arns("EmbeddingModelArns"),
            [
                "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0",
                "arn:aws:bedrock:us-east-1::foundation-model/cohere.embed-english-v3",
            ]
        );
    }

    #[test]
    fn models_of_other_providers_are_not_granted() {
        let rendered = built_in();
        let aliases: Vec<&str> = rendered.models.iter().map(|m| m.alias.as_str()).collect();
        assert!(!aliases.contains(&"local-dev") && !aliases.contains(&"llama-internal"));
        assert!(aliases.contains(&"claude-sonnet") && aliases.contains(&"titan-embed"));
    }

    #[test]
    fn global_profiles_and_arns() {
        let catalog = Catalog::from_toml(
            "catalog.toml",
            r#"
version = "1"

[models.global-sonnet]
provider = "bedrock"
model_id = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
version = "1"
description = "global profile"
max_tokens = 100
regions = ["us-east-1"]

[models.pinned]
provider = "bedrock"
model_id = "arn:aws:bedrock:us-east-1:111111111111:application-inference-profile/abc123"
version = "1"
description = "application profile"
max_tokens = 100
"#,
        )
        .unwrap();
        let rendered = render(&catalog, "111111111111", "us-east-1");
        assert_eq!(
            rendered.arns("ChatModelArns"),
            [
                "arn:aws:bedrock:::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
                "arn:aws:bedrock:us-east-1:111111111111:application-inference-profile/abc123",
                "arn:aws:bedrock:us-east-1:111111111111:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0",
                "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
            ]
        );
        assert_eq!(
            rendered.parameter_overrides()[1],
            "EmbeddingModelArns=",
            "a kind the catalog lacks renders empty"
        );
    }
}
