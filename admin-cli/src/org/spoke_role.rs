//! The spoke agent role in spoke accounts, through each account's admin role: what state it is in, and
//! putting its permission boundary back.

use super::admin::{Fault, InAccount, OrgAdmin, OrgError};
use super::live::RoleState;
use crate::orgfile::OrgFile;

/// The agent role and its boundary in a spoke account, read through the account's admin role.
pub async fn state(admin: &dyn OrgAdmin, file: &OrgFile, at: InAccount<'_>) -> RoleState {
    if let Err(e) = admin.enter(at).await {
        return RoleState::Unreadable(e.to_string());
    }
    let boundary = match admin.role_boundary(at, &file.agent_role_name()).await {
        Ok(boundary) => boundary,
        Err(e) if e.fault() == Fault::NotFound => return RoleState::Missing,
        Err(e) => return RoleState::Unreadable(e.to_string()),
    };
    match boundary {
        None => RoleState::BoundaryDetached,
        Some(arn) if arn != boundary_arn(file, at.account) => RoleState::BoundaryReplaced(arn),
        Some(arn) => match admin.managed_policy(at, &arn).await {
            Ok(()) => RoleState::Ok,
            Err(e) if e.fault() == Fault::NotFound => RoleState::BoundaryPolicyMissing,
            Err(e) => RoleState::Unreadable(e.to_string()),
        },
    }
}

/// Attaches the Causeway boundary to the agent role again.
pub async fn repair_boundary(
    admin: &dyn OrgAdmin,
    file: &OrgFile,
    at: InAccount<'_>,
) -> Result<(), OrgError> {
    admin
        .put_role_boundary(at, &file.agent_role_name(), &boundary_arn(file, at.account))
        .await
}

/// The ARN of the Causeway boundary policy in `account`.
fn boundary_arn(file: &OrgFile, account: &str) -> String {
    format!("arn:aws:iam::{account}:policy/{}", file.boundary_name())
}
