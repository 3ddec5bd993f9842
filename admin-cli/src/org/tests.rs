//! Plan, apply and drift over an in-memory Organization ([`FakeOrg`]): what the logic decides, without AWS.
//! The adapter over the real SDK is covered against moto by the end-to-end tests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::admin::{
    AccountCreation, AccountSummary, Fault, InAccount, OperationState, OrgAdmin, OrgError,
    Organization, OuSummary, PolicySummary, PolicyText, RegistryItem, Root, StackInstance,
    StackRequest, StackSetRequest, StackStatus, StackSummary,
};
use super::apply::{self, ApplyOptions, Outcome};
use super::live::{ReadOptions, RoleState};
use super::plan::Change;
use super::{Planned, plan_org};
use crate::orgfile::OrgFile;
use crate::{CliExit, Output};

const MANAGEMENT: &str = "111111111111";
const PAYMENTS: &str = "222222222222";
const CLAIMS: &str = "333333333333";
const ROOT: &str = "r-root";
const TABLE: &str = "causeway-spoke-registry";

// === the fake ===

#[derive(Debug, Default)]
struct State {
    /// OU id → (parent id, name).
    ous: BTreeMap<String, (String, String)>,
    /// Account id → (parent id, name, e-mail).
    accounts: BTreeMap<String, (String, String, String)>,
    scp_enabled: bool,
    /// Policy id → (name, document, targets).
    policies: BTreeMap<String, (String, String, BTreeSet<String>)>,
    /// (account, stack name) → status.
    stacks: BTreeMap<(String, String), StackStatus>,
    /// (account, role) → boundary ARN.
    roles: BTreeMap<(String, String), Option<String>>,
    /// Managed policy ARNs.
    iam_policies: BTreeSet<String>,
    /// Registry items by `pk`.
    registry: BTreeMap<String, RegistryItem>,
    /// Account creation requests → the account they made.
    creations: BTreeMap<String, String>,
    /// Operations that fail, by method name.
    failing: BTreeSet<&'static str>,
    /// Every call, in order: method name and its first argument.
    log: Vec<String>,
    next_id: u64,
}

/// An Organization in memory: the management account at the root, SCPs enabled or not, and whatever the
/// calls make. A spoke stack created in an account brings the agent role with the Causeway boundary, as the
/// spoke template does.
#[derive(Debug, Default)]
struct FakeOrg {
    state: Mutex<State>,
}

