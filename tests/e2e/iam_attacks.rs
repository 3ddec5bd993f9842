//! What an attacker holding a Causeway role could do with it: each test creates the role from its template in
//! moto, through CloudFormation, reads back the policies the role got, and asks of them what IAM would decide
//! for the requests an attack needs (and for the requests the component needs, which must still pass).
//!
//! moto stores and returns IAM policies but does not evaluate them (it has no policy simulation), so the
//! decisions come from [`Evaluator`]: IAM's evaluation logic for identity policies (an explicit deny wins,
//! then an allow, else the implicit deny), with `Action`/`NotAction`, `Resource`/`NotResource` and the
//! condition operators these policies use. An operator or policy variable it does not know fails the test
//! instead of being guessed at. A principal in an account with service control policies is decided by
//! [`UnderScps`]: its identity policies and the SCPs as `causeway scp render` renders them must both allow.
//!
//! The hub account's admin role (`spoke_deployment.admin_role`, `OrganizationAccountAccessRole` by default)
//! is not a Causeway template: Organizations creates it with `AdministratorAccess`, and what narrows it on the
//! audit store is `protect-audit-store`, so its tests need no moto.
//!
//! A template is read with its intrinsic functions (`!Ref`, `!Sub`, `!GetAtt`, …) kept, and only the role and
//! what it references (parameters, conditions, keys, the policies attached to it) is deployed; a resource moto
//! cannot create (the Bedrock guardrail) stands in as a fixed ARN.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use aws_config::SdkConfig;
use aws_sdk_cloudformation::types::{Capability, Parameter, StackStatus};
use causeway_cli::iam::{HUB_MODEL_GRANTS, HubModelArns};
use causeway_cli::orgfile::OrgFile;
use causeway_cli::scp::MANAGED_SCP_TAG;
use causeway_testkit::moto::{MOTO_DEFAULT_ACCOUNT_ID, MotoServer, TEST_REGION};
use serde_json::{Value, json};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

// === CloudFormation templates with their intrinsic functions ===

/// A YAML node with its tag, before conversion to CloudFormation's JSON form.
#[derive(Debug)]
enum Node {
    Scalar(String, TScalarStyle, Option<Tag>),
    Sequence(Vec<Node>, Option<Tag>),
    Mapping(Vec<(Node, Node)>, Option<Tag>),
}

/// Builds [`Node`]s from parser events; a mapping being filled keeps the key that waits for its value.
#[derive(Debug, Default)]
struct TreeBuilder {
    open: Vec<(Node, Option<Node>)>,
    done: Option<Node>,
}

impl TreeBuilder {
    fn add(&mut self, node: Node) {
        match self.open.last_mut() {
            Some((Node::Sequence(items, _), _)) => items.push(node),
            Some((Node::Mapping(pairs, _), pending)) => match pending.take() {
                Some(key) => pairs.push((key, node)),
                None => *pending = Some(node),
            },
            _ => self.done = Some(node),
        }
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, event: Event, _mark: Marker) {
        match event {
            Event::Scalar(value, style, _, tag) => self.add(Node::Scalar(value, style, tag)),
            Event::SequenceStart(_, tag) => self.open.push((Node::Sequence(Vec::new(), tag), None)),
            Event::MappingStart(_, tag) => self.open.push((Node::Mapping(Vec::new(), tag), None)),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, _) = self.open.pop().unwrap();
                self.add(node);
            }
            _ => {}
        }
    }
}

/// The CloudFormation function a local tag (`!Ref`, `!Sub`, …) stands for.
fn function(tag: Option<&Tag>) -> Option<String> {
    let tag = tag.filter(|t| t.handle == "!")?;
    Some(match tag.suffix.as_str() {
        "Ref" | "Condition" => tag.suffix.clone(),
        other => format!("Fn::{other}"),
    })
}

fn to_cfn(node: &Node) -> Value {
    match node {
        Node::Scalar(text, style, tag) => match function(tag.as_ref()) {
            Some(name) if name == "Fn::GetAtt" => {
                let (resource, attribute) = text.split_once('.').unwrap();
                json!({ name: [resource, attribute] })
            }
            Some(name) => json!({ name: text }),
            None if *style == TScalarStyle::Plain => match text.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "" | "~" | "null" => Value::Null,
                _ => text
                    .parse::<i64>()
                    .map_or_else(|_| Value::String(text.clone()), Value::from),
            },
            None => Value::String(text.clone()),
        },
        Node::Sequence(items, tag) => {
            let list = Value::Array(items.iter().map(to_cfn).collect());
            match function(tag.as_ref()) {
                Some(name) => json!({ name: list }),
                None => list,
            }
        }
        Node::Mapping(pairs, tag) => {
            let map = Value::Object(
                pairs
                    .iter()
                    .map(|(key, value)| {
                        let Node::Scalar(key, _, _) = key else {
                            unreachable!("a mapping key that is not a scalar");
                        };
                        (key.clone(), to_cfn(value))
                    })
                    .collect(),
            );
            match function(tag.as_ref()) {
                Some(name) => json!({ name: map }),
                None => map,
            }
        }
    }
}

/// `infra/<name>` in CloudFormation's JSON form, intrinsic functions kept (`{"Ref": …}`, `{"Fn::Sub": …}`).
pub(crate) fn cfn_template(name: &str) -> Value {
    let text = std::fs::read_to_string(workspace_root().join("infra").join(name)).unwrap();
    let mut builder = TreeBuilder::default();
    Parser::new_from_str(&text)
        .load(&mut builder, false)
        .unwrap();
    to_cfn(&builder.done.unwrap())
}

/// The names a value references: parameters and resources (`Ref`, `Fn::GetAtt`, `${…}` in `Fn::Sub`) and
/// conditions (`Condition`, `Fn::If`).
fn references(value: &Value, names: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("Ref" | "Condition", Value::String(name)) => {
                        names.insert(name.clone());
                    }
                    ("Fn::GetAtt", Value::Array(parts)) => {
                        names.extend(parts[0].as_str().map(str::to_owned));
                    }
                    ("Fn::Sub", sub) => {
                        let text = match sub {
                            Value::Array(parts) => parts[0].as_str().unwrap_or_default(),
                            other => other.as_str().unwrap_or_default(),
                        };
                        let mut rest = text;
                        while let Some(start) = rest.find("${") {
                            let end = rest[start..].find('}').unwrap() + start;
                            let name = &rest[start + 2..end];
                            names.insert(name.split('.').next().unwrap().to_owned());
                            rest = &rest[end + 1..];
                        }
                    }
                    ("Fn::If", Value::Array(parts)) => {
                        names.extend(parts[0].as_str().map(str::to_owned));
                    }
                    _ => {}
                }
                references(inner, names);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, names)),
        _ => {}
    }
}

