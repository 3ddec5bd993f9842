//! `org init`: an org file written from the live Organization and the hub's spoke registry.

use std::collections::{BTreeMap, BTreeSet};

use super::admin::{InAccount, OrgAdmin};
use super::live::{self, Live, ReadOptions};
use super::{aws_error, registry};
use crate::CliError;
use crate::orgfile::{
    AccountSpec, DeploymentMode, HubSettings, OrgFile, OuSpec, RootSpec, SpokeDeployment,
    SpokeSettings, show_path,
};

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
    /// The spoke deployment mode (default: found out, see `causeway org init`).
    pub spoke_deployment: Option<DeploymentMode>,
    /// Calls in flight at once.
    pub concurrency: usize,
}

/// An org file describing the live Organization, with a `spoke` block for every account in it that `org apply`
/// registered in the hub's registry, so that `org plan` with the file offboards no spoke.
pub async fn init(admin: &dyn OrgAdmin, options: InitOptions) -> Result<OrgFile, CliError> {
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
        admin,
        &file,
        ReadOptions {
            concurrency,
            spoke_roles: false,
            hub_side: false,
        },
    )
    .await?;
    if hub_account.is_none() {
        file.hub.account.clone_from(&live.management_account);
    }
    let spokes = registered_spokes(admin, &file, &live).await?;
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
        let stackset = live::read_stackset(admin, &file).await?;
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
    admin: &dyn OrgAdmin,
    file: &OrgFile,
    live: &Live,
) -> Result<BTreeMap<String, SpokeSettings>, CliError> {
    let hub = InAccount {
        account: &file.hub.account,
        management: &live.management_account,
    };
    let entries = live::managed_entries(admin, file, hub, None)
        .await?
        .unwrap_or_default();
    let mut spokes = BTreeMap::new();
    for entry in &entries {
        let Some(account) = entry
            .get("account")
            .and_then(|a| a.as_s())
            .and_then(|id| live.accounts.get(id))
        else {
            continue;
        };
        let settings = registry::spoke_settings(entry, &account.name).map_err(aws_error)?;
        spokes.insert(account.id.clone(), settings);
    }
    Ok(spokes)
}
