//! The Organization as code, end to end against moto: `org init` reads a live organization of a dozen
//! accounts, the org file is reshaped into nested OUs with SCPs and spokes, `org plan` lists the changes,
//! `org apply` (failing midway, then re-run) makes them, a second apply is a no-op, and changes made behind
//! Causeway's back show in `org drift` and are put right by the next apply.
//!
//! Every check reads the live state through the real SDK clients; the spoke side is checked from inside the
//! spoke accounts (their IAM, through `OrganizationAccountAccessRole`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_sdk_organizations::types::{OrganizationFeatureSet, PolicyType};
use causeway_cli::{Cli, CliError, CliExit};
use causeway_testkit::moto::{MOTO_DEFAULT_ACCOUNT_ID, MotoServer, create_pk_table};
use clap::Parser;
use tokio::runtime::Runtime;

/// Runs `causeway <args>` against `sdk` (moto) and returns its exit code and output.
fn causeway(sdk: &SdkConfig, args: &[&str]) -> (CliExit, String) {
    let cli = Cli::try_parse_from(std::iter::once("causeway").chain(args.iter().copied())).unwrap();
    let mut out = Vec::new();
    let result = match cli.command {
        causeway_cli::Command::Org(command) => {
            causeway_cli::org::run_with_aws(command, cli.output, &mut out, Some(sdk))
        }
        causeway_cli::Command::Account(command) => {
            causeway_cli::account::run_with_aws(command, cli.output, &mut out, Some(sdk))
        }
        _ => {
            return (
                CliExit::Usage,
                format!("not an org or account command: {args:?}"),
            );
        }
    };
    let text = String::from_utf8(out).unwrap();
    match result {
        Ok(()) => (CliExit::Ok, text),
        Err(CliError { exit, message }) => (exit, format!("{text}\nerror: {message}")),
    }
}

async fn assume(base: &SdkConfig, account: &str) -> SdkConfig {
    let sts = aws_sdk_sts::Client::new(base);
    let assumed = sts
        .assume_role()
        .role_arn(format!(
            "arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
        ))
        .role_session_name("causeway-org-test")
        .send()
        .await
        .unwrap();
    let c = assumed.credentials().unwrap();
    base.clone()
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token().to_owned()),
                None,
                "test",
            )),
        )
        .build()
}

/// An organization as a customer has it before Causeway: a dozen accounts at the root and one legacy OU.
async fn brownfield(sdk: &SdkConfig) -> BTreeMap<String, String> {
    let org = aws_sdk_organizations::Client::new(sdk);
    org.create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let root = org.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_owned();
    org.create_organizational_unit()
        .parent_id(&root)
        .name("Legacy")
        .send()
        .await
        .unwrap();
    let mut accounts = BTreeMap::new();
    for name in [
        "payments-prod",
        "payments-dev",
        "claims-prod",
        "claims-dev",
        "risk-prod",
        "risk-dev",
        "data-lake",
        "analytics",
        "sandbox-1",
        "sandbox-2",
        "security-tooling",
        "log-archive",
    ] {
        let request = org
            .create_account()
            .account_name(name)
            .email(format!("{name}@example.com"))
            .send()
            .await
            .unwrap();
        let id = request
            .create_account_status()
            .unwrap()
            .id()
            .unwrap()
            .to_owned();
        let status = org
            .describe_create_account_status()
            .create_account_request_id(id)
            .send()
            .await
            .unwrap();
        accounts.insert(
            name.to_owned(),
            status
                .create_account_status()
                .unwrap()
                .account_id()
                .unwrap()
                .to_owned(),
        );
    }
    // The hub's spoke registry (the hub stack creates it on AWS).
    create_pk_table(sdk, "causeway-spoke-registry")
        .await
        .unwrap();
    accounts
}

