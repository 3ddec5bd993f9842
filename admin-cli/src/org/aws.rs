//! The AWS side of the org commands: [`Aws`], the one [`OrgAdmin`] over the real SDK clients, with sessions in
//! member accounts through their admin role and the retry policy for what the SDK does not retry by itself.
//!
//! Constraints:
//! - The only place the org commands call AWS (IAM's calls in the `iam` submodule): each method is the call
//!   [`OrgAdmin`] documents, SDK types stay here, and errors become [`OrgError`]s with the [`Fault`] the logic
//!   acts on.
//! - Throttling and transient errors are retried by the SDK (standard mode, exponential backoff with jitter,
//!   [`MAX_SDK_ATTEMPTS`] attempts). Organizations' `ConcurrentModificationException` and a new account's
//!   admin role that cannot be assumed yet are retried here (`retry`), because they clear with time but the
//!   SDK treats them as final.
//! - Every error message names the call and the account it was made in; no credential is ever printed.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::display::DisplayErrorContext;
use tokio::sync::Mutex;

mod iam;

use super::admin::{
    AccountCreation, AccountSummary, Fault, InAccount, OperationState, OrgAdmin, OrgError,
    Organization, OuSummary, PolicySummary, PolicyText, RegistryItem, Root, StackInstance,
    StackRequest, StackSetRequest, StackStatus, StackSummary,
};

/// SDK attempts per call (throttling, 5xx, timeouts).
pub const MAX_SDK_ATTEMPTS: u32 = 8;

/// Attempts for conditions that clear with time (a new account, a concurrent Organizations change).
pub const MAX_SLOW_ATTEMPTS: u32 = 12;

/// The SDK sessions the org commands use: the management account, and member accounts through their admin
/// role (cached per account).
#[derive(Debug, Clone)]
pub struct Aws {
    base: SdkConfig,
    admin_role: String,
    backoff: Duration,
    sessions: Arc<Mutex<HashMap<String, SdkConfig>>>,
    calls: CallCounter,
}

/// Counts the HTTP requests (attempts included) every client made: the API calls a command cost.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<AtomicU64>);

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CausewayCallCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl Aws {
    /// Sessions from `base` (the management account's credentials, region, endpoint); `admin_role` is assumed
    /// in member accounts.
    pub fn new(base: &SdkConfig, admin_role: &str) -> Self {
        let base = base
            .clone()
            .into_builder()
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_SDK_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(200)),
            )
            .build();
        Self {
            base,
            admin_role: admin_role.to_owned(),
            backoff: Duration::from_millis(500),
            sessions: Arc::default(),
            calls: CallCounter::default(),
        }
    }

    /// The same sessions with a different first backoff for slow conditions (tests use a short one).
    #[must_use]
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Organizations in the management account.
    fn organizations(&self) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::from_conf(
            aws_sdk_organizations::config::Builder::from(&self.base)
                .interceptor(self.calls.clone())
                .build(),
        )
    }

    /// API requests made so far by every client of these sessions (retries included).
    pub fn calls(&self) -> u64 {
        self.calls.0.load(Ordering::Relaxed)
    }

    /// CloudFormation in the account `config` is a session of.
    fn cloudformation(&self, config: &SdkConfig) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::from_conf(
            aws_sdk_cloudformation::config::Builder::from(config)
                .interceptor(self.calls.clone())
                .build(),
        )
    }

    /// DynamoDB in the account `config` is a session of.
    fn dynamodb(&self, config: &SdkConfig) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(config)
                .interceptor(self.calls.clone())
                .build(),
        )
    }

    fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&self.base)
                .interceptor(self.calls.clone())
                .build(),
        )
    }

    /// A session in `account` (the management account's own session when `account` is it), through the admin
    /// role, retried while a new account's role is not assumable yet.
    async fn session(&self, at: InAccount<'_>) -> Result<SdkConfig, OrgError> {
        let InAccount {
            account,
            management,
        } = at;
        if account == management {
            return Ok(self.base.clone());
        }
        if let Some(config) = self.sessions.lock().await.get(account) {
            return Ok(config.clone());
        }
        let role_arn = format!("arn:aws:iam::{account}:role/{}", self.admin_role);
        let sts = self.sts();
        let operation = format!("sts:AssumeRole {role_arn}");
        let assumed = retry(self, &operation, is_not_ready, &[], || {
            sts.assume_role()
                .role_arn(&role_arn)
                .role_session_name("causeway-admin")
                .duration_seconds(3600)
                .send()
        })
        .await?;
        let credentials = assumed
            .credentials()
            .ok_or_else(|| OrgError::incomplete(operation, "credentials"))?;
        let config = self
            .base
            .clone()
            .into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                    credentials.access_key_id(),
                    credentials.secret_access_key(),
                    Some(credentials.session_token().to_owned()),
                    None,
                    "causeway-admin-role",
                )),
            )
            .build();
        self.sessions
            .lock()
            .await
            .insert(account.to_owned(), config.clone());
        Ok(config)
    }
}

