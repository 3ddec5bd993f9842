use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::budget::SpokeLimits;
use crate::config::{SpokeBudgetsConfig, SpokeConfig};
use crate::registry::EmbeddedRegistry;

const NOW: i64 = 1_795_000_000; // 2026-11-18T…Z

fn amz_date(unix: i64) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .unwrap()
        .format(format)
        .unwrap()
}

fn endpoint() -> reqwest::Url {
    reqwest::Url::parse("https://sts.amazonaws.com").unwrap()
}

fn proof() -> SignedCallerIdentity {
    SignedCallerIdentity {
        method: "POST".into(),
        url: "https://sts.amazonaws.com/".into(),
        headers: BTreeMap::from([
            (
                "Authorization".into(),
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261118/us-east-1/sts/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-causeway-server-id, \
                 Signature=00ff"
                    .into(),
            ),
            ("X-Amz-Date".into(), amz_date(NOW)),
            ("x-causeway-server-id".into(), "hub-prod".into()),
            (
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            ),
        ]),
        body: "Action=GetCallerIdentity&Version=2011-06-15".into(),
    }
}

fn refusal(p: &SignedCallerIdentity, server_id: Option<&str>) -> String {
    check_proof(p, &endpoint(), server_id, NOW)
        .unwrap_err()
        .to_string()
}

#[test]
fn caller_arns_normalise_to_their_role() {
    let cases = [
        (
            "arn:aws:sts::111122223333:assumed-role/causeway-invoker/agent-1",
            Some("arn:aws:iam::111122223333:role/causeway-invoker"),
        ),
        (
            "arn:aws:iam::111122223333:role/platform/causeway-invoker",
            Some("arn:aws:iam::111122223333:role/causeway-invoker"),
        ),
        (
            "arn:aws-us-gov:iam::111122223333:user/ci",
            Some("arn:aws-us-gov:iam::111122223333:user/ci"),
        ),
        ("arn:aws:iam::111122223333:root", None),
        ("arn:aws:sts::111122223333:federated-user/bob", None),
        ("arn:aws:sts::1111:assumed-role/r/s", None),
        ("arn:aws:sts::111122223333:assumed-role/r", None),
        ("arn:evil:iam::111122223333:role/r", None),
        ("arn:aws:iam::111122223333:role/bad*name", None),
        ("not an arn", None),
    ];
    for (arn, expected) in cases {
        assert_eq!(
            normalise_principal(arn).map(|p| p.arn).as_deref(),
            expected,
            "{arn}"
        );
    }
}

#[test]
fn a_well_formed_fresh_proof_passes() {
    check_proof(&proof(), &endpoint(), Some("hub-prod"), NOW).unwrap();
    check_proof(&proof(), &endpoint(), None, NOW + MAX_SKEW_SECS).unwrap();
    let round_trip = decode_proof(&proof().to_header_value()).unwrap();
    assert_eq!(round_trip, proof());
}

#[test]
fn proofs_for_other_targets_actions_or_times_are_refused() {
    let mut other_host = proof();
    other_host.url = "https://sts.attacker.example/".into();
    assert_eq!(
        refusal(&other_host, None),
        "invalid workload identity: the signed request targets `https://sts.attacker.example`; this hub accepts only `https://sts.amazonaws.com/`"
    );

    let mut other_action = proof();
    other_action.body = "Action=AssumeRole&Version=2011-06-15&RoleArn=x".into();
    assert!(refusal(&other_action, None).contains("must be exactly `Action=GetCallerIdentity"));

    let mut get = proof();
    get.method = "GET".into();
    assert!(refusal(&get, None).contains("must be a `POST`"));

    let mut stale = proof();
    stale
        .headers
        .insert("X-Amz-Date".into(), amz_date(NOW - 600));
    assert_eq!(
        refusal(&stale, None),
        "invalid workload identity: the signed request is stale: `x-amz-date` is 600 s from the hub's clock (at most 300 s)"
    );

    let mut unsigned = proof();
    unsigned.headers.remove("Authorization");
    assert!(refusal(&unsigned, None).contains("no `authorization` header"));

    let mut other_service = proof();
    other_service.headers.insert(
        "Authorization".into(),
        "AWS4-HMAC-SHA256 Credential=A/20261118/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
            .into(),
    );
    assert!(refusal(&other_service, None).contains("not for the `sts` service"));

    let mut wrong_host = proof();
    wrong_host
        .headers
        .insert("host".into(), "sts.attacker.example".into());
    assert!(refusal(&wrong_host, None).contains("does not match"));

    // Bound to another hub, or not bound at all, when this hub requires its server id.
    assert!(
        refusal(&proof(), Some("hub-test")).contains("must sign `x-causeway-server-id: hub-test`")
    );
    let mut unbound = proof();
    unbound.headers.remove("x-causeway-server-id");
    assert!(refusal(&unbound, Some("hub-prod")).contains("must sign"));

    assert!(matches!(
        decode_proof("%%%"),
        Err(WorkloadError::Malformed(_))
    ));
}