/// The org file the platform team writes: nested OUs, SCPs at three levels, spokes under Workloads, and two
/// accounts to create.
fn desired_file(ids: &BTreeMap<String, String>) -> String {
    let account = |name: &str| format!("{{ id: \"{}\", name: {name} }}", ids[name]);
    format!(
        r#"version: 1
hub:
  account: "{MOTO_DEFAULT_ACCOUNT_ID}"
  region: us-east-1
  approved_regions: [us-east-1, us-east-2, us-west-2]
  api_id: a1b2c3d4e5
spoke_deployment:
  mode: assume_role
root:
  scps: [deny-leave-organization, protect-cloudtrail]
  accounts:
    - {{ id: "{MOTO_DEFAULT_ACCOUNT_ID}", name: master }}
  ous:
    - name: Legacy
    - name: Security
      accounts: [{security}, {log_archive}]
    - name: Workloads
      scps: [deny-direct-model-invocation, deny-bedrock-api-keys]
      spoke: {{ team: platform, applications: [assistant] }}
      ous:
        - name: Prod
          scps: [protect-spoke-role]
          accounts:
            - {{ id: "{pp}", name: payments-prod, spoke: {{ team: payments, applications: [fraud-summary, chat] }} }}
            - {claims_prod}
            - {risk_prod}
            - {{ name: lending-prod, email: lending-prod@example.com }}
        - name: Dev
          accounts: [{payments_dev}, {claims_dev}, {risk_dev}]
    - name: Data
      accounts: [{data_lake}, {analytics}]
    - name: Sandbox
      scps: [approved-regions]
      accounts: [{sandbox_1}, {sandbox_2}, {{ name: sandbox-3, email: sandbox-3@example.com }}]
"#,
        security = account("security-tooling"),
        log_archive = account("log-archive"),
        pp = ids["payments-prod"],
        claims_prod = account("claims-prod"),
        risk_prod = account("risk-prod"),
        payments_dev = account("payments-dev"),
        claims_dev = account("claims-dev"),
        risk_dev = account("risk-dev"),
        data_lake = account("data-lake"),
        analytics = account("analytics"),
        sandbox_1 = account("sandbox-1"),
        sandbox_2 = account("sandbox-2"),
    )
}

/// The Organizations policy names attached to a target.
/// `org apply` of the org file at `org`, writing invoker secrets under `secrets`.
fn org_apply(sdk: &SdkConfig, org: &str, secrets: &Path) -> (CliExit, String) {
    causeway(
        sdk,
        &[
            "org",
            "apply",
            "--org",
            org,
            "--secrets-dir",
            secrets.to_str().unwrap(),
        ],
    )
}

/// `org init` with the hub settings the tests' org files use, writing to `out`.
fn init_with_hub(sdk: &SdkConfig, out: &Path) -> (CliExit, String) {
    causeway(
        sdk,
        &[
            "org",
            "init",
            "--out",
            out.to_str().unwrap(),
            "--hub-api-id",
            "a1b2c3d4e5",
            "--approved-region",
            "us-east-1",
            "--approved-region",
            "us-east-2",
            "--approved-region",
            "us-west-2",
        ],
    )
}

