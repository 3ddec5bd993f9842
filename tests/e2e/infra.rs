//! The spoke StackSet, deployed through CloudFormation (moto) to the accounts of a test OU, creates the agent's
//! workload role with its permission boundary in every spoke account; the per-spoke invoker stack in the hub
//! creates the role that trusts exactly that spoke's agent role, with an external id and the organization.
//!
//! Everything is checked from inside the accounts, through the real SDK clients: the management account
//! assumes `OrganizationAccountAccessRole` in each member account and reads the role with IAM.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_sdk_cloudformation::types::{
    Capability, Parameter, PermissionModels, StackSetOperationStatus, StackStatus,
};
use aws_sdk_organizations::types::OrganizationFeatureSet;
use causeway_testkit::moto::{MOTO_DEFAULT_ACCOUNT_ID, MotoServer, TEST_REGION};
use serde_json::Value;

/// The prefix the templates' resource names start with.
const NAME_PREFIX: &str = "causeway";

/// The stack set's name.
const STACK_SET: &str = "causeway-spoke";

/// The external id the test spoke's agent sends.
const EXTERNAL_ID: &str = "spoke-external-id-0123456789";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(workspace_root().join(relative)).unwrap()
}

fn parameter(key: &str, value: &str) -> Parameter {
    Parameter::builder()
        .parameter_key(key)
        .parameter_value(value)
        .build()
}

/// A policy file with the substitutions CloudFormation makes for one account.
fn expected_policy(file: &str, substitutions: &BTreeMap<&str, &str>) -> Value {
    let mut text = read(&format!("policies/iam/{file}"));
    for (key, value) in substitutions {
        text = text.replace(&format!("${{{key}}}"), value);
    }
    assert!(
        !text.contains("${"),
        "unsubstituted placeholder in {file}: {text}"
    );
    serde_json::from_str(&text).unwrap()
}

/// IAM returns policy documents URL-encoded (RFC 3986) JSON. moto returns the inline policies a stack
/// created as the Python rendering of the parsed document (`{'Version': '2012-10-17', …}`); the documents
/// here hold no quote characters, so swapping the quotes restores the JSON.
pub(crate) fn policy_document(encoded: &str) -> Value {
    if encoded.starts_with("{'") {
        let json = encoded.replace('\'', "\"");
        return serde_json::from_str(&json)
            .map_err(|err| format!("not a policy document ({err}): {encoded}"))
            .unwrap();
    }
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' && at + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[at + 1..at + 3]).unwrap();
            decoded.push(u8::from_str_radix(hex, 16).unwrap());
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    serde_json::from_slice(&decoded)
        .map_err(|err| format!("not a JSON policy document ({err}): {encoded}"))
        .unwrap()
}

/// An SDK config acting as `role_name` in `account`, assumed from `base`'s credentials.
async fn assume(
    base: &SdkConfig,
    account: &str,
    role_name: &str,
    external_id: Option<&str>,
) -> SdkConfig {
    let sts = aws_sdk_sts::Client::new(base);
    let assumed = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/{role_name}"))
        .role_session_name("causeway-infra-test")
        .set_external_id(external_id.map(str::to_owned))
        .send()
        .await
        .unwrap();
    let credentials = assumed.credentials().unwrap();
    base.to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                credentials.access_key_id(),
                credentials.secret_access_key(),
                Some(credentials.session_token().to_owned()),
                None,
                "causeway-infra-test",
            )),
        )
        .build()
}

