//! The spoke agent role in spoke accounts, through each account's admin role: what state it is in, and
//! putting its permission boundary back.

use super::aws::{Aws, sdk_error};
use super::live::RoleState;
use crate::orgfile::OrgFile;

/// The agent role and its boundary in a spoke account, read through the account's admin role.
pub async fn state(aws: &Aws, file: &OrgFile, account: &str, management: &str) -> RoleState {
    let session = match aws.session(account, management).await {
        Ok(session) => session,
        Err(e) => return RoleState::Unreadable(e),
    };
    let iam: aws_sdk_iam::Client = aws.iam(&session);
    let role = match iam
        .get_role()
        .role_name(file.agent_role_name())
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let text = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
            return if text.contains("NoSuchEntity") {
                RoleState::Missing
            } else {
                RoleState::Unreadable(sdk_error("iam:GetRole", &e))
            };
        }
    };
    let expected = format!("arn:aws:iam::{account}:policy/{}", file.boundary_name());
    let boundary = role
        .role()
        .and_then(|r| r.permissions_boundary())
        .and_then(|b| b.permissions_boundary_arn())
        .map(str::to_owned);
    match boundary {
        None => RoleState::BoundaryDetached,
        Some(arn) if arn != expected => RoleState::BoundaryReplaced(arn),
        Some(arn) => match iam.get_policy().policy_arn(&arn).send().await {
            Ok(_) => RoleState::Ok,
            Err(e) => {
                let text = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
                if text.contains("NoSuchEntity") {
                    RoleState::BoundaryPolicyMissing
                } else {
                    RoleState::Unreadable(sdk_error("iam:GetPolicy", &e))
                }
            }
        },
    }
}

/// Attaches the Causeway boundary to the agent role again.
pub async fn repair_boundary(
    aws: &Aws,
    file: &OrgFile,
    account: &str,
    management: &str,
) -> Result<(), String> {
    let session = aws.session(account, management).await?;
    let iam: aws_sdk_iam::Client = aws.iam(&session);
    iam.put_role_permissions_boundary()
        .role_name(file.agent_role_name())
        .permissions_boundary(format!(
            "arn:aws:iam::{account}:policy/{}",
            file.boundary_name()
        ))
        .send()
        .await
        .map_err(|e| sdk_error("iam:PutRolePermissionsBoundary", &e))?;
    Ok(())
}