async fn scps_on(org: &aws_sdk_organizations::Client, target: &str) -> BTreeSet<String> {
    org.list_policies_for_target()
        .target_id(target)
        .filter(PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap()
        .policies()
        .iter()
        .map(|p| p.name().unwrap().to_owned())
        .collect()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn init_plan_apply_rerun_and_drift_on_a_dozen_accounts() {
    let runtime = Runtime::new().unwrap();
    let moto = runtime.block_on(MotoServer::start()).unwrap();
    let sdk = runtime.block_on(moto.sdk_config());
    let ids = runtime.block_on(brownfield(&sdk));
    let dir = tempfile::tempdir().unwrap();

    // init: the live organization as a file.
    let init_path = dir.path().join("live.yaml");
    let (exit, text) = causeway(&sdk, &["org", "init", "--out", init_path.to_str().unwrap()]);
    assert_eq!(exit, CliExit::Ok, "{text}");
    let written = std::fs::read_to_string(&init_path).unwrap();
    assert!(
        !written.contains("null"),
        "unset fields are left out:\n{written}"
    );
    let live_file = causeway_cli::orgfile::OrgFile::load(&init_path).unwrap();
    let desired = live_file.desired();
    assert_eq!(
        desired.accounts.len(),
        13,
        "the dozen accounts and the management account"
    );
    assert!(desired.ous.iter().any(|o| o.path == ["Legacy"]));
    // The file as it is describes the organization exactly: nothing to do.
    let (exit, text) = causeway(&sdk, &["org", "plan", "--org", init_path.to_str().unwrap()]);
    assert_eq!(exit, CliExit::Ok, "{text}");
    assert!(text.contains("no changes"), "{text}");

    // plan: the reshaped file.
    let org_path = dir.path().join("org.yaml");
    write(&org_path, &desired_file(&ids));
    let org_arg = org_path.to_str().unwrap();
    let (exit, text) = causeway(&sdk, &["--output", "json", "org", "plan", "--org", org_arg]);
    assert_eq!(exit, CliExit::ChangesPending, "{text}");
    let plan: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let actions: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    let count = |action: &str| actions.iter().filter(|a| **a == action).count();
    assert_eq!(count("enable_scps"), 1);
    assert_eq!(
        count("create_ou"),
        6,
        "Security, Workloads, Prod, Dev, Data, Sandbox: {actions:?}"
    );
    assert_eq!(count("create_account"), 2);
    assert_eq!(count("move_account"), 12);
    assert_eq!(count("create_policy"), 6);
    // Spokes: everything under Workloads (3 prod + 1 new + 3 dev).
    assert_eq!(count("deploy_spoke_stack"), 7);
    assert_eq!(count("deploy_invoker"), 7);
    assert_eq!(count("register_spoke"), 7);
    assert!(plan["api_calls"].as_u64().unwrap() > 0);

    // apply, failing midway: the invoker roles' secrets cannot be written, so the waves before them are
    // made and the invoker and registry waves are not.
    let blocker = dir.path().join("not-a-directory");
    write(&blocker, "");
    let bad_secrets = blocker.join("secrets");
    let (exit, text) = org_apply(&sdk, org_arg, &bad_secrets);
    assert_eq!(exit, CliExit::Failure, "{text}");
    assert!(text.contains("FAILED deploy invoker role"), "{text}");
    assert!(text.contains("skipped register spoke"), "{text}");
    assert!(text.contains("run `causeway org apply` again"), "{text}");

    // The re-run plans only what is left, and finishes it.
    let (exit, text) = causeway(&sdk, &["--output", "json", "org", "plan", "--org", org_arg]);
    assert_eq!(exit, CliExit::ChangesPending, "{text}");
    let left: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let left: BTreeSet<&str> = left["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(left, BTreeSet::from(["deploy_invoker", "register_spoke"]));
    let secrets = dir.path().join("secrets");
    let (exit, text) = causeway(
        &sdk,
        &[
            "--output",
            "json",
            "org",
            "apply",
            "--org",
            org_arg,
            "--secrets-dir",
            secrets.to_str().unwrap(),
        ],
    );
    assert_eq!(exit, CliExit::Ok, "{text}");
    let summary: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["applied"], 14, "{text}");
    assert_eq!(summary["failed"], 0);
    for line in text.lines() {
        assert!(
            !line.contains("external_id\""),
            "no secret in the output: {line}"
        );
    }

    // Re-applying is a no-op.
    let (exit, text) = causeway(&sdk, &["org", "plan", "--org", org_arg]);
    assert_eq!(exit, CliExit::Ok, "{text}");
    assert!(text.contains("no changes"), "{text}");
    let (exit, text) = causeway(&sdk, &["org", "drift", "--org", org_arg]);
    assert_eq!(exit, CliExit::Ok, "{text}");

    // init on the Organization brought in line: the registered spokes come back as `spoke` blocks, so the
    // file it writes plans nothing, and above all offboards no spoke.
    let again_path = dir.path().join("again.yaml");
    let (exit, text) = causeway(
        &sdk,
        &["org", "init", "--out", again_path.to_str().unwrap()],
    );
    assert_eq!(exit, CliExit::Usage, "{text}");
    assert!(
        text.contains("has 7 spoke(s) `org apply` registered: pass --hub-api-id"),
        "{text}"
    );
    assert!(!again_path.exists(), "nothing is written");
    let (exit, text) = init_with_hub(&sdk, &again_path);
    assert_eq!(exit, CliExit::Ok, "{text}");
    assert!(text.contains("7 spokes"), "{text}");
    let again = causeway_cli::orgfile::OrgFile::load(&again_path).unwrap();
    assert_eq!(
        again.spoke_deployment.mode,
        causeway_cli::orgfile::DeploymentMode::AssumeRole,
        "no StackSet: the spoke stacks were made per account"
    );
    let spokes: BTreeMap<String, causeway_cli::orgfile::SpokeSettings> = again
        .desired()
        .accounts
        .into_iter()
        .filter_map(|a| Some((a.name, a.spoke?)))
        .collect();
    assert_eq!(
        spokes.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "claims-dev",
            "claims-prod",
            "lending-prod",
            "payments-dev",
            "payments-prod",
            "risk-dev",
            "risk-prod"
        ]
    );
    let payments_spoke = &spokes["payments-prod"];
    assert_eq!(payments_spoke.team.as_deref(), Some("payments"));
    assert_eq!(
        payments_spoke.applications.as_deref(),
        Some(&["chat".to_owned(), "fraud-summary".to_owned()][..])
    );
    assert_eq!(spokes["claims-dev"].team.as_deref(), Some("platform"));
    assert_eq!(
        spokes["claims-dev"].applications.as_deref(),
        Some(&["assistant".to_owned()][..])
    );
    let (exit, text) = causeway(
        &sdk,
        &[
            "--output",
            "json",
            "org",
            "plan",
            "--org",
            again_path.to_str().unwrap(),
        ],
    );
    let replanned: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let spoke_changes: Vec<&str> = replanned["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["summary"].as_str().unwrap())
        .filter(|s| {
            [
                "deregister spoke",
                "remove invoker role",
                "remove spoke role",
                "register spoke",
                "update spoke",
            ]
            .iter()
            .any(|verb| s.starts_with(verb))
        })
        .collect();
    assert_eq!(spoke_changes, Vec::<&str>::new(), "{text}");
    assert_eq!(exit, CliExit::Ok, "the whole plan is a no-op: {text}");
    assert_eq!(replanned["changes"], serde_json::json!([]), "{text}");

    // What was made, checked through the live APIs.
    let file = causeway_cli::orgfile::OrgFile::load(&org_path).unwrap();
    runtime.block_on(async {
        let org = aws_sdk_organizations::Client::new(&sdk);
        let root = org.list_roots().send().await.unwrap().roots()[0]
            .id()
            .unwrap()
            .to_owned();
        assert_eq!(
            scps_on(&org, &root).await,
            BTreeSet::from([
                "FullAWSAccess".to_owned(),
                "causeway-deny-leave-organization".to_owned(),
                "causeway-protect-cloudtrail".to_owned()
            ])
        );
        let workloads = org
            .list_organizational_units_for_parent()
            .parent_id(&root)
            .send()
            .await
            .unwrap()
            .organizational_units()
            .iter()
            .find(|ou| ou.name() == Some("Workloads"))
            .unwrap()
            .id()
            .unwrap()
            .to_owned();
        assert!(
            scps_on(&org, &workloads)
                .await
                .contains("causeway-deny-direct-model-invocation")
        );
        let prod = org
            .list_organizational_units_for_parent()
            .parent_id(&workloads)
            .send()
            .await
            .unwrap()
            .organizational_units()
            .iter()
            .find(|ou| ou.name() == Some("Prod"))
            .unwrap()
            .id()
            .unwrap()
            .to_owned();
        let in_prod: BTreeMap<String, String> = org
            .list_accounts_for_parent()
            .parent_id(&prod)
            .send()
            .await
            .unwrap()
            .accounts()
            .iter()
            .map(|a| (a.name().unwrap().to_owned(), a.id().unwrap().to_owned()))
            .collect();
        assert_eq!(
            in_prod.keys().map(String::as_str).collect::<Vec<_>>(),
            ["claims-prod", "lending-prod", "payments-prod", "risk-prod"],
            "moved and created accounts are in Prod"
        );
        let registry = aws_sdk_dynamodb::Client::new(&sdk);
        for (name, account) in &in_prod {
            // The spoke role with its boundary, seen from inside the spoke account.
            let inside = assume(&sdk, account).await;
            let role = aws_sdk_iam::Client::new(&inside)
                .get_role()
                .role_name("causeway-agent")
                .send()
                .await
                .unwrap();
            assert_eq!(
                role.role()
                    .unwrap()
                    .permissions_boundary()
                    .unwrap()
                    .permissions_boundary_arn(),
                Some(format!("arn:aws:iam::{account}:policy/causeway-agent-boundary").as_str()),
                "{name}"
            );
            // The invoker role in the hub trusts this spoke's agent role; the registry knows the spoke.
            let invoker = aws_sdk_iam::Client::new(&sdk)
                .get_role()
                .role_name(format!("causeway-invoker-{account}"))
                .send()
                .await
                .unwrap();
            assert!(invoker.role().is_some());
            let item = registry
                .get_item()
                .table_name("causeway-spoke-registry")
                .key(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S(file.invoker_role_arn(account)),
                )
                .send()
                .await
                .unwrap();
            let item = item.item().unwrap();
            assert_eq!(item["ou"].as_s().unwrap(), "workloads-prod");
            let team = if name == "payments-prod" {
                "payments"
            } else {
                "platform"
            };
            assert_eq!(item["team"].as_s().unwrap(), team);
            let secret =
                std::fs::read_to_string(secrets.join(format!("{account}.external-id"))).unwrap();
            assert_eq!(secret.len(), 64);
        }
    });

    // Behind Causeway's back: an SCP edited in the console, an account moved, a boundary detached.
    let payments = ids["payments-prod"].clone();
    let analytics = ids["analytics"].clone();
    runtime.block_on(async {
        let org = aws_sdk_organizations::Client::new(&sdk);
        let policies = org
            .list_policies()
            .filter(PolicyType::ServiceControlPolicy)
            .send()
            .await
            .unwrap();
        let cloudtrail = policies
            .policies()
            .iter()
            .find(|p| p.name() == Some("causeway-protect-cloudtrail"))
            .unwrap()
            .id()
            .unwrap()
            .to_owned();
        // Every SCP Causeway created carries the tag the admin role's permissions are scoped to.
        for policy in policies
            .policies()
            .iter()
            .filter(|p| p.name().is_some_and(|n| n.starts_with("causeway-")))
        {
            let tags = org
                .list_tags_for_resource()
                .resource_id(policy.id().unwrap())
                .send()
                .await
                .unwrap();
            assert!(
                tags.tags()
                    .iter()
                    .any(|t| t.key() == "causeway:managed-by" && t.value() == "causeway"),
                "{:?} is untagged",
                policy.name()
            );
        }
        org.update_policy()
            .policy_id(&cloudtrail)
            .content(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"cloudtrail:StopLogging","Resource":"*"}]}"#)
            .send()
            .await
            .unwrap();
        let root = org.list_roots().send().await.unwrap().roots()[0].id().unwrap().to_owned();
        let parent = org.list_parents().child_id(&analytics).send().await.unwrap().parents()[0]
            .id()
            .unwrap()
            .to_owned();
        org.move_account()
            .account_id(&analytics)
            .source_parent_id(&parent)
            .destination_parent_id(&root)
            .send()
            .await
            .unwrap();
        let inside = assume(&sdk, &payments).await;
        aws_sdk_iam::Client::new(&inside)
            .delete_role_permissions_boundary()
            .role_name("causeway-agent")
            .send()
            .await
            .unwrap();
    });
    let (exit, text) = causeway(&sdk, &["org", "drift", "--org", org_arg]);
    assert_eq!(exit, CliExit::DriftFound, "{text}");
    assert!(
        text.contains("SCP causeway-protect-cloudtrail was edited outside Causeway"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "account {analytics} (analytics) is in Root, the org file puts it in Root/Data"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "account {payments}: the agent role has no permission boundary"
        )),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("  ")).count(),
        3,
        "exactly the three changes: {text}"
    );

    // The next apply puts it right.
    let (exit, text) = org_apply(&sdk, org_arg, &secrets);
    assert_eq!(exit, CliExit::Ok, "{text}");
    let (exit, text) = causeway(&sdk, &["org", "drift", "--org", org_arg]);
    assert_eq!(exit, CliExit::Ok, "{text}");

    // risk-prod leaves the spokes (moved to Security): its registry entry, its invoker role and (assume_role
    // mode) its spoke role go, nothing else.
    let risk = ids["risk-prod"].clone();
    let reshaped = desired_file(&ids)
        .replace(
            &format!("            - {{ id: \"{risk}\", name: risk-prod }}\n"),
            "",
        )
        .replacen(
            "      accounts: [{ id: \"",
            &format!("      accounts: [{{ id: \"{risk}\", name: risk-prod }}, {{ id: \""),
            1,
        );
    assert_ne!(reshaped, desired_file(&ids));
    write(&org_path, &reshaped);
    let (exit, text) = causeway(&sdk, &["--output", "json", "org", "plan", "--org", org_arg]);
    assert_eq!(exit, CliExit::ChangesPending, "{text}");
    let plan: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let summaries: BTreeSet<String> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["summary"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        summaries.contains(&format!(
            "deregister spoke {risk}: no longer a spoke in the org file"
        )),
        "{summaries:?}"
    );
    assert!(
        summaries.contains(&format!(
            "remove invoker role {risk}: no longer a spoke in the org file"
        )),
        "{summaries:?}"
    );
    assert!(
        summaries.contains(&format!(
            "remove spoke role {risk}: no longer a spoke in the org file"
        )),
        "{summaries:?}"
    );
    assert_eq!(
        summaries.len(),
        4,
        "the move, the entry, the invoker role and the spoke role: {summaries:?}"
    );
    let (exit, text) = causeway(&sdk, &["org", "drift", "--org", org_arg]);
    assert_eq!(exit, CliExit::DriftFound, "{text}");
    assert!(
        text.contains(&format!(
            "account {risk} still has the spoke role stack but the org file no longer makes it a spoke"
        )),
        "{text}"
    );
    let (exit, text) = org_apply(&sdk, org_arg, &secrets);
    assert_eq!(exit, CliExit::Ok, "{text}");
    runtime.block_on(async {
        let item = aws_sdk_dynamodb::Client::new(&sdk)
            .get_item()
            .table_name("causeway-spoke-registry")
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(file.invoker_role_arn(&risk)),
            )
            .send()
            .await
            .unwrap();
        assert!(
            item.item().is_none(),
            "the hub no longer knows risk-prod's principal"
        );
        let role = aws_sdk_iam::Client::new(&sdk)
            .get_role()
            .role_name(format!("causeway-invoker-{risk}"))
            .send()
            .await;
        assert!(role.is_err(), "the invoker role is gone");
        // Seen from inside risk-prod: the spoke stack is deleted, and with it the agent role.
        let inside = assume(&sdk, &risk).await;
        let stack = aws_sdk_cloudformation::Client::new(&inside)
            .describe_stacks()
            .stack_name("causeway-spoke")
            .send()
            .await;
        match &stack {
            Ok(out) => assert!(
                out.stacks().iter().all(|s| s.stack_status()
                    == Some(&aws_sdk_cloudformation::types::StackStatus::DeleteComplete)),
                "the spoke stack is deleted: {out:?}"
            ),
            Err(e) => assert!(
                aws_smithy_types::error::display::DisplayErrorContext(e)
                    .to_string()
                    .contains("does not exist"),
                "the spoke stack is deleted: {e:?}"
            ),
        }
        let iam = aws_sdk_iam::Client::new(&inside);
        let agent = iam.get_role().role_name("causeway-agent").send().await;
        assert!(
            agent
                .as_ref()
                .err()
                .and_then(|e| e.as_service_error())
                .is_some_and(|e| e.is_no_such_entity_exception()),
            "the agent role is gone: {agent:?}"
        );
        // The boundary policy goes with its stack (tests/moto_server.py gives moto CloudFormation's deletion of
        // managed policies).
        let boundary = iam
            .get_policy()
            .policy_arn(format!(
                "arn:aws:iam::{risk}:policy/causeway-agent-boundary"
            ))
            .send()
            .await;
        assert!(
            boundary
                .as_ref()
                .err()
                .and_then(|e| e.as_service_error())
                .is_some_and(|e| e.is_no_such_entity_exception()),
            "the boundary policy is gone: {boundary:?}"
        );
    });
    let (exit, text) = causeway(&sdk, &["org", "plan", "--org", org_arg]);
    assert_eq!(exit, CliExit::Ok, "{text}");
    assert!(text.contains("no changes"), "{text}");
    let (exit, text) = causeway(&sdk, &["org", "drift", "--org", org_arg]);
    assert_eq!(exit, CliExit::Ok, "{text}");
}

