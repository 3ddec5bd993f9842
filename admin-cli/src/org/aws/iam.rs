//! IAM in member accounts: the agent role's permission boundary.
//!
//! Apart from the other calls because IAM and Organizations share operation names (`CreatePolicy`,
//! `DeletePolicy`, `ListPolicies`): the least-privilege check reads the actions a file needs from the SDK crates
//! it names, so an Organizations call next to the IAM client would count as an IAM one too.

use aws_config::SdkConfig;

use super::{Aws, failed};
use crate::org::admin::{Fault, OrgError};

/// What an IAM entity that is not there answers.
const NO_SUCH_ENTITY: &[(&str, Fault)] = &[("NoSuchEntity", Fault::NotFound)];

/// IAM in the account `session` is a session of.
fn client(aws: &Aws, session: &SdkConfig) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(session)
            .interceptor(aws.calls.clone())
            .build(),
    )
}

/// The ARN of a role's permission boundary.
pub(super) async fn role_boundary(
    aws: &Aws,
    session: &SdkConfig,
    role: &str,
) -> Result<Option<String>, OrgError> {
    let out = client(aws, session)
        .get_role()
        .role_name(role)
        .send()
        .await
        .map_err(|e| failed("iam:GetRole", &e, NO_SUCH_ENTITY))?;
    Ok(out
        .role()
        .and_then(|r| r.permissions_boundary())
        .and_then(|b| b.permissions_boundary_arn())
        .map(str::to_owned))
}

/// Whether a managed policy exists.
pub(super) async fn managed_policy(
    aws: &Aws,
    session: &SdkConfig,
    arn: &str,
) -> Result<(), OrgError> {
    client(aws, session)
        .get_policy()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| failed("iam:GetPolicy", &e, NO_SUCH_ENTITY))?;
    Ok(())
}

/// Sets a role's permission boundary.
pub(super) async fn put_role_boundary(
    aws: &Aws,
    session: &SdkConfig,
    role: &str,
    boundary_arn: &str,
) -> Result<(), OrgError> {
    client(aws, session)
        .put_role_permissions_boundary()
        .role_name(role)
        .permissions_boundary(boundary_arn)
        .send()
        .await
        .map_err(|e| failed("iam:PutRolePermissionsBoundary", &e, &[]))?;
    Ok(())
}