// === impl OrgAdmin for Aws ===

#[async_trait::async_trait]
impl OrgAdmin for Aws {
    fn backoff(&self) -> Duration {
        self.backoff
    }

    fn calls(&self) -> u64 {
        Aws::calls(self)
    }

    async fn organization(&self) -> Result<Organization, OrgError> {
        let operation = "organizations:DescribeOrganization";
        let out = self
            .organizations()
            .describe_organization()
            .send()
            .await
            .map_err(|e| failed(operation, &e, &[]))?;
        let organization = out
            .organization()
            .ok_or_else(|| OrgError::incomplete(operation, "organization"))?;
        Ok(Organization {
            id: organization.id().unwrap_or_default().to_owned(),
            management_account: organization
                .master_account_id()
                .unwrap_or_default()
                .to_owned(),
        })
    }

    async fn root(&self) -> Result<Root, OrgError> {
        use aws_sdk_organizations::types::{PolicyType, PolicyTypeStatus};
        let operation = "organizations:ListRoots";
        let roots = self
            .organizations()
            .list_roots()
            .send()
            .await
            .map_err(|e| failed(operation, &e, &[]))?;
        let root = roots
            .roots()
            .first()
            .ok_or_else(|| OrgError::incomplete(operation, "root"))?;
        Ok(Root {
            id: root.id().unwrap_or_default().to_owned(),
            scp_enabled: root.policy_types().iter().any(|t| {
                t.r#type() == Some(&PolicyType::ServiceControlPolicy)
                    && t.status() == Some(&PolicyTypeStatus::Enabled)
            }),
        })
    }