/// An organization with an OU `spokes` holding two new member accounts; returns the OU id and the accounts.
async fn organization_with_spoke_ou(config: &SdkConfig) -> (String, Vec<String>) {
    let org = aws_sdk_organizations::Client::new(config);
    org.create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let root = org.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_owned();
    let ou = org
        .create_organizational_unit()
        .parent_id(&root)
        .name("spokes")
        .send()
        .await
        .unwrap()
        .organizational_unit()
        .unwrap()
        .id()
        .unwrap()
        .to_owned();
    for name in ["payments", "claims"] {
        let request = org
            .create_account()
            .account_name(name)
            .email(format!("{name}@example.com"))
            .send()
            .await
            .unwrap();
        let request_id = request.create_account_status().unwrap().id().unwrap();
        let status = org
            .describe_create_account_status()
            .create_account_request_id(request_id)
            .send()
            .await
            .unwrap();
        let account = status
            .create_account_status()
            .unwrap()
            .account_id()
            .unwrap();
        org.move_account()
            .account_id(account)
            .source_parent_id(&root)
            .destination_parent_id(&ou)
            .send()
            .await
            .unwrap();
    }
    let accounts: Vec<String> = org
        .list_accounts_for_parent()
        .parent_id(&ou)
        .send()
        .await
        .unwrap()
        .accounts()
        .iter()
        .map(|account| account.id().unwrap().to_owned())
        .collect();
    assert_eq!(accounts.len(), 2, "both spoke accounts are in the OU");
    (ou, accounts)
}

#[tokio::test]
async fn the_spoke_stackset_creates_the_agent_role_with_its_boundary_in_every_ou_account() {
    let moto = MotoServer::start().await.unwrap();
    let management = moto.sdk_config().await;
    let hub_account = MOTO_DEFAULT_ACCOUNT_ID;
    let (_ou, spokes) = organization_with_spoke_ou(&management).await;

    // The management account (here also the hub) deploys the spoke StackSet to the OU's accounts. The
    // instances target the accounts the OU holds: moto creates the resources of self-managed stack instances
    // only, while a real organization would use SERVICE_MANAGED with the OU as target (README).
    let cfn = aws_sdk_cloudformation::Client::new(&management);
    cfn.create_stack_set()
        .stack_set_name(STACK_SET)
        .description(
            "Causeway spoke: agent role, permission boundary, optional endpoint and DNS Firewall",
        )
        .template_body(read("infra/spoke-stackset.yaml"))
        .parameters(parameter("HubAccountId", hub_account))
        .parameters(parameter("NamePrefix", NAME_PREFIX))
        .permission_model(PermissionModels::SelfManaged)
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await
        .unwrap();
    let operation = cfn
        .create_stack_instances()
        .stack_set_name(STACK_SET)
        .set_accounts(Some(spokes.clone()))
        .regions(TEST_REGION)
        .send()
        .await
        .unwrap();
    let status = cfn
        .describe_stack_set_operation()
        .stack_set_name(STACK_SET)
        .operation_id(operation.operation_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.stack_set_operation().unwrap().status(),
        Some(&StackSetOperationStatus::Succeeded)
    );

    for spoke in &spokes {
        let inside = assume(&management, spoke, "OrganizationAccountAccessRole", None).await;
        let iam = aws_sdk_iam::Client::new(&inside);
        let agent_role = format!("{NAME_PREFIX}-agent");
        let role = iam.get_role().role_name(&agent_role).send().await.unwrap();
        let role = role.role().unwrap();
        assert_eq!(
            role.arn(),
            format!("arn:aws:iam::{spoke}:role/{agent_role}")
        );
        let boundary_arn = format!("arn:aws:iam::{spoke}:policy/{NAME_PREFIX}-agent-boundary");
        assert_eq!(
            role.permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn()),
            Some(boundary_arn.as_str()),
            "the agent role in {spoke} has its permission boundary"
        );

        let substitutions = BTreeMap::from([
            ("AWS::Partition", "aws"),
            ("AWS::AccountId", spoke.as_str()),
            ("HubAccountId", hub_account),
            ("NamePrefix", NAME_PREFIX),
        ]);
        let inline = iam
            .get_role_policy()
            .role_name(&agent_role)
            .policy_name("causeway-agent")
            .send()
            .await
            .unwrap();
        assert_eq!(
            policy_document(inline.policy_document()),
            expected_policy("spoke-agent.json", &substitutions),
            "the deployed agent policy in {spoke} is policies/iam/spoke-agent.json"
        );

        let boundary = iam
            .get_policy()
            .policy_arn(&boundary_arn)
            .send()
            .await
            .unwrap();
        let version = boundary.policy().unwrap().default_version_id().unwrap();
        let document = iam
            .get_policy_version()
            .policy_arn(&boundary_arn)
            .version_id(version)
            .send()
            .await
            .unwrap();
        assert_eq!(
            policy_document(document.policy_version().unwrap().document().unwrap()),
            expected_policy("spoke-agent-boundary.json", &substitutions),
            "the deployed boundary in {spoke} is policies/iam/spoke-agent-boundary.json"
        );
    }

    // The management account is not in the OU: no agent role there.
    let iam = aws_sdk_iam::Client::new(&management);
    assert!(
        iam.get_role()
            .role_name(format!("{NAME_PREFIX}-agent"))
            .send()
            .await
            .is_err(),
        "only the OU's accounts get the agent role"
    );
}

