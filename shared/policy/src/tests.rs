use super::*;

fn request<'a>(
    user: &'a str,
    groups: &'a [String],
    model: &'a str,
    purpose: &'a str,
) -> AccessRequest<'a> {
    AccessRequest {
        user,
        groups,
        model_alias: model,
        purpose,
        data_classification: "internal",
        spoke_account: "111122223333",
        ou: "ou-apps",
        application: "chatbot",
        tools: &[],
        has_images: false,
        has_documents: false,
    }
}

#[test]
fn embedded_bundle_loads_and_names_its_policies() {
    let bundle = PolicyBundle::embedded().unwrap();
    assert!(bundle.catalog().get("local-dev").is_some());
    assert!(bundle.purposes().contains("customer_support"));
    assert_eq!(bundle.hash().len(), 64);
    assert!(
        bundle
            .policy_ids()
            .contains(&"restricted-data-stays-on-bedrock".to_owned())
    );
}

#[test]
fn default_deny_with_no_matching_permit() {
    let bundle = PolicyBundle::embedded().unwrap();
    let decision = bundle.authorize(&request("alice", &[], "claude-sonnet", "analytics"));
    assert_eq!(decision.effect, Effect::Deny);
    assert_eq!(decision.audit_reasons(), vec!["default_deny"]);
}

#[test]
fn group_and_purpose_permit() {
    let bundle = PolicyBundle::embedded().unwrap();
    let analysts = vec!["analysts".to_owned()];
    let allowed = bundle.authorize(&request("alice", &analysts, "claude-sonnet", "analytics"));
    assert!(allowed.is_allowed());
    assert_eq!(allowed.audit_reasons(), vec!["permit:analysts-analytics"]);
    // Same group, purpose it is not approved for.
    let denied = bundle.authorize(&request(
        "alice",
        &analysts,
        "claude-sonnet",
        "customer_support",
    ));
    assert!(!denied.is_allowed());
}

#[test]
fn forbid_overrides_permit_and_is_named() {
    let bundle = PolicyBundle::embedded().unwrap();
    let analysts = vec!["analysts".to_owned()];
    let mut req = request("alice", &analysts, "llama-internal", "analytics");
    assert!(bundle.authorize(&req).is_allowed());
    req.data_classification = "restricted";
    let decision = bundle.authorize(&req);
    assert_eq!(decision.effect, Effect::Deny);
    assert_eq!(
        decision.audit_reasons(),
        vec!["forbid:restricted-data-stays-on-bedrock"]
    );
}

#[test]
fn unknown_model_is_a_deny_not_a_panic() {
    let bundle = PolicyBundle::embedded().unwrap();
    let decision = bundle.authorize(&request("alice", &[], "gpt-9", "analytics"));
    assert_eq!(decision.effect, Effect::Deny);
    assert!(decision.errors[0].contains("`gpt-9`"));
}

#[test]
fn invalid_policy_is_refused_whole() {
    let mut sources = PolicySources::embedded();
    sources.policies.push_str(
        "\n@id(\"typo\")\npermit(principal, action == Causeway::Action::\"invoke\", resource) when { context.purpos == \"x\" };\n",
    );
    let err = PolicyBundle::from_sources(&sources)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cedar policies: policy `typo`"), "{err}");
}

