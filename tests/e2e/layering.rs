//! The workspace's layering, from `cargo metadata`: what each crate links (normal dependencies, transitively).
//!
//! - `shared/` crates have no network: none links axum, a web framework, or an AWS SDK.
//! - The admin CLI and the spoke agent never link the hub: what two binaries share lives in `shared/` or
//!   `adapters/`. The CLI serves one thing, the offline compliance console, so it reaches a web framework
//!   only through the console adapter (`causeway-console`, on `causeway-server`), never Lambda's.

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
    closure_around(graph, root, &[])
}

/// What `root` links when the packages in `around` (and what only they link) are left out.
fn closure_around(
    graph: &BTreeMap<String, BTreeSet<String>>,
    root: &str,
    around: &[&str],
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(next) = todo.pop() {
        if around.contains(&next.as_str()) {
            continue;
        }
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
        ("causeway-cli", &["causeway-hub", "lambda_http"][..]),
        ("causeway-agent", &["causeway-hub", "lambda_http"][..]),
    ] {
        for dep in closure(&graph, binary) {
            if never.contains(&dep.as_str()) {
                found.push(format!("{binary} links {dep}"));
            }
        }
    }
    // The CLI's web framework comes with the console (and the serving adapter it runs on) and nothing else.
    for dep in closure_around(
        &graph,
        "causeway-cli",
        &["causeway-console", "causeway-server"],
    ) {
        if dep == "axum" {
            found.push("causeway-cli links axum other than through the console".to_owned());
        }
    }
    for (binary, never) in [("causeway-console", &["causeway-hub", "lambda_http"][..])] {
        for dep in closure(&graph, binary) {
            if never.contains(&dep.as_str()) {
                found.push(format!("{binary} links {dep}"));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}

/// The top-level modules of the crate whose sources are in `src`, with the top-level modules each one's
/// production code names (`crate::<module>`); test code (files named `tests.rs`, `*_tests.rs`,
/// `test_support.rs`, and an inline `#[cfg(test)] mod … {` to the end of its file) and comments are left out.
fn module_graph(src: &std::path::Path) -> BTreeMap<String, BTreeSet<String>> {
    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut all = Vec::new();
    files(src, &mut all);
    let top = |path: &std::path::Path| -> String {
        let relative = path.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let name = first.to_str().unwrap().trim_end_matches(".rs");
        if matches!(name, "lib" | "main") {
            "crate".to_owned()
        } else {
            name.to_owned()
        }
    };
    let modules: BTreeSet<String> = all.iter().map(|p| top(p)).collect();
    let reference = regex::Regex::new(r"crate::([a-z_][a-z0-9_]*)").unwrap();
    let inline_tests =
        regex::Regex::new(r"#\[cfg\(test\)\]\s*(pub(\([a-z]+\))? )?mod [a-z_]+ \{").unwrap();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for path in &all {
        let name = path.file_name().unwrap().to_str().unwrap();
        if name == "tests.rs" || name.ends_with("_tests.rs") || name == "test_support.rs" {
            continue;
        }
        let from = top(path);
        let text = std::fs::read_to_string(path).unwrap();
        let production = inline_tests
            .find(&text)
            .map_or(text.as_str(), |m| &text[..m.start()]);
        for line in production.lines() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for found in reference.captures_iter(line) {
                let to = &found[1];
                if to != from && modules.contains(to) {
                    graph.get_mut(&from).unwrap().insert(to.to_owned());
                }
            }
        }
    }
    graph
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in &self.graph[v] {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let (_, manifests) = normal_dependencies();
    let root = causeway_testkit::clients::workspace_root();
    let mut found = Vec::new();
    for manifest in manifests.values() {
        let dir = std::path::Path::new(manifest).parent().unwrap();
        if !dir.starts_with(&root) || dir.components().any(|c| c.as_os_str() == "target") {
            continue;
        }
        let src = dir.join("src");
        if !src.is_dir() {
            continue;
        }
        for cycle in cycles(&module_graph(&src)) {
            found.push(format!(
                "{}: {}",
                dir.strip_prefix(&root).unwrap().display(),
                cycle.join(" <-> ")
            ));
        }
    }
    assert!(
        found.is_empty(),
        "import cycles between modules: {found:#?}"
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_only_cycles() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", &["b"][..]),
        ("b", &["c"][..]),
        ("c", &["a"][..]),
        ("d", &["a"][..]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
    .collect();
    assert_eq!(cycles(&graph), vec![vec!["a", "b", "c"]]);
}
