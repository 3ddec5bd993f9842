//! One Cedar decision with the embedded bundle: an allowed request (a group permit) and a denied one (a
//! forbid overriding a permit), as the hub asks on every call; each asked again (answered from the
//! bundle's memory) and asked for the first time (a new user every iteration: evaluated by Cedar and
//! remembered). Criterion runs one thread.

#![expect(clippy::unwrap_used, reason = "benchmark set-up fails loudly")]

use std::hint::black_box;

use causeway_policy::{AccessRequest, PolicyBundle};
use criterion::{Criterion, criterion_group, criterion_main};

fn authorize(c: &mut Criterion) {
    let bundle = PolicyBundle::embedded().unwrap();
    let analysts = vec!["analysts".to_owned(), "staff".to_owned()];
    let allowed = AccessRequest {
        user: "alice",
        groups: &analysts,
        model_alias: "claude-sonnet",
        purpose: "analytics",
        data_classification: "internal",
        spoke_account: "111122223333",
        ou: "ou-apps",
        application: "chatbot",
        tools: &[],
        has_images: false,
        has_documents: false,
    };
    let forbidden = AccessRequest {
        model_alias: "llama-internal",
        data_classification: "restricted",
        ..allowed
    };
    assert!(
        bundle.authorize(&allowed).is_allowed(),
        "the allowed request"
    );
    assert!(
        !bundle.authorize(&forbidden).is_allowed(),
        "the forbidden request"
    );

    let mut group = c.benchmark_group("authorize");
    group.bench_function("allow_group_permit/again", |b| {
        b.iter(|| bundle.authorize(black_box(&allowed)));
    });
    group.bench_function("deny_forbid_overrides/again", |b| {
        b.iter(|| bundle.authorize(black_box(&forbidden)));
    });
    let users: Vec<String> = (0..1_000_000).map(|n| format!("user-{n}")).collect();
    for (name, request) in [
        ("allow_group_permit/first", allowed),
        ("deny_forbid_overrides/first", forbidden),
    ] {
        let mut next = users.iter().cycle();
        group.bench_function(name, |b| {
            b.iter(|| {
                let user = next.next().map_or("", String::as_str);
                bundle.authorize(black_box(&AccessRequest { user, ..request }))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, authorize);
criterion_main!(benches);
