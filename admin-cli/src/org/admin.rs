//! What the org commands ask of AWS, in our own types: [`OrgAdmin`].
//!
//! Constraints:
//! - One method is one AWS call (or one paged listing), except where a call's protocol needs more (a batch read
//!   that retries its unprocessed keys, a StackSet read that lists its instances), so the calls a command makes,
//!   and their order, are decided by the plan, apply and drift logic, not by the adapter.
//! - Calls in a member account take an [`InAccount`]: the adapter reaches the account through its admin role
//!   (the management account's own session when it is the management account), assuming it on the first call
//!   into the account and keeping the session for the rest of the command.
//! - Errors are [`OrgError`]s whose [`Fault`] says what the logic acts on (a create that
//!   finds its work done, a delete that finds nothing to delete).

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;

pub use super::error::{Fault, OrgError};

/// A spoke registry item (attribute name to value), as the registry codec reads and writes it.
pub type RegistryItem = causeway_contract::registry::Item;

/// The account a call is made in: `account`, through its admin role unless it is `management`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InAccount<'a> {
    /// The account the call is made in.
    pub account: &'a str,
    /// The management account (whose own session needs no role).
    pub management: &'a str,
}

/// The organization: its id and its management account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// `o-…`.
    pub id: String,
    /// The management account id.
    pub management_account: String,
}

/// The organization's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// `r-…`.
    pub id: String,
    /// Whether the SCP policy type is enabled on it.
    pub scp_enabled: bool,
}

/// An OU under a parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OuSummary {
    /// `ou-…`.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// An account under a parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    /// The account id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its root user's e-mail.
    pub email: String,
}

/// An SCP as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySummary {
    /// `p-…`.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// An SCP to create or update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyText<'a> {
    /// The policy name.
    pub name: &'a str,
    /// Its description.
    pub description: &'a str,
    /// The document.
    pub document: &'a str,
}

/// Where a requested account creation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCreation {
    /// Not finished yet.
    InProgress,
    /// Created, with the new account's id (when Organizations gave it).
    Succeeded(Option<String>),
    /// Failed, with Organizations' reason (when it gave one).
    Failed(Option<String>),
}

/// One instance of a StackSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackInstance {
    /// The OU it was deployed for, when the instance names it.
    pub ou: Option<String>,
    /// Its account.
    pub account: Option<String>,
    /// Its region.
    pub region: Option<String>,
    /// Whether it is current (deployed as the StackSet says).
    pub current: bool,
}

/// Where a StackSet operation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationState {
    /// Still running (or queued).
    Running,
    /// Done.
    Succeeded,
    /// Ended without succeeding, with its status (`FAILED`, `STOPPED`).
    Ended(String),
}

/// A stack's status, as far as the org commands tell statuses apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackStatus {
    /// `CREATE_COMPLETE`.
    CreateComplete,
    /// `UPDATE_COMPLETE`.
    UpdateComplete,
    /// `UPDATE_ROLLBACK_COMPLETE`.
    UpdateRollbackComplete,
    /// `DELETE_COMPLETE`.
    DeleteComplete,
    /// A status that ends a create or delete badly (`CREATE_FAILED`, `ROLLBACK_COMPLETE`, `ROLLBACK_FAILED`,
    /// `DELETE_FAILED`).
    Failed(String),
    /// Any other status (an operation in progress).
    Other(String),
}

impl StackStatus {
    /// Whether the stack is live: created or updated, not deleted, not failed to create.
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            Self::CreateComplete | Self::UpdateComplete | Self::UpdateRollbackComplete
        )
    }
}

/// A stack as listed: its name and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSummary {
    /// The stack name.
    pub name: String,
    /// Its status.
    pub status: StackStatus,
}

/// A stack to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackRequest<'a> {
    /// The stack name.
    pub name: &'a str,
    /// A `ClientRequestToken`, so that the SDK's retries of the request create one stack.
    pub token: &'a str,
    /// The template body.
    pub template: &'a str,
    /// Its parameters, in order.
    pub parameters: &'a [(String, String)],
}

/// The spoke StackSet to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackSetRequest<'a> {
    /// The StackSet name.
    pub name: &'a str,
    /// Its description.
    pub description: &'a str,
    /// The template body.
    pub template: &'a str,
    /// Its parameters, in order.
    pub parameters: &'a [(String, String)],
}

/// The AWS calls of the org commands: Organizations and StackSets in the management account; stacks, IAM
/// and the spoke registry in member accounts through their admin role.
#[async_trait]
pub trait OrgAdmin: Send + Sync + std::fmt::Debug {
    /// The first wait for conditions that clear with time (an account being created, a stack, an operation).
    fn backoff(&self) -> Duration;

    /// API requests made so far, retries included.
    fn calls(&self) -> u64;

    // --- Organizations: reads ---

    /// The organization.
    async fn organization(&self) -> Result<Organization, OrgError>;

    /// The (first) root.
    async fn root(&self) -> Result<Root, OrgError>;

    /// The OUs directly under `parent` (a root or OU id).
    async fn ous_under(&self, parent: &str) -> Result<Vec<OuSummary>, OrgError>;

    /// The accounts directly under `parent`.
    async fn accounts_under(&self, parent: &str) -> Result<Vec<AccountSummary>, OrgError>;

    /// Every SCP.
    async fn scps(&self) -> Result<Vec<PolicySummary>, OrgError>;

    /// The ids of the roots, OUs and accounts an SCP is attached to.
    async fn scp_targets(&self, policy_id: &str) -> Result<BTreeSet<String>, OrgError>;

