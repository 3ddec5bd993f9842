//! The compliance console in a real browser (headless Chromium over WebDriver): the hub's console over its
//! embedded store, and `causeway console --pack` over a pack exported from it. Screenshots of every page
//! are kept under the Cargo target's temporary directory (`console-screenshots/`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use causeway_cli::console::{ConsoleArgs, run_until};
use causeway_contract::audit::Outcome;
use causeway_hub::config::HubConfig;
use causeway_testkit::browser::Browser;
use causeway_testkit::hub::{HubOptions, TestHub, spawn_hub_with};
use serde_json::json;

const PROMPT: &str = "Draft the quarterly claims summary for the board";

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

/// A hub with the console on (development sign-in), and calls of alice and bob in its store.
async fn hub_with_calls() -> TestHub {
    let mut config = HubConfig::default();
    config.console.enabled = true;
    config.console.reviewer_groups = vec!["compliance".into()];
    config.console.payload_groups = vec!["compliance-payload".into()];
    config.validate("hub.toml").unwrap();
    let hub = spawn_hub_with(HubOptions {
        config,
        ..HubOptions::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    for (user, text, purpose) in [
        ("alice", PROMPT, "evaluation"),
        (
            "alice",
            "Reply to jane.doe@example.com about her claim",
            "evaluation",
        ),
        ("alice", "Which purpose is this?", "no-such-purpose"),
        ("bob", "Summarise the incident report", "evaluation"),
    ] {
        let response = http
            .post(hub.url("/v1/invoke"))
            .bearer_auth(hub.token(user, &["engineers"]))
            .json(&json!({"model": "local-dev", "purpose": purpose, "messages": [{"role": "user", "content": text}]}))
            .send()
            .await
            .unwrap();
        assert!(response.status().as_u16() < 500, "{}", response.status());
    }
    hub
}

async fn sign_in(browser: &Browser, hub: &TestHub, user: &str, groups: &str) {
    browser.client.goto(&hub.url("/console")).await.unwrap();
    // Not signed in: the console sends the browser to sign in.
    assert!(
        browser
            .client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/login"),
        "{}",
        browser.client.current_url().await.unwrap()
    );
    browser.fill("user", user).await.unwrap();
    browser.fill("groups", groups).await.unwrap();
    browser.click("main button[type=submit]").await.unwrap();
    browser.wait_past("Development sign-in").await.unwrap();
}

/// The value of the page's hidden CSRF field.
async fn csrf(browser: &Browser) -> String {
    browser
        .client
        .find(fantoccini::Locator::Css("input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap()
}

/// Reloads the integrity page until the verification run ends; returns its text.
async fn verification_result(browser: &Browser) -> String {
    loop {
        let text = browser.main_text().await.unwrap();
        if text.contains("Run by") {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        browser.client.refresh().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reviewer_finds_a_users_calls_opens_a_record_reads_dashboards_verifies_and_exports() {
    let hub = hub_with_calls().await;
    let browser = Browser::start().await.unwrap();
    let shots = screenshots();

    browser
        .client
        .goto(&hub.url("/console/login"))
        .await
        .unwrap();
    browser.screenshot(&shots, "sign-in").await.unwrap();
    sign_in(&browser, &hub, "rita", "compliance").await;
    let text = browser.main_text().await.unwrap();
    assert!(text.contains("Search"), "{text}");

    // One user's calls of the last 24 hours.
    browser.fill("user", "alice").await.unwrap();
    browser.fill("since", "24h").await.unwrap();
    browser
        .click("form.search button[type=submit]")
        .await
        .unwrap();
    browser.wait_for_url("user=alice").await.unwrap();
    let rows = browser
        .client
        .find_all(fantoccini::Locator::Css("main table tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert!(row.text().await.unwrap().contains("alice"));
    }
    let text = browser.main_text().await.unwrap();
    assert!(
        text.contains("rejected") && text.contains("answered"),
        "{text}"
    );
    assert!(!text.contains("bob"), "{text}");
    browser.screenshot(&shots, "search").await.unwrap();

    // A record: its fields, its chain position and whether it verifies.
    browser.click("main table tbody tr td a").await.unwrap();
    browser.wait_past("Search").await.unwrap();
    let text = browser.main_text().await.unwrap();
    for expected in [
        "Integrity",
        "matches the stored hash",
        "Policies and reasons",
        "Guard events",
        "alice",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    assert!(
        text.contains("needs membership of a payload group"),
        "{text}"
    );
    browser.screenshot(&shots, "record").await.unwrap();

    // Dashboards render charts with the data.
    browser
        .client
        .goto(&hub.url("/console/dashboards"))
        .await
        .unwrap();
    let charts = browser
        .client
        .find_all(fantoccini::Locator::Css("figure svg"))
        .await
        .unwrap();
    assert_eq!(charts.len(), 5);
    let text = browser.main_text().await.unwrap();
    assert!(text.contains("4 calls since"), "{text}");
    let source = browser.client.source().await.unwrap();
    assert!(
        source.contains("EMAIL") && source.contains("local-dev"),
        "the charts name what they count"
    );
    browser.screenshot(&shots, "dashboards").await.unwrap();

    // A verification run started from the page.
    browser
        .client
        .goto(&hub.url("/console/integrity"))
        .await
        .unwrap();
    browser
        .click("form[action='/console/integrity/verify'] button")
        .await
        .unwrap();
    let text = verification_result(&browser).await;
    assert!(text.contains("Intact: 4 records in 1 chains"), "{text}");
    assert!(text.contains("Run by rita"), "{text}");
    browser.screenshot(&shots, "integrity").await.unwrap();

    // An export, downloaded with the browser's session and the form's CSRF token.
    browser
        .client
        .goto(&hub.url("/console/export"))
        .await
        .unwrap();
    browser.screenshot(&shots, "export").await.unwrap();
    let token = csrf(&browser).await;
    let response = reqwest::Client::new()
        .post(hub.url("/console/export"))
        .header("cookie", browser.cookie_header().await.unwrap())
        .form(&[
            ("csrf", token.as_str()),
            ("since", "24h"),
            ("until", "2100-01-01"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let zip = response.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    let names: Vec<String> = archive
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .collect();
    for file in [
        "evidence-pack/manifest.json",
        "evidence-pack/records.jsonl",
        "evidence-pack/manifest.sig",
    ] {
        assert!(names.iter().any(|n| n == file), "{names:?}");
    }
    let unpacked = tempfile::tempdir().unwrap();
    archive.extract(unpacked.path()).unwrap();
    let pack = unpacked.path().join("evidence-pack");
    let report = causeway_audit::pack::verify_pack(&pack, None).unwrap();
    assert!(report.is_ok() && report.records == 4, "{report:?}");

    // The same form without the token is refused.
    let response = reqwest::Client::new()
        .post(hub.url("/console/export"))
        .header("cookie", browser.cookie_header().await.unwrap())
        .form(&[
            ("csrf", "forged"),
            ("since", "24h"),
            ("until", "2100-01-01"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    offline_console_shows_the_same_records(&browser, &pack).await;
}

/// `causeway console --pack` over the exported pack: the same records, and its verification result.
async fn offline_console_shows_the_same_records(browser: &Browser, pack: &Path) {
    struct Lines(mpsc::Sender<String>);
    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.send(String::from_utf8_lossy(buf).into_owned());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (lines, printed) = mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let args = ConsoleArgs {
        pack: Some(pack.to_owned()),
        data_dir: None,
        key: None,
        listen: "127.0.0.1:0".parse().unwrap(),
    };
    let server = std::thread::spawn(move || {
        run_until(args, &mut Lines(lines), async {
            let _ = stopped.await;
        })
    });
    let link = printed
        .iter()
        .find_map(|text| {
            text.split_whitespace()
                .find(|w| w.starts_with("http://"))
                .map(str::to_owned)
        })
        .unwrap();
    let base = link.split("/console/").next().unwrap().to_owned();

    // Without the link's token, nothing.
    browser
        .client
        .goto(&format!("{base}/console/login"))
        .await
        .unwrap();
    assert!(
        browser
            .main_text()
            .await
            .unwrap()
            .contains("Sign-in link needed")
    );
    browser.client.goto(&link).await.unwrap();
    let text = browser.main_text().await.unwrap();
    assert!(text.contains("Reading evidence pack"), "{text}");
    let rows = browser
        .client
        .find_all(fantoccini::Locator::Css("main table tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    browser
        .screenshot(&screenshots(), "offline-search")
        .await
        .unwrap();
    browser
        .client
        .goto(&format!("{base}/console/integrity"))
        .await
        .unwrap();
    let text = browser.main_text().await.unwrap();
    assert!(text.contains("When this evidence was opened"), "{text}");
    assert!(text.contains("Intact: 4 records"), "{text}");
    browser
        .screenshot(&screenshots(), "offline-integrity")
        .await
        .unwrap();
    // A pack holds no payloads, and the page says so.
    browser
        .client
        .goto(&format!("{base}/console"))
        .await
        .unwrap();
    browser.click("main table tbody tr td a").await.unwrap();
    browser.wait_past("Search").await.unwrap();
    assert!(
        browser
            .main_text()
            .await
            .unwrap()
            .contains("Payloads cannot be read here")
    );

    stop.send(()).unwrap();
    server.join().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn non_reviewers_are_refused_and_every_payload_read_is_an_audit_record() {
    let hub = hub_with_calls().await;
    let browser = Browser::start().await.unwrap();

    // Nothing without a session.
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(hub.url("/console?user=alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/console/login");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");

    // A signed-in user who is not a reviewer gets no session.
    sign_in(&browser, &hub, "mallory", "engineers").await;
    let text = browser.main_text().await.unwrap();
    assert!(
        text.contains("Not a reviewer") && text.contains("compliance"),
        "{text}"
    );
    browser.client.goto(&hub.url("/console")).await.unwrap();
    assert!(
        browser
            .client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/login")
    );

    // A reviewer without the payload group cannot read a payload, even by posting the form.
    sign_in(&browser, &hub, "rita", "compliance").await;
    let record = hub
        .audit_records()
        .unwrap()
        .into_iter()
        .find(|r| {
            r.event.outcome == Outcome::Answered && r.event.user_sub.as_deref() == Some("alice")
        })
        .unwrap();
    browser
        .client
        .goto(&hub.url(&format!(
            "/console/record?chain={}&seq={}",
            record.chain_id, record.sequence
        )))
        .await
        .unwrap();
    let token = csrf(&browser).await;
    let response = reqwest::Client::new()
        .post(hub.url(&format!(
            "/console/record/payload?chain={}&seq={}",
            record.chain_id, record.sequence
        )))
        .header("cookie", browser.cookie_header().await.unwrap())
        .form(&[
            ("csrf", token.as_str()),
            ("reason", "Checking the board summary request"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Not allowed to read payloads")
    );
    let reads = |hub: &TestHub| {
        hub.audit_records()
            .unwrap()
            .into_iter()
            .filter(|r| r.event.outcome == Outcome::PayloadRead)
            .collect::<Vec<_>>()
    };
    assert!(reads(&hub).is_empty());

    // With the payload group and a reason, the read is recorded in the chain, then shown.
    browser.click("header form.signout button").await.unwrap();
    browser.wait_for_url("/console/login").await.unwrap();
    sign_in(&browser, &hub, "paula", "compliance, compliance-payload").await;
    browser
        .client
        .goto(&hub.url(&format!(
            "/console/record?chain={}&seq={}",
            record.chain_id, record.sequence
        )))
        .await
        .unwrap();
    browser
        .fill("reason", "Complaint 4471: the customer asks what was sent")
        .await
        .unwrap();
    browser
        .click("form[action*='/payload'] button")
        .await
        .unwrap();
    let text = browser
        .wait_for_text("This read is recorded in the audit chain")
        .await
        .unwrap();
    browser.screenshot(&screenshots(), "payload").await.unwrap();
    let recorded = reads(&hub);
    assert_eq!(recorded.len(), 1);
    let read = &recorded[0].event;
    assert_eq!(read.user_sub.as_deref(), Some("paula"));
    assert_eq!(read.api, "console");
    assert_eq!(
        read.reasons,
        vec![
            format!("record:{}", record.event.id),
            "reason:Complaint 4471: the customer asks what was sent".to_owned()
        ]
    );
    // The first of alice's answered calls: its prompt as sent to the model.
    assert!(text.contains(PROMPT), "{text}");

    // The read is visible in the console like any record.
    browser
        .client
        .goto(&hub.url("/console?outcome=payload_read"))
        .await
        .unwrap();
    let text = browser.main_text().await.unwrap();
    assert!(
        text.contains("paula") && text.contains("payload_read"),
        "{text}"
    );

    // A reason is required.
    let token = csrf(&browser).await;
    let response = reqwest::Client::new()
        .post(hub.url(&format!(
            "/console/record/payload?chain={}&seq={}",
            record.chain_id, record.sequence
        )))
        .header("cookie", browser.cookie_header().await.unwrap())
        .form(&[("csrf", token.as_str()), ("reason", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(reads(&hub).len(), 1);
}

const ISSUER: &str = "https://idp.example.test";

/// A minimal OIDC provider on 127.0.0.1: `/authorize` answers with a code for the request's PKCE challenge,
/// `/token` checks the verifier against it and returns an ID token signed by `key` for `user`.
struct Provider {
    base: String,
    /// Stops the provider when dropped.
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[derive(Clone)]
struct ProviderState {
    key: Arc<causeway_contract::dev::DevKey>,
    pkcs8: Arc<Vec<u8>>,
    issuer: String,
    user: (String, Vec<String>),
    pending: Arc<std::sync::Mutex<std::collections::HashMap<String, (String, String)>>>,
}

async fn provider(dir: &Path, issuer: &str, user: &str, groups: &[&str]) -> Provider {
    use axum::extract::{Form, Query, State};
    use axum::response::{IntoResponse, Redirect};
    use std::collections::HashMap;

    let key = causeway_contract::dev::DevKey::load_or_create(dir).unwrap();
    let pkcs8 = std::fs::read(dir.join(causeway_contract::dev::KEY_FILE)).unwrap();
    let state = ProviderState {
        key: Arc::new(key),
        pkcs8: Arc::new(pkcs8),
        issuer: issuer.to_owned(),
        user: (
            user.to_owned(),
            groups.iter().map(|g| (*g).to_owned()).collect(),
        ),
        pending: Arc::default(),
    };
    async fn authorize(
        State(state): State<ProviderState>,
        Query(q): Query<HashMap<String, String>>,
    ) -> impl IntoResponse {
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["code_challenge_method"], "S256");
        let code = format!(
            "code-{}",
            q["state"].len() + state.pending.lock().unwrap().len()
        );
        state.pending.lock().unwrap().insert(
            code.clone(),
            (q["code_challenge"].clone(), q["nonce"].clone()),
        );
        Redirect::to(&format!(
            "{}?code={code}&state={}",
            q["redirect_uri"], q["state"]
        ))
    }
    async fn token(
        State(state): State<ProviderState>,
        Form(form): Form<HashMap<String, String>>,
    ) -> axum::response::Response {
        use base64::Engine as _;
        use sha2::Digest as _;
        let Some((challenge, nonce)) = state.pending.lock().unwrap().remove(&form["code"]) else {
            return (axum::http::StatusCode::BAD_REQUEST, "unknown code").into_response();
        };
        let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(form["code_verifier"].as_bytes()));
        if computed != challenge {
            return (axum::http::StatusCode::BAD_REQUEST, "invalid_grant").into_response();
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = state.key.jwks().keys[0].common.key_id.clone();
        let claims = json!({
            "iss": state.issuer, "aud": form["client_id"], "sub": state.user.0,
            "groups": state.user.1, "nonce": nonce, "iat": now, "exp": now + 300,
        });
        let id_token = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&state.pkcs8),
        )
        .unwrap();
        axum::Json(json!({"id_token": id_token, "token_type": "Bearer"})).into_response()
    }
    let app = axum::Router::new()
        .route("/authorize", axum::routing::get(authorize))
        .route("/token", axum::routing::post(token))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    causeway_hub::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Provider { base, _stop: stop }
}

/// A hub in OIDC mode whose console signs in through `provider`, trusting the provider's key.
async fn oidc_hub(provider: &Provider, keys: &Path) -> TestHub {
    let key = causeway_contract::dev::DevKey::load_or_create(keys).unwrap();
    let jwks = keys.join("jwks.json");
    std::fs::write(&jwks, serde_json::to_vec(&key.jwks()).unwrap()).unwrap();
    let mut config = HubConfig::default();
    config.identity.mode = causeway_hub::config::IdentityMode::Oidc;
    config.identity.issuer = Some(ISSUER.into());
    config.identity.audience = Some("causeway-api".into());
    config.identity.jwks_file = Some(jwks);
    config.identity.require_workload = Some(false);
    config.console.enabled = true;
    config.console.reviewer_groups = vec!["compliance".into()];
    // The hub's address is known only once it listens: `oidc_sign_in` takes the provider's answer (code and
    // state) to this hub's callback itself, as a browser would to the registered one.
    config.console.oidc = Some(causeway_hub::config::ConsoleOidcConfig {
        authorization_endpoint: format!("{}/authorize", provider.base),
        token_endpoint: format!("{}/token", provider.base),
        client_id: "causeway-console".into(),
        client_secret_env: None,
        redirect_uri: "http://127.0.0.1:9/console/callback".into(),
    });
    config.validate("hub.toml").unwrap();
    spawn_hub_with(HubOptions {
        config,
        ..HubOptions::default()
    })
    .await
    .unwrap()
}

/// Runs the sign-in as a browser would, without one: the console's redirect, the provider's answer, the
/// callback on the hub. Returns the callback's response.
async fn oidc_sign_in(hub: &TestHub, tamper_verifier: bool) -> reqwest::Response {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http.get(hub.url("/console/login")).send().await.unwrap();
    assert_eq!(login.status(), 303);
    let binding = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut authorize = reqwest::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    let params: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(params["client_id"], "causeway-console");
    assert_eq!(params["code_challenge"].len(), 43);
    assert!(params["scope"].contains("openid"));
    if tamper_verifier {
        // A challenge the console's verifier does not answer: the provider refuses the exchange.
        let q: Vec<(String, String)> = authorize
            .query_pairs()
            .into_owned()
            .map(|(k, v)| {
                if k == "code_challenge" {
                    (k, "x".to_owned())
                } else {
                    (k, v)
                }
            })
            .collect();
        authorize.query_pairs_mut().clear().extend_pairs(q);
    }
    let answer = http.get(authorize).send().await.unwrap();
    assert_eq!(answer.status(), 303);
    let back = reqwest::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    // The console's callback on this hub, with the provider's code and state.
    let callback = format!("{}?{}", hub.url("/console/callback"), back.query().unwrap());
    http.get(callback)
        .header("cookie", binding)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn reviewers_sign_in_through_the_identity_provider_with_pkce() {
    let idp_keys = tempfile::tempdir().unwrap();
    let reviewer = provider(idp_keys.path(), ISSUER, "rita", &["compliance"]).await;
    let hub = oidc_hub(&reviewer, idp_keys.path()).await;

    let callback = oidc_sign_in(&hub, false).await;
    assert_eq!(callback.status(), 303, "{:?}", callback.text().await);
    assert_eq!(callback.headers()["location"], "/console");
    let cookies: Vec<String> = callback
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("causeway_console="))
        .unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let page = reqwest::Client::new()
        .get(hub.url("/console"))
        .header("cookie", session.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Signed in as <strong>rita</strong>")
    );

    // A code exchanged without the right PKCE verifier gives no session.
    let refused = oidc_sign_in(&hub, true).await;
    assert_eq!(refused.status(), 502);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("The code exchange failed")
    );

    // A callback that this browser did not start is refused before any exchange.
    let stray = reqwest::Client::new()
        .get(hub.url("/console/callback?code=c&state=s"))
        .send()
        .await
        .unwrap();
    assert_eq!(stray.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_in_user_outside_the_reviewer_groups_gets_no_session() {
    let idp_keys = tempfile::tempdir().unwrap();
    let engineer = provider(idp_keys.path(), ISSUER, "eve", &["engineers"]).await;
    let hub = oidc_hub(&engineer, idp_keys.path()).await;
    let callback = oidc_sign_in(&hub, false).await;
    assert_eq!(callback.status(), 403);
    assert!(
        callback
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("causeway_console="))
    );
    assert!(callback.text().await.unwrap().contains("Not a reviewer"));
}