impl FakeOrg {
    fn new() -> Self {
        let fake = Self::default();
        fake.with(|s| {
            s.accounts.insert(
                MANAGEMENT.to_owned(),
                (
                    ROOT.to_owned(),
                    "management".to_owned(),
                    "m@example.com".to_owned(),
                ),
            );
            s.next_id = 100;
        });
        fake
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    fn add_account(&self, id: &str, name: &str) {
        self.with(|s| {
            s.accounts.insert(
                id.to_owned(),
                (
                    ROOT.to_owned(),
                    name.to_owned(),
                    format!("{name}@example.com"),
                ),
            );
        });
    }

    fn add_ou(&self, parent: &str, name: &str) -> String {
        self.with(|s| {
            s.next_id += 1;
            let id = format!("ou-{}", s.next_id);
            s.ous
                .insert(id.clone(), (parent.to_owned(), name.to_owned()));
            id
        })
    }

    fn ou_named(&self, name: &str) -> String {
        self.with(|s| {
            s.ous
                .iter()
                .find(|(_, (_, n))| n == name)
                .map(|(id, _)| id.clone())
                .unwrap()
        })
    }

    fn policy_named(&self, name: &str) -> String {
        self.with(|s| {
            s.policies
                .iter()
                .find(|(_, (n, _, _))| n == name)
                .map(|(id, _)| id.clone())
                .unwrap()
        })
    }

    fn parent_of(&self, account: &str) -> String {
        self.with(|s| s.accounts[account].0.clone())
    }

    fn fail(&self, operation: &'static str) {
        self.with(|s| s.failing.insert(operation));
    }

    fn heal(&self) {
        self.with(|s| s.failing.clear());
    }

    fn log(&self) -> Vec<String> {
        self.with(|s| s.log.clone())
    }

    /// Logs the call and fails it when it is set to fail.
    fn call(&self, operation: &'static str, argument: &str) -> Result<(), OrgError> {
        self.with(|s| {
            s.log.push(format!("{operation} {argument}"));
            if s.failing.contains(operation) {
                Err(OrgError::call(
                    format!("fake:{operation}"),
                    Fault::Other,
                    "ServiceUnavailable: try later",
                ))
            } else {
                Ok(())
            }
        })
    }
}

fn not_found(operation: &str) -> OrgError {
    OrgError::call(operation, Fault::NotFound, "it does not exist")
}

#[async_trait]
impl OrgAdmin for FakeOrg {
    fn backoff(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn calls(&self) -> u64 {
        self.with(|s| s.log.len() as u64)
    }

    async fn organization(&self) -> Result<Organization, OrgError> {
        self.call("organization", "")?;
        Ok(Organization {
            id: "o-fake".to_owned(),
            management_account: MANAGEMENT.to_owned(),
        })
    }

    async fn root(&self) -> Result<Root, OrgError> {
        self.call("root", "")?;
        Ok(Root {
            id: ROOT.to_owned(),
            scp_enabled: self.with(|s| s.scp_enabled),
        })
    }

    async fn ous_under(&self, parent: &str) -> Result<Vec<OuSummary>, OrgError> {
        self.call("ous_under", parent)?;
        Ok(self.with(|s| {
            s.ous
                .iter()
                .filter(|(_, (p, _))| p == parent)
                .map(|(id, (_, name))| OuSummary {
                    id: id.clone(),
                    name: name.clone(),
                })
                .collect()
        }))
    }

    async fn accounts_under(&self, parent: &str) -> Result<Vec<AccountSummary>, OrgError> {
        self.call("accounts_under", parent)?;
        Ok(self.with(|s| {
            s.accounts
                .iter()
                .filter(|(_, (p, _, _))| p == parent)
                .map(|(id, (_, name, email))| AccountSummary {
                    id: id.clone(),
                    name: name.clone(),
                    email: email.clone(),
                })
                .collect()
        }))
    }

    async fn scps(&self) -> Result<Vec<PolicySummary>, OrgError> {
        self.call("scps", "")?;
        Ok(self.with(|s| {
            s.policies
                .iter()
                .map(|(id, (name, _, _))| PolicySummary {
                    id: id.clone(),
                    name: name.clone(),
                })
                .collect()
        }))
    }

    async fn scp_targets(&self, policy_id: &str) -> Result<BTreeSet<String>, OrgError> {
        self.call("scp_targets", policy_id)?;
        Ok(self.with(|s| s.policies[policy_id].2.clone()))
    }

    async fn scp_document(&self, policy_id: &str) -> Result<Option<String>, OrgError> {
        self.call("scp_document", policy_id)?;
        Ok(self.with(|s| Some(s.policies[policy_id].1.clone())))
    }

    async fn enable_scps(&self, root_id: &str) -> Result<(), OrgError> {
        self.call("enable_scps", root_id)?;
        self.with(|s| s.scp_enabled = true);
        Ok(())
    }

    async fn create_ou(&self, parent_id: &str, name: &str) -> Result<String, OrgError> {
        self.call("create_ou", name)?;
        let exists = self.with(|s| s.ous.values().any(|(p, n)| p == parent_id && n == name));
        if exists {
            return Err(OrgError::call(
                "organizations:CreateOrganizationalUnit",
                Fault::AlreadyExists,
                "DuplicateOrganizationalUnitException",
            ));
        }
        Ok(self.add_ou(parent_id, name))
    }

    async fn invite_account(&self, account: &str) -> Result<String, OrgError> {
        self.call("invite_account", account)?;
        Ok("h-1".to_owned())
    }

    async fn create_account(&self, name: &str, email: &str) -> Result<String, OrgError> {
        self.call("create_account", name)?;
        Ok(self.with(|s| {
            s.next_id += 1;
            let id = format!("{:012}", 444_444_444_000 + s.next_id);
            s.accounts.insert(
                id.clone(),
                (ROOT.to_owned(), name.to_owned(), email.to_owned()),
            );
            let request = format!("car-{}", s.next_id);
            s.creations.insert(request.clone(), id);
            request
        }))
    }

    async fn account_creation(&self, request_id: &str) -> Result<AccountCreation, OrgError> {
        self.call("account_creation", request_id)?;
        Ok(AccountCreation::Succeeded(
            self.with(|s| s.creations.get(request_id).cloned()),
        ))
    }

    async fn move_account(&self, account: &str, from: &str, to: &str) -> Result<(), OrgError> {
        self.call("move_account", account)?;
        self.with(|s| {
            let entry = s.accounts.get_mut(account).unwrap();
            assert_eq!(entry.0, from, "moved from where it is");
            entry.0 = to.to_owned();
        });
        Ok(())
    }

    async fn create_scp(&self, policy: PolicyText<'_>, _tag: &str) -> Result<String, OrgError> {
        self.call("create_scp", policy.name)?;
        Ok(self.with(|s| {
            s.next_id += 1;
            let id = format!("p-{}", s.next_id);
            s.policies.insert(
                id.clone(),
                (
                    policy.name.to_owned(),
                    policy.document.to_owned(),
                    BTreeSet::new(),
                ),
            );
            id
        }))
    }

    async fn update_scp(&self, policy_id: &str, policy: PolicyText<'_>) -> Result<(), OrgError> {
        self.call("update_scp", policy_id)?;
        self.with(|s| {
            s.policies.get_mut(policy_id).unwrap().1 = policy.document.to_owned();
        });
        Ok(())
    }

    async fn attach_scp(&self, policy_id: &str, target_id: &str) -> Result<(), OrgError> {
        self.call("attach_scp", policy_id)?;
        let added = self.with(|s| {
            s.policies
                .get_mut(policy_id)
                .unwrap()
                .2
                .insert(target_id.to_owned())
        });
        if added {
            Ok(())
        } else {
            Err(OrgError::call(
                "organizations:AttachPolicy",
                Fault::AlreadyAttached,
                "DuplicatePolicyAttachmentException",
            ))
        }
    }

    async fn detach_scp(&self, policy_id: &str, target_id: &str) -> Result<(), OrgError> {
        self.call("detach_scp", policy_id)?;
        self.with(|s| s.policies.get_mut(policy_id).unwrap().2.remove(target_id));
        Ok(())
    }

    async fn delete_scp(&self, policy_id: &str) -> Result<(), OrgError> {
        self.call("delete_scp", policy_id)?;
        self.with(|s| s.policies.remove(policy_id));
        Ok(())
    }

    async fn stack_set_instances(
        &self,
        name: &str,
    ) -> Result<Option<Vec<StackInstance>>, OrgError> {
        self.call("stack_set_instances", name)?;
        Ok(None)
    }

    async fn create_stack_set(&self, request: StackSetRequest<'_>) -> Result<(), OrgError> {
        self.call("create_stack_set", request.name)
    }

    async fn create_stack_instances(
        &self,
        name: &str,
        _ou_ids: &[String],
        _region: &str,
    ) -> Result<String, OrgError> {
        self.call("create_stack_instances", name)?;
        Ok("op-1".to_owned())
    }

    async fn stack_set_operation(
        &self,
        name: &str,
        _operation_id: &str,
    ) -> Result<OperationState, OrgError> {
        self.call("stack_set_operation", name)?;
        Ok(OperationState::Succeeded)
    }

    async fn stack_status(
        &self,
        at: InAccount<'_>,
        name: &str,
    ) -> Result<Option<StackStatus>, OrgError> {
        self.call("stack_status", at.account)?;
        self.with(|s| {
            s.stacks
                .get(&(at.account.to_owned(), name.to_owned()))
                .cloned()
                .map(Some)
                .ok_or_else(|| not_found("cloudformation:DescribeStacks"))
        })
    }

    async fn stacks(&self, at: InAccount<'_>) -> Result<Vec<StackSummary>, OrgError> {
        self.call("stacks", at.account)?;
        Ok(self.with(|s| {
            s.stacks
                .iter()
                .filter(|((account, _), _)| account == at.account)
                .map(|((_, name), status)| StackSummary {
                    name: name.clone(),
                    status: status.clone(),
                })
                .collect()
        }))
    }

    async fn create_stack(
        &self,
        at: InAccount<'_>,
        request: StackRequest<'_>,
    ) -> Result<(), OrgError> {
        self.call("create_stack", at.account)?;
        self.with(|s| {
            let key = (at.account.to_owned(), request.name.to_owned());
            s.stacks.insert(key, StackStatus::CreateComplete);
            if request.template == apply::SPOKE_TEMPLATE {
                let boundary =
                    format!("arn:aws:iam::{}:policy/causeway-agent-boundary", at.account);
                s.iam_policies.insert(boundary.clone());
                s.roles.insert(
                    (at.account.to_owned(), "causeway-agent".to_owned()),
                    Some(boundary),
                );
            }
        });
        Ok(())
    }

    async fn delete_stack(&self, at: InAccount<'_>, name: &str) -> Result<(), OrgError> {
        self.call("delete_stack", at.account)?;
        self.with(|s| s.stacks.remove(&(at.account.to_owned(), name.to_owned())));
        Ok(())
    }

    async fn role_boundary(
        &self,
        at: InAccount<'_>,
        role: &str,
    ) -> Result<Option<String>, OrgError> {
        self.call("role_boundary", at.account)?;
        self.with(|s| {
            s.roles
                .get(&(at.account.to_owned(), role.to_owned()))
                .cloned()
                .ok_or_else(|| not_found("iam:GetRole"))
        })
    }

    async fn managed_policy(&self, at: InAccount<'_>, arn: &str) -> Result<(), OrgError> {
        self.call("managed_policy", at.account)?;
        if self.with(|s| s.iam_policies.contains(arn)) {
            Ok(())
        } else {
            Err(not_found("iam:GetPolicy"))
        }
    }

    async fn put_role_boundary(
        &self,
        at: InAccount<'_>,
        role: &str,
        boundary_arn: &str,
    ) -> Result<(), OrgError> {
        self.call("put_role_boundary", at.account)?;
        self.with(|s| {
            s.roles.insert(
                (at.account.to_owned(), role.to_owned()),
                Some(boundary_arn.to_owned()),
            )
        });
        Ok(())
    }

    async fn managed_registry_items(
        &self,
        at: InAccount<'_>,
        table: &str,
        _projection: Option<&str>,
    ) -> Result<Option<Vec<RegistryItem>>, OrgError> {
        self.call("managed_registry_items", at.account)?;
        assert_eq!(table, TABLE);
        Ok(Some(self.with(|s| s.registry.values().cloned().collect())))
    }

    async fn registry_items(
        &self,
        at: InAccount<'_>,
        _table: &str,
        principals: &[String],
    ) -> Result<Vec<RegistryItem>, OrgError> {
        self.call("registry_items", at.account)?;
        Ok(self.with(|s| {
            principals
                .iter()
                .filter_map(|p| s.registry.get(p).cloned())
                .collect()
        }))
    }

    async fn put_registry_item(
        &self,
        at: InAccount<'_>,
        _table: &str,
        item: RegistryItem,
    ) -> Result<(), OrgError> {
        self.call("put_registry_item", at.account)?;
        let pk = item
            .get("pk")
            .and_then(|pk| pk.as_s())
            .map(str::to_owned)
            .expect("a registry item has its key");
        self.with(|s| s.registry.insert(pk, item));
        Ok(())
    }

    async fn delete_managed_registry_item(
        &self,
        at: InAccount<'_>,
        _table: &str,
        principal: &str,
    ) -> Result<(), OrgError> {
        self.call("delete_managed_registry_item", at.account)?;
        match self.with(|s| s.registry.remove(principal)) {
            Some(_) => Ok(()),
            None => Err(OrgError::call(
                "dynamodb:DeleteItem",
                Fault::ConditionFailed,
                "ConditionalCheckFailedException",
            )),
        }
    }

    async fn enter(&self, at: InAccount<'_>) -> Result<(), OrgError> {
        self.call("enter", at.account)
    }
}

// === the tests ===

/// SCPs at the root and on an OU, an account to move, one to create, and one spoke deployed per account.
fn org_file() -> OrgFile {
    OrgFile::parse(
        "org.yaml",
        &format!(
            r#"version: 1
hub:
  account: "{MANAGEMENT}"
  region: us-east-1
  approved_regions: [us-east-1]
  api_id: a1b2c3d4e5
spoke_deployment:
  mode: assume_role
root:
  scps: [deny-leave-organization]
  accounts:
    - {{ id: "{MANAGEMENT}", name: management }}
  ous:
    - name: Workloads
      scps: [deny-direct-model-invocation]
      accounts:
        - {{ id: "{PAYMENTS}", name: payments, spoke: {{ team: payments, applications: [chat] }} }}
        - {{ id: "{CLAIMS}", name: claims }}
        - {{ name: lending, email: lending@example.com }}
"#
        ),
    )
    .unwrap()
}

fn fake() -> FakeOrg {
    let fake = FakeOrg::new();
    fake.add_account(PAYMENTS, "payments");
    fake.add_account(CLAIMS, "claims");
    fake
}

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn planned(fake: &FakeOrg, file: &OrgFile) -> Planned {
    run(plan_org(fake, file, 4)).unwrap()
}

fn run_apply(
    fake: &FakeOrg,
    file: &OrgFile,
    planned: &Planned,
    secrets: &std::path::Path,
) -> Vec<(Change, Outcome)> {
    let options = ApplyOptions {
        concurrency: 4,
        secrets_dir: Some(secrets.to_owned()),
    };
    run(apply::apply(
        fake,
        file,
        &planned.policies,
        &planned.live,
        &planned.plan,
        &options,
        &mut |_, _| {},
    ))
}

fn actions(changes: &[Change]) -> BTreeSet<String> {
    changes
        .iter()
        .map(|c| format!("{} {}", c.verb(), c.detail()))
        .collect()
}

#[test]
fn apply_makes_what_the_plan_says_and_then_nothing_is_left() {
    let fake = fake();
    let file = org_file();
    let secrets = tempfile::tempdir().unwrap();
    let first = planned(&fake, &file);
    assert!(!first.plan.changes.is_empty());

    let results = run_apply(&fake, &file, &first, secrets.path());
    let failed: Vec<_> = results
        .iter()
        .filter(|(_, o)| !matches!(o, Outcome::Applied(_)))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");

    let workloads = fake.ou_named("Workloads");
    assert_eq!(fake.parent_of(PAYMENTS), workloads);
    assert_eq!(fake.parent_of(CLAIMS), workloads);
    let lending = fake.with(|s| {
        s.accounts
            .iter()
            .find(|(_, (_, name, _))| name == "lending")
            .map(|(id, (parent, _, _))| (id.clone(), parent.clone()))
            .unwrap()
    });
    assert_eq!(lending.1, workloads, "the new account is moved into its OU");
    let targets = |name: &str| fake.with(|s| s.policies[&fake_id(s, name)].2.clone());
    assert_eq!(
        targets("causeway-deny-leave-organization"),
        BTreeSet::from([ROOT.to_owned()])
    );
    assert_eq!(
        targets("causeway-deny-direct-model-invocation"),
        BTreeSet::from([workloads])
    );
    let principal = file.invoker_role_arn(PAYMENTS);
    assert!(fake.with(|s| s.registry.contains_key(&principal)));
    assert!(
        secrets
            .path()
            .join(format!("{PAYMENTS}.external-id"))
            .exists()
    );

    let again = planned(&fake, &file);
    assert_eq!(actions(&again.plan.changes), BTreeSet::new());
}

fn fake_id(state: &State, name: &str) -> String {
    state
        .policies
        .iter()
        .find(|(_, (n, _, _))| n == name)
        .map(|(id, _)| id.clone())
        .unwrap()
}

#[test]
fn a_failure_midway_is_reported_and_a_rerun_finishes_only_what_is_left() {
    let fake = fake();
    let file = org_file();
    let secrets = tempfile::tempdir().unwrap();
    let first = planned(&fake, &file);
    fake.fail("attach_scp");

    let results = run_apply(&fake, &file, &first, secrets.path());
    let failed: Vec<&String> = results
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Failed(message) => Some(message),
            _ => None,
        })
        .collect();
    assert!(!failed.is_empty());
    assert!(
        failed
            .iter()
            .all(|m| *m == "fake:attach_scp: ServiceUnavailable: try later"),
        "{failed:?}"
    );
    let attach_wave = results
        .iter()
        .find(|(c, _)| matches!(c, Change::AttachPolicy { .. }))
        .map(|(c, _)| c.wave())
        .unwrap();
    for (change, outcome) in &results {
        match change.wave().cmp(&attach_wave) {
            std::cmp::Ordering::Less => assert!(
                matches!(outcome, Outcome::Applied(_)),
                "{change:?} comes before the failure: {outcome:?}"
            ),
            std::cmp::Ordering::Greater => assert_eq!(
                outcome,
                &Outcome::Skipped,
                "{change:?} waits for the failed wave"
            ),
            std::cmp::Ordering::Equal => {}
        }
    }
    assert!(
        !fake
            .log()
            .iter()
            .any(|c| c.starts_with("put_registry_item")),
        "nothing after the failed wave was attempted"
    );