/// Replaces references to resources that are not deployed with fixed values: `stand_ins` maps `Resource` (for
/// `Ref`) and `Resource.Attribute` (for `Fn::GetAtt` and `${Resource.Attribute}`) to the value.
fn stand_in(value: &mut Value, stand_ins: &BTreeMap<&str, &str>) {
    let replaced = match &*value {
        Value::Object(map) if map.len() == 1 => match map.iter().next().unwrap() {
            (key, Value::String(name)) if key == "Ref" => stand_ins.get(name.as_str()).copied(),
            (key, Value::Array(parts)) if key == "Fn::GetAtt" => {
                let name = format!(
                    "{}.{}",
                    parts[0].as_str().unwrap(),
                    parts[1].as_str().unwrap()
                );
                stand_ins.get(name.as_str()).copied()
            }
            _ => None,
        },
        _ => None,
    };
    if let Some(text) = replaced {
        *value = Value::String(text.to_owned());
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if key == "Fn::Sub"
                    && let Value::String(text) = inner
                {
                    for (name, with) in stand_ins {
                        *text = text.replace(&format!("${{{name}}}"), with);
                    }
                }
                stand_in(inner, stand_ins);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| stand_in(item, stand_ins)),
        _ => {}
    }
}

/// The part of `template` that `roots` need: those resources, every resource, parameter and condition they
/// reference (transitively), with `stand_ins` put in for resources that are not deployed.
fn substack(template: &Value, roots: &[String], stand_ins: &BTreeMap<&str, &str>) -> Value {
    let resources = template["Resources"].as_object().unwrap();
    let parameters = template["Parameters"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let conditions = template["Conditions"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let standing_in: BTreeSet<&str> = stand_ins
        .keys()
        .map(|name| name.split('.').next().unwrap())
        .collect();
    let mut out = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {},
        "Conditions": {},
        "Resources": {},
    });
    let mut todo: Vec<String> = roots.to_vec();
    let mut seen = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) || name.starts_with("AWS::") {
            continue;
        }
        let (section, body) = if let Some(resource) = resources.get(&name) {
            if standing_in.contains(name.as_str()) {
                continue;
            }
            ("Resources", resource.clone())
        } else if let Some(parameter) = parameters.get(&name) {
            ("Parameters", parameter.clone())
        } else if let Some(condition) = conditions.get(&name) {
            ("Conditions", condition.clone())
        } else {
            unreachable!("`{name}` is referenced but not defined in the template");
        };
        let mut names = BTreeSet::new();
        references(&body, &mut names);
        todo.extend(names);
        out[section][&name] = body;
    }
    stand_in(&mut out, stand_ins);
    out
}

/// Deploys `template` to moto as `stack` with `parameters`; the stack must complete.
async fn deploy(config: &SdkConfig, stack: &str, template: &Value, parameters: &[(&str, String)]) {
    let cfn = aws_sdk_cloudformation::Client::new(config);
    cfn.create_stack()
        .stack_name(stack)
        .template_body(template.to_string())
        .set_parameters(Some(
            parameters
                .iter()
                .map(|(key, value)| {
                    Parameter::builder()
                        .parameter_key(*key)
                        .parameter_value(value)
                        .build()
                })
                .collect(),
        ))
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await
        .unwrap();
    let described = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.stacks()[0].stack_status(),
        Some(&StackStatus::CreateComplete),
        "{stack}: {:?}",
        described.stacks()[0].stack_status_reason()
    );
}

/// The physical id CloudFormation gave `logical_id` in `stack`.
async fn physical_id(config: &SdkConfig, stack: &str, logical_id: &str) -> String {
    aws_sdk_cloudformation::Client::new(config)
        .describe_stack_resource()
        .stack_name(stack)
        .logical_resource_id(logical_id)
        .send()
        .await
        .unwrap()
        .stack_resource_detail()
        .unwrap()
        .physical_resource_id()
        .unwrap()
        .to_owned()
}

/// Every inline policy `role` has in moto.
async fn role_policies(config: &SdkConfig, role: &str) -> Vec<Value> {
    let iam = aws_sdk_iam::Client::new(config);
    let names = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap()
        .policy_names()
        .to_vec();
    let mut documents = Vec::new();
    for name in names {
        let policy = iam
            .get_role_policy()
            .role_name(role)
            .policy_name(&name)
            .send()
            .await
            .unwrap();
        documents.push(crate::infra::policy_document(policy.policy_document()));
    }
    assert!(!documents.is_empty(), "{role} has no inline policy");
    documents
}

// === IAM's evaluation logic ===

/// What IAM decides for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
}

/// One request: an action on a resource, with its condition keys (names are case-insensitive).
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) action: String,
    resource: String,
    context: BTreeMap<String, Vec<String>>,
}

impl Request {
    fn new(action: &str, resource: &str) -> Self {
        Self {
            action: action.to_owned(),
            resource: resource.to_owned(),
            context: BTreeMap::new(),
        }
    }

    fn with(mut self, key: &str, value: &str) -> Self {
        self.context
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.to_owned());
        self
    }
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.action, self.resource)?;
        for (key, values) in &self.context {
            write!(f, " {key}={values:?}")?;
        }
        Ok(())
    }
}

/// The policies of one kind that apply to a principal: its identity policies, or the SCPs on its account.
struct Evaluator {
    statements: Vec<Value>,
}

/// `*` and `?` wildcards over the whole text.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let mut matches = vec![vec![false; t.len() + 1]; p.len() + 1];
    matches[0][0] = true;
    for i in 1..=p.len() {
        matches[i][0] = matches[i - 1][0] && p[i - 1] == '*';
        for j in 1..=t.len() {
            matches[i][j] = match p[i - 1] {
                '*' => matches[i - 1][j] || matches[i][j - 1],
                '?' => matches[i - 1][j - 1],
                c => matches[i - 1][j - 1] && c == t[j - 1],
            };
        }
    }
    matches[p.len()][t.len()]
}

/// ARN matching: `*` alone matches everything; otherwise each of the six `:`-separated parts is matched on
/// its own, so a wildcard never spans a part.
fn arn_like(pattern: &str, arn: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let pattern: Vec<&str> = pattern.splitn(6, ':').collect();
    let arn: Vec<&str> = arn.splitn(6, ':').collect();
    pattern.len() == 6 && arn.len() == 6 && pattern.iter().zip(&arn).all(|(p, a)| glob(p, a))
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(one) => vec![one.clone()],
        Value::Bool(flag) => vec![flag.to_string()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Null => Vec::new(),
        other => unreachable!("not a policy value: {other}"),
    }
}

impl Evaluator {
    fn new(policies: &[Value]) -> Self {
        let statements = policies
            .iter()
            .flat_map(|policy| match &policy["Statement"] {
                Value::Array(items) => items.clone(),
                single @ Value::Object(_) => vec![single.clone()],
                other => unreachable!("a policy without statements: {other}"),
            })
            .collect();
        Self { statements }
    }