#[test]
fn policy_without_id_or_with_duplicate_id_is_refused() {
    let mut sources = PolicySources::embedded();
    sources
        .policies
        .push_str("\npermit(principal, action == Causeway::Action::\"invoke\", resource);\n");
    let err = PolicyBundle::from_sources(&sources)
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs an `@id"), "{err}");

    let mut sources = PolicySources::embedded();
    sources.policies.push_str(
        "\n@id(\"dev-model-open\")\npermit(principal, action == Causeway::Action::\"invoke\", resource);\n",
    );
    let err = PolicyBundle::from_sources(&sources)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`dev-model-open` is used twice"), "{err}");
}

#[test]
fn hash_changes_with_any_source() {
    let a = PolicyBundle::embedded().unwrap();
    let mut sources = PolicySources::embedded();
    sources
        .purposes
        .push_str("\n[purposes.extra]\ndescription = \"x\"\n");
    let b = PolicyBundle::from_sources(&sources).unwrap();
    assert_ne!(a.hash(), b.hash());
}

#[test]
fn workload_context_decides_ou_and_application_policies() {
    let bundle = PolicyBundle::embedded().unwrap();
    let handlers = vec!["claims-handlers".to_owned()];
    let mut req = request("carol", &handlers, "claude-haiku", "customer_support");
    req.ou = "workloads-prod";
    req.application = "claims-triage";
    assert_eq!(
        bundle.authorize(&req).audit_reasons(),
        vec!["permit:claims-triage-app-customer-support"]
    );
    // The same user from another application, or without a verified workload, is not covered.
    req.application = "chatbot";
    assert!(!bundle.authorize(&req).is_allowed());
    req.application = "";
    req.ou = "";
    assert!(!bundle.authorize(&req).is_allowed());

    // The sandbox OU may send public data only, even to the open development model.
    let mut sandbox = request("dave", &[], "local-dev", "evaluation");
    sandbox.ou = "sandbox";
    assert_eq!(
        bundle.authorize(&sandbox).audit_reasons(),
        vec!["forbid:sandbox-ou-public-data-only"]
    );
    sandbox.data_classification = "public";
    assert!(bundle.authorize(&sandbox).is_allowed());
}

#[test]
fn a_remembered_decision_is_the_one_cedar_makes_for_every_field_of_the_request() {
    let bundle = PolicyBundle::embedded().unwrap();
    let analysts = vec!["analysts".to_owned(), "staff".to_owned()];
    let reordered = vec![
        "staff".to_owned(),
        "analysts".to_owned(),
        "staff".to_owned(),
    ];
    let tools = vec!["search".to_owned()];
    let base = request("alice", &analysts, "claude-sonnet", "analytics");
    // Every field that reaches Cedar changed once: each request is decided as Cedar decides it, first
    // fresh, then from memory.
    let variants = [
        base,
        AccessRequest {
            user: "bob",
            ..base
        },
        AccessRequest {
            groups: &[],
            ..base
        },
        AccessRequest {
            model_alias: "llama-internal",
            ..base
        },
        AccessRequest {
            purpose: "customer_support",
            ..base
        },
        AccessRequest {
            data_classification: "restricted",
            ..base
        },
        AccessRequest {
            spoke_account: "444455556666",
            ..base
        },
        AccessRequest {
            ou: "ou-other",
            ..base
        },
        AccessRequest {
            application: "other-app",
            ..base
        },
        AccessRequest {
            tools: &tools,
            ..base
        },
        AccessRequest {
            has_images: true,
            ..base
        },
        AccessRequest {
            has_documents: true,
            ..base
        },
        AccessRequest {
            model_alias: "no-such-model",
            ..base
        },
    ];
    for variant in &variants {
        let fresh = bundle.evaluate(variant);
        assert_eq!(bundle.authorize(variant), fresh, "{variant:?}");
        assert_eq!(bundle.authorize(variant), fresh, "{variant:?}");
    }
    // Groups are a set: their order and repeats do not make another request.
    assert_eq!(
        RequestKey::of(&AccessRequest {
            groups: &reordered,
            ..base
        }),
        RequestKey::of(&base)
    );
    assert_ne!(
        RequestKey::of(&AccessRequest {
            tools: &tools,
            ..base
        }),
        RequestKey::of(&base)
    );
    // A full memory starts again rather than growing.
    for n in 0..REMEMBERED_DECISIONS + 10 {
        let user = format!("user-{n}");
        bundle.authorize(&AccessRequest {
            user: &user,
            ..base
        });
    }
    assert!(bundle.decisions.lock().unwrap().len() <= REMEMBERED_DECISIONS);
}