    async fn ous_under(&self, parent: &str) -> Result<Vec<OuSummary>, OrgError> {
        let pages = self
            .organizations()
            .list_organizational_units_for_parent()
            .parent_id(parent)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| failed("organizations:ListOrganizationalUnitsForParent", &e, &[]))?;
        Ok(pages
            .into_iter()
            .flat_map(|page| page.organizational_units.unwrap_or_default())
            .map(|ou| OuSummary {
                id: ou.id().unwrap_or_default().to_owned(),
                name: ou.name().unwrap_or_default().to_owned(),
            })
            .collect())
    }

    async fn accounts_under(&self, parent: &str) -> Result<Vec<AccountSummary>, OrgError> {
        let pages = self
            .organizations()
            .list_accounts_for_parent()
            .parent_id(parent)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| failed("organizations:ListAccountsForParent", &e, &[]))?;
        Ok(pages
            .into_iter()
            .flat_map(|page| page.accounts.unwrap_or_default())
            .map(|account| AccountSummary {
                id: account.id().unwrap_or_default().to_owned(),
                name: account.name().unwrap_or_default().to_owned(),
                email: account.email().unwrap_or_default().to_owned(),
            })
            .collect())
    }

    async fn scps(&self) -> Result<Vec<PolicySummary>, OrgError> {
        let pages = self
            .organizations()
            .list_policies()
            .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| failed("organizations:ListPolicies", &e, &[]))?;
        Ok(pages
            .into_iter()
            .flat_map(|page| page.policies.unwrap_or_default())
            .map(|summary| PolicySummary {
                id: summary.id().unwrap_or_default().to_owned(),
                name: summary.name().unwrap_or_default().to_owned(),
            })
            .collect())
    }

    async fn scp_targets(&self, policy_id: &str) -> Result<BTreeSet<String>, OrgError> {
        let pages = self
            .organizations()
            .list_targets_for_policy()
            .policy_id(policy_id)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| failed("organizations:ListTargetsForPolicy", &e, &[]))?;
        Ok(pages
            .into_iter()
            .flat_map(|page| page.targets.unwrap_or_default())
            .filter_map(|t| t.target_id)
            .collect())
    }

    async fn scp_document(&self, policy_id: &str) -> Result<Option<String>, OrgError> {
        let described = self
            .organizations()
            .describe_policy()
            .policy_id(policy_id)
            .send()
            .await
            .map_err(|e| failed("organizations:DescribePolicy", &e, &[]))?;
        Ok(described
            .policy()
            .and_then(|p| p.content())
            .map(str::to_owned))
    }

    async fn enable_scps(&self, root_id: &str) -> Result<(), OrgError> {
        let org = self.organizations();
        retry(self, "organizations:EnablePolicyType", is_busy, &[], || {
            org.enable_policy_type()
                .root_id(root_id)
                .policy_type(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
                .send()
        })
        .await?;
        Ok(())
    }

    async fn create_ou(&self, parent_id: &str, name: &str) -> Result<String, OrgError> {
        let operation = "organizations:CreateOrganizationalUnit";
        let org = self.organizations();
        let created = retry(
            self,
            operation,
            is_busy,
            &[("DuplicateOrganizationalUnitException", Fault::AlreadyExists)],
            || {
                org.create_organizational_unit()
                    .parent_id(parent_id)
                    .name(name)
                    .send()
            },
        )
        .await?;
        Ok(created
            .organizational_unit()
            .and_then(|ou| ou.id())
            .ok_or_else(|| OrgError::incomplete(operation, "id"))?
            .to_owned())
    }

    async fn invite_account(&self, account: &str) -> Result<String, OrgError> {
        use aws_sdk_organizations::types::{HandshakeParty, HandshakePartyType};
        let operation = "organizations:InviteAccountToOrganization";
        let target = HandshakeParty::builder()
            .id(account)
            .r#type(HandshakePartyType::Account)
            .build()
            .map_err(|e| OrgError::call(operation, Fault::Other, e.to_string()))?;
        let org = self.organizations();
        let out = retry(self, operation, is_busy, &[], || {
            org.invite_account_to_organization()
                .target(target.clone())
                .notes("Causeway onboarding: accept to join the Organization")
                .send()
        })
        .await?;
        Ok(out
            .handshake()
            .and_then(|h| h.id())
            .unwrap_or_default()
            .to_owned())
    }

    async fn create_account(&self, name: &str, email: &str) -> Result<String, OrgError> {
        let operation = "organizations:CreateAccount";
        let org = self.organizations();
        let request = retry(self, operation, is_busy, &[], || {
            org.create_account().account_name(name).email(email).send()
        })
        .await?;
        Ok(request
            .create_account_status()
            .and_then(|s| s.id())
            .ok_or_else(|| OrgError::incomplete(operation, "request id"))?
            .to_owned())
    }

    async fn account_creation(&self, request_id: &str) -> Result<AccountCreation, OrgError> {
        use aws_sdk_organizations::types::CreateAccountState;
        let operation = "organizations:DescribeCreateAccountStatus";
        let status = self
            .organizations()
            .describe_create_account_status()
            .create_account_request_id(request_id)
            .send()
            .await
            .map_err(|e| failed(operation, &e, &[]))?;
        let status = status
            .create_account_status()
            .ok_or_else(|| OrgError::incomplete(operation, "status"))?;
        Ok(match status.state() {
            Some(CreateAccountState::Succeeded) => {
                AccountCreation::Succeeded(status.account_id().map(str::to_owned))
            }
            Some(CreateAccountState::Failed) => {
                AccountCreation::Failed(status.failure_reason().map(|r| r.as_str().to_owned()))
            }
            _ => AccountCreation::InProgress,
        })
    }

    async fn move_account(&self, account: &str, from: &str, to: &str) -> Result<(), OrgError> {
        let org = self.organizations();
        retry(self, "organizations:MoveAccount", is_busy, &[], || {
            org.move_account()
                .account_id(account)
                .source_parent_id(from)
                .destination_parent_id(to)
                .send()
        })
        .await?;
        Ok(())
    }

    async fn create_scp(&self, policy: PolicyText<'_>, tag: &str) -> Result<String, OrgError> {
        use aws_sdk_organizations::types::{PolicyType, Tag};
        let operation = "organizations:CreatePolicy";
        // The tag marks the SCP as Causeway's: the admin role may manage only SCPs that carry it.
        let tag = Tag::builder()
            .key(crate::scp::MANAGED_SCP_TAG)
            .value(tag)
            .build()
            .map_err(|e| OrgError::ScpTag(e.to_string()))?;
        let org = self.organizations();
        let created = retry(self, operation, is_busy, &[], || {
            org.create_policy()
                .name(policy.name)
                .description(policy.description)
                .content(policy.document)
                .r#type(PolicyType::ServiceControlPolicy)
                .tags(tag.clone())
                .send()
        })
        .await?;
        Ok(created
            .policy()
            .and_then(|p| p.policy_summary())
            .and_then(|s| s.id())
            .ok_or_else(|| OrgError::incomplete(operation, "id"))?
            .to_owned())
    }

    async fn update_scp(&self, policy_id: &str, policy: PolicyText<'_>) -> Result<(), OrgError> {
        let org = self.organizations();
        retry(self, "organizations:UpdatePolicy", is_busy, &[], || {
            org.update_policy()
                .policy_id(policy_id)
                .description(policy.description)
                .content(policy.document)
                .send()
        })
        .await?;
        Ok(())
    }

    async fn attach_scp(&self, policy_id: &str, target_id: &str) -> Result<(), OrgError> {
        let org = self.organizations();
        retry(
            self,
            "organizations:AttachPolicy",
            is_busy,
            &[("DuplicatePolicyAttachmentException", Fault::AlreadyAttached)],
            || {
                org.attach_policy()
                    .policy_id(policy_id)
                    .target_id(target_id)
                    .send()
            },
        )
        .await?;
        Ok(())
    }

    async fn detach_scp(&self, policy_id: &str, target_id: &str) -> Result<(), OrgError> {
        let org = self.organizations();
        retry(
            self,
            "organizations:DetachPolicy",
            is_busy,
            &[("PolicyNotAttachedException", Fault::NotAttached)],
            || {
                org.detach_policy()
                    .policy_id(policy_id)
                    .target_id(target_id)
                    .send()
            },
        )
        .await?;
        Ok(())
    }

    async fn delete_scp(&self, policy_id: &str) -> Result<(), OrgError> {
        let org = self.organizations();
        retry(self, "organizations:DeletePolicy", is_busy, &[], || {
            org.delete_policy().policy_id(policy_id).send()
        })
        .await?;
        Ok(())
    }

    async fn stack_set_instances(
        &self,
        name: &str,
    ) -> Result<Option<Vec<StackInstance>>, OrgError> {
        use aws_sdk_cloudformation::types::StackInstanceStatus;
        let cfn = self.cloudformation(&self.base);
        match cfn.describe_stack_set().stack_set_name(name).send().await {
            Ok(_) => {}
            Err(e) => {
                let error = failed("cloudformation:DescribeStackSet", &e, NOT_FOUND);
                return match error.fault() {
                    Fault::NotFound => Ok(None),
                    _ => Err(error),
                };
            }
        }
        let instances = cfn
            .list_stack_instances()
            .stack_set_name(name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| failed("cloudformation:ListStackInstances", &e, &[]))?;
        Ok(Some(
            instances
                .into_iter()
                .map(|instance| StackInstance {
                    ou: instance.organizational_unit_id().map(str::to_owned),
                    account: instance.account().map(str::to_owned),
                    region: instance.region().map(str::to_owned),
                    current: instance
                        .status()
                        .is_some_and(|s| *s == StackInstanceStatus::Current),
                })
                .collect(),
        ))
    }

    async fn create_stack_set(&self, request: StackSetRequest<'_>) -> Result<(), OrgError> {
        use aws_sdk_cloudformation::types::{AutoDeployment, Capability, PermissionModels};
        self.cloudformation(&self.base)
            .create_stack_set()
            .stack_set_name(request.name)
            .description(request.description)
            .template_body(request.template)
            .set_parameters(Some(parameters(request.parameters)))
            .permission_model(PermissionModels::ServiceManaged)
            .auto_deployment(
                AutoDeployment::builder()
                    .enabled(true)
                    .retain_stacks_on_account_removal(false)
                    .build(),
            )
            .capabilities(Capability::CapabilityNamedIam)
            .send()
            .await
            .map_err(|e| {
                failed(
                    "cloudformation:CreateStackSet",
                    &e,
                    &[
                        ("NameAlreadyExists", Fault::AlreadyExists),
                        ("already exists", Fault::AlreadyExists),
                    ],
                )
            })?;
        Ok(())
    }

    async fn create_stack_instances(
        &self,
        name: &str,
        ou_ids: &[String],
        region: &str,
    ) -> Result<String, OrgError> {
        use aws_sdk_cloudformation::types::{DeploymentTargets, StackSetOperationPreferences};
        let operation = "cloudformation:CreateStackInstances";
        let cfn = self.cloudformation(&self.base);
        let created = retry(
            self,
            operation,
            |t| t.contains("OperationInProgress"),
            &[],
            || {
                cfn.create_stack_instances()
                    .stack_set_name(name)
                    .deployment_targets(
                        DeploymentTargets::builder()
                            .set_organizational_unit_ids(Some(ou_ids.to_vec()))
                            .build(),
                    )
                    .regions(region)
                    .operation_preferences(
                        StackSetOperationPreferences::builder()
                            .max_concurrent_percentage(100)
                            .failure_tolerance_percentage(0)
                            .build(),
                    )
                    .send()
            },
        )
        .await?;
        Ok(created
            .operation_id()
            .ok_or_else(|| OrgError::incomplete(operation, "operation id"))?
            .to_owned())
    }

    async fn stack_set_operation(
        &self,
        name: &str,
        operation_id: &str,
    ) -> Result<OperationState, OrgError> {
        use aws_sdk_cloudformation::types::StackSetOperationStatus;
        let described = self
            .cloudformation(&self.base)
            .describe_stack_set_operation()
            .stack_set_name(name)
            .operation_id(operation_id)
            .send()
            .await
            .map_err(|e| failed("cloudformation:DescribeStackSetOperation", &e, &[]))?;
        Ok(
            match described.stack_set_operation().and_then(|o| o.status()) {
                Some(StackSetOperationStatus::Succeeded) => OperationState::Succeeded,
                Some(
                    status @ (StackSetOperationStatus::Failed | StackSetOperationStatus::Stopped),
                ) => OperationState::Ended(status.as_str().to_owned()),
                _ => OperationState::Running,
            },
        )
    }

    async fn stack_status(
        &self,
        at: InAccount<'_>,
        name: &str,
    ) -> Result<Option<StackStatus>, OrgError> {
        let session = self.session(at).await?;
        let described = self
            .cloudformation(&session)
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| failed("cloudformation:DescribeStacks", &e, NOT_FOUND))?;
        Ok(described
            .stacks()
            .first()
            .and_then(|s| s.stack_status())
            .map(stack_status))
    }

    async fn stacks(&self, at: InAccount<'_>) -> Result<Vec<StackSummary>, OrgError> {
        let session = self.session(at).await?;
        let summaries = self
            .cloudformation(&session)
            .list_stacks()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| failed("cloudformation:ListStacks", &e, &[]))?;
        Ok(summaries
            .into_iter()
            .filter_map(|summary| {
                Some(StackSummary {
                    status: stack_status(summary.stack_status()?),
                    name: summary.stack_name()?.to_owned(),
                })
            })
            .collect())
    }

    async fn create_stack(
        &self,
        at: InAccount<'_>,
        request: StackRequest<'_>,
    ) -> Result<(), OrgError> {
        use aws_sdk_cloudformation::types::Capability;
        let session = self.session(at).await?;
        self.cloudformation(&session)
            .create_stack()
            .stack_name(request.name)
            .client_request_token(request.token)
            .template_body(request.template)
            .set_parameters(Some(parameters(request.parameters)))
            .capabilities(Capability::CapabilityNamedIam)
            .send()
            .await
            .map_err(|e| {
                failed(
                    "cloudformation:CreateStack",
                    &e,
                    &[("AlreadyExists", Fault::AlreadyExists)],
                )
            })?;
        Ok(())
    }

    async fn delete_stack(&self, at: InAccount<'_>, name: &str) -> Result<(), OrgError> {
        let session = self.session(at).await?;
        self.cloudformation(&session)
            .delete_stack()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| failed("cloudformation:DeleteStack", &e, &[]))?;
        Ok(())
    }

    async fn role_boundary(
        &self,
        at: InAccount<'_>,
        role: &str,
    ) -> Result<Option<String>, OrgError> {
        let session = self.session(at).await?;
        iam::role_boundary(self, &session, role).await
    }

    async fn managed_policy(&self, at: InAccount<'_>, arn: &str) -> Result<(), OrgError> {
        let session = self.session(at).await?;
        iam::managed_policy(self, &session, arn).await
    }

    async fn put_role_boundary(
        &self,
        at: InAccount<'_>,
        role: &str,
        boundary_arn: &str,
    ) -> Result<(), OrgError> {
        let session = self.session(at).await?;
        iam::put_role_boundary(self, &session, role, boundary_arn).await
    }

    async fn managed_registry_items(
        &self,
        at: InAccount<'_>,
        table: &str,
        projection: Option<&str>,
    ) -> Result<Option<Vec<RegistryItem>>, OrgError> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let session = self.session(at).await?;
        let pages = self
            .dynamodb(&session)
            .scan()
            .table_name(table)
            .filter_expression("managed_by = :causeway")
            .expression_attribute_values(
                ":causeway",
                AttributeValue::S(super::registry::MANAGED_BY.to_owned()),
            )
            .set_projection_expression(projection.map(str::to_owned))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await;
        match pages {
            Ok(items) => Ok(Some(
                items
                    .iter()
                    .map(causeway_registry_aws::from_attributes)
                    .collect(),
            )),
            Err(e) if format!("{e:?}").contains("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(failed("dynamodb:Scan", &e, &[])),
        }
    }

    async fn registry_items(
        &self,
        at: InAccount<'_>,
        table: &str,
        principals: &[String],
    ) -> Result<Vec<RegistryItem>, OrgError> {
        use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
        let operation = "dynamodb:BatchGetItem";
        let session = self.session(at).await?;
        let dynamodb = self.dynamodb(&session);
        let mut items = Vec::new();
        for chunk in principals.chunks(100) {
            let mut keys: Vec<_> = chunk
                .iter()
                .map(|principal| {
                    HashMap::from([("pk".to_owned(), AttributeValue::S(principal.clone()))])
                })
                .collect();
            while !keys.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| OrgError::call(operation, Fault::Other, e.to_string()))?;
                let out = dynamodb
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .map_err(|e| failed(operation, &e, &[]))?;
                items.extend(
                    out.responses()
                        .and_then(|r| r.get(table))
                        .into_iter()
                        .flatten()
                        .map(causeway_registry_aws::from_attributes),
                );
                if let Some(unprocessed) = out.unprocessed_keys().and_then(|u| u.get(table)) {
                    keys = unprocessed.keys().to_vec();
                    if !keys.is_empty() {
                        tokio::time::sleep(self.backoff).await;
                    }
                }
            }
        }
        Ok(items)
    }

    async fn put_registry_item(
        &self,
        at: InAccount<'_>,
        table: &str,
        item: RegistryItem,
    ) -> Result<(), OrgError> {
        let session = self.session(at).await?;
        self.dynamodb(&session)
            .put_item()
            .table_name(table)
            .set_item(Some(causeway_registry_aws::to_attributes(&item)))
            .send()
            .await
            .map_err(|e| failed("dynamodb:PutItem", &e, &[]))?;
        Ok(())
    }

    async fn delete_managed_registry_item(
        &self,
        at: InAccount<'_>,
        table: &str,
        principal: &str,
    ) -> Result<(), OrgError> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let session = self.session(at).await?;
        let deleted = self
            .dynamodb(&session)
            .delete_item()
            .table_name(table)
            .key("pk", AttributeValue::S(principal.to_owned()))
            .condition_expression("managed_by = :causeway")
            .expression_attribute_values(
                ":causeway",
                AttributeValue::S(super::registry::MANAGED_BY.to_owned()),
            )
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            // A failed condition means the item is gone or not Causeway's, which callers tell apart.
            Err(e) => Err(OrgError::call(
                "dynamodb:DeleteItem",
                if format!("{e:?}").contains("ConditionalCheckFailed") {
                    Fault::ConditionFailed
                } else {
                    Fault::Other
                },
                one_line(&DisplayErrorContext(&e).to_string()),
            )),
        }
    }

    async fn enter(&self, at: InAccount<'_>) -> Result<(), OrgError> {
        self.session(at).await.map(|_| ())
    }
}