    /// An SCP's document as stored.
    async fn scp_document(&self, policy_id: &str) -> Result<Option<String>, OrgError>;

    // --- Organizations: changes (retried while Organizations is busy) ---

    /// Enables the SCP policy type on the root.
    async fn enable_scps(&self, root_id: &str) -> Result<(), OrgError>;

    /// Creates an OU; its id. [`Fault::AlreadyExists`] when an OU of that name is there.
    async fn create_ou(&self, parent_id: &str, name: &str) -> Result<String, OrgError>;

    /// Invites an existing account into the organization; the handshake id.
    async fn invite_account(&self, account: &str) -> Result<String, OrgError>;

    /// Requests a new account; the request id.
    async fn create_account(&self, name: &str, email: &str) -> Result<String, OrgError>;

    /// Where an account creation request is.
    async fn account_creation(&self, request_id: &str) -> Result<AccountCreation, OrgError>;

    /// Moves an account from one parent to another.
    async fn move_account(&self, account: &str, from: &str, to: &str) -> Result<(), OrgError>;

    /// Creates an SCP tagged as Causeway's (`tag` is the tag's value); its id.
    async fn create_scp(&self, policy: PolicyText<'_>, tag: &str) -> Result<String, OrgError>;

    /// Replaces an SCP's description and document.
    async fn update_scp(&self, policy_id: &str, policy: PolicyText<'_>) -> Result<(), OrgError>;

    /// Attaches an SCP. [`Fault::AlreadyAttached`] when it is.
    async fn attach_scp(&self, policy_id: &str, target_id: &str) -> Result<(), OrgError>;

    /// Detaches an SCP. [`Fault::NotAttached`] when it is not attached.
    async fn detach_scp(&self, policy_id: &str, target_id: &str) -> Result<(), OrgError>;

    /// Deletes an SCP.
    async fn delete_scp(&self, policy_id: &str) -> Result<(), OrgError>;

    // --- CloudFormation ---

    /// A StackSet's instances in the management account; `None` when the StackSet does not exist.
    async fn stack_set_instances(&self, name: &str)
    -> Result<Option<Vec<StackInstance>>, OrgError>;

    /// Creates a service-managed StackSet that deploys automatically to accounts joining its OUs.
    /// [`Fault::AlreadyExists`] when it exists.
    async fn create_stack_set(&self, request: StackSetRequest<'_>) -> Result<(), OrgError>;

    /// Deploys a StackSet to OUs in one region (retried while another operation runs); the operation id.
    async fn create_stack_instances(
        &self,
        name: &str,
        ou_ids: &[String],
        region: &str,
    ) -> Result<String, OrgError>;

    /// Where a StackSet operation is.
    async fn stack_set_operation(
        &self,
        name: &str,
        operation_id: &str,
    ) -> Result<OperationState, OrgError>;

    /// A stack's status (`None` when the answer has none). [`Fault::NotFound`] when it does not exist.
    async fn stack_status(
        &self,
        at: InAccount<'_>,
        name: &str,
    ) -> Result<Option<StackStatus>, OrgError>;

    /// Every stack in the account, deleted ones included.
    async fn stacks(&self, at: InAccount<'_>) -> Result<Vec<StackSummary>, OrgError>;

    /// Creates a stack with named IAM resources. [`Fault::AlreadyExists`] when it exists.
    async fn create_stack(
        &self,
        at: InAccount<'_>,
        request: StackRequest<'_>,
    ) -> Result<(), OrgError>;

    /// Deletes a stack.
    async fn delete_stack(&self, at: InAccount<'_>, name: &str) -> Result<(), OrgError>;

    // --- IAM ---

    /// The ARN of a role's permission boundary (`None` without one). [`Fault::NotFound`] without the role.
    async fn role_boundary(
        &self,
        at: InAccount<'_>,
        role: &str,
    ) -> Result<Option<String>, OrgError>;

    /// Whether a managed policy exists: `Ok`, or [`Fault::NotFound`].
    async fn managed_policy(&self, at: InAccount<'_>, arn: &str) -> Result<(), OrgError>;

    /// Sets a role's permission boundary.
    async fn put_role_boundary(
        &self,
        at: InAccount<'_>,
        role: &str,
        boundary_arn: &str,
    ) -> Result<(), OrgError>;

    // --- the spoke registry (DynamoDB) ---

    /// The items `org apply` wrote (`managed_by` is Causeway's), with only the `projection` attributes when
    /// given; `None` when the table does not exist.
    async fn managed_registry_items(
        &self,
        at: InAccount<'_>,
        table: &str,
        projection: Option<&str>,
    ) -> Result<Option<Vec<RegistryItem>>, OrgError>;

    /// The items with these principals (`pk`), read consistently.
    async fn registry_items(
        &self,
        at: InAccount<'_>,
        table: &str,
        principals: &[String],
    ) -> Result<Vec<RegistryItem>, OrgError>;

    /// Writes an item.
    async fn put_registry_item(
        &self,
        at: InAccount<'_>,
        table: &str,
        item: RegistryItem,
    ) -> Result<(), OrgError>;

    /// Deletes the item of a principal if `org apply` wrote it. [`Fault::ConditionFailed`] when it is not
    /// there or not Causeway's.
    async fn delete_managed_registry_item(
        &self,
        at: InAccount<'_>,
        table: &str,
        principal: &str,
    ) -> Result<(), OrgError>;

    // --- STS ---

    /// Makes sure the account can be entered (its admin role assumed), retrying while a new account's role
    /// is not assumable yet.
    async fn enter(&self, at: InAccount<'_>) -> Result<(), OrgError>;
}
