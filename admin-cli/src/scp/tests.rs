use std::collections::BTreeSet;

use super::*;

const SAMPLE: &str = r#"
version: 1
hub:
  account: "111111111111"
  region: us-east-1
  approved_regions: [us-east-1, us-east-2, us-west-2]
  guardrail_arn: "arn:aws:bedrock:us-east-1:111111111111:guardrail/abc123"
root:
  scps: [deny-leave-organization, protect-cloudtrail, deny-bedrock-api-keys, deny-model-customization]
  accounts:
    - { id: "000000000000", name: management }
  ous:
    - name: Hub
      accounts:
        - { id: "111111111111", name: hub, scps: [protect-audit-store, require-hub-guardrail] }
    - name: Workloads
      scps: [deny-direct-model-invocation, approved-models-only, approved-regions, protect-spoke-role]
      spoke: { team: platform, applications: [chat] }
      accounts:
        - { id: "222222222222", name: payments-prod }
"#;

fn sample() -> OrgFile {
    OrgFile::parse("org.yaml", SAMPLE).unwrap()
}

fn template(name: &str, text: &str) -> Template {
    Template {
        name: name.to_owned(),
        text: text.to_owned(),
        description: Some("a test policy".to_owned()),
    }
}

fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

fn rendered_json(name: &str) -> Value {
    let all = render_all(&sample()).unwrap();
    serde_json::from_str(&all[name].document).unwrap()
}

/// Every string under `key` anywhere in `value` (a string or a list of them).
fn strings_under(value: &Value, key: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        Value::Array(items) => {
                            out.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
                        }
                        _ => {}
                    }
                } else {
                    strings_under(v, key, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| strings_under(v, key, out)),
        _ => {}
    }
}

#[test]
fn every_builtin_template_renders_to_valid_json_within_the_limits() {
    let file = sample();
    let findings = lint(&file, None).unwrap();
    assert!(errors(&findings).is_empty(), "{findings:#?}");
    let rendered = render_all(&file).unwrap();
    assert_eq!(rendered.len(), embedded::TEMPLATES.len());
    for scp in rendered.values() {
        assert!(!scp.document.contains("{{"), "{}", scp.document);
        let value: Value = serde_json::from_str(&scp.document).unwrap();
        assert_eq!(value.to_string(), scp.document, "the document is minified");
        assert!(scp.document.len() <= file.limits.scp_max_bytes);
        assert_eq!(scp.policy_name, format!("causeway-{}", scp.template));
        assert!(!scp.description.is_empty());
    }
}

#[test]
fn the_embedded_templates_are_exactly_the_directory() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/scp");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            (path.extension()? == "json")
                .then(|| path.file_stem().unwrap().to_str().unwrap().to_owned())
        })
        .collect();
    let embedded: BTreeSet<String> = embedded::TEMPLATES
        .iter()
        .map(|(n, _)| (*n).to_owned())
        .collect();
    assert_eq!(on_disk, embedded);
    let from_dir = TemplateSet::load(Some(&dir)).unwrap();
    let built_in = TemplateSet::load(None).unwrap();
    for (name, template) in &built_in.templates {
        assert_eq!(template.text, from_dir.templates[name].text);
        assert!(template.description.is_some(), "{name} has no description");
    }
}

#[test]
fn a_list_placeholder_becomes_an_array_and_is_spliced_into_arrays() {
    let vars = Variables::from_org(&sample()).unwrap();
    let t = template(
        "t",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*",
            "NotResource":["{{approved_regions}}","x"],
            "Resource2":"{{approved_regions}}",
            "Condition":{"StringEquals":{"aws:PrincipalAccount":"{{hub_account}}"}}}]}"#,
    );
    let outcome = render_template(&t, &vars, 5120);
    assert!(
        errors(&outcome.findings).is_empty(),
        "{:#?}",
        outcome.findings
    );
    let doc: Value = serde_json::from_str(&outcome.document.unwrap()).unwrap();
    let statement = &doc["Statement"][0];
    assert_eq!(
        statement["NotResource"],
        json!(["us-east-1", "us-east-2", "us-west-2", "x"])
    );
    assert_eq!(
        statement["Resource2"],
        json!(["us-east-1", "us-east-2", "us-west-2"])
    );
    assert_eq!(
        statement["Condition"]["StringEquals"]["aws:PrincipalAccount"],
        "111111111111"
    );
}