/// What a stack or StackSet that is not there answers.
const NOT_FOUND: &[(&str, Fault)] = &[
    ("StackSetNotFound", Fault::NotFound),
    ("does not exist", Fault::NotFound),
];

fn parameters(pairs: &[(String, String)]) -> Vec<aws_sdk_cloudformation::types::Parameter> {
    pairs
        .iter()
        .map(|(key, value)| {
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key(key)
                .parameter_value(value)
                .build()
        })
        .collect()
}

fn stack_status(status: &aws_sdk_cloudformation::types::StackStatus) -> StackStatus {
    use aws_sdk_cloudformation::types::StackStatus as S;
    match status {
        S::CreateComplete => StackStatus::CreateComplete,
        S::UpdateComplete => StackStatus::UpdateComplete,
        S::UpdateRollbackComplete => StackStatus::UpdateRollbackComplete,
        S::DeleteComplete => StackStatus::DeleteComplete,
        S::CreateFailed | S::RollbackComplete | S::RollbackFailed | S::DeleteFailed => {
            StackStatus::Failed(status.as_str().to_owned())
        }
        other => StackStatus::Other(other.as_str().to_owned()),
    }
}

/// Runs `call` until it succeeds, fails with an error `slow` does not accept, or [`MAX_SLOW_ATTEMPTS`] are
/// spent, doubling the wait (from the sessions' backoff, capped at 30 s). Errors are rendered with the
/// operation, and get the fault of the first of `faults` whose code they contain.
async fn retry<T, E, F, Fut>(
    aws: &Aws,
    operation: &str,
    slow: impl Fn(&str) -> bool,
    faults: &[(&str, Fault)],
    mut call: F,
) -> Result<T, OrgError>
where
    E: std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut wait = aws.backoff;
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(err) => {
                let text = DisplayErrorContext(&err).to_string();
                if attempt >= MAX_SLOW_ATTEMPTS || !slow(&text) {
                    return Err(failed(operation, &err, faults));
                }
                tracing::debug!(
                    operation,
                    attempt,
                    "retrying a condition that clears with time"
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
                attempt += 1;
            }
        }
    }
}