#[test]
fn a_bad_org_file_is_refused_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("org.yaml");
    write(
        &path,
        "version: 1\nhub: { account: \"1234\", region: us-east-1, approved_regions: [us-east-1] }\nroot: {}\n",
    );
    // No endpoint is reachable: the file is refused before anything is called.
    let sdk = Runtime::new()
        .unwrap()
        .block_on(causeway_testkit::moto::local_sdk_config(
            "http://127.0.0.1:9",
        ));
    let (exit, text) = causeway(&sdk, &["org", "plan", "--org", path.to_str().unwrap()]);
    assert_eq!(exit, CliExit::Usage, "{text}");
    assert!(
        text.contains("`hub.account` \"1234\" is not a 12-digit account id"),
        "{text}"
    );
}

#[test]
fn account_create_and_onboard_touch_only_their_account() {
    let runtime = Runtime::new().unwrap();
    let moto = runtime.block_on(MotoServer::start()).unwrap();
    let sdk = runtime.block_on(moto.sdk_config());
    let ids = runtime.block_on(brownfield(&sdk));
    let dir = tempfile::tempdir().unwrap();
    let org_path = dir.path().join("org.toml");
    let (claims, risk) = (&ids["claims-prod"], &ids["risk-prod"]);
    write(
        &org_path,
        &format!(
            r#"version = 1
[hub]
account = "{MOTO_DEFAULT_ACCOUNT_ID}"
region = "us-east-1"
approved_regions = ["us-east-1", "us-east-2", "us-west-2"]
api_id = "a1b2c3d4e5"
[spoke_deployment]
mode = "assume_role"
[[root.ous]]
name = "Workloads"
scps = ["deny-direct-model-invocation"]
spoke = {{ team = "platform", applications = ["assistant"] }}
accounts = [
  {{ id = "{claims}", name = "claims-prod", scps = ["protect-spoke-role"] }},
  {{ id = "{risk}", name = "risk-prod" }},
  {{ name = "lending-prod", email = "lending-prod@example.com" }},
]
"#
        ),
    );
    let org_arg = org_path.to_str().unwrap();
    let secrets = dir.path().join("secrets");

    // create: the new account exists, in its OU, and nothing else changed.
    let (exit, text) = causeway(
        &sdk,
        &[
            "account",
            "create",
            "--org",
            org_arg,
            "--name",
            "lending-prod",
        ],
    );
    assert_eq!(exit, CliExit::Ok, "{text}");
    assert!(text.contains("create account lending-prod"), "{text}");
    assert!(
        !text.contains("attach SCP"),
        "create does only creating: {text}"
    );
    let (exit, text) = causeway(
        &sdk,
        &[
            "account",
            "create",
            "--org",
            org_arg,
            "--name",
            "lending-prod",
        ],
    );
    assert_eq!(exit, CliExit::Ok, "{text}");
    assert!(text.contains("exists already"), "{text}");

    // onboard: claims-prod is moved, gets its SCPs, spoke role with boundary, invoker role, registry entry.
    let (exit, text) = causeway(
        &sdk,
        &[
            "account",
            "onboard",
            "--org",
            org_arg,
            "--account",
            claims,
            "--secrets-dir",
            secrets.to_str().unwrap(),
        ],
    );
    assert_eq!(exit, CliExit::Ok, "{text}");
    runtime.block_on(async {
        let org = aws_sdk_organizations::Client::new(&sdk);
        let scps = scps_on(&org, claims).await;
        assert!(scps.contains("causeway-protect-spoke-role"), "{scps:?}");
        let inside = assume(&sdk, claims).await;
        let role = aws_sdk_iam::Client::new(&inside)
            .get_role()
            .role_name("causeway-agent")
            .send()
            .await
            .unwrap();
        assert!(role.role().unwrap().permissions_boundary().is_some());
        // risk-prod, in the same OU in the file, was not touched: still at the root, no spoke role.
        let parent = org
            .list_parents()
            .child_id(risk)
            .send()
            .await
            .unwrap()
            .parents()[0]
            .id()
            .unwrap()
            .to_owned();
        let root = org.list_roots().send().await.unwrap().roots()[0]
            .id()
            .unwrap()
            .to_owned();
        assert_eq!(parent, root);
        let inside = assume(&sdk, risk).await;
        assert!(
            aws_sdk_iam::Client::new(&inside)
                .get_role()
                .role_name("causeway-agent")
                .send()
                .await
                .is_err()
        );
    });
    assert!(secrets.join(format!("{claims}.external-id")).exists());

    // Onboarding again has nothing to do; an account the file does not name is refused with a hint.
    let (exit, text) = causeway(
        &sdk,
        &[
            "account",
            "onboard",
            "--org",
            org_arg,
            "--account",
            claims,
            "--secrets-dir",
            secrets.to_str().unwrap(),
        ],
    );
    assert_eq!(exit, CliExit::Ok, "{text}");
    assert!(text.contains("0 of 0 change(s) applied"), "{text}");
    let (exit, text) = causeway(
        &sdk,
        &[
            "account",
            "onboard",
            "--org",
            org_arg,
            "--account",
            &ids["analytics"],
        ],
    );
    assert_eq!(exit, CliExit::Usage, "{text}");
    assert!(text.contains("add it to the org file first"), "{text}");
}