#[test]
fn iam_policy_variables_are_left_alone() {
    let vars = Variables::from_org(&sample()).unwrap();
    let t = template(
        "t",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*",
            "Resource":"arn:aws:s3:::{{audit_bucket}}/${aws:PrincipalAccount}/*"}]}"#,
    );
    let outcome = render_template(&t, &vars, 5120);
    assert!(
        errors(&outcome.findings).is_empty(),
        "{:#?}",
        outcome.findings
    );
    let doc: Value = serde_json::from_str(&outcome.document.unwrap()).unwrap();
    assert_eq!(
        doc["Statement"][0]["Resource"],
        "arn:aws:s3:::causeway-audit-111111111111-us-east-1/${aws:PrincipalAccount}/*"
    );
}

#[test]
fn an_unknown_variable_is_named() {
    let vars = Variables::from_org(&sample()).unwrap();
    let t = template(
        "t",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*",
            "Resource":"arn:aws:s3:::{{audit_bukcet}}"}]}"#,
    );
    let findings = render_template(&t, &vars, 5120).findings;
    let errs = errors(&findings);
    assert_eq!(errs.len(), 1, "{findings:#?}");
    assert_eq!(errs[0].rule, "unknown-variable");
    assert_eq!(errs[0].subject, "t");
    insta::assert_snapshot!(errs[0].message, @"`{{audit_bukcet}}` is not defined");
}

#[test]
fn a_list_inside_a_longer_string_is_an_error() {
    let vars = Variables::from_org(&sample()).unwrap();
    let t = template(
        "t",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*",
            "Resource":"arn:{{approved_regions}}"}]}"#,
    );
    let findings = render_template(&t, &vars, 5120).findings;
    assert_eq!(errors(&findings)[0].rule, "list-in-string");
}

#[test]
fn an_oversize_policy_reports_its_bytes_and_the_limit() {
    let vars = Variables::from_org(&sample()).unwrap();
    let text = embedded::TEMPLATES
        .iter()
        .find(|(n, _)| *n == "approved-regions")
        .unwrap()
        .1;
    let t = template("approved-regions", text);
    let bytes = render_template(&t, &vars, 5120).document.unwrap().len();
    let findings = render_template(&t, &vars, 600).findings;
    let errs = errors(&findings);
    assert_eq!(errs.len(), 1, "{findings:#?}");
    assert_eq!(errs[0].rule, "size");
    assert_eq!(
        errs[0].message,
        format!(
            "{bytes} bytes minified, over the limit of 600 bytes by {}",
            bytes - 600
        )
    );
    // Near the limit is a warning, not an error.
    let near = render_template(&t, &vars, bytes + 1).findings;
    assert!(errors(&near).is_empty());
    assert!(
        near.iter()
            .any(|f| f.rule == "size" && f.severity == Severity::Warning)
    );
}