#[tokio::test]
async fn the_invoker_role_trusts_only_its_spokes_agent_and_the_agent_reaches_it() {
    let moto = MotoServer::start().await.unwrap();
    let management = moto.sdk_config().await;
    let hub_account = MOTO_DEFAULT_ACCOUNT_ID;
    let (_ou, spokes) = organization_with_spoke_ou(&management).await;
    let spoke = &spokes[0];
    let org = aws_sdk_organizations::Client::new(&management);
    let organization_id = org
        .describe_organization()
        .send()
        .await
        .unwrap()
        .organization()
        .unwrap()
        .id()
        .unwrap()
        .to_owned();

    // The spoke side first: the invoker's trust policy names the agent role, which must exist.
    let inside = assume(&management, spoke, "OrganizationAccountAccessRole", None).await;
    let spoke_cfn = aws_sdk_cloudformation::Client::new(&inside);
    spoke_cfn
        .create_stack()
        .stack_name("causeway-spoke")
        .template_body(read("infra/spoke-stackset.yaml"))
        .parameters(parameter("HubAccountId", hub_account))
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await
        .unwrap();

    let cfn = aws_sdk_cloudformation::Client::new(&management);
    let stack_name = format!("causeway-invoker-{spoke}");
    cfn.create_stack()
        .stack_name(&stack_name)
        .template_body(read("infra/spoke-invoker.yaml"))
        .parameters(parameter("SpokeAccountId", spoke))
        .parameters(parameter("ExternalId", EXTERNAL_ID))
        .parameters(parameter("OrganizationId", &organization_id))
        .parameters(parameter("HubApiId", "a1b2c3d4e5"))
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await
        .unwrap();
    let stacks = cfn
        .describe_stacks()
        .stack_name(&stack_name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stacks.stacks()[0].stack_status(),
        Some(&StackStatus::CreateComplete)
    );

    let invoker_role = format!("{NAME_PREFIX}-invoker-{spoke}");
    let iam = aws_sdk_iam::Client::new(&management);
    let role = iam
        .get_role()
        .role_name(&invoker_role)
        .send()
        .await
        .unwrap();
    let trust = policy_document(role.role().unwrap().assume_role_policy_document().unwrap());
    let statements = trust["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "one trust statement: {trust}");
    let statement = &statements[0];
    assert_eq!(
        statement["Principal"]["AWS"],
        format!("arn:aws:iam::{spoke}:role/{NAME_PREFIX}-agent")
    );
    assert_eq!(
        statement["Condition"]["StringEquals"]["sts:ExternalId"],
        EXTERNAL_ID
    );
    assert_eq!(
        statement["Condition"]["StringEquals"]["aws:PrincipalOrgID"],
        organization_id.as_str()
    );

    let inline = iam
        .get_role_policy()
        .role_name(&invoker_role)
        .policy_name("causeway-invoker")
        .send()
        .await
        .unwrap();
    let substitutions = BTreeMap::from([
        ("AWS::Partition", "aws"),
        ("AWS::Region", TEST_REGION),
        ("AWS::AccountId", hub_account),
        ("HubApiId", "a1b2c3d4e5"),
        ("HubApiStage", "v1"),
    ]);
    assert_eq!(
        policy_document(inline.policy_document()),
        expected_policy("spoke-invoker.json", &substitutions)
    );

    // The path the agent takes: its workload role in the spoke, then the invoker role in the hub with the
    // external id; the hub sees the invoker role's session.
    let agent = assume(&inside, spoke, &format!("{NAME_PREFIX}-agent"), None).await;
    let invoker = assume(&agent, hub_account, &invoker_role, Some(EXTERNAL_ID)).await;
    let identity = aws_sdk_sts::Client::new(&invoker)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(identity.account(), Some(hub_account));
    assert!(
        identity.arn().unwrap().starts_with(&format!(
            "arn:aws:sts::{hub_account}:assumed-role/{invoker_role}/"
        )),
        "{:?}",
        identity.arn()
    );
}

/// The hub stack's resources of one type, by logical id.
fn hub_resources(kind: &str) -> Vec<(String, Value)> {
    let (_, hub) = crate::least_privilege::templates()
        .into_iter()
        .find(|(name, _)| name == "infra/hub.yaml")
        .unwrap();
    hub["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, resource)| resource["Type"] == kind)
        .map(|(id, resource)| (id.clone(), resource.clone()))
        .collect()
}

#[test]
fn the_hub_stack_keeps_the_audit_and_access_invariants() {
    let methods = hub_resources("AWS::ApiGateway::Method");
    assert!(!methods.is_empty());
    for (id, method) in &methods {
        assert_eq!(
            method["Properties"]["AuthorizationType"], "AWS_IAM",
            "{id}: every API method needs IAM authorization"
        );
    }
    let tables = hub_resources("AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 3, "audit index, budgets, spoke registry");
    for (id, table) in &tables {
        let properties = &table["Properties"];
        assert_eq!(
            properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true,
            "{id}: point-in-time recovery"
        );
        assert_eq!(
            properties["SSESpecification"]["SSEType"], "KMS",
            "{id}: KMS encryption"
        );
        assert_eq!(
            table["DeletionPolicy"], "Retain",
            "{id}: kept when the stack goes"
        );
    }
    let (_, audit) = hub_resources("AWS::S3::Bucket")
        .into_iter()
        .find(|(id, _)| id == "AuditBucket")
        .unwrap();
    let audit = &audit["Properties"];
    assert_eq!(
        audit["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Mode"],
        "COMPLIANCE"
    );
    assert_eq!(audit["VersioningConfiguration"]["Status"], "Enabled");
    assert_eq!(
        audit["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
            ["SSEAlgorithm"],
        "aws:kms"
    );
    for (id, group) in hub_resources("AWS::Logs::LogGroup") {
        assert!(
            !group["Properties"]["RetentionInDays"].is_null(),
            "{id}: log retention"
        );
        assert!(!group["Properties"]["KmsKeyId"].is_null(), "{id}: KMS");
    }
}

#[test]
fn the_audit_failure_alarm_matches_what_the_hub_logs() {
    // The metric filter counts the hub's JSON log lines for calls refused with `audit_unavailable` and for
    // a failed closing record; if the hub stops writing either, the alarm would go quiet.
    let (_, filter) = hub_resources("AWS::Logs::MetricFilter")
        .into_iter()
        .find(|(id, _)| id == "AuditWriteFailureFilter")
        .unwrap();
    let pattern = filter["Properties"]["FilterPattern"].as_str().unwrap();
    let error_code = read("shared/contract/src/error.rs");
    let error_log = read("hub/src/error.rs");
    let governed = read("hub/src/governed.rs");
    assert!(pattern.contains(r#"$.fields.code = "audit_unavailable""#));
    assert!(error_code.contains(r#""audit_unavailable""#));
    assert!(
        error_log.contains("tracing::error!(") && error_log.contains("code = code.as_str()"),
        "the hub logs 5xx errors with their code at ERROR"
    );
    let message = "closing record of an abandoned stream failed";
    assert!(pattern.contains(&format!(r#"$.fields.message = "{message}""#)));
    assert!(governed.contains(&format!(r#""{message}""#)));
}