#[test]
fn stackset_mode_deploys_the_spoke_stackset_to_the_spoke_ous() {
    let runtime = Runtime::new().unwrap();
    let moto = runtime.block_on(MotoServer::start()).unwrap();
    let sdk = runtime.block_on(moto.sdk_config());
    let ids = runtime.block_on(brownfield(&sdk));
    let dir = tempfile::tempdir().unwrap();
    let org_path = dir.path().join("org.yaml");
    write(
        &org_path,
        &format!(
            r#"version: 1
hub: {{ account: "{MOTO_DEFAULT_ACCOUNT_ID}", region: us-east-1, approved_regions: [us-east-1, us-east-2, us-west-2], api_id: a1b2c3d4e5 }}
root:
  ous:
    - name: Workloads
      spoke: {{ team: platform, applications: [assistant] }}
      accounts:
        - {{ id: "{a}", name: claims-prod }}
        - {{ id: "{b}", name: risk-prod }}
"#,
            a = ids["claims-prod"],
            b = ids["risk-prod"]
        ),
    );
    let org_arg = org_path.to_str().unwrap();
    let secrets = dir.path().join("secrets");
    let (exit, text) = org_apply(&sdk, org_arg, &secrets);
    assert_eq!(exit, CliExit::Ok, "{text}");
    assert!(
        text.contains("deploy spoke StackSet create, deploy to Root/Workloads"),
        "{text}"
    );
    runtime.block_on(async {
        let cfn = aws_sdk_cloudformation::Client::new(&sdk);
        let set = cfn
            .describe_stack_set()
            .stack_set_name("causeway-spoke")
            .send()
            .await
            .unwrap();
        let set = set.stack_set().unwrap();
        assert_eq!(
            set.permission_model(),
            Some(&aws_sdk_cloudformation::types::PermissionModels::ServiceManaged)
        );
        let instances = cfn
            .list_stack_instances()
            .stack_set_name("causeway-spoke")
            .send()
            .await
            .unwrap();
        let accounts: BTreeSet<&str> = instances
            .summaries()
            .iter()
            .filter_map(|i| i.account())
            .collect();
        assert_eq!(
            accounts,
            BTreeSet::from([ids["claims-prod"].as_str(), ids["risk-prod"].as_str()]),
            "one instance per account of the OU"
        );
        // The instance's resources: the agent role with its boundary, in the spoke account.
        let inside = assume(&sdk, &ids["claims-prod"]).await;
        let role = aws_sdk_iam::Client::new(&inside)
            .get_role()
            .role_name("causeway-agent")
            .send()
            .await
            .unwrap();
        assert!(role.role().unwrap().permissions_boundary().is_some());
    });
    // Re-applying has nothing to do.
    let (exit, text) = causeway(&sdk, &["org", "plan", "--org", org_arg]);
    assert_eq!(exit, CliExit::Ok, "{text}");
    assert!(text.contains("no changes"), "{text}");

    // init finds the StackSet: the OU it deploys to gets a `spoke` block, each spoke its own settings, and the
    // file it writes plans nothing.
    let again_path = dir.path().join("again.toml");
    let again_arg = again_path.to_str().unwrap();
    let (exit, text) = init_with_hub(&sdk, &again_path);
    assert_eq!(exit, CliExit::Ok, "{text}");
    let again = causeway_cli::orgfile::OrgFile::load(&again_path).unwrap();
    assert_eq!(
        again.spoke_deployment.mode,
        causeway_cli::orgfile::DeploymentMode::Stackset
    );
    let workloads = again
        .root
        .ous
        .iter()
        .find(|ou| ou.name == "Workloads")
        .unwrap();
    assert!(workloads.spoke.is_some(), "{workloads:?}");
    for account in &workloads.accounts {
        let spoke = account.spoke.as_ref().unwrap();
        assert_eq!(spoke.team.as_deref(), Some("platform"), "{account:?}");
        assert_eq!(
            spoke.applications.as_deref(),
            Some(&["assistant".to_owned()][..])
        );
    }
    let (exit, text) = causeway(&sdk, &["org", "plan", "--org", again_arg]);
    assert_eq!(exit, CliExit::Ok, "{text}");
    assert!(text.contains("no changes"), "{text}");
}

#[test]
fn init_without_a_hub_writes_no_spokes() {
    let runtime = Runtime::new().unwrap();
    let moto = runtime.block_on(MotoServer::start()).unwrap();
    let sdk = runtime.block_on(moto.sdk_config());
    runtime.block_on(async {
        aws_sdk_organizations::Client::new(&sdk)
            .create_organization()
            .feature_set(OrganizationFeatureSet::All)
            .send()
            .await
            .unwrap();
    });
    // No registry table: nothing is registered, and init does not need the hub's API id.
    let (exit, text) = causeway(&sdk, &["org", "init", "--region", "us-east-1"]);
    assert_eq!(exit, CliExit::Ok, "{text}");
    let file = causeway_cli::orgfile::OrgFile::parse("org.yaml", &text).unwrap();
    assert!(file.desired().accounts.iter().all(|a| a.spoke.is_none()));
    assert!(!text.contains("spoke:"), "{text}");
}
