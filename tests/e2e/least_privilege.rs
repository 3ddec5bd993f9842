//! Least privilege: every component's IAM policy grants exactly the AWS actions its code calls.
//!
//! The actions are computed from the source at test time, so a new SDK call fails this test until the
//! component's policy grants it, and a removed call fails it until the grant goes:
//!
//! 1. `cargo metadata` names the component's package and the workspace crates it depends on (normal
//!    dependencies, transitively, but not other components' packages); their `src/` trees are scanned,
//!    without unit-test code (`tests.rs` files and everything from a file's first `#[cfg(test)]` line, where
//!    this workspace keeps its test modules).
//! 2. A file that names an SDK crate (`aws_sdk_<service>`) and calls `.<operation>()` with no arguments, where
//!    `<operation>` is one of that SDK's operations (the crate's own `src/operation/` list), makes that
//!    call: the fluent form `client.put_item()…send()`.
//! 3. Each call becomes IAM actions: `service:Operation` by default, or what [`OPERATION_ACTIONS`] says
//!    where the two differ; [`SERVICE_PREFIXES`] maps crate names to IAM service prefixes.
//! 4. A few actions are needed whatever the scan finds (a SigV4-signed HTTPS request, the purpose a role
//!    exists for); each role lists them in [`ROLES`] with the reason. Calls that only provision what the
//!    templates create (for tests and local setups) are listed in [`PROVISIONING_ONLY`], and the role does
//!    not get them. Calls a component's crate makes under another principal are listed in
//!    [`RUN_BY_ANOTHER_ROLE`]; erasure's are held to what the hub account's admin role may do instead.
//!
//! The templates in `infra/` embed the same policy documents; [`templates_embed_the_policy_files`] checks
//! that every resource marked `Metadata: CausewayPolicy: <name>` carries exactly `policies/iam/<name>.json`.
//! What a role may do with the catalog's models is rendered from the catalog, not written in a file: the
//! template resources marked `Metadata: CausewayCatalogPolicy: <name>` grant it from the stack's parameters,
//! and their actions count as granted to `<name>.json`'s role
//! ([`catalog_policies_grant_what_causeway_iam_renders`] holds them to `causeway iam hub-parameters`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

/// One IAM role and where its permissions come from.
#[derive(Debug)]
struct RoleSpec {
    /// The policy file under `policies/iam/`.
    policy: &'static str,
    /// The package whose SDK calls the role makes, if any.
    package: Option<&'static str>,
    /// Actions the component uses outside any SDK call, with the reason.
    outside_sdk: &'static [(&'static str, &'static str)],
}

/// Adapter crates whose AWS calls are one component's role's, though other components link them:
/// (adapter package, owning component package, why).
const ADAPTERS_OWNED_BY: &[(&str, &str, &str)] = &[(
    "causeway-audit-aws",
    "causeway-hub",
    "the hub role appends records with it; `causeway evidence --store aws` links it to read, verify, export \
     and erase with the hub account's credentials (erasure with its admin role), never with the \
     management-account role of admin-cli.json",
)];

/// Every component role. A component whose scan finds no call and that lists nothing here has no policy file.
const ROLES: &[RoleSpec] = &[
    RoleSpec {
        policy: "hub.json",
        package: Some("causeway-hub"),
        outside_sdk: &[],
    },
    RoleSpec {
        policy: "spoke-agent.json",
        package: Some("causeway-agent"),
        // Also an SDK call in the agent's credentials module; listed here because the role exists for it
        // whichever way the agent obtains the invoker role's session.
        outside_sdk: &[(
            "sts:AssumeRole",
            "the agent's workload role exists to assume its spoke's invoker role in the hub (with the external \
             id); only that role's sessions sign what the hub sees",
        )],
    },
    RoleSpec {
        policy: "spoke-invoker.json",
        package: None,
        outside_sdk: &[(
            "execute-api:Invoke",
            "the agent's calls to the hub's API are SigV4-signed HTTPS requests, not SDK operations",
        )],
    },
    RoleSpec {
        policy: "admin-cli.json",
        package: Some("causeway-cli"),
        outside_sdk: &[],
    },
];

/// SDK crate name (after `aws_sdk_`) to IAM service prefix, where they differ.
const SERVICE_PREFIXES: &[(&str, &str)] = &[
    ("bedrockruntime", "bedrock"),
    ("cloudwatchlogs", "logs"),
    ("sfn", "states"),
];

