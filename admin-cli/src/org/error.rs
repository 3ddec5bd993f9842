//! Why an org command's call or change failed.
//!
//! Messages are one line and name the AWS call (`service:Operation`) or the thing that is missing; they are
//! what `org apply` prints next to a failed change, so they stay stable.

use crate::{CliError, CliExit};

/// What kind of answer a failed AWS call got, where the org commands act on it (a create that finds its work
/// done, a delete that finds nothing to delete).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The thing does not exist (a stack, a StackSet, a role, a policy, a table).
    NotFound,
    /// The thing exists already (an OU, a StackSet, a stack).
    AlreadyExists,
    /// The SCP is attached to the target already.
    AlreadyAttached,
    /// The SCP is not attached to the target.
    NotAttached,
    /// A conditional write's condition did not hold.
    ConditionFailed,
    /// Anything else.
    Other,
}

/// An org command's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgError {
    /// An AWS call failed; `message` is the service's answer on one line.
    #[error("{operation}: {message}")]
    Call {
        /// `service:Operation`, with what it was called on where that helps.
        operation: String,
        /// What kind of failure it was.
        fault: Fault,
        /// The error, on one line.
        message: String,
    },
    /// An AWS call succeeded without the part of the answer the command needs.
    #[error("{operation} returned no {missing}")]
    Incomplete {
        /// `service:Operation`.
        operation: String,
        /// What was missing (`id`, `organization`, …).
        missing: &'static str,
    },
    /// A change names an OU that neither exists nor was created in this run.
    #[error("OU {0} does not exist")]
    OuMissing(String),
    /// An OU exists (creating it said so) but listing its parent does not show it.
    #[error("OU {name} exists but cannot be found under {parent}")]
    OuNotListed {
        /// The OU's name.
        name: String,
        /// The parent's id.
        parent: String,
    },
    /// A change to the root itself, which only exists.
    #[error("the root cannot be created")]
    RootNotCreatable,
    /// A change names an account by a name that was not created in this run.
    #[error("account `{0}` was not created")]
    AccountNotCreated(String),
    /// Organizations reported the account creation failed.
    #[error("creating account {name} failed: {reason}")]
    AccountCreationFailed {
        /// The account name.
        name: String,
        /// Organizations' reason.
        reason: String,
    },
    /// Organizations reported success for a new account without its id.
    #[error("the new account has no id")]
    NewAccountWithoutId,
    /// A change names an SCP that neither exists nor was created in this run.
    #[error("SCP {0} does not exist")]
    ScpMissing(String),
    /// A change names an SCP the org file does not render.
    #[error("SCP {0} was not rendered")]
    ScpNotRendered(String),
    /// A StackSet operation ended without succeeding.
    #[error("StackSet operation {operation} ended {status}")]
    StackSetOperationEnded {
        /// The operation id.
        operation: String,
        /// Its final status.
        status: String,
    },
    /// A stack ended in a failed state.
    #[error("stack {name} ended {status}")]
    StackEnded {
        /// The stack name.
        name: String,
        /// Its final status.
        status: String,
    },
    /// A StackSet instance whose resources changed, which only deleting the instance repairs.
    #[error(
        "the StackSet instance in account {account} no longer matches its resources; delete the stack instance \
         (`aws cloudformation delete-stack-instances --stack-set-name {stackset} --deployment-targets \
         OrganizationalUnitIds=<its OU> --regions {region}`) and run `org apply` again"
    )]
    StackSetInstanceDrifted {
        /// The account.
        account: String,
        /// The StackSet's name.
        stackset: String,
        /// The hub region.
        region: String,
    },
    /// A change to a spoke the org file does not name.
    #[error("account {0} is not in the org file")]
    NotInOrgFile(String),
    /// A spoke's settings cannot be written as a registry entry the hub accepts.
    #[error("{0}")]
    SpokeSettings(String),
    /// The org file or the command line lacks what a change needs.
    #[error("{0}")]
    Missing(&'static str),
    /// A local file (an external id) or its directory could not be written.
    #[error("cannot {action} {path}: {message}")]
    File {
        /// `write` or `create`.
        action: &'static str,
        /// The file or directory.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// The tag that marks an SCP as Causeway's could not be built.
    #[error("the SCP tag cannot be built: {0}")]
    ScpTag(String),
    /// A lock around the ids learned so far was poisoned by a panic.
    #[error("internal state poisoned")]
    Poisoned,
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
    /// A failure in a member account: the account, then the failure.
    #[error("account {account}: {source}")]
    InAccount {
        /// The account id.
        account: String,
        /// What failed there.
        source: Box<OrgError>,
    },
}

impl OrgError {
    /// A failed AWS call.
    pub fn call(operation: impl Into<String>, fault: Fault, message: impl Into<String>) -> Self {
        Self::Call {
            operation: operation.into(),
            fault,
            message: message.into(),
        }
    }

    /// A call that succeeded without `missing` in its answer.
    pub fn incomplete(operation: impl Into<String>, missing: &'static str) -> Self {
        Self::Incomplete {
            operation: operation.into(),
            missing,
        }
    }

    /// This failure, as one in `account`.
    #[must_use]
    pub fn in_account(self, account: &str) -> Self {
        Self::InAccount {
            account: account.to_owned(),
            source: Box::new(self),
        }
    }

    /// The kind of answer a failed AWS call got ([`Fault::Other`] for failures that are not AWS calls).
    pub fn fault(&self) -> Fault {
        match self {
            Self::Call { fault, .. } => *fault,
            Self::InAccount { source, .. } => source.fault(),
            _ => Fault::Other,
        }
    }
}

impl From<OrgError> for CliError {
    fn from(error: OrgError) -> Self {
        Self {
            exit: CliExit::Failure,
            message: error.to_string(),
        }
    }
}