    // The re-run plans only what is left: nothing the first run made is made again.
    fake.heal();
    let second = planned(&fake, &file);
    let made: BTreeSet<String> = actions(
        &results
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Applied(_)))
            .map(|(c, _)| c.clone())
            .collect::<Vec<_>>(),
    );
    let left = actions(&second.plan.changes);
    assert!(!left.is_empty());
    assert!(
        made.is_disjoint(&left),
        "made {made:?}, planned again {left:?}"
    );
    assert!(
        second.plan.changes.iter().all(|c| c.wave() >= attach_wave),
        "{left:?}"
    );

    let results = run_apply(&fake, &file, &second, secrets.path());
    assert!(
        results
            .iter()
            .all(|(_, o)| matches!(o, Outcome::Applied(_))),
        "{results:?}"
    );
    assert_eq!(
        actions(&planned(&fake, &file).plan.changes),
        BTreeSet::new()
    );
}

#[test]
fn an_ou_made_by_a_run_whose_answer_was_lost_is_taken_over() {
    let fake = fake();
    let file = org_file();
    let secrets = tempfile::tempdir().unwrap();
    let first = planned(&fake, &file);
    // The OU exists by the time the change runs (an earlier run created it and then failed).
    let made_earlier = fake.add_ou(ROOT, "Workloads");

    let results = run_apply(&fake, &file, &first, secrets.path());
    let create = results
        .iter()
        .find(|(c, _)| matches!(c, Change::CreateOu { .. }))
        .unwrap();
    assert_eq!(create.1, Outcome::Applied(Some(made_earlier.clone())));
    assert_eq!(fake.parent_of(PAYMENTS), made_earlier, "{results:?}");
    assert_eq!(
        fake.with(|s| s.ous.len()),
        1,
        "no second Workloads OU was made"
    );
}