/// SDK operations whose IAM actions are not `service:Operation`. An empty list: no permission is needed.
const OPERATION_ACTIONS: &[(&str, &str, &[&str])] = &[
    // Converse is authorized as InvokeModel, ConverseStream as InvokeModelWithResponseStream; a call that
    // names a Bedrock guardrail (the hub's `guardrail_id`) also needs ApplyGuardrail on it.
    (
        "bedrockruntime",
        "Converse",
        &["bedrock:InvokeModel", "bedrock:ApplyGuardrail"],
    ),
    (
        "bedrockruntime",
        "ConverseStream",
        &[
            "bedrock:InvokeModelWithResponseStream",
            "bedrock:ApplyGuardrail",
        ],
    ),
    // GetCallerIdentity works for every principal; no policy can deny it.
    ("sts", "GetCallerIdentity", &[]),
    // The audit bucket is SSE-KMS: writing needs a data key, reading needs the key to decrypt it. Payloads are
    // written with their Object Lock retention date, which is authorized as PutObjectRetention.
    (
        "s3",
        "PutObject",
        &[
            "s3:PutObject",
            "s3:PutObjectRetention",
            "kms:GenerateDataKey",
        ],
    ),
    ("s3", "GetObject", &["s3:GetObject", "kms:Decrypt"]),
    ("s3", "HeadObject", &["s3:GetObject"]),
    ("s3", "ListObjectsV2", &["s3:ListBucket"]),
    ("s3", "HeadBucket", &["s3:ListBucket"]),
    // A transaction is authorized item by item; the hub's transactions put, update and check items.
    (
        "dynamodb",
        "TransactWriteItems",
        &[
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
        ],
    ),
    ("dynamodb", "TransactGetItems", &["dynamodb:GetItem"]),
    // PartiQL is authorized by statement kind; the one statement Causeway sends is the audit store's
    // `INSERT` (`adapters/audit-aws`, `insert`), which cannot replace an item.
    ("dynamodb", "ExecuteStatement", &["dynamodb:PartiQLInsert"]),
    // The admin role may create only SCPs that carry Causeway's tag (`causeway_cli::scp::MANAGED_SCP_TAG`);
    // Organizations authorizes a tag given at creation as TagResource too.
    (
        "organizations",
        "CreatePolicy",
        &["organizations:CreatePolicy", "organizations:TagResource"],
    ),
];

/// Calls in a component's crate that provision what the templates create (tables, bucket settings) for tests
/// and local setups; the deployed role must not have them. An entry the scan no longer finds is an error.
const PROVISIONING_ONLY: &[(&str, &str, &str)] = &[
    (
        "causeway-hub",
        "dynamodb:CreateTable",
        "`audit_aws::create_table` creates the index table outside AWS; infra/hub.yaml creates it on AWS",
    ),
    (
        "causeway-hub",
        "s3:PutObjectLockConfiguration",
        "`audit_aws::configure_bucket` sets the bucket's retention outside AWS; infra/hub.yaml sets it on AWS",
    ),
    (
        "causeway-hub",
        "s3:PutBucketLifecycleConfiguration",
        "`audit_aws::configure_bucket` sets the bucket's lifecycle outside AWS; infra/hub.yaml sets it on AWS",
    ),
];

/// Calls in a component's crate that run under another principal, not the component's role: (package,
/// action, file, function, reason). Only the uses inside that function are excused; the same action anywhere
/// else in the package is still the role's. An entry the scan no longer finds there is an error.
///
/// Erasure (`erase_period`) runs as the hub account's admin role (`spoke_deployment.admin_role`), never as
/// the hub: [`erasure_is_the_hub_admin_roles_and_not_the_hub_roles`] holds its calls to what that role may
/// do under `protect-audit-store`.
const RUN_BY_ANOTHER_ROLE: &[(&str, &str, &str, &str, &str)] = &[
    (
        "causeway-hub",
        "dynamodb:PutItem",
        ERASURE_FILE,
        ERASURE_FUNCTION,
        "marks a day erased (`erased#<day>`) for `causeway evidence erase --store aws`, which runs with the \
         hub account's admin role; the hub role puts only records, checkpoints and day keys",
    ),
    (
        "causeway-hub",
        "dynamodb:DeleteItem",
        ERASURE_FILE,
        ERASURE_FUNCTION,
        "erasure destroys a day's data key; `causeway evidence erase --store aws` runs it with the hub \
         account's admin role, and the hub role may never delete an audit item",
    ),
    (
        "causeway-hub",
        "s3:ListBucket",
        ERASURE_FILE,
        ERASURE_FUNCTION,
        "counts the erased day's payloads for `causeway evidence erase`, as the hub account's admin role; the \
         hub never lists the bucket",
    ),
];

