//! `causeway scp render | lint`, run as the real binary on a temporary org file and templates directory.

#![expect(clippy::unwrap_used, reason = "test set-up fails loudly")]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const ORG: &str = r#"
version: 1
hub:
  account: "111111111111"
  region: us-east-1
  approved_regions: [us-east-1, us-east-2, us-west-2]
  guardrail_arn: "arn:aws:bedrock:us-east-1:111111111111:guardrail/abc123"
root:
  scps: [deny-leave-organization, protect-cloudtrail]
  ous:
    - name: Hub
      accounts:
        - { id: "111111111111", name: hub, scps: [protect-audit-store, require-hub-guardrail] }
    - name: Workloads
      scps: [deny-direct-model-invocation, approved-models-only, approved-regions, protect-spoke-role]
"#;

fn causeway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_causeway"))
        .args(args)
        .output()
        .unwrap()
}

fn org_file(dir: &Path) -> String {
    let path = dir.join("org.yaml");
    std::fs::write(&path, ORG).unwrap();
    path.display().to_string()
}

#[test]
fn lint_catches_an_oversize_policy_and_an_unknown_variable() {
    let dir = tempfile::tempdir().unwrap();
    let org = org_file(dir.path());
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    // Over 5,120 bytes once minified: 400 actions of about 20 bytes each.
    let actions: Vec<String> = (0..400).map(|n| format!("\"ec2:Action{n:05}\"")).collect();
    std::fs::write(
        templates.join("too-big.json"),
        format!(
            r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Deny", "Action": [{}], "Resource": "*"}}]}}"#,
            actions.join(",\n  ")
        ),
    )
    .unwrap();
    std::fs::write(
        templates.join("typo.json"),
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:DeleteBucket",
            "Resource": "arn:aws:s3:::{{audit_bukcet}}"}]}"#,
    )
    .unwrap();
    std::fs::write(
        templates.join("descriptions.toml"),
        "too-big = \"too big\"\ntypo = \"a typo\"\n",
    )
    .unwrap();
    let templates = templates.display().to_string();

    let run = causeway(&["scp", "lint", "--org", &org, "--templates", &templates]);
    assert_eq!(run.status.code(), Some(9), "{run:?}");
    let stdout = String::from_utf8(run.stdout).unwrap();
    let size = stdout
        .lines()
        .find(|l| l.contains("too-big") && l.contains("size"))
        .expect("a size finding for `too-big`");
    assert!(size.starts_with("error"), "{size}");
    assert!(size.contains("over the limit of 5120 bytes"), "{size}");
    let typo = stdout
        .lines()
        .find(|l| l.contains("typo") && l.contains("unknown-variable"))
        .expect("an unknown-variable finding for `typo`");
    assert!(typo.contains("`{{audit_bukcet}}` is not defined"), "{typo}");
    // The org file names templates this directory does not hold.
    assert!(stdout.contains("unknown-template"), "{stdout}");
    assert!(
        String::from_utf8(run.stderr)
            .unwrap()
            .contains("scp lint found")
    );

    let run = causeway(&[
        "scp",
        "lint",
        "--org",
        &org,
        "--templates",
        &templates,
        "--output",
        "json",
    ]);
    assert_eq!(run.status.code(), Some(9));
    let doc: Value = serde_json::from_slice(&run.stdout).unwrap();
    let findings = doc["findings"].as_array().unwrap();
    let size = findings
        .iter()
        .find(|f| f["subject"] == "too-big" && f["rule"] == "size")
        .unwrap();
    assert_eq!(size["severity"], "error");
    let bytes: usize = size["message"]
        .as_str()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes > 5120, "{size}");
    assert!(
        findings
            .iter()
            .any(|f| f["subject"] == "typo" && f["rule"] == "unknown-variable")
    );
}

#[test]
fn lint_passes_the_builtin_templates_and_render_writes_parsable_files() {
    let dir = tempfile::tempdir().unwrap();
    let org = org_file(dir.path());
    let run = causeway(&["scp", "lint", "--org", &org]);
    assert_eq!(run.status.code(), Some(0), "{run:?}");

    let out = dir.path().join("rendered");
    let out_arg = out.display().to_string();
    let run = causeway(&["scp", "render", "--org", &org, "--out", &out_arg]);
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "causeway-approved-models-only.json",
            "causeway-approved-regions.json",
            "causeway-deny-direct-model-invocation.json",
            "causeway-deny-leave-organization.json",
            "causeway-protect-audit-store.json",
            "causeway-protect-cloudtrail.json",
            "causeway-protect-spoke-role.json",
            "causeway-require-hub-guardrail.json",
        ]
    );
    for name in &names {
        let text = std::fs::read_to_string(out.join(name)).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["Version"], "2012-10-17");
        assert_eq!(doc.to_string(), text, "{name} is not minified");
        assert!(text.len() <= 5120);
        assert!(!text.contains("{{"), "{name} kept a placeholder");
    }

    let run = causeway(&["scp", "render", "--org", &org, "--output", "json"]);
    assert_eq!(run.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&run.stdout).unwrap();
    let policies = doc["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 8);
    let direct = policies
        .iter()
        .find(|p| p["template"] == "deny-direct-model-invocation")
        .unwrap();
    assert_eq!(
        direct["document"]["Statement"][0]["Condition"]["ArnNotLike"]["aws:PrincipalArn"],
        "arn:aws:iam::111111111111:role/causeway-hub"
    );
}

#[test]
fn bad_input_exits_with_usage_or_io() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml").display().to_string();
    let run = causeway(&["scp", "lint", "--org", &missing]);
    assert_eq!(run.status.code(), Some(3));

    let org = dir.path().join("org.yaml");
    std::fs::write(&org, ORG.replace("deny-leave-organization", "deny-leaving")).unwrap();
    let org = org.display().to_string();
    let run = causeway(&["scp", "render", "--org", &org]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert!(
        stderr.contains("Root attaches unknown SCP template `deny-leaving`"),
        "{stderr}"
    );
}