fn registry() -> Arc<EmbeddedRegistry> {
    let spoke = |principal: &str, apps: &[&str], status| SpokeConfig {
        principal: principal.into(),
        account: principal[13..25].into(),
        ou: "workloads-prod".into(),
        team: "claims".into(),
        applications: apps.iter().map(|a| (*a).to_owned()).collect(),
        status,
        allowed_models: Vec::new(),
        budgets: SpokeBudgetsConfig::default(),
        data_classification: None,
        application_classifications: std::collections::BTreeMap::new(),
    };
    Arc::new(EmbeddedRegistry::from_config(&[
        spoke(
            "arn:aws:iam::111122223333:role/claims-invoker",
            &["claims-triage"],
            SpokeStatus::Active,
        ),
        SpokeConfig {
            data_classification: Some("internal".into()),
            application_classifications: [("payroll".to_owned(), "restricted".to_owned())].into(),
            ..spoke(
                "arn:aws:iam::111122223333:role/shared-invoker",
                &["payroll", "hr-chat"],
                SpokeStatus::Active,
            )
        },
        spoke(
            "arn:aws:iam::444455556666:role/old-invoker",
            &["legacy"],
            SpokeStatus::Suspended,
        ),
    ]))
}

fn verifier(arn: &'static str) -> WorkloadVerifier {
    let mut resolver = MockCallerIdentityResolver::new();
    resolver
        .expect_caller_arn()
        .returning(move |_| Ok(arn.to_owned()));
    WorkloadVerifier::new(endpoint(), None, true, Arc::new(resolver), registry())
}

fn headers(app: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        WORKLOAD_HEADER,
        HeaderValue::from_str(&proof().to_header_value()).unwrap(),
    );
    if let Some(app) = app {
        headers.insert(APPLICATION_HEADER, HeaderValue::from_str(app).unwrap());
    }
    headers
}

#[tokio::test]
async fn a_verified_role_session_maps_to_its_spoke() {
    let v = verifier("arn:aws:sts::111122223333:assumed-role/claims-invoker/agent-7");
    let workload = v
        .identify(&headers(None), None, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        workload,
        WorkloadIdentity {
            principal: "arn:aws:iam::111122223333:role/claims-invoker".into(),
            spoke_account: "111122223333".into(),
            ou: "workloads-prod".into(),
            application: "claims-triage".into(),
            allowed_models: Vec::new(),
            limits: SpokeLimits::default(),
            data_classification: None,
        }
    );
    // The Lambda request context wins over a header: API Gateway already verified it.
    let workload = v
        .identify(
            &HeaderMap::new(),
            Some("arn:aws:sts::111122223333:assumed-role/shared-invoker/s"),
            NOW,
        )
        .await;
    assert!(matches!(workload, Err(WorkloadError::Application(_))));
}