/// Where erasure of a day is: what `causeway evidence erase --store aws` calls.
const ERASURE_FILE: &str = "adapters/audit-aws/src/lib.rs";
const ERASURE_FUNCTION: &str = "erase_period";

/// Calls the admin CLI makes only inside other accounts, with the session of the account's admin role
/// (`OrganizationAccountAccessRole`): spoke stacks and the agent role's boundary in spoke accounts, invoker
/// stacks and registry entries in the hub account. The management-account role (`admin-cli.json`) must not
/// have them; it only assumes the admin role. An entry the scan no longer finds is an error.
const THROUGH_MEMBER_ADMIN_ROLE: &[(&str, &str)] = &[
    ("causeway-cli", "cloudformation:CreateStack"),
    ("causeway-cli", "cloudformation:DeleteStack"),
    ("causeway-cli", "cloudformation:DescribeStacks"),
    ("causeway-cli", "cloudformation:ListStacks"),
    ("causeway-cli", "dynamodb:BatchGetItem"),
    ("causeway-cli", "dynamodb:DeleteItem"),
    ("causeway-cli", "dynamodb:PutItem"),
    ("causeway-cli", "dynamodb:Scan"),
    ("causeway-cli", "iam:GetPolicy"),
    ("causeway-cli", "iam:GetRole"),
    ("causeway-cli", "iam:PutRolePermissionsBoundary"),
];

// === the source scan ===

/// Where an action is needed: `path:line (operation)`.
type Uses = BTreeMap<String, BTreeSet<String>>;

fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap().to_path_buf()
}

/// What `cargo metadata` says about the workspace: each package's manifest directory, and each workspace
/// package's normal dependencies that are workspace packages.
#[derive(Debug)]
struct Workspace {
    dirs: BTreeMap<String, PathBuf>,
    members: BTreeMap<String, Vec<String>>,
}

impl Workspace {
    fn load() -> Self {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let output = Command::new(cargo)
            .args(["metadata", "--format-version", "1"])
            .current_dir(workspace_root())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
        let mut dirs = BTreeMap::new();
        let mut members = BTreeMap::new();
        let packages = metadata["packages"].as_array().unwrap();
        let workspace: BTreeSet<&str> = metadata["workspace_members"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let member_names: BTreeSet<&str> = packages
            .iter()
            .filter(|p| workspace.contains(p["id"].as_str().unwrap()))
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for package in packages {
            let name = package["name"].as_str().unwrap().to_owned();
            let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
            dirs.insert(name.clone(), manifest.parent().unwrap().to_path_buf());
            if member_names.contains(name.as_str()) {
                let deps = package["dependencies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|d| d["kind"].is_null())
                    .map(|d| d["name"].as_str().unwrap())
                    .filter(|d| member_names.contains(d))
                    .map(str::to_owned)
                    .collect();
                members.insert(name, deps);
            }
        }
        Self { dirs, members }
    }

    /// The package and the workspace packages it depends on, transitively, short of other components'
    /// packages: a component that links another's library uses its types and functions, and that
    /// component's role covers the calls its own code makes.
    fn closure(&self, package: &str) -> BTreeSet<String> {
        let components: BTreeSet<&str> = ROLES.iter().filter_map(|role| role.package).collect();
        let owned_elsewhere = |name: &str| {
            ADAPTERS_OWNED_BY
                .iter()
                .any(|(adapter, owner, _)| *adapter == name && *owner != package)
        };
        let mut seen = BTreeSet::new();
        let mut todo = vec![package.to_owned()];
        while let Some(next) = todo.pop() {
            if (next == package || !components.contains(next.as_str()))
                && !owned_elsewhere(&next)
                && seen.insert(next.clone())
            {
                todo.extend(self.members.get(&next).into_iter().flatten().cloned());
            }
        }
        seen
    }

    /// The SDK's operations (fluent method names) for `aws_sdk_<service>`, from the crate's `src/operation/`.
    fn operations(&self, service: &str) -> BTreeSet<String> {
        let Some(dir) = self.dirs.get(&format!("aws-sdk-{service}")) else {
            return BTreeSet::new();
        };
        std::fs::read_dir(dir.join("src").join("operation"))
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.path().is_dir())
            .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
            .collect()
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// The source without unit-test code and without `//` comments.
fn production_source(text: &str) -> Vec<String> {
    text.lines()
        .take_while(|line| line.trim() != "#[cfg(test)]")
        .map(|line| match line.find("//") {
            Some(at) => line[..at].to_owned(),
            None => line.to_owned(),
        })
        .collect()
}

/// `aws_sdk_<service>` names in the source.
fn sdk_services(lines: &[String]) -> BTreeSet<String> {
    let mut services = BTreeSet::new();
    for line in lines {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("aws_sdk_") {
            rest = &rest[at + "aws_sdk_".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                .collect();
            if !name.is_empty() {
                services.insert(name);
            }
        }
    }
    services
}

/// Every `.name()` call with no arguments: (line number, name).
fn empty_method_calls(lines: &[String]) -> Vec<(usize, String)> {
    let mut calls = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let bytes = line.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] == b'.' {
                let start = at + 1;
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_lowercase()
                        || bytes[end].is_ascii_digit()
                        || bytes[end] == b'_')
                {
                    end += 1;
                }
                let after = line[end..].trim_start();
                if end > start && after.starts_with('(') && after[1..].trim_start().starts_with(')')
                {
                    calls.push((index + 1, line[start..end].to_owned()));
                }
                at = end.max(at + 1);
            } else {
                at += 1;
            }
        }
    }
    calls
}

fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// The IAM actions one SDK operation needs.
fn actions_for(service: &str, operation: &str) -> Vec<String> {
    let pascal = pascal_case(operation);
    if let Some((_, _, actions)) = OPERATION_ACTIONS
        .iter()
        .find(|(s, o, _)| *s == service && *o == pascal)
    {
        return actions.iter().map(|a| (*a).to_owned()).collect();
    }
    let prefix = SERVICE_PREFIXES
        .iter()
        .find(|(crate_name, _)| *crate_name == service)
        .map_or(service, |(_, prefix)| prefix);
    vec![format!("{prefix}:{pascal}")]
}

/// The actions one source file's SDK calls need, given each service's operations.
fn scan_source(
    display_path: &str,
    text: &str,
    operations: &mut impl FnMut(&str) -> BTreeSet<String>,
    uses: &mut Uses,
) {
    let lines = production_source(text);
    let services = sdk_services(&lines);
    if services.is_empty() {
        return;
    }
    let known: Vec<(String, BTreeSet<String>)> = services
        .into_iter()
        .map(|service| {
            let ops = operations(&service);
            (service, ops)
        })
        .collect();
    for (line, name) in empty_method_calls(&lines) {
        for (service, ops) in &known {
            if ops.contains(&name) {
                for action in actions_for(service, &name) {
                    uses.entry(action)
                        .or_default()
                        .insert(format!("{display_path}:{line} (`{name}`)"));
                }
            }
        }
    }
}

/// The actions a package's SDK calls need, with where each is called.
fn package_uses(workspace: &Workspace, package: &str) -> Uses {
    let root = workspace_root();
    let mut uses = Uses::new();
    let mut cache: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut operations = |service: &str| {
        cache
            .entry(service.to_owned())
            .or_insert_with(|| workspace.operations(service))
            .clone()
    };
    for crate_name in workspace.closure(package) {
        let mut files = Vec::new();
        rust_files(&workspace.dirs[&crate_name].join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let display = file
                .strip_prefix(&root)
                .unwrap_or(&file)
                .display()
                .to_string();
            scan_source(&display, &text, &mut operations, &mut uses);
        }
    }
    uses
}

/// The 1-based line ranges of every `fn <name>(` in `file` (relative to the workspace root), from its
/// signature to the closing brace at the signature's indentation.
fn function_lines(file: &str, name: &str) -> Vec<(usize, usize)> {
    let text = std::fs::read_to_string(workspace_root().join(file)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut ranges = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if !line.contains(&format!("fn {name}(")) {
            continue;
        }
        let indent = &line[..line.len() - line.trim_start().len()];
        let closing = format!("{indent}}}");
        if let Some(end) = lines[index..].iter().position(|l| *l == closing) {
            ranges.push((index + 1, index + end + 1));
        }
    }
    ranges
}

/// Whether a use (`path:line (operation)`) is in `file` within one of `ranges`.
fn inside(place: &str, file: &str, ranges: &[(usize, usize)]) -> bool {
    place
        .strip_prefix(&format!("{file}:"))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|line| line.parse::<usize>().ok())
        .is_some_and(|line| ranges.iter().any(|(a, b)| (*a..=*b).contains(&line)))
}

/// Removes from `needed` the uses of `action` inside `function` of `file`; false when there were none.
fn excuse(needed: &mut Uses, action: &str, file: &str, function: &str) -> bool {
    let ranges = function_lines(file, function);
    let Some(places) = needed.get_mut(action) else {
        return false;
    };
    let before = places.len();
    places.retain(|place| !inside(place, file, &ranges));
    let excused = places.len() < before;
    if places.is_empty() {
        needed.remove(action);
    }
    excused
}