#[test]
fn drift_reports_a_detached_scp_and_a_detached_boundary() {
    let fake = fake();
    let file = org_file();
    let secrets = tempfile::tempdir().unwrap();
    let first = planned(&fake, &file);
    run_apply(&fake, &file, &first, secrets.path());

    // Someone detaches an SCP from the OU and the boundary from the agent role, outside Causeway.
    let workloads = fake.ou_named("Workloads");
    let policy = fake.policy_named("causeway-deny-direct-model-invocation");
    fake.with(|s| {
        s.policies.get_mut(&policy).unwrap().2.remove(&workloads);
        s.roles
            .insert((PAYMENTS.to_owned(), "causeway-agent".to_owned()), None);
    });

    let drifted = planned(&fake, &file);
    let mut out = Vec::new();
    let error = super::output::print_drift(
        std::path::Path::new("org.yaml"),
        &drifted,
        Output::Text,
        &mut out,
    )
    .unwrap_err();
    assert_eq!(error.exit, CliExit::DriftFound);
    assert_eq!(
        error.message,
        "2 difference(s) between org.yaml and the live Organization"
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!(
            "  SCP causeway-deny-direct-model-invocation is not attached to Root/Workloads\n  \
             account {PAYMENTS}: the agent role has no permission boundary\n"
        )
    );

    // Applying the drift puts both back, and nothing differs after.
    run_apply(&fake, &file, &drifted, secrets.path());
    assert_eq!(
        fake.with(|s| s.roles[&(PAYMENTS.to_owned(), "causeway-agent".to_owned())].clone()),
        Some(format!(
            "arn:aws:iam::{PAYMENTS}:policy/causeway-agent-boundary"
        ))
    );
    let clean = planned(&fake, &file);
    let mut out = Vec::new();
    super::output::print_drift(
        std::path::Path::new("org.yaml"),
        &clean,
        Output::Text,
        &mut out,
    )
    .unwrap();
}

#[test]
fn a_spoke_account_that_cannot_be_entered_is_unreadable_not_missing() {
    let fake = fake();
    let file = org_file();
    let secrets = tempfile::tempdir().unwrap();
    let first = planned(&fake, &file);
    run_apply(&fake, &file, &first, secrets.path());
    fake.fail("enter");

    let live = run(super::live::read(
        &fake,
        &file,
        ReadOptions {
            concurrency: 1,
            spoke_roles: true,
            hub_side: false,
        },
    ))
    .unwrap();
    assert_eq!(
        live.roles[PAYMENTS],
        RoleState::Unreadable("fake:enter: ServiceUnavailable: try later".to_owned())
    );
}