#[tokio::test]
async fn applications_must_be_registered_for_the_principal() {
    let v = verifier("arn:aws:sts::111122223333:assumed-role/shared-invoker/hr-chat@host-1");
    let ok = v
        .identify(&headers(Some("hr-chat")), None, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ok.application, "hr-chat");
    let err = v
        .identify(&headers(Some("claims-triage")), None, NOW)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "application `claims-triage` is not registered for principal `arn:aws:iam::111122223333:role/shared-invoker`; registered: `payroll`, `hr-chat`"
    );
    assert_eq!(HubError::from(err).status_code().as_u16(), 403);
    let err = v.identify(&headers(None), None, NOW).await.unwrap_err();
    assert!(err.to_string().starts_with("send `x-causeway-application`"));
}

#[tokio::test]
async fn an_application_cannot_borrow_a_lower_classification_from_its_spoke() {
    // The spoke is `internal`, its payroll application `restricted`: payroll's calls carry payroll's floor,
    // whatever the spoke's other applications are registered as.
    let payroll = verifier("arn:aws:sts::111122223333:assumed-role/shared-invoker/payroll@host-1")
        .identify(&headers(Some("payroll")), None, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(payroll.data_classification.as_deref(), Some("restricted"));
    let hr = verifier("arn:aws:sts::111122223333:assumed-role/shared-invoker/hr-chat@host-1")
        .identify(&headers(Some("hr-chat")), None, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hr.data_classification.as_deref(), Some("internal"));
}

#[tokio::test]
async fn one_application_cannot_speak_for_another_through_a_shared_role() {
    // `payroll` and `hr-chat` share an invoker role: a payroll session claiming hr-chat is refused.
    let v = verifier("arn:aws:sts::111122223333:assumed-role/shared-invoker/payroll@host-1");
    let err = v
        .identify(&headers(Some("hr-chat")), None, NOW)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "must come from a role session named `hr-chat@…`; this one is `payroll@host-1`"
        ),
        "{err}"
    );
    assert_eq!(HubError::from(err).status_code().as_u16(), 403);
    let own = v
        .identify(&headers(Some("payroll")), None, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(own.application, "payroll");
}

#[tokio::test]
async fn unknown_and_suspended_principals_are_refused_with_403() {
    let unknown = verifier("arn:aws:sts::999988887777:assumed-role/claims-invoker/s")
        .identify(&headers(None), None, NOW)
        .await
        .unwrap_err();
    assert!(matches!(
        &unknown,
        WorkloadError::NotRegistered { reason: "workload:unknown_principal", account, .. } if account == "999988887777"
    ));
    assert_eq!(
        unknown.to_string(),
        "principal `arn:aws:iam::999988887777:role/claims-invoker` is not registered as a spoke of this hub"
    );
    assert_eq!(HubError::from(unknown).status_code().as_u16(), 403);

    let suspended = verifier("arn:aws:sts::444455556666:assumed-role/old-invoker/s")
        .identify(&headers(None), None, NOW)
        .await
        .unwrap_err();
    assert_eq!(
        suspended.to_string(),
        "spoke account `444455556666` (principal `arn:aws:iam::444455556666:role/old-invoker`) is suspended"
    );
}