// === policies and templates ===

fn policy_path(name: &str) -> PathBuf {
    workspace_root().join("policies").join("iam").join(name)
}

fn read_policy(name: &str) -> Option<Value> {
    let path = policy_path(name);
    path.is_file()
        .then(|| serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap())
}

fn statements(policy: &Value) -> Vec<&Value> {
    match &policy["Statement"] {
        Value::Array(list) => list.iter().collect(),
        single @ Value::Object(_) => vec![single],
        _ => Vec::new(),
    }
}

fn string_list(value: &Value) -> Vec<String> {
    match value {
        Value::String(one) => vec![one.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The actions a policy allows (`Effect: Allow` statements), and problems that make it unreadable as such.
fn allowed_actions(file: &str, policy: &Value) -> (BTreeSet<String>, Vec<String>) {
    let mut actions = BTreeSet::new();
    let mut problems = Vec::new();
    for statement in statements(policy) {
        if statement["Effect"] != "Allow" {
            continue;
        }
        if !statement["NotAction"].is_null() {
            problems.push(format!(
                "policies/iam/{file}: an Allow statement uses `NotAction`; list the exact actions instead"
            ));
        }
        for action in string_list(&statement["Action"]) {
            if action.contains('*') {
                problems.push(format!(
                    "policies/iam/{file}: `{action}` is a wildcard; grant the exact actions the component calls"
                ));
            }
            actions.insert(action);
        }
    }
    (actions, problems)
}

/// The JSON a YAML node stands for, with CloudFormation's short-form tags (`!Sub`, …) dropped.
fn yaml_to_json(node: &Yaml) -> Value {
    match node {
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(text.clone()), Value::Number),
        Yaml::Integer(number) => Value::from(*number),
        Yaml::String(text) => Value::String(text.clone()),
        Yaml::Boolean(flag) => Value::Bool(*flag),
        Yaml::Array(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let key = match key {
                        Yaml::String(text) => text.clone(),
                        other => format!("{other:?}"),
                    };
                    (key, yaml_to_json(value))
                })
                .collect(),
        ),
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    }
}