    fn applies(statement: &Value, request: &Request) -> bool {
        let action = request.action.to_ascii_lowercase();
        let action_matches = |list: &Value| {
            strings(list)
                .iter()
                .any(|pattern| glob(&pattern.to_ascii_lowercase(), &action))
        };
        let resource_matches = |list: &Value| {
            strings(list)
                .iter()
                .any(|pattern| arn_like(pattern, &request.resource))
        };
        let action_ok = if statement.get("NotAction").is_some() {
            !action_matches(&statement["NotAction"])
        } else {
            action_matches(&statement["Action"])
        };
        let resource_ok = if statement.get("NotResource").is_some() {
            !resource_matches(&statement["NotResource"])
        } else {
            resource_matches(&statement["Resource"])
        };
        action_ok && resource_ok && Self::conditions_hold(&statement["Condition"], request)
    }

    fn conditions_hold(conditions: &Value, request: &Request) -> bool {
        let Some(operators) = conditions.as_object() else {
            return true;
        };
        operators.iter().all(|(operator, block)| {
            block.as_object().unwrap().iter().all(|(key, expected)| {
                Self::condition(
                    operator,
                    &key.to_ascii_lowercase(),
                    &strings(expected),
                    request,
                )
            })
        })
    }

    fn condition(operator: &str, key: &str, expected: &[String], request: &Request) -> bool {
        assert!(
            expected.iter().all(|value| !value.contains("${")),
            "policy variables are not evaluated here: {expected:?}"
        );
        let (set, rest) = match operator.split_once(':') {
            Some((set @ ("ForAllValues" | "ForAnyValue"), rest)) => (Some(set), rest),
            Some(_) => unreachable!("unknown condition operator `{operator}`"),
            None => (None, operator),
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let actual = request.context.get(key);
        if base == "Null" {
            let absent = actual.is_none_or(Vec::is_empty);
            return expected.iter().any(|e| (e == "true") == absent);
        }
        let (negated, compare): (bool, fn(&str, &str) -> bool) = match base {
            "StringEquals" => (false, |e, a| e == a),
            "StringNotEquals" => (true, |e, a| e == a),
            "StringLike" => (false, glob),
            "StringNotLike" => (true, glob),
            "ArnEquals" | "ArnLike" => (false, arn_like),
            "ArnNotEquals" | "ArnNotLike" => (true, arn_like),
            "Bool" => (false, |e, a| e.eq_ignore_ascii_case(a)),
            other => unreachable!("condition operator `{other}` is not evaluated here"),
        };
        let Some(actual) = actual.filter(|values| !values.is_empty()) else {
            return match set {
                Some("ForAllValues") => true,
                Some(_) => false,
                None => if_exists || negated,
            };
        };
        let matches_one = |value: &String| expected.iter().any(|e| compare(e, value));
        match (set, negated) {
            (Some("ForAllValues"), false) => actual.iter().all(matches_one),
            (Some("ForAllValues"), true) => actual.iter().all(|v| !matches_one(v)),
            (Some(_), false) => actual.iter().any(matches_one),
            (Some(_), true) => actual.iter().any(|v| !matches_one(v)),
            (None, false) => actual.iter().any(matches_one),
            (None, true) => !actual.iter().any(matches_one),
        }
    }
}

/// Decides requests the way AWS does for one principal.
pub(crate) trait Decides {
    fn decide(&self, request: &Request) -> Decision;

    /// A request on several resources at once (Organizations' attach and detach name the policy and the
    /// target) is allowed only when each is.
    fn decide_all(&self, requests: &[Request]) -> Decision {
        let decisions: Vec<Decision> = requests.iter().map(|r| self.decide(r)).collect();
        if decisions.contains(&Decision::ExplicitDeny) {
            Decision::ExplicitDeny
        } else if decisions.iter().all(|d| *d == Decision::Allowed) {
            Decision::Allowed
        } else {
            Decision::ImplicitDeny
        }
    }