#[tokio::test]
async fn a_reused_proof_costs_one_sts_call_within_its_window() {
    let mut resolver = MockCallerIdentityResolver::new();
    resolver
        .expect_caller_arn()
        .times(1)
        .returning(|_| Ok("arn:aws:sts::111122223333:assumed-role/claims-invoker/a".to_owned()));
    let v = WorkloadVerifier::new(endpoint(), None, true, Arc::new(resolver), registry());
    for offset in [0, 60, MAX_SKEW_SECS] {
        let workload = v
            .identify(&headers(None), None, NOW + offset)
            .await
            .unwrap();
        assert_eq!(workload.unwrap().application, "claims-triage");
    }
    // Past its window the proof is refused before any cache or STS is consulted.
    let err = v
        .identify(&headers(None), None, NOW + MAX_SKEW_SECS + 1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is stale"), "{err}");
}

#[tokio::test]
async fn required_workload_identity_must_be_sent() {
    let v = verifier("arn:aws:sts::111122223333:assumed-role/claims-invoker/s");
    let err = v.identify(&HeaderMap::new(), None, NOW).await.unwrap_err();
    assert_eq!(HubError::from(err).status_code().as_u16(), 401);
    let optional = WorkloadVerifier::new(
        endpoint(),
        None,
        false,
        Arc::new(MockCallerIdentityResolver::new()),
        registry(),
    );
    assert!(
        optional
            .identify(&HeaderMap::new(), None, NOW)
            .await
            .unwrap()
            .is_none()
    );
}

/// A stand-in STS on 127.0.0.1 that answers like the real one: the caller for a request signed with `good`
/// as its signature, `SignatureDoesNotMatch` for anything else. It records what it received.
async fn fake_sts(received: Arc<std::sync::Mutex<Vec<(HeaderMap, String)>>>) -> reqwest::Url {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/",
        post(move |headers: HeaderMap, body: String| {
            let received = received.clone();
            async move {
                let good = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.ends_with("Signature=00ff"));
                received.lock().unwrap().push((headers, body));
                if good {
                    (
                        axum::http::StatusCode::OK,
                        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
                         <GetCallerIdentityResult><Arn>arn:aws:sts::111122223333:assumed-role/claims-invoker/a</Arn>\
                         <UserId>AROAEXAMPLE:a</UserId><Account>111122223333</Account></GetCallerIdentityResult>\
                         </GetCallerIdentityResponse>",
                    )
                } else {
                    (
                        axum::http::StatusCode::FORBIDDEN,
                        "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>\
                         <Message>The request signature we calculated does not match</Message></Error></ErrorResponse>",
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    crate::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    reqwest::Url::parse(&format!("http://{addr}/")).unwrap()
}

#[tokio::test]
async fn the_forwarder_sends_the_signed_request_and_reads_the_arn_or_the_refusal() {
    let received = Arc::new(std::sync::Mutex::new(Vec::new()));
    let url = fake_sts(received.clone()).await;
    let forwarder = StsForwarder::new(url.clone());
    let mut signed = proof();
    signed.url = url.to_string();
    assert_eq!(
        forwarder.caller_arn(&signed).await.unwrap(),
        "arn:aws:sts::111122223333:assumed-role/claims-invoker/a"
    );
    {
        let received = received.lock().unwrap();
        let (headers, body) = &received[0];
        assert_eq!(body, "Action=GetCallerIdentity&Version=2011-06-15");
        assert_eq!(headers["x-amz-date"], amz_date(NOW).as_str());
        assert_eq!(headers["x-causeway-server-id"], "hub-prod");
    }

    // A forged signature: STS refuses, the caller gets a 401 naming STS's code.
    let mut forged = signed.clone();
    forged.headers.insert(
        "Authorization".into(),
        signed.headers["Authorization"].replace("Signature=00ff", "Signature=0fff"),
    );
    let err = forwarder.caller_arn(&forged).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid workload identity: sts refused the signed request (403 SignatureDoesNotMatch)"
    );
    assert_eq!(HubError::from(err).status_code().as_u16(), 401);
}

#[tokio::test]
async fn a_proof_or_an_application_name_is_never_quoted_back_whole() {
    // A proof whose headers are a string: the JSON parser would quote that string, a signature with it.
    let garbled = STANDARD.encode(
        r#"{"method":"POST","url":"https://sts.amazonaws.com/","headers":"AWS4-HMAC-SHA256 Signature=5ec7e75160a7","body":""}"#,
    );
    let err = decode_proof(&garbled).unwrap_err().to_string();
    assert!(!err.contains("5ec7e75160a7"), "{err}");
    assert!(err.contains("line 1, column"), "{err}");

    // A target or an application name the caller chose is shown cut short.
    let mut far = proof();
    far.url = format!("https://{}.example/", "h".repeat(300));
    let err = refusal(&far, None);
    assert!(err.contains("hhhh…"), "{err}");
    assert!(err.len() < 300, "{err}");
    let v = verifier("arn:aws:sts::111122223333:assumed-role/shared-invoker/s");
    let err = v
        .identify(&headers(Some(&"x".repeat(2048))), None, NOW)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("xxxx…"), "{err}");
    assert!(err.len() < 300, "{err}");
}