/// Every template under `infra/`, as JSON.
pub(crate) fn templates() -> Vec<(String, Value)> {
    let dir = workspace_root().join("infra");
    let mut found: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let docs = YamlLoader::load_from_str(&text).unwrap();
            let name = format!("infra/{}", path.file_name().unwrap().to_string_lossy());
            (name, yaml_to_json(&docs[0]))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The policy document a marked resource carries: a role's single inline policy, or a managed policy's.
fn embedded_document(resource: &Value) -> Option<&Value> {
    match resource["Type"].as_str()? {
        "AWS::IAM::Role" => match resource["Properties"]["Policies"].as_array()?.as_slice() {
            [only] => Some(&only["PolicyDocument"]),
            _ => None,
        },
        "AWS::IAM::ManagedPolicy" | "AWS::IAM::Policy" => {
            Some(&resource["Properties"]["PolicyDocument"])
        }
        _ => None,
    }
}

// === the checks ===

/// The actions the template resources marked `CausewayCatalogPolicy: <name>` allow: what a role may do with
/// the catalog's models, granted from the stack's parameters.
fn catalog_grants(name: &str) -> BTreeSet<String> {
    let mut actions = BTreeSet::new();
    for (_, body) in templates() {
        for resource in body["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, r)| r)
        {
            if resource["Metadata"]["CausewayCatalogPolicy"] != name {
                continue;
            }
            for statement in statements(&resource["Properties"]["PolicyDocument"]) {
                if statement["Effect"] == "Allow" {
                    actions.extend(string_list(&statement["Action"]));
                }
            }
        }
    }
    actions
}

/// For each policy file, the template resources that embed it, as `infra/<template> resource <id>`.
fn embedders() -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (template, body) in templates() {
        for (logical_id, resource) in body["Resources"].as_object().into_iter().flatten() {
            if let Some(name) = resource["Metadata"]["CausewayPolicy"].as_str() {
                found
                    .entry(format!("{name}.json"))
                    .or_default()
                    .push(format!("{template} resource {logical_id}"));
            }
        }
    }
    found
}

#[test]
fn every_role_grants_exactly_what_its_component_calls() {
    let workspace = Workspace::load();
    let embedded_in = embedders();
    let mut report = String::new();
    for role in ROLES {
        let mut needed = match role.package {
            Some(package) => package_uses(&workspace, package),
            None => Uses::new(),
        };
        for (package, action, _) in PROVISIONING_ONLY {
            if role.package == Some(*package) && needed.remove(*action).is_none() {
                writeln!(
                    report,
                    "nothing in {package} calls `{action}` any more: remove it from PROVISIONING_ONLY in tests/e2e/least_privilege.rs"
                )
                .unwrap();
            }
        }
        for (package, action) in THROUGH_MEMBER_ADMIN_ROLE {
            if role.package == Some(*package) && needed.remove(*action).is_none() {
                writeln!(
                    report,
                    "nothing in {package} calls `{action}` any more: remove it from THROUGH_MEMBER_ADMIN_ROLE in tests/e2e/least_privilege.rs"
                )
                .unwrap();
            }
        }
        for (package, action, file, function, _) in RUN_BY_ANOTHER_ROLE {
            if role.package == Some(*package) && !excuse(&mut needed, action, file, function) {
                writeln!(
                    report,
                    "`{action}` is no longer called in `{function}` of {file}: remove it from RUN_BY_ANOTHER_ROLE in tests/e2e/least_privilege.rs"
                )
                .unwrap();
            }
        }
        for (action, reason) in role.outside_sdk {
            needed
                .entry((*action).to_owned())
                .or_default()
                .insert(format!("outside the SDK: {reason}"));
        }
        let file = role.policy;
        let Some(policy) = read_policy(file) else {
            if !needed.is_empty() {
                let actions: Vec<&str> = needed.keys().map(String::as_str).collect();
                writeln!(
                    report,
                    "policies/iam/{file} is missing: create it granting {}",
                    actions.join(", ")
                )
                .unwrap();
            }
            continue;
        };
        let (mut granted, problems) = allowed_actions(file, &policy);
        granted.extend(catalog_grants(file.trim_end_matches(".json")));
        let also = embedded_in.get(file).map_or_else(String::new, |places| {
            format!(" and to {}", places.join(" and "))
        });
        let also_from = embedded_in.get(file).map_or_else(String::new, |places| {
            format!(" and from {}", places.join(" and "))
        });
        for problem in problems {
            writeln!(report, "{problem}").unwrap();
        }
        for (action, places) in &needed {
            if !granted.contains(action) {
                let places: Vec<&str> = places.iter().map(String::as_str).collect();
                writeln!(
                    report,
                    "add `{action}` to policies/iam/{file}{also}: needed by {}",
                    places.join("; ")
                )
                .unwrap();
            }
        }
        for action in &granted {
            if !needed.contains_key(action) {
                let component = role.package.unwrap_or("the component");
                writeln!(
                    report,
                    "remove `{action}` from policies/iam/{file}{also_from}: nothing in {component} calls it"
                )
                .unwrap();
            }
        }
    }
    assert!(report.is_empty(), "least privilege:\n{report}");
}

#[test]
fn erasure_is_the_hub_admin_roles_and_not_the_hub_roles() {
    use crate::iam_attacks::{Decides, erasure_requests, hub_admin_role};

    let workspace = Workspace::load();
    let ranges = function_lines(ERASURE_FILE, ERASURE_FUNCTION);
    assert!(
        !ranges.is_empty(),
        "`fn {ERASURE_FUNCTION}(` is not in {ERASURE_FILE}"
    );
    let called: BTreeSet<String> = package_uses(&workspace, "causeway-hub")
        .into_iter()
        .filter(|(_, places)| {
            places
                .iter()
                .any(|place| inside(place, ERASURE_FILE, &ranges))
        })
        .map(|(action, _)| action)
        .collect();
    let requests = erasure_requests("2026-01-01");
    let listed: BTreeSet<String> = requests.iter().map(|r| r.action.clone()).collect();
    assert_eq!(
        called, listed,
        "the calls in `{ERASURE_FUNCTION}` of {ERASURE_FILE} and the requests \
         `iam_attacks::erasure_requests` lists for them differ: list each call's request there"
    );
    // The hub account's admin role may make every one of them under the hub account's SCPs.
    let cases: Vec<_> = requests.into_iter().map(|r| (true, vec![r])).collect();
    hub_admin_role().expect("hub account's admin", &cases);
    // None of them counts towards the hub role: each is excused from its policy (RUN_BY_ANOTHER_ROLE), so
    // hub.json grants one only where the hub makes the same call itself (its own puts, which the policy's
    // LeadingKeys condition keeps off `erased#…`; `iam_attacks` decides that request).
    let excused: BTreeSet<&str> = RUN_BY_ANOTHER_ROLE
        .iter()
        .filter(|(package, _, file, function, _)| {
            *package == "causeway-hub" && *file == ERASURE_FILE && *function == ERASURE_FUNCTION
        })
        .map(|(_, action, _, _, _)| *action)
        .collect();
    let unexcused: Vec<&String> = called
        .iter()
        .filter(|action| !excused.contains(action.as_str()))
        .collect();
    assert!(
        unexcused.is_empty(),
        "erasure runs as the hub account's admin role: add {unexcused:?} in `{ERASURE_FUNCTION}` to \
         RUN_BY_ANOTHER_ROLE"
    );
}

#[test]
fn templates_embed_the_policy_files() {
    let mut report = String::new();
    let mut embedded = BTreeSet::new();
    for (template, body) in templates() {
        let Some(resources) = body["Resources"].as_object() else {
            continue;
        };
        for (logical_id, resource) in resources {
            let Some(name) = resource["Metadata"]["CausewayPolicy"].as_str() else {
                continue;
            };
            let file = format!("{name}.json");
            embedded.insert(file.clone());
            let Some(expected) = read_policy(&file) else {
                writeln!(report, "{template} resource {logical_id} names policies/iam/{file}, which does not exist").unwrap();
                continue;
            };
            match embedded_document(resource) {
                Some(actual) if *actual == expected => {}
                Some(actual) => writeln!(
                    report,
                    "{template} resource {logical_id} embeds a policy that differs from policies/iam/{file}:\n  template: {actual}\n  file:     {expected}"
                )
                .unwrap(),
                None => writeln!(
                    report,
                    "{template} resource {logical_id}: a `CausewayPolicy` resource must be a role with exactly one inline policy or a managed policy"
                )
                .unwrap(),
            }
        }
    }
    let dir = workspace_root().join("policies").join("iam");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".json")
            && name != "parliament-accepted.json"
            && !embedded.contains(&name)
        {
            writeln!(
                report,
                "policies/iam/{name} is not embedded by any template resource (`Metadata: CausewayPolicy: {}`)",
                name.trim_end_matches(".json")
            )
            .unwrap();
        }
    }
    assert!(
        report.is_empty(),
        "templates and policy files disagree:\n{report}"
    );
}

