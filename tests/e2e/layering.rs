//! The workspace's layering, from `cargo metadata`: what each crate links (normal dependencies, transitively).
//!
//! - `shared/` crates have no network: none links axum, a web framework, or an AWS SDK.
//! - The admin CLI and the spoke agent never link the hub: what two binaries share lives in `shared/` or
//!   `adapters/`; the CLI serves nothing, so it links no web framework either.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Package name → the names of its normal (non-dev, non-build) dependencies, for every package.
fn normal_dependencies() -> (BTreeMap<String, BTreeSet<String>>, BTreeMap<String, String>) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(causeway_testkit::clients::workspace_root())
        .output()
        .unwrap();
    assert!(output.status.success(), "cargo metadata failed");
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let dirs: BTreeMap<String, String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["manifest_path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut graph = BTreeMap::new();
    for node in metadata["resolve"]["nodes"].as_array().unwrap() {
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|dep| {
                dep["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|kind| kind["kind"].is_null())
            })
            .map(|dep| names[dep["pkg"].as_str().unwrap()].to_owned())
            .collect();
        graph.insert(names[node["id"].as_str().unwrap()].to_owned(), deps);
    }
    (graph, dirs)
}

fn closure(graph: &BTreeMap<String, BTreeSet<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(next) = todo.pop() {
        if seen.insert(next.clone()) {
            todo.extend(graph.get(&next).into_iter().flatten().cloned());
        }
    }
    seen.remove(root);
    seen
}

#[test]
fn shared_crates_link_no_web_framework_and_no_aws_sdk_and_binaries_never_link_the_hub() {
    let (graph, manifests) = normal_dependencies();
    let shared: Vec<&String> = manifests
        .iter()
        .filter(|(_, manifest)| manifest.contains("/shared/"))
        .map(|(name, _)| name)
        .collect();
    assert!(shared.len() >= 4, "{shared:?}");
    let mut found = Vec::new();
    for name in shared {
        for dep in closure(&graph, name) {
            if dep == "axum" || dep == "lambda_http" || dep.starts_with("aws-sdk-") {
                found.push(format!("{name} links {dep}"));
            }
        }
    }
    for (binary, never) in [
        ("causeway-cli", &["causeway-hub", "lambda_http", "axum"][..]),
        ("causeway-agent", &["causeway-hub", "lambda_http"][..]),
    ] {
        for dep in closure(&graph, binary) {
            if never.contains(&dep.as_str()) {
                found.push(format!("{binary} links {dep}"));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}