    /// Panics naming every request whose decision is not `allowed` (true) or a deny (false).
    fn expect(&self, role: &str, cases: &[(bool, Vec<Request>)]) {
        let mut wrong = Vec::new();
        for (allowed, requests) in cases {
            let decision = self.decide_all(requests);
            if (decision == Decision::Allowed) != *allowed {
                let shown: Vec<String> = requests.iter().map(ToString::to_string).collect();
                wrong.push(format!(
                    "  {} ({decision:?}, expected {}): {}",
                    if *allowed { "refused" } else { "permitted" },
                    if *allowed { "allowed" } else { "denied" },
                    shown.join(" + ")
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "the {role} role's policies decide wrongly:\n{}",
            wrong.join("\n")
        );
    }
}

impl Decides for Evaluator {
    fn decide(&self, request: &Request) -> Decision {
        let matching: Vec<&Value> = self
            .statements
            .iter()
            .filter(|statement| Self::applies(statement, request))
            .collect();
        if matching.iter().any(|s| s["Effect"] == "Deny") {
            Decision::ExplicitDeny
        } else if matching.iter().any(|s| s["Effect"] == "Allow") {
            Decision::Allowed
        } else {
            Decision::ImplicitDeny
        }
    }
}

/// A principal in a member account: its identity policies decide together with the service control policies
/// on its account, which see the principal's ARN (`aws:PrincipalArn`). Both must allow (Organizations keeps
/// `FullAWSAccess` attached to every target, so the SCPs allow what they do not deny) and a deny in either
/// wins.
pub(crate) struct UnderScps {
    principal: String,
    identity: Evaluator,
    scps: Evaluator,
}

impl Decides for UnderScps {
    fn decide(&self, request: &Request) -> Decision {
        let request = request.clone().with("aws:PrincipalArn", &self.principal);
        match (self.identity.decide(&request), self.scps.decide(&request)) {
            (Decision::ExplicitDeny, _) | (_, Decision::ExplicitDeny) => Decision::ExplicitDeny,
            (Decision::Allowed, Decision::Allowed) => Decision::Allowed,
            _ => Decision::ImplicitDeny,
        }
    }
}

#[test]
fn the_evaluator_follows_iam_evaluation_logic() {
    let policies = [json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "dynamodb:*Item", "Resource": "arn:aws:dynamodb:*:*:table/t",
             "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["a#*", "b"]}}},
            {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"},
            {"Effect": "Allow", "Action": "kms:Sign", "Resource": "*",
             "Condition": {"StringEquals": {"kms:MessageType": "RAW"}, "Null": {"kms:SigningAlgorithm": "false"}}},
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*",
             "Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "red"}}},
        ]
    })];
    let evaluator = Evaluator::new(&policies);
    let table = "arn:aws:dynamodb:us-east-1:1:table/t";
    let decide = |request: Request| evaluator.decide(&request);
    assert_eq!(
        decide(Request::new("dynamodb:PutItem", table).with("dynamodb:LeadingKeys", "a#1")),
        Decision::Allowed
    );
    assert_eq!(
        decide(Request::new("DynamoDB:putitem", table).with("dynamodb:leadingkeys", "b")),
        Decision::Allowed,
        "action and condition key names are case-insensitive"
    );
    assert_eq!(
        decide(Request::new("dynamodb:PutItem", table).with("dynamodb:LeadingKeys", "c")),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(Request::new("dynamodb:PutItem", table)),
        Decision::Allowed,
        "ForAllValues holds over a missing key"
    );
    assert_eq!(
        decide(Request::new("dynamodb:DeleteItem", table).with("dynamodb:LeadingKeys", "a#1")),
        Decision::ExplicitDeny,
        "a deny wins over an allow"
    );
    assert_eq!(
        decide(Request::new(
            "dynamodb:PutItem",
            "arn:aws:dynamodb:us-east-1:1:table/t/index/i"
        )),
        Decision::ImplicitDeny,
        "a wildcard stays inside its ARN part and the pattern covers the whole resource"
    );
    assert_eq!(
        decide(Request::new("s3:GetObject", "arn:aws:s3:::secret/x")),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(Request::new("s3:GetObject", "arn:aws:s3:::open/x")),
        Decision::Allowed
    );
    let sign = || Request::new("kms:Sign", "arn:aws:kms:us-east-1:1:key/k");
    assert_eq!(
        decide(sign().with("kms:MessageType", "RAW")),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(
            sign()
                .with("kms:MessageType", "RAW")
                .with("kms:SigningAlgorithm", "X")
        ),
        Decision::Allowed
    );
    assert_eq!(
        decide(
            sign()
                .with("kms:MessageType", "DIGEST")
                .with("kms:SigningAlgorithm", "X")
        ),
        Decision::ImplicitDeny
    );
    let assume = || Request::new("sts:AssumeRole", "arn:aws:iam::1:role/r");
    assert_eq!(
        decide(assume()),
        Decision::Allowed,
        "a negated operator holds over a missing key"
    );
    assert_eq!(
        decide(assume().with("aws:PrincipalTag/team", "red")),
        Decision::ImplicitDeny
    );
    assert_eq!(
        evaluator.decide_all(&[
            Request::new("s3:GetObject", "arn:aws:s3:::open/x"),
            Request::new("s3:GetObject", "arn:aws:s3:::secret/x"),
        ]),
        Decision::ImplicitDeny,
        "a request on two resources needs both"
    );
}

#[test]
fn the_evaluator_decides_a_principal_under_scps() {
    let everything = json!({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let scp = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*", "Condition": {
            "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::1:role/eraser"},
            "ForAnyValue:StringNotLike": {"dynamodb:LeadingKeys": "day#*"}}},
    ]});
    let under = |principal: &str| UnderScps {
        principal: format!("arn:aws:iam::1:role/{principal}"),
        identity: Evaluator::new(std::slice::from_ref(&everything)),
        scps: Evaluator::new(&[everything.clone(), scp.clone()]),
    };
    let delete = || {
        Request::new(
            "dynamodb:DeleteItem",
            "arn:aws:dynamodb:us-east-1:1:table/t",
        )
    };
    let eraser = under("eraser");
    assert_eq!(
        eraser.decide(&delete().with("dynamodb:LeadingKeys", "day#1")),
        Decision::Allowed
    );
    assert_eq!(
        eraser.decide(&delete().with("dynamodb:LeadingKeys", "record#1")),
        Decision::ExplicitDeny,
        "a deny in an SCP wins over the identity policy's allow"
    );
    assert_eq!(
        eraser.decide(
            &delete()
                .with("dynamodb:LeadingKeys", "day#1")
                .with("dynamodb:LeadingKeys", "record#1")
        ),
        Decision::ExplicitDeny,
        "ForAnyValue with a negated operator holds when one value is outside the pattern"
    );
    assert_eq!(
        eraser.decide(&delete()),
        Decision::Allowed,
        "ForAnyValue never holds over a missing key, so a deny-unless needs its own `Null` statement"
    );
    assert_eq!(
        under("someone").decide(&delete().with("dynamodb:LeadingKeys", "record#1")),
        Decision::Allowed,
        "the deny names one principal"
    );
    let narrow = UnderScps {
        principal: "arn:aws:iam::1:role/reader".to_owned(),
        identity: Evaluator::new(&[json!({"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})]),
        scps: Evaluator::new(&[json!({"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})]),
    };
    assert_eq!(
        narrow.decide(&delete().with("dynamodb:LeadingKeys", "day#1")),
        Decision::ImplicitDeny,
        "an SCP's allow grants nothing the identity policies do not"
    );
}

// === the hub role ===

const NAME_PREFIX: &str = "causeway";
/// What stands in for the stack's Bedrock guardrail, which moto cannot create.
const GUARDRAIL_ID: &str = "hubguardrail01";

fn guardrail_arn() -> String {
    format!("arn:aws:bedrock:{TEST_REGION}:{MOTO_DEFAULT_ACCOUNT_ID}:guardrail/{GUARDRAIL_ID}")
}

/// The hub stack's model parameters for the built-in catalog, rendered as `causeway iam hub-parameters`
/// renders them for a hub in moto's account and the test region.
fn hub_models() -> HubModelArns {
    let org = format!(
        "version: 1\nhub:\n  account: \"{MOTO_DEFAULT_ACCOUNT_ID}\"\n  region: {TEST_REGION}\n  \
         approved_regions: [us-east-1, us-east-2, us-west-2]\nroot:\n  accounts: []\n"
    );
    causeway_cli::iam::hub_model_arns(&OrgFile::parse("org.yaml", &org).unwrap()).unwrap()
}

/// The hub role as `infra/hub.yaml` creates it, deployed in moto: its policies, and the ARNs of the
/// payload key and the checkpoint signing key.
struct HubRole {
    evaluator: Evaluator,
    payload_key: String,
    signing_key: String,
}

async fn hub_role(config: &SdkConfig) -> HubRole {
    let template = cfn_template("hub.yaml");
    let mut roots = vec!["HubRole".to_owned()];
    for (id, resource) in template["Resources"].as_object().unwrap() {
        let attached = resource["Type"] == "AWS::IAM::Policy"
            && resource["Properties"]["Roles"]
                .as_array()
                .is_some_and(|roles| roles.contains(&json!({"Ref": "HubRole"})));
        if attached {
            roots.push(id.clone());
        }
    }
    let arn = guardrail_arn();
    let stand_ins = BTreeMap::from([
        ("HubGuardrail", arn.as_str()),
        ("HubGuardrail.GuardrailArn", arn.as_str()),
        ("HubGuardrail.GuardrailId", GUARDRAIL_ID),
    ]);
    let stack = substack(&template, &roots, &stand_ins);
    let declared = stack["Parameters"].as_object().unwrap();
    let models = hub_models();
    let parameters: Vec<(&str, String)> = HUB_MODEL_GRANTS
        .iter()
        .filter(|grant| declared.contains_key(grant.parameter))
        .map(|grant| (grant.parameter, models.arns(grant.parameter).join(",")))
        .collect();
    deploy(config, "causeway-hub-role", &stack, &parameters).await;
    let key_arn =
        |id: String| format!("arn:aws:kms:{TEST_REGION}:{MOTO_DEFAULT_ACCOUNT_ID}:key/{id}");
    HubRole {
        evaluator: Evaluator::new(&role_policies(config, &format!("{NAME_PREFIX}-hub")).await),
        payload_key: key_arn(physical_id(config, "causeway-hub-role", "PayloadKey").await),
        signing_key: key_arn(
            physical_id(config, "causeway-hub-role", "CheckpointSigningKey").await,
        ),
    }
}

fn audit_table() -> String {
    format!(
        "arn:aws:dynamodb:{TEST_REGION}:{MOTO_DEFAULT_ACCOUNT_ID}:table/{NAME_PREFIX}-audit-index"
    )
}

fn payload_object(day: &str) -> String {
    format!(
        "arn:aws:s3:::{NAME_PREFIX}-audit-{MOTO_DEFAULT_ACCOUNT_ID}-{TEST_REGION}/payloads/{day}/0190b7a2-0000-7000-8000-000000000001.json"
    )
}

/// A request on the audit table for the item with partition key `pk`.
fn audit_item(action: &str, pk: &str) -> Vec<Request> {
    vec![Request::new(action, &audit_table()).with("dynamodb:LeadingKeys", pk)]
}

/// What the hub does on every call, which must keep working however narrow the role gets.
fn the_hub_still_appends_and_reads(role: &HubRole) -> Vec<(bool, Vec<Request>)> {
    let table = audit_table();
    vec![
        (
            true,
            audit_item("dynamodb:PartiQLInsert", "chain#lambda-0190b7a2"),
        ),
        (true, audit_item("dynamodb:PartiQLInsert", "checkpoints")),
        (
            true,
            audit_item("dynamodb:PartiQLInsert", "datakey#2026-01-01"),
        ),
        (true, audit_item("dynamodb:GetItem", "datakey#2026-01-01")),
        (true, audit_item("dynamodb:GetItem", "erased#2026-01-01")),
        (true, audit_item("dynamodb:Query", "chain#lambda-0190b7a2")),
        (
            true,
            vec![Request::new(
                "dynamodb:Query",
                &format!("{table}/index/by_user"),
            )],
        ),
        (true, vec![Request::new("dynamodb:DescribeTable", &table)]),
        (
            true,
            vec![
                Request::new("s3:PutObject", &payload_object("2026-01-01"))
                    .with("s3:if-none-match", "*"),
            ],
        ),
        (
            true,
            vec![Request::new(
                "s3:PutObjectRetention",
                &payload_object("2026-01-01"),
            )],
        ),
        (
            true,
            vec![Request::new("s3:GetObject", &payload_object("2026-01-01"))],
        ),
        (
            true,
            vec![
                Request::new("kms:GenerateDataKey", &role.payload_key)
                    .with("kms:EncryptionContext:causeway-day", "2026-01-01"),
            ],
        ),
        (
            true,
            vec![
                Request::new("kms:Decrypt", &role.payload_key)
                    .with("kms:EncryptionContext:causeway-day", "2026-01-01"),
            ],
        ),
        (
            true,
            vec![Request::new("kms:GetPublicKey", &role.signing_key)],
        ),
        (
            true,
            vec![
                Request::new("kms:Sign", &role.signing_key)
                    .with("kms:MessageType", "RAW")
                    .with("kms:SigningAlgorithm", "ECDSA_SHA_256"),
            ],
        ),
    ]
}

#[tokio::test]
async fn the_hub_role_cannot_delete_an_audit_record() {
    let moto = MotoServer::start().await.unwrap();
    let config = moto.sdk_config().await;
    let role = hub_role(&config).await;
    let table = audit_table();
    let mut cases = the_hub_still_appends_and_reads(&role);
    for pk in ["chain#lambda-0190b7a2", "checkpoints"] {
        for action in [
            "dynamodb:DeleteItem",
            "dynamodb:UpdateItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:PartiQLDelete",
            "dynamodb:PartiQLUpdate",
        ] {
            cases.push((false, audit_item(action, pk)));
        }
    }
    for action in [
        "dynamodb:DeleteTable",
        "dynamodb:UpdateTable",
        "dynamodb:DeleteBackup",
    ] {
        cases.push((false, vec![Request::new(action, &table)]));
    }
    for action in [
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:BypassGovernanceRetention",
    ] {
        cases.push((
            false,
            vec![Request::new(action, &payload_object("2026-01-01"))],
        ));
    }
    // A checkpoint is signed over its canonical bytes (RAW, ECDSA_SHA_256) with the checkpoint key only: the
    // role cannot have KMS sign a digest computed elsewhere, sign with another algorithm or with another key.
    let sign = |key: &str, message_type: &str, algorithm: &str| {
        vec![
            Request::new("kms:Sign", key)
                .with("kms:MessageType", message_type)
                .with("kms:SigningAlgorithm", algorithm),
        ]
    };
    cases.push((false, sign(&role.signing_key, "DIGEST", "ECDSA_SHA_256")));
    cases.push((false, sign(&role.signing_key, "RAW", "ECDSA_SHA_384")));
    cases.push((false, sign(&role.payload_key, "RAW", "ECDSA_SHA_256")));
    role.evaluator.expect("hub", &cases);
}

#[tokio::test]
async fn the_hub_role_cannot_overwrite_a_record_a_checkpoint_a_day_key_or_a_payload() {
    let moto = MotoServer::start().await.unwrap();
    let config = moto.sdk_config().await;
    let role = hub_role(&config).await;
    let mut cases = the_hub_still_appends_and_reads(&role);
    // `PutItem` replaces an item whose key exists, and IAM cannot require it to be conditional: the hub
    // inserts with PartiQL, which cannot replace, and may not put at all.
    for pk in ["chain#lambda-0190b7a2", "checkpoints", "datakey#2026-01-01"] {
        cases.push((false, audit_item("dynamodb:PutItem", pk)));
    }
    // A request that names no key is not one of the hub's partitions.
    cases.push((
        false,
        vec![Request::new("dynamodb:PartiQLInsert", &audit_table())],
    ));
    // A payload is only put where none is: without `If-None-Match: *` a put could replace a newer version.
    cases.push((
        false,
        vec![Request::new("s3:PutObject", &payload_object("2026-01-01"))],
    ));
    cases.push((
        false,
        vec![
            Request::new("s3:PutObject", &payload_object("2026-01-01"))
                .with("s3:if-none-match", "\"0123abcd\""),
        ],
    ));
    role.evaluator.expect("hub", &cases);
}

#[tokio::test]
async fn the_hub_role_cannot_crypto_shred_a_day_of_payloads() {
    let moto = MotoServer::start().await.unwrap();
    let config = moto.sdk_config().await;
    let role = hub_role(&config).await;
    let day = "2026-01-01";
    let mut cases = the_hub_still_appends_and_reads(&role);
    // The day's wrapped data key is the only way to its payloads: deleting it (or marking the day erased, so
    // no key is made for it) is erasure, which only the admin role does (`causeway evidence erase`).
    cases.push((
        false,
        audit_item("dynamodb:DeleteItem", &format!("datakey#{day}")),
    ));
    cases.push((
        false,
        audit_item("dynamodb:PartiQLDelete", &format!("datakey#{day}")),
    ));
    cases.push((
        false,
        audit_item("dynamodb:UpdateItem", &format!("datakey#{day}")),
    ));
    cases.push((
        false,
        audit_item("dynamodb:PutItem", &format!("erased#{day}")),
    ));
    cases.push((
        false,
        audit_item("dynamodb:PartiQLInsert", &format!("erased#{day}")),
    ));
    cases.push((false, audit_item("dynamodb:PutItem", "anything-else")));
    cases.push((false, audit_item("dynamodb:PartiQLInsert", "anything-else")));
    // Counting a day's payloads is erasure's too; the hub never lists the bucket.
    cases.push((
        false,
        vec![
            Request::new("s3:ListBucket", &audit_bucket())
                .with("s3:prefix", &format!("payloads/{day}/")),
        ],
    ));
    for action in [
        "kms:ScheduleKeyDeletion",
        "kms:DisableKey",
        "kms:PutKeyPolicy",
        "kms:CreateGrant",
        "kms:ReEncryptFrom",
    ] {
        cases.push((false, vec![Request::new(action, &role.payload_key)]));
        cases.push((false, vec![Request::new(action, &role.signing_key)]));
    }
    cases.push((
        false,
        vec![Request::new(
            "s3:PutBucketLifecycleConfiguration",
            &format!("arn:aws:s3:::{NAME_PREFIX}-audit-{MOTO_DEFAULT_ACCOUNT_ID}-{TEST_REGION}"),
        )],
    ));
    role.evaluator.expect("hub", &cases);
}

#[tokio::test]
async fn the_hub_role_cannot_invoke_a_model_outside_the_catalog() {
    let moto = MotoServer::start().await.unwrap();
    let config = moto.sdk_config().await;
    let role = hub_role(&config).await;
    let models = hub_models();
    let mut cases = Vec::new();
    let invoke = |action: &str, arn: &str, guardrail: Option<&str>| {
        let request = Request::new(action, arn);
        vec![match guardrail {
            Some(id) => request.with("bedrock:GuardrailIdentifier", id),
            None => request,
        }]
    };
    // Every catalog model, by the actions its kind is called with.
    for grant in HUB_MODEL_GRANTS {
        let arns = models.arns(grant.parameter);
        assert!(
            !arns.is_empty(),
            "the built-in catalog has {:?} models",
            grant.kind
        );
        for arn in arns {
            for action in grant.actions {
                cases.push((true, invoke(action, arn, None)));
            }
        }
    }
    cases.push((
        true,
        vec![Request::new("bedrock:ApplyGuardrail", &guardrail_arn())],
    ));
    // An inference profile call is authorized against the profile and the model in the routed region.
    let haiku = "anthropic.claude-haiku-4-5-20251001-v1:0";
    cases.push((
        true,
        vec![
            Request::new(
                "bedrock:InvokeModelWithResponseStream",
                &format!(
                    "arn:aws:bedrock:{TEST_REGION}:{MOTO_DEFAULT_ACCOUNT_ID}:inference-profile/us.{haiku}"
                ),
            ),
            Request::new(
                "bedrock:InvokeModelWithResponseStream",
                &format!("arn:aws:bedrock:us-west-2::foundation-model/{haiku}"),
            ),
        ],
    ));
    // Models the catalog does not list, in any region, directly or through a profile.
    for arn in [
        format!(
            "arn:aws:bedrock:{TEST_REGION}::foundation-model/anthropic.claude-3-opus-20240229-v1:0"
        ),
        format!("arn:aws:bedrock:{TEST_REGION}::foundation-model/deepseek.r1-v1:0"),
        format!("arn:aws:bedrock:eu-west-1::foundation-model/{haiku}"),
        format!(
            "arn:aws:bedrock:{TEST_REGION}:{MOTO_DEFAULT_ACCOUNT_ID}:inference-profile/us.meta.llama3-3-70b-instruct-v1:0"
        ),
        format!("arn:aws:bedrock:{TEST_REGION}:{MOTO_DEFAULT_ACCOUNT_ID}:provisioned-model/abc123"),
        format!("arn:aws:bedrock:{TEST_REGION}:{MOTO_DEFAULT_ACCOUNT_ID}:custom-model/exfiltrated"),
        format!("arn:aws:bedrock:{TEST_REGION}:{MOTO_DEFAULT_ACCOUNT_ID}:imported-model/weights"),
    ] {
        cases.push((false, invoke("bedrock:InvokeModel", &arn, None)));
        cases.push((
            false,
            invoke("bedrock:InvokeModelWithResponseStream", &arn, None),
        ));
    }
    // Embedding models are invoked with InvokeModel only.
    for arn in models.arns("EmbeddingModelArns") {
        if !models.arns("ChatModelArns").contains(arn) {
            cases.push((
                false,
                invoke("bedrock:InvokeModelWithResponseStream", arn, None),
            ));
        }
    }
    // Only the stack's own guardrail.
    for other in [
        format!("arn:aws:bedrock:{TEST_REGION}:{MOTO_DEFAULT_ACCOUNT_ID}:guardrail/permissive01"),
        format!("arn:aws:bedrock:eu-west-1:{MOTO_DEFAULT_ACCOUNT_ID}:guardrail/{GUARDRAIL_ID}"),
    ] {
        cases.push((false, vec![Request::new("bedrock:ApplyGuardrail", &other)]));
    }
    role.evaluator.expect("hub", &cases);
}

// === the hub account's admin role: erasure ===

/// An org file whose hub is moto's account in the test region, with `protect-audit-store` on the hub account
/// and the admin role at its default (`OrganizationAccountAccessRole`).
fn hub_account_org() -> OrgFile {
    let org = format!(
        "version: 1\nname_prefix: {NAME_PREFIX}\nhub:\n  account: \"{MOTO_DEFAULT_ACCOUNT_ID}\"\n  \
         region: {TEST_REGION}\n  approved_regions: [{TEST_REGION}]\nroot:\n  accounts:\n    \
         - {{ id: \"{MOTO_DEFAULT_ACCOUNT_ID}\", name: hub, scps: [protect-audit-store] }}\n"
    );
    OrgFile::parse("org.yaml", &org).unwrap()
}

/// `Allow *` on everything: the `FullAWSAccess` SCP Organizations keeps on every target, and the
/// `AdministratorAccess` policy it attaches to the admin role of every account it creates.
fn allow_everything() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
}

/// The SCPs on the hub account: `FullAWSAccess` and what `causeway scp render` renders for the org file.
fn hub_account_scps(org: &OrgFile) -> Evaluator {
    let rendered = causeway_cli::scp::render_all(org).unwrap();
    assert_eq!(
        rendered.keys().collect::<Vec<_>>(),
        ["protect-audit-store"],
        "the hub account carries protect-audit-store"
    );
    let mut policies = vec![allow_everything()];
    policies.extend(
        rendered
            .values()
            .map(|scp| serde_json::from_str::<Value>(&scp.document).unwrap()),
    );
    Evaluator::new(&policies)
}

/// The ARN of the hub account's admin role, as the org file names it.
fn hub_admin_arn(org: &OrgFile) -> String {
    format!(
        "arn:aws:iam::{}:role/{}",
        org.hub.account, org.spoke_deployment.admin_role
    )
}

/// The hub account's admin role: `AdministratorAccess` under the hub account's SCPs.
pub(crate) fn hub_admin_role() -> UnderScps {
    let org = hub_account_org();
    UnderScps {
        principal: hub_admin_arn(&org),
        identity: Evaluator::new(&[allow_everything()]),
        scps: hub_account_scps(&org),
    }
}

fn audit_bucket() -> String {
    format!("arn:aws:s3:::{NAME_PREFIX}-audit-{MOTO_DEFAULT_ACCOUNT_ID}-{TEST_REGION}")
}

/// `requests` as `principal` makes them (`aws:PrincipalArn`, which the SCPs decide on).
fn made_by(principal: &str, requests: Vec<Request>) -> Vec<Request> {
    requests
        .into_iter()
        .map(|request| request.with("aws:PrincipalArn", principal))
        .collect()
}

/// The requests `erase_period` (`causeway evidence erase --store aws`) makes to erase `day`: it marks the day
/// erased, deletes the day's data key and lists the day's payloads to count them.
pub(crate) fn erasure_requests(day: &str) -> Vec<Request> {
    vec![
        Request::new("dynamodb:PutItem", &audit_table())
            .with("dynamodb:LeadingKeys", &format!("erased#{day}")),
        Request::new("dynamodb:DeleteItem", &audit_table())
            .with("dynamodb:LeadingKeys", &format!("datakey#{day}")),
        Request::new("s3:ListBucket", &audit_bucket())
            .with("s3:prefix", &format!("payloads/{day}/")),
    ]
}

/// Writes to the audit store that are not erasure: rewriting or removing records and checkpoints, undoing
/// an erasure, putting back a day key, and every write form erasure does not use.
fn audit_writes_other_than_erasure(day: &str) -> Vec<Vec<Request>> {
    let mut writes = Vec::new();
    for pk in ["chain#lambda-0190b7a2", "checkpoints"] {
        for action in ["dynamodb:PutItem", "dynamodb:DeleteItem"] {
            writes.push(audit_item(action, pk));
        }
    }
    writes.push(audit_item("dynamodb:DeleteItem", &format!("erased#{day}")));
    writes.push(audit_item("dynamodb:PutItem", &format!("datakey#{day}")));
    for pk in [format!("datakey#{day}"), format!("erased#{day}")] {
        for action in [
            "dynamodb:UpdateItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:PartiQLInsert",
            "dynamodb:PartiQLUpdate",
            "dynamodb:PartiQLDelete",
        ] {
            writes.push(audit_item(action, &pk));
        }
    }
    // A request that names no partition key, or one that names an erasure key with another.
    for action in ["dynamodb:PutItem", "dynamodb:DeleteItem"] {
        writes.push(vec![Request::new(action, &audit_table())]);
    }
    writes.push(vec![
        Request::new("dynamodb:DeleteItem", &audit_table())
            .with("dynamodb:LeadingKeys", &format!("datakey#{day}"))
            .with("dynamodb:LeadingKeys", "checkpoints"),
    ]);
    for action in ["s3:PutObject", "s3:DeleteObject", "s3:PutObjectRetention"] {
        writes.push(vec![Request::new(action, &payload_object(day))]);
    }
    writes
}

#[test]
fn the_admin_role_may_erase_a_day_but_not_delete_a_record() {
    let role = hub_admin_role();
    assert_eq!(
        role.principal,
        format!("arn:aws:iam::{MOTO_DEFAULT_ACCOUNT_ID}:role/OrganizationAccountAccessRole"),
        "the SCPs' `hub_deployer_arn`: the admin role of the hub account"
    );
    let day = "2026-01-01";
    let mut cases: Vec<(bool, Vec<Request>)> = erasure_requests(day)
        .into_iter()
        .map(|request| (true, vec![request]))
        .collect();
    // Reading the index (`causeway evidence query`, `verify`) stays open to it.
    cases.push((true, audit_item("dynamodb:Query", "chain#lambda-0190b7a2")));
    for pk in ["chain#lambda-0190b7a2", "checkpoints"] {
        cases.push((false, audit_item("dynamodb:DeleteItem", pk)));
    }
    for write in audit_writes_other_than_erasure(day) {
        cases.push((false, write));
    }
    for action in ["dynamodb:DeleteTable", "dynamodb:DeleteBackup"] {
        cases.push((false, vec![Request::new(action, &audit_table())]));
    }
    cases.push((
        false,
        vec![Request::new("s3:DeleteObjectVersion", &payload_object(day))],
    ));
    role.expect("hub account's admin", &cases);
}

#[test]
fn protect_audit_store_leaves_records_to_the_hub_and_erasure_to_the_admin_role() {
    let org = hub_account_org();
    let scps = hub_account_scps(&org);
    let hub = format!("arn:aws:iam::{MOTO_DEFAULT_ACCOUNT_ID}:role/{NAME_PREFIX}-hub");
    let admin = hub_admin_arn(&org);
    let day = "2026-01-01";
    let erasure = || {
        erasure_requests(day)
            .into_iter()
            .filter(|request| request.action.starts_with("dynamodb:"))
            .map(|request| vec![request])
    };
    // The hub role: the SCP leaves its appends to it, and what it may not do is its IAM policy's to refuse.
    let mut cases = Vec::new();
    for pk in [
        "chain#lambda-0190b7a2",
        "checkpoints",
        &format!("datakey#{day}"),
    ] {
        cases.push((true, made_by(&hub, audit_item("dynamodb:PutItem", pk))));
    }
    cases.push((
        true,
        made_by(
            &hub,
            vec![Request::new("s3:PutObject", &payload_object(day))],
        ),
    ));
    scps.expect("hub (SCPs only)", &cases);
    // The admin role: erasure's two item writes and nothing else.
    let mut cases: Vec<(bool, Vec<Request>)> = erasure()
        .map(|request| (true, made_by(&admin, request)))
        .collect();
    for write in audit_writes_other_than_erasure(day) {
        cases.push((false, made_by(&admin, write)));
    }
    scps.expect("hub account's admin (SCPs only)", &cases);
    // Anyone else in the hub account, and a role of the admin role's name in another account (which the hub
    // account's SCPs do not govern, but which must not match the exception either): no item write.
    for other in [
        format!("arn:aws:iam::{MOTO_DEFAULT_ACCOUNT_ID}:role/ccoe-break-glass"),
        format!("arn:aws:iam::{MOTO_DEFAULT_ACCOUNT_ID}:role/OrganizationAccountAccessRole-2"),
        "arn:aws:iam::444444444444:role/OrganizationAccountAccessRole".to_owned(),
    ] {
        let mut cases: Vec<(bool, Vec<Request>)> = erasure()
            .map(|request| (false, made_by(&other, request)))
            .collect();
        for write in audit_writes_other_than_erasure(day) {
            cases.push((false, made_by(&other, write)));
        }
        scps.expect(&format!("{other} (SCPs only)"), &cases);
    }
}

// === the admin role ===

const ORGANIZATION: &str = "o-exampleorg1";

fn scp(id: &str) -> String {
    format!(
        "arn:aws:organizations::{MOTO_DEFAULT_ACCOUNT_ID}:policy/{ORGANIZATION}/service_control_policy/{id}"
    )
}

fn targets() -> Vec<String> {
    vec![
        format!("arn:aws:organizations::{MOTO_DEFAULT_ACCOUNT_ID}:root/{ORGANIZATION}/r-ab12"),
        format!(
            "arn:aws:organizations::{MOTO_DEFAULT_ACCOUNT_ID}:ou/{ORGANIZATION}/ou-ab12-workload"
        ),
        format!(
            "arn:aws:organizations::{MOTO_DEFAULT_ACCOUNT_ID}:account/{ORGANIZATION}/444444444444"
        ),
    ]
}

/// A request on an SCP carrying `tag` (`MANAGED_SCP_TAG` = value), if any.
fn on_scp(action: &str, policy: &str, tag: Option<&str>) -> Request {
    let request =
        Request::new(action, policy).with("organizations:PolicyType", "SERVICE_CONTROL_POLICY");
    match tag {
        Some(value) => request.with(&format!("aws:ResourceTag/{MANAGED_SCP_TAG}"), value),
        None => request,
    }
}

/// Attaching or detaching names the policy and the target; both are authorized.
fn on_target(action: &str, policy: &str, tag: Option<&str>, target: &str) -> Vec<Request> {
    vec![
        on_scp(action, policy, tag),
        Request::new(action, target).with("organizations:PolicyType", "SERVICE_CONTROL_POLICY"),
    ]
}

#[tokio::test]
async fn the_admin_role_cannot_detach_or_delete_a_foreign_scp() {
    let moto = MotoServer::start().await.unwrap();
    let config = moto.sdk_config().await;
    let template = cfn_template("admin.yaml");
    let stack = substack(&template, &["AdminRole".to_owned()], &BTreeMap::new());
    deploy(
        &config,
        "causeway-admin",
        &stack,
        &[(
            "AdminPrincipalArn",
            format!("arn:aws:iam::{MOTO_DEFAULT_ACCOUNT_ID}:role/ccoe-admin"),
        )],
    )
    .await;
    let evaluator = Evaluator::new(&role_policies(&config, &format!("{NAME_PREFIX}-admin")).await);

    let ours = scp("p-causeway01");
    let foreign = scp("p-foreign001");
    let mut cases = Vec::new();
    // What `causeway org apply` does with Causeway's SCPs.
    for target in targets() {
        for action in ["organizations:AttachPolicy", "organizations:DetachPolicy"] {
            cases.push((true, on_target(action, &ours, Some(NAME_PREFIX), &target)));
        }
    }
    for action in ["organizations:UpdatePolicy", "organizations:DeletePolicy"] {
        cases.push((true, vec![on_scp(action, &ours, Some(NAME_PREFIX))]));
    }
    let create = |action: &str, resource: &str| {
        Request::new(action, resource)
            .with("organizations:PolicyType", "SERVICE_CONTROL_POLICY")
            .with(&format!("aws:RequestTag/{MANAGED_SCP_TAG}"), NAME_PREFIX)
            .with("aws:TagKeys", MANAGED_SCP_TAG)
    };
    cases.push((true, vec![create("organizations:CreatePolicy", "*")]));
    cases.push((true, vec![create("organizations:TagResource", &ours)]));
    for action in ["organizations:ListPolicies", "organizations:DescribePolicy"] {
        cases.push((true, vec![Request::new(action, "*")]));
    }

    // The organisation's own guardrails, and another Causeway installation's, are out of reach.
    for (policy, tag) in [(&foreign, None), (&foreign, Some("another-prefix"))] {
        for target in targets() {
            for action in ["organizations:AttachPolicy", "organizations:DetachPolicy"] {
                cases.push((false, on_target(action, policy, tag, &target)));
            }
        }
        for action in ["organizations:UpdatePolicy", "organizations:DeletePolicy"] {
            cases.push((false, vec![on_scp(action, policy, tag)]));
        }
    }
    // A new SCP must carry the tag (and no other), and no tag comes off one.
    cases.push((
        false,
        vec![
            Request::new("organizations:CreatePolicy", "*")
                .with("organizations:PolicyType", "SERVICE_CONTROL_POLICY"),
        ],
    ));
    cases.push((
        false,
        vec![
            create("organizations:CreatePolicy", "*")
                .with("aws:RequestTag/owner", "ccoe")
                .with("aws:TagKeys", "owner"),
        ],
    ));
    cases.push((
        false,
        vec![
            Request::new("organizations:TagResource", &foreign)
                .with("aws:RequestTag/owner", "ccoe")
                .with("aws:TagKeys", "owner"),
        ],
    ));
    cases.push((
        false,
        vec![
            on_scp("organizations:UntagResource", &ours, Some(NAME_PREFIX))
                .with("aws:TagKeys", MANAGED_SCP_TAG),
        ],
    ));
    // Other policy types stay out of reach whatever their tags.
    let backup = format!(
        "arn:aws:organizations::{MOTO_DEFAULT_ACCOUNT_ID}:policy/{ORGANIZATION}/backup_policy/p-backup01"
    );
    cases.push((
        false,
        vec![
            Request::new("organizations:DeletePolicy", &backup)
                .with("organizations:PolicyType", "BACKUP_POLICY")
                .with(&format!("aws:ResourceTag/{MANAGED_SCP_TAG}"), NAME_PREFIX),
        ],
    ));
    evaluator.expect("admin", &cases);
}