#[test]
fn the_agent_boundary_admits_the_agent_policy_and_denies_direct_model_calls() {
    let (agent, _) = allowed_actions(
        "spoke-agent.json",
        &read_policy("spoke-agent.json").unwrap(),
    );
    let boundary = read_policy("spoke-agent-boundary.json").unwrap();
    let (ceiling, _) = allowed_actions("spoke-agent-boundary.json", &boundary);
    let outside: Vec<&String> = agent.difference(&ceiling).collect();
    assert!(
        outside.is_empty(),
        "the agent policy grants {outside:?}, which its permission boundary does not allow"
    );
    let denied: BTreeSet<String> = statements(&boundary)
        .into_iter()
        .filter(|s| s["Effect"] == "Deny")
        .flat_map(|s| string_list(&s["Action"]))
        .collect();
    for action in [
        "bedrock:InvokeModel",
        "bedrock:InvokeModelWithResponseStream",
    ] {
        assert!(denied.contains(action), "the boundary must deny `{action}`");
    }
}

#[test]
fn the_scan_finds_fluent_sdk_calls_and_ignores_comments_and_tests() {
    let workspace = Workspace::load();
    let mut operations = |service: &str| workspace.operations(service);
    let source = r#"
use aws_sdk_bedrockruntime::Client;
use aws_sdk_sts::Client as Sts;

// client.invoke_model() in a comment is not a call
async fn call(client: &Client, sts: &Sts) {
    let request = client
        .converse_stream ( )
        .model_id("m");
    sts.assume_role().role_arn("r").send().await;
    sts.get_caller_identity().send().await;
    let unrelated = vec![1].len();
}

#[cfg(test)]
mod tests {
    fn mocked(client: &super::Client) { client.converse(); }
}
"#;
    let mut uses = Uses::new();
    scan_source("example.rs", source, &mut operations, &mut uses);
    let found: Vec<(&str, Vec<&str>)> = uses
        .iter()
        .map(|(action, places)| (action.as_str(), places.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "bedrock:ApplyGuardrail",
                vec!["example.rs:8 (`converse_stream`)"]
            ),
            (
                "bedrock:InvokeModelWithResponseStream",
                vec!["example.rs:8 (`converse_stream`)"]
            ),
            ("sts:AssumeRole", vec!["example.rs:10 (`assume_role`)"]),
        ]
    );
}