#[test]
fn invalid_json_and_a_wrong_shape_are_errors() {
    let vars = Variables::from_org(&sample()).unwrap();
    let broken = render_template(&template("t", r#"{"Version": "2012-10-17","#), &vars, 5120);
    assert_eq!(errors(&broken.findings)[0].rule, "json");
    assert!(broken.document.is_none());
    let no_effect = render_template(
        &template(
            "t",
            r#"{"Version":"2012-10-17","Statement":[{"Action":"s3:*","Resource":"*"}]}"#,
        ),
        &vars,
        5120,
    );
    let errs = errors(&no_effect.findings);
    assert_eq!(errs[0].rule, "shape");
    assert!(errs[0].message.contains("`Effect`"), "{}", errs[0].message);
}

#[test]
fn per_target_counts_full_aws_access() {
    let mut file = sample();
    file.limits.scps_per_target = 4;
    let findings = lint(&file, None).unwrap();
    let targets: Vec<&str> = errors(&findings)
        .iter()
        .filter(|f| f.rule == "per-target")
        .map(|f| f.subject.as_str())
        .collect();
    assert_eq!(targets, ["Root", "Root/Workloads"]);
    let message = &errors(&findings)[0].message;
    insta::assert_snapshot!(message, @"5 SCPs would be attached (4 from causeway plus `FullAWSAccess`, which Organizations attaches to every target), over the limit of 4");
}

#[test]
fn an_unknown_template_names_the_target() {
    let text = SAMPLE.replace("deny-leave-organization,", "deny-leaving,");
    let file = OrgFile::parse("org.yaml", &text).unwrap();
    let err = render_all(&file).unwrap_err();
    assert_eq!(err.exit, CliExit::Usage);
    assert!(
        err.message
            .starts_with("Root attaches unknown SCP template `deny-leaving`"),
        "{}",
        err.message
    );
    let findings = lint(&file, None).unwrap();
    let unknown = findings
        .iter()
        .find(|f| f.rule == "unknown-template")
        .unwrap();
    assert_eq!(unknown.subject, "deny-leaving");
    assert!(unknown.message.contains("Root attaches"));
}

#[test]
fn render_all_refuses_a_template_with_a_lint_error() {
    let text = SAMPLE.replace(
        "  guardrail_arn: \"arn:aws:bedrock:us-east-1:111111111111:guardrail/abc123\"\n",
        "",
    );
    let file = OrgFile::parse("org.yaml", &text).unwrap();
    let err = render_all(&file).unwrap_err();
    assert_eq!(err.exit, CliExit::Usage);
    insta::assert_snapshot!(err.message, @"SCP template `require-hub-guardrail` fails lint (unknown-variable): `{{guardrail_identifier}}` is not defined (the org file sets no `hub.guardrail_arn`)");
}

#[test]
fn deny_direct_model_invocation_exempts_exactly_the_hub_role() {
    let doc = rendered_json("deny-direct-model-invocation");
    let mut exempt = Vec::new();
    strings_under(&doc, "aws:PrincipalArn", &mut exempt);
    assert_eq!(exempt, ["arn:aws:iam::111111111111:role/causeway-hub"]);
    assert_eq!(doc["Statement"].as_array().unwrap().len(), 1);
    let statement = &doc["Statement"][0];
    assert_eq!(statement["Effect"], "Deny");
    assert_eq!(statement["Resource"], "*");
    let conditions = statement["Condition"].as_object().unwrap();
    assert_eq!(conditions.keys().collect::<Vec<_>>(), ["ArnNotLike"]);
    let mut actions = Vec::new();
    strings_under(statement, "Action", &mut actions);
    for action in [
        "bedrock:InvokeModel",
        "bedrock:InvokeModelWithResponseStream",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} missing");
    }
}

#[test]
fn approved_models_only_lists_the_catalog_bedrock_models_and_nothing_else() {
    let catalog = Catalog::from_toml("catalog.toml", causeway_policy::embedded::CATALOG).unwrap();
    let doc = rendered_json("approved-models-only");
    let mut listed = Vec::new();
    strings_under(&doc, "NotResource", &mut listed);
    let listed: BTreeSet<String> = listed.into_iter().collect();

    let mut expected = BTreeSet::new();
    for model in catalog
        .models
        .values()
        .filter(|m| m.provider == ProviderKind::Bedrock)
    {
        let id = &model.model_id;
        let foundation = match id.split_once('.') {
            Some((geo, rest)) if PROFILE_GEOGRAPHIES.contains(&geo) => {
                for region in &model.regions {
                    expected.insert(format!("arn:aws:bedrock:{region}:*:inference-profile/{id}"));
                }
                rest
            }
            _ => id.as_str(),
        };
        for region in &model.regions {
            expected.insert(format!(
                "arn:aws:bedrock:{region}::foundation-model/{foundation}"
            ));
        }
    }
    assert_eq!(listed, expected);
    // Spot checks against the shipped catalog, written out by hand.
    assert!(listed.contains("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0"));
    assert!(listed.contains(
        "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"
    ));
    assert!(listed.contains(
        "arn:aws:bedrock:us-east-2:*:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0"
    ));
    assert!(
        !listed
            .iter()
            .any(|arn| arn.contains("causeway-local-dev") || arn.contains("Llama"))
    );
    assert!(!listed.contains("arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-lite-v1:0"));
}

#[test]
fn the_guardrail_is_required_by_arn_and_version() {
    assert_eq!(
        guardrail_identifier("arn:aws:bedrock:us-east-1:111111111111:guardrail/abc123"),
        "arn:aws:bedrock:us-east-1:111111111111:guardrail/abc123:*"
    );
    assert_eq!(
        guardrail_identifier("arn:aws:bedrock:us-east-1:111111111111:guardrail/abc123:3"),
        "arn:aws:bedrock:us-east-1:111111111111:guardrail/abc123:3"
    );
    let doc = rendered_json("require-hub-guardrail");
    assert_eq!(
        doc["Statement"][0]["Condition"]["StringNotLike"]["bedrock:GuardrailIdentifier"],
        "arn:aws:bedrock:us-east-1:111111111111:guardrail/abc123:*"
    );
}

#[test]
fn spoke_role_protection_exempts_the_deployment_of_the_chosen_mode() {
    let doc = rendered_json("protect-spoke-role");
    let mut exempt = BTreeSet::new();
    let mut found = Vec::new();
    strings_under(&doc, "aws:PrincipalArn", &mut found);
    exempt.extend(found);
    assert_eq!(
        exempt.into_iter().collect::<Vec<_>>(),
        ["arn:aws:iam::*:role/stacksets-exec-*"]
    );
    let mut resources = Vec::new();
    strings_under(&doc, "Resource", &mut resources);
    assert_eq!(
        resources,
        [
            "arn:aws:iam::*:role/causeway-agent",
            "arn:aws:iam::*:policy/causeway-agent-boundary"
        ]
    );

    let text = SAMPLE.replace(
        "version: 1\n",
        "version: 1\nspoke_deployment: { mode: assume_role }\n",
    );
    let file = OrgFile::parse("org.yaml", &text).unwrap();
    let doc: Value =
        serde_json::from_str(&render_all(&file).unwrap()["protect-spoke-role"].document).unwrap();
    let mut exempt = Vec::new();
    strings_under(&doc, "aws:PrincipalArn", &mut exempt);
    assert!(
        exempt
            .iter()
            .all(|a| a == "arn:aws:iam::*:role/OrganizationAccountAccessRole")
    );
}

#[test]
fn model_regions_outside_the_approved_regions_are_warned_about() {
    let text = SAMPLE.replace("[us-east-1, us-east-2, us-west-2]", "[us-east-1]");
    let file = OrgFile::parse("org.yaml", &text).unwrap();
    let findings = lint(&file, None).unwrap();
    let regions: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule == "model-region")
        .collect();
    assert!(!regions.is_empty());
    assert!(regions.iter().all(|f| f.severity == Severity::Warning));
    assert!(
        regions
            .iter()
            .any(|f| f.subject == "model claude-sonnet"
                && f.message.starts_with("region `us-west-2`"))
    );
}

#[test]
fn lint_prints_a_table_and_exits_9_on_an_error() {
    let findings = vec![
        Finding::error(
            "big",
            "size",
            "6000 bytes minified, over the limit of 5120 bytes by 880".to_owned(),
        ),
        Finding::warning("small", "description", "no description".to_owned()),
    ];
    let mut out = Vec::new();
    let err = lint_command(&findings, Output::Text, &mut out).unwrap_err();
    assert_eq!(err.exit, CliExit::LintFailed);
    insta::assert_snapshot!(String::from_utf8(out).unwrap(), @r"
    SEVERITY SUBJECT  RULE         MESSAGE
    error    big      size         6000 bytes minified, over the limit of 5120 bytes by 880
    warning  small    description  no description
    ");
    let mut out = Vec::new();
    lint_command(&findings[1..], Output::Json, &mut out).unwrap();
    let doc: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["errors"], 0);
    assert_eq!(doc["findings"][0]["severity"], "warning");
    assert_eq!(doc["findings"][0]["rule"], "description");
}