/// Whether an error means "not yet" rather than "no": a new account whose admin role is not assumable yet,
/// or a concurrent change in Organizations.
fn is_not_ready(text: &str) -> bool {
    [
        "AccessDenied",
        "InvalidClientTokenId",
        "ConcurrentModificationException",
        "TooManyRequestsException",
        "AccountNotFoundException",
        "OptInRequired",
        "SubscriptionRequiredException",
    ]
    .iter()
    .any(|code| text.contains(code))
}

/// Whether an error is a concurrent-modification or rate error of Organizations.
fn is_busy(text: &str) -> bool {
    [
        "ConcurrentModificationException",
        "TooManyRequestsException",
    ]
    .iter()
    .any(|code| text.contains(code))
}

/// An SDK error as an [`OrgError`]: the operation and the error on one line, with the fault of the first of
/// `faults` whose code the error contains.
fn failed(
    operation: &str,
    err: &(dyn std::error::Error + 'static),
    faults: &[(&str, Fault)],
) -> OrgError {
    let message = one_line(&DisplayErrorContext(err).to_string());
    let fault = faults
        .iter()
        .find(|(code, _)| message.contains(code))
        .map_or(Fault::Other, |(_, fault)| *fault);
    OrgError::call(operation, fault, message)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_covers_new_accounts_and_concurrent_changes() {
        assert!(is_not_ready(
            "AccessDenied: not authorized to perform sts:AssumeRole"
        ));
        assert!(is_not_ready("ConcurrentModificationException: try again"));
        assert!(!is_not_ready("DuplicatePolicyException: exists"));
        assert!(is_busy("TooManyRequestsException"));
        assert!(!is_busy("AccessDenied"));
    }

    #[test]
    fn errors_are_one_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }
}