#[test]
fn table_and_bucket_grants_name_what_the_templates_create() {
    let mut tables = BTreeSet::new();
    let mut buckets = BTreeSet::new();
    for (_, body) in templates() {
        for resource in body["Resources"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, r)| r)
        {
            match resource["Type"].as_str() {
                Some("AWS::DynamoDB::Table") => {
                    tables.extend(
                        resource["Properties"]["TableName"]
                            .as_str()
                            .map(str::to_owned),
                    );
                }
                Some("AWS::S3::Bucket") => {
                    buckets.extend(
                        resource["Properties"]["BucketName"]
                            .as_str()
                            .map(str::to_owned),
                    );
                }
                _ => {}
            }
        }
    }
    let mut report = String::new();
    let dir = workspace_root().join("policies").join("iam");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !name.ends_with(".json") || name == "parliament-accepted.json" {
            continue;
        }
        let policy = read_policy(&name).unwrap();
        for statement in statements(&policy) {
            for resource in string_list(&statement["Resource"]) {
                if let Some((_, rest)) = resource.split_once(":dynamodb:") {
                    let table = rest
                        .split_once(":table/")
                        .map(|(_, t)| t.split('/').next().unwrap_or(t));
                    if let Some(table) = table.filter(|t| !tables.contains(*t)) {
                        writeln!(
                            report,
                            "policies/iam/{name}: table `{table}` is not a TableName in infra/"
                        )
                        .unwrap();
                    }
                } else if let Some(rest) = resource.strip_prefix("arn:${AWS::Partition}:s3:::") {
                    let bucket = rest.split('/').next().unwrap_or(rest);
                    if !buckets.contains(bucket) {
                        writeln!(
                            report,
                            "policies/iam/{name}: bucket `{bucket}` is not a BucketName in infra/"
                        )
                        .unwrap();
                    }
                }
            }
        }
    }
    assert!(!tables.is_empty(), "the templates create DynamoDB tables");
    assert!(
        report.is_empty(),
        "grants on resources no template creates:\n{report}"
    );
}

#[test]
fn catalog_policies_grant_what_causeway_iam_renders() {
    use causeway_cli::iam::HUB_MODEL_GRANTS;
    use serde_json::json;

    let hub = crate::iam_attacks::cfn_template("hub.yaml");
    let resources = hub["Resources"].as_object().unwrap();
    let mut found = Vec::new();
    for (id, resource) in resources {
        if resource["Metadata"]["CausewayCatalogPolicy"] != "hub" {
            continue;
        }
        assert_eq!(resource["Type"], "AWS::IAM::Policy", "{id}");
        assert_eq!(
            resource["Properties"]["Roles"],
            json!([{"Ref": "HubRole"}]),
            "{id} is attached to the hub role"
        );
        for statement in statements(&resource["Properties"]["PolicyDocument"]) {
            assert_eq!(statement["Effect"], "Allow", "{id}: {statement}");
            let actions: BTreeSet<String> = string_list(&statement["Action"]).into_iter().collect();
            found.push((id.clone(), actions, statement["Resource"].clone()));
        }
    }
    for grant in HUB_MODEL_GRANTS {
        let parameter = &hub["Parameters"][grant.parameter];
        assert_eq!(
            parameter["Type"], "CommaDelimitedList",
            "infra/hub.yaml declares {}",
            grant.parameter
        );
        let expected: BTreeSet<String> = grant.actions.iter().map(|a| (*a).to_owned()).collect();
        let statement = found
            .iter()
            .find(|(_, _, resource)| *resource == json!({"Ref": grant.parameter}));
        assert!(
            statement.is_some(),
            "no statement grants on {}",
            grant.parameter
        );
        let statement = statement.unwrap();
        assert_eq!(statement.1, expected, "the actions on {}", grant.parameter);
        // The policy exists only when the parameter lists a model: IAM refuses an empty resource list.
        let condition = resources[&statement.0]["Condition"].as_str().unwrap();
        assert_eq!(
            hub["Conditions"][condition],
            json!({"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": grant.parameter}]}, ""]}]}),
            "{} is created only when {} is not empty",
            statement.0,
            grant.parameter
        );
    }
    let guardrail = found
        .iter()
        .find(|(_, actions, _)| actions.contains("bedrock:ApplyGuardrail"))
        .expect("the hub may apply the stack's guardrail");
    assert_eq!(
        guardrail.2,
        json!({"Fn::GetAtt": ["HubGuardrail", "GuardrailArn"]}),
        "only the stack's own guardrail"
    );
    assert_eq!(
        found.len(),
        HUB_MODEL_GRANTS.len() + 1,
        "nothing else is granted from the catalog: {found:?}"
    );
}
