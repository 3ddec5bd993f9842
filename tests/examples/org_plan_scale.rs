//! How `causeway org plan` and `org apply` scale: an organization of N accounts (default 1,000) in moto, all
//! at the root, reshaped by an org file into 10 business units with Prod and Dev OUs, SCPs at three levels, and
//! the accounts of one Prod OU as spokes. Prints the API calls and the time of the first plan, the apply, and
//! the steady-state plan (nothing to do), which is what a scheduled drift check costs.
//!
//! `cargo run --release -p causeway-testkit --example org_plan_scale -- [accounts] [concurrency]`

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Instant;

use anyhow::Context as _;
use aws_sdk_organizations::types::OrganizationFeatureSet;
use causeway_cli::Output;
use causeway_cli::org::apply::ApplyOptions;
use causeway_cli::org::aws::Aws;
use causeway_cli::org::{apply_changes, plan_org};
use causeway_cli::orgfile::OrgFile;
use causeway_testkit::moto::{MOTO_DEFAULT_ACCOUNT_ID, MotoServer, create_pk_table};
use futures::stream::{self, StreamExt, TryStreamExt};

const UNITS: usize = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let accounts: usize = args.next().map_or(Ok(1000), |a| a.parse())?;
    let concurrency: usize = args.next().map_or(Ok(16), |a| a.parse())?;
    let moto = MotoServer::start().await?;
    let sdk = moto.sdk_config().await;

    // The brownfield: every account at the root, the hub's registry table.
    let org = aws_sdk_organizations::Client::new(&sdk);
    org.create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await?;
    let ids: Vec<String> = stream::iter(0..accounts)
        .map(|i| {
            let org = org.clone();
            async move {
                let name = format!("acct-{i:04}");
                let request = org
                    .create_account()
                    .account_name(&name)
                    .email(format!("{name}@example.com"))
                    .send()
                    .await?;
                let id = request
                    .create_account_status()
                    .and_then(|s| s.id())
                    .context("no request id")?;
                let status = org
                    .describe_create_account_status()
                    .create_account_request_id(id)
                    .send()
                    .await?;
                let account = status
                    .create_account_status()
                    .and_then(|s| s.account_id())
                    .context("no account id")?;
                anyhow::Ok(account.to_owned())
            }
        })
        .buffered(concurrency)
        .try_collect()
        .await?;
    create_pk_table(&sdk, "causeway-spoke-registry").await?;

    // The org file: 10 units × {Prod, Dev}, accounts spread over the 20 leaf OUs, spokes in Unit-00/Prod.
    let mut text = format!(
        "version: 1\nhub:\n  account: \"{MOTO_DEFAULT_ACCOUNT_ID}\"\n  region: us-east-1\n  approved_regions: \
         [us-east-1, us-east-2, us-west-2]\n  api_id: a1b2c3d4e5\nspoke_deployment:\n  mode: assume_role\nroot:\n  \
         scps: [deny-leave-organization, protect-cloudtrail]\n  accounts:\n    - {{ id: \"{MOTO_DEFAULT_ACCOUNT_ID}\", \
         name: management }}\n  ous:\n"
    );
    for unit in 0..UNITS {
        writeln!(
            text,
            "    - name: Unit-{unit:02}\n      scps: [deny-direct-model-invocation, deny-bedrock-api-keys]\n      ous:"
        )?;
        for (stage, leaf) in [("Prod", 0), ("Dev", 1)] {
            let slot = unit * 2 + leaf;
            writeln!(text, "        - name: {stage}")?;
            if stage == "Prod" {
                writeln!(text, "          scps: [protect-spoke-role]")?;
            }
            if slot == 0 {
                writeln!(
                    text,
                    "          spoke: {{ team: unit-00, applications: [assistant] }}"
                )?;
            }
            writeln!(text, "          accounts:")?;
            for (i, id) in ids
                .iter()
                .enumerate()
                .filter(|(i, _)| i % (UNITS * 2) == slot)
            {
                writeln!(text, "            - {{ id: \"{id}\", name: acct-{i:04} }}")?;
            }
        }
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("org.yaml");
    std::fs::write(&path, &text)?;
    let file = OrgFile::load(&path).map_err(|e| anyhow::anyhow!(e.message))?;
    let spokes = file
        .desired()
        .accounts
        .iter()
        .filter(|a| a.spoke.is_some())
        .count();

    let mut table =
        String::from("| step | changes | API calls | seconds |\n|---|---:|---:|---:|\n");
    // The first plan, against the brownfield.
    let aws = Aws::new(&sdk, &file.spoke_deployment.admin_role);
    let started = Instant::now();
    let planned = plan_org(&aws, &file, concurrency)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    writeln!(
        table,
        "| plan (everything to do) | {} | {} | {:.2} |",
        planned.plan.changes.len(),
        aws.calls(),
        started.elapsed().as_secs_f64()
    )?;

    // The apply.
    let aws = Aws::new(&sdk, &file.spoke_deployment.admin_role);
    let started = Instant::now();
    let options = ApplyOptions {
        concurrency,
        secrets_dir: Some(dir.path().join("secrets")),
    };
    let mut sink = Vec::new();
    let planned = plan_org(&aws, &file, concurrency)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    apply_changes(&aws, &file, &planned, &options, Output::Json, &mut sink)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    writeln!(
        table,
        "| apply (plan included) | {} | {} | {:.2} |",
        planned.plan.changes.len(),
        aws.calls(),
        started.elapsed().as_secs_f64()
    )?;

    // The steady state: nothing to do, every spoke's role and boundary checked.
    let aws = Aws::new(&sdk, &file.spoke_deployment.admin_role);
    let started = Instant::now();
    let planned = plan_org(&aws, &file, concurrency)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    anyhow::ensure!(
        planned.plan.changes.is_empty(),
        "the steady-state plan is not empty: {:?}",
        planned.plan.changes.first()
    );
    writeln!(
        table,
        "| plan (nothing to do) | 0 | {} | {:.2} |",
        aws.calls(),
        started.elapsed().as_secs_f64()
    )?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{accounts} accounts + the management account, {} OUs, {spokes} spokes, concurrency {concurrency}\n\n{table}",
        UNITS * 3
    )?;
    Ok(())
}
