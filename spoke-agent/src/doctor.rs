//! `causeway-agent doctor`: checks each link between the workload and the hub, in order, and says which one
//! failed and what to do about it.
//!
//! The links: the workload's own AWS credentials (`sts:GetCallerIdentity`), assuming the invoker role, the
//! hub answering `/healthz`, the hub accepting the user token and the workload's proof (`/v1/models`), and a
//! dry-run authorization (at least one model allowed for the default purpose). Checking stops at the first
//! failure: later links depend on earlier ones. Nothing secret (token, proof, credentials) is ever shown.
//!
//! In `sigv4` mode every call to the hub, `/healthz` included, is signed, since API Gateway refuses unsigned
//! ones. Only API Gateway checks the signature, so against a hub reached directly the identity link cannot be
//! checked, and the report says so.
//!
//! Exit codes ([`Report::exit_code`]): 0 every link passed; 10 local credentials, 11 assume role, 12 hub
//! reachable, 13 identity accepted, 14 authorization.

use std::io::{self, Write};
use std::time::Duration;

use http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::config::AgentConfig;
use crate::credentials::AssumeError;
use crate::forward::{APPLICATION_HEADER, PURPOSE_HEADER, describe};
use crate::identity::{HubRequest, Workload};

/// One link between the workload and the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The workload's own AWS credentials work.
    LocalCredentials,
    /// The invoker role can be assumed.
    AssumeRole,
    /// The hub answers `/healthz`.
    HubReachable,
    /// The hub accepts the user token and the workload's proof.
    IdentityAccepted,
    /// The user may use at least one model for the default purpose.
    Authorization,
}

impl Link {
    /// Every link, in the order they are checked.
    pub const ALL: [Self; 5] = [
        Self::LocalCredentials,
        Self::AssumeRole,
        Self::HubReachable,
        Self::IdentityAccepted,
        Self::Authorization,
    ];

    /// The link's name as printed.
    pub fn name(self) -> &'static str {
        match self {
            Self::LocalCredentials => "local credentials",
            Self::AssumeRole => "assume role",
            Self::HubReachable => "hub reachable",
            Self::IdentityAccepted => "identity accepted",
            Self::Authorization => "authorization",
        }
    }

    /// The exit code when this link is the first that failed.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::LocalCredentials => 10,
            Self::AssumeRole => 11,
            Self::HubReachable => 12,
            Self::IdentityAccepted => 13,
            Self::Authorization => 14,
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The link works; what was seen.
    Passed(String),
    /// The link does not apply to this configuration; why.
    Skipped(String),
    /// The link is broken.
    Failed {
        /// What is wrong.
        problem: String,
        /// What to do about it.
        fix: String,
    },
    /// Not checked, because an earlier link failed.
    NotChecked,
}

/// One checked link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The link.
    pub link: Link,
    /// What was found.
    pub status: Status,
}

/// Every link's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The hub checked.
    pub hub_url: String,
    /// One entry per link, in order.
    pub checks: Vec<Check>,
}

impl Report {
    /// The first link that failed.
    pub fn first_failure(&self) -> Option<Link> {
        self.checks
            .iter()
            .find(|c| matches!(c.status, Status::Failed { .. }))
            .map(|c| c.link)
    }

    /// 0 when every link passed, otherwise the failed link's code.
    pub fn exit_code(&self) -> u8 {
        self.first_failure().map_or(0, Link::exit_code)
    }

    /// Writes the report for people.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "causeway-agent doctor: hub `{}`", self.hub_url)?;
        for check in &self.checks {
            let name = check.link.name();
            match &check.status {
                Status::Passed(detail) => writeln!(out, "  ok    {name:<18} {detail}")?,
                Status::Skipped(why) => writeln!(out, "  skip  {name:<18} {why}")?,
                Status::Failed { problem, fix } => {
                    writeln!(out, "  FAIL  {name:<18} {problem}")?;
                    writeln!(out, "        {:<18} what to do: {fix}", "")?;
                }
                Status::NotChecked => writeln!(out, "  --    {name:<18} not checked")?,
            }
        }
        match self.first_failure() {
            None => writeln!(out, "every link works"),
            Some(link) => writeln!(
                out,
                "`{}` failed (exit code {})",
                link.name(),
                link.exit_code()
            ),
        }
    }
}

/// Checks every link for `config`, with the workload identity `workload` built from it and the end user's
/// `token` for the calls to the hub.
pub async fn run(
    config: &AgentConfig,
    workload: &Workload,
    token: Option<&SecretString>,
) -> Report {
    let mut checks = Vec::with_capacity(Link::ALL.len());
    let failed = 'links: {
        // 1 and 2: the workload's credentials and the invoker role.
        match &workload.role {
            None => {
                let why = "`workload_identity.mode` is `none`".to_owned();
                checks.push(skipped(Link::LocalCredentials, &why));
                checks.push(skipped(Link::AssumeRole, &why));
            }
            Some((assumer, cache)) => {
                let local = match assumer.workload_arn().await {
                    Ok(arn) => arn,
                    Err(err) => {
                        checks.push(failed(
                            Link::LocalCredentials,
                            err.to_string(),
                            "give the workload AWS credentials through the standard provider chain (task or instance role, `AWS_PROFILE`, or environment variables) and check `workload_identity.sts_endpoint`",
                        ));
                        break 'links true;
                    }
                };
                checks.push(passed(Link::LocalCredentials, local.clone()));
                match cache.get().await {
                    Ok(credentials) => checks.push(passed(
                        Link::AssumeRole,
                        credentials.assumed_arn().to_owned(),
                    )),
                    Err(err) => {
                        let fix = match &err {
                            AssumeError::Refused { role, code, .. } if code == "AccessDenied" => format!(
                                "check that the trust policy of `{role}` names `{local}` and that `workload_identity.external_id` is the invoker role's external id"
                            ),
                            AssumeError::Refused { .. } => {
                                "check `workload_identity.role_arn`, `session_name`, `source_identity` and `duration_secs`".to_owned()
                            }
                            AssumeError::Unavailable { .. } | AssumeError::LocalCredentials(_) => {
                                "check `workload_identity.sts_endpoint` and that this host can reach it".to_owned()
                            }
                        };
                        checks.push(failed(Link::AssumeRole, err.to_string(), &fix));
                        break 'links true;
                    }
                }
            }
        }

        // 3: the hub is up.
        let http = match reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .timeout(Duration::from_secs(config.request_timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(http) => http,
            Err(err) => {
                checks.push(failed(
                    Link::HubReachable,
                    format!("cannot build the http client: {err}"),
                    "check the host's TLS setup",
                ));
                break 'links true;
            }
        };
        let base = config.hub_url.trim_end_matches('/').to_owned();
        let sigv4 = workload.signer.signs_every_request();
        match health(workload, &http, &base).await {
            Ok(response) if sigv4 && response.status() == StatusCode::FORBIDDEN => {
                let message =
                    gateway_message(&response.json::<Value>().await.unwrap_or(Value::Null));
                checks.push(failed(
                    Link::HubReachable,
                    format!("`/healthz` answered 403: {message}"),
                    &gateway_fix(workload),
                ));
                break 'links true;
            }
            Ok(response) if response.status().is_success() => checks.push(passed(
                Link::HubReachable,
                format!("`/healthz` answered {}", response.status().as_u16()),
            )),
            Ok(response) => {
                checks.push(failed(
                    Link::HubReachable,
                    format!("`/healthz` answered {}", response.status().as_u16()),
                    "the hub is up but not healthy (for example its audit store cannot take writes); see the hub's log",
                ));
                break 'links true;
            }
            Err(Unhealthy::Unreachable(err)) => {
                checks.push(failed(
                    Link::HubReachable,
                    format!(
                        "cannot reach the hub at `{}`: {}",
                        config.hub_url,
                        describe(&err)
                    ),
                    "check `hub_url`, that the hub runs, and that this host can reach it",
                ));
                break 'links true;
            }
            Err(Unhealthy::Unsigned(problem)) => {
                checks.push(failed(
                    Link::HubReachable,
                    problem,
                    "run the doctor again; if it persists, check the role credentials and `hub_url`",
                ));
                break 'links true;
            }
        }

        // 4 and 5: one `/v1/models` call, as the agent would forward it.
        let Some(token) = token else {
            checks.push(failed(
                Link::IdentityAccepted,
                "no user token to call the hub with".to_owned(),
                "pass `--token` or set `CAUSEWAY_AGENT_TOKEN` to a token the hub accepts",
            ));
            break 'links true;
        };
        let (status, body) = match models(config, workload, &http, &base, token).await {
            Ok(answer) => answer,
            Err((problem, fix)) => {
                checks.push(failed(Link::IdentityAccepted, problem, &fix));
                break 'links true;
            }
        };
        let message = gateway_message(&body);
        match status {
            StatusCode::OK | StatusCode::BAD_REQUEST => checks.push(passed(
                Link::IdentityAccepted,
                match &workload.role {
                    Some((assumer, _)) if sigv4 => format!(
                        "api gateway accepted the signature of `{}` and the hub accepted the user and the workload",
                        assumer.settings().role_arn
                    ),
                    Some((assumer, _)) => format!(
                        "the hub accepted the user and the workload `{}`",
                        assumer.settings().role_arn
                    ),
                    None => "the hub accepted the user (no workload identity sent)".to_owned(),
                },
            )),
            StatusCode::UNAUTHORIZED if sigv4 && message.starts_with("missing bearer token") => {
                checks.push(failed(
                    Link::IdentityAccepted,
                    format!(
                        "the hub answered 401: {message}; it is not behind api gateway with iam authorization, which alone checks the signature and hands the user's token on, so this link cannot be checked here"
                    ),
                    "point `hub_url` at the hub's api stage url, or use `workload_identity.mode = \"sts_proof\"` for a hub reached directly",
                ));
                break 'links true;
            }
            StatusCode::FORBIDDEN if sigv4 && body.get("error").is_none() => {
                checks.push(failed(
                    Link::IdentityAccepted,
                    format!("api gateway answered 403: {message}"),
                    &gateway_fix(workload),
                ));
                break 'links true;
            }
            StatusCode::UNAUTHORIZED => {
                let fix = if message.contains("workload") {
                    "make `workload_identity.sts_endpoint`, `region` and `server_id` match the hub's `identity.sts_endpoint` and `identity.server_id`, and set `workload_identity.mode` if the hub requires a workload"
                } else {
                    "get a fresh user token from the identity provider the hub trusts"
                };
                checks.push(failed(
                    Link::IdentityAccepted,
                    format!("the hub answered 401: {message}"),
                    fix,
                ));
                break 'links true;
            }
            StatusCode::FORBIDDEN => {
                let fix = match &workload.role {
                    Some(_) if message.contains("suspended") => {
                        "the spoke is suspended in the hub's registry; ask the hub's operators to reactivate it".to_owned()
                    }
                    Some((assumer, _)) => format!(
                        "register `{}` as an active spoke in the hub's registry, with application `{}`",
                        assumer.settings().role_arn,
                        config.application.as_deref().unwrap_or("-")
                    ),
                    None => {
                        "ask the hub's operators which workload identity the hub expects".to_owned()
                    }
                };
                checks.push(failed(
                    Link::IdentityAccepted,
                    format!("the hub answered 403: {message}"),
                    &fix,
                ));
                break 'links true;
            }
            other => {
                checks.push(failed(
                    Link::IdentityAccepted,
                    format!("the hub answered {}: {message}", other.as_u16()),
                    "see the hub's log for this request",
                ));
                break 'links true;
            }
        }

        let purpose = config
            .default_purpose
            .as_deref()
            .map_or_else(|| "any purpose".to_owned(), |p| format!("purpose `{p}`"));
        if status == StatusCode::BAD_REQUEST {
            checks.push(failed(
                Link::Authorization,
                format!("the hub refused {purpose}: {message}"),
                "set `default_purpose` to a purpose the hub declares",
            ));
            break 'links true;
        }
        let aliases: Vec<&str> = body["data"]
            .as_array()
            .map(|data| data.iter().filter_map(|m| m["id"].as_str()).collect())
            .unwrap_or_default();
        if aliases.is_empty() {
            checks.push(failed(
                Link::Authorization,
                format!("no model is allowed for this user, application and {purpose}"),
                "ask the hub's operators for a policy that permits them",
            ));
            break 'links true;
        }
        checks.push(passed(
            Link::Authorization,
            format!("{purpose}: {}", aliases.join(", ")),
        ));
        false
    };
    if failed {
        for link in Link::ALL.iter().skip(checks.len()) {
            checks.push(Check {
                link: *link,
                status: Status::NotChecked,
            });
        }
    }
    Report {
        hub_url: config.hub_url.clone(),
        checks,
    }
}

/// Why `/healthz` got no answer.
#[derive(Debug)]
enum Unhealthy {
    /// The hub could not be reached.
    Unreachable(reqwest::Error),
    /// The request could not be signed.
    Unsigned(String),
}

/// `GET /healthz`, signed when the hub's gateway refuses unsigned requests.
async fn health(
    workload: &Workload,
    http: &reqwest::Client,
    base: &str,
) -> Result<reqwest::Response, Unhealthy> {
    let url = format!("{base}/healthz");
    if !workload.signer.signs_every_request() {
        return http.get(url).send().await.map_err(Unhealthy::Unreachable);
    }
    let mut request: HubRequest = http::Request::builder()
        .method("GET")
        .uri(&url)
        .body(bytes::Bytes::new())
        .map_err(|_| Unhealthy::Unsigned(format!("`{url}` is not a valid url")))?;
    workload
        .signer
        .sign(&mut request)
        .await
        .map_err(|err| Unhealthy::Unsigned(format!("cannot sign the health check: {err}")))?;
    let request = reqwest::Request::try_from(request)
        .map_err(|_| Unhealthy::Unsigned(format!("`{url}` is not a valid url")))?;
    http.execute(request).await.map_err(Unhealthy::Unreachable)
}

/// The error message of a hub answer (`error.message`) or of an API Gateway one (`message`).
fn gateway_message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .or_else(|| body["message"].as_str())
        .unwrap_or("no message")
        .to_owned()
}

/// What to do when API Gateway refuses a signed call.
fn gateway_fix(workload: &Workload) -> String {
    let role = workload
        .role
        .as_ref()
        .map_or("the invoker role", |(assumer, _)| {
            assumer.settings().role_arn.as_str()
        });
    format!(
        "check that the hub api's resource policy allows `{role}` to call it, that `workload_identity.region` is the api's region, and that `hub_url` is the api's stage url"
    )
}

/// `GET /v1/models` with the user token, the application, the default purpose and the workload's proof.
async fn models(
    config: &AgentConfig,
    workload: &Workload,
    http: &reqwest::Client,
    base: &str,
    token: &SecretString,
) -> Result<(StatusCode, Value), (String, String)> {
    let unusable = |what: &str| {
        (
            format!("cannot build the call to the hub: {what}"),
            "check `hub_url`, `application` and `default_purpose`".to_owned(),
        )
    };
    let mut request = http::Request::builder()
        .method("GET")
        .uri(format!("{base}/v1/models"))
        .header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", token.expose_secret().trim()),
        );
    if let Some(application) = &config.application {
        request = request.header(APPLICATION_HEADER, application);
    }
    if let Some(purpose) = &config.default_purpose {
        request = request.header(PURPOSE_HEADER, purpose);
    }
    let mut request: HubRequest = request
        .body(bytes::Bytes::new())
        .map_err(|_| unusable("a header value is not valid"))?;
    workload.signer.sign(&mut request).await.map_err(|err| {
        (
            format!("cannot prove the workload's identity: {err}"),
            "run the doctor again; if it persists, check the role credentials".to_owned(),
        )
    })?;
    let request = reqwest::Request::try_from(request).map_err(|_| unusable("invalid url"))?;
    let response = http.execute(request).await.map_err(|err| {
        (
            format!(
                "cannot reach the hub at `{}`: {}",
                config.hub_url,
                describe(&err)
            ),
            "check `hub_url` and that the hub runs".to_owned(),
        )
    })?;
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

fn passed(link: Link, detail: String) -> Check {
    Check {
        link,
        status: Status::Passed(detail),
    }
}

fn skipped(link: Link, why: &str) -> Check {
    Check {
        link,
        status: Status::Skipped(why.to_owned()),
    }
}

fn failed(link: Link, problem: String, fix: &str) -> Check {
    Check {
        link,
        status: Status::Failed {
            problem,
            fix: fix.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::http::HeaderMap;
    use axum::response::IntoResponse as _;
    use axum::routing::{get, post};

    use super::*;
    use crate::identity::USER_TOKEN_HEADER;

    const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

    /// STS on `POST /`, and on `/healthz` and `/v1/models` either API Gateway with IAM authorization in
    /// front of the hub (`gateway`: only SigV4-signed calls pass, the user's token read from
    /// `x-causeway-user-token`) or a hub reached directly (the user's token read from `authorization` only).
    fn fake_aws(gateway: bool) -> Router {
        let signed = |headers: &HeaderMap| {
            let authorization = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=ASIAROLE/")
                && authorization.contains("/eu-west-2/execute-api/aws4_request")
                && authorization.contains(";x-causeway-user-token")
                    == headers.contains_key(USER_TOKEN_HEADER)
                && headers["x-amz-security-token"] == "role-session-token"
        };
        let denied = || {
            (
                StatusCode::FORBIDDEN,
                axum::Json(serde_json::json!({"message": "Missing Authentication Token"})),
            )
                .into_response()
        };
        Router::new()
            .route(
                "/",
                post(|body: String| async move {
                    let xml = if body.contains("Action=GetCallerIdentity") {
                        format!(
                            "<GetCallerIdentityResponse xmlns=\"{STS_NS}\"><GetCallerIdentityResult><Arn>arn:aws:sts::444455556666:assumed-role/causeway-agent/i-0abc</Arn><UserId>AROAAGENT:i-0abc</UserId><Account>444455556666</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
                        )
                    } else {
                        format!(
                            "<AssumeRoleResponse xmlns=\"{STS_NS}\"><AssumeRoleResult><Credentials><AccessKeyId>ASIAROLE</AccessKeyId><SecretAccessKey>role-secret</SecretAccessKey><SessionToken>role-session-token</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROAINVOKER:claims</AssumedRoleId><Arn>arn:aws:sts::111122223333:assumed-role/causeway-invoker/claims</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></AssumeRoleResponse>"
                        )
                    };
                    ([("content-type", "text/xml")], xml)
                }),
            )
            .route(
                "/healthz",
                get(move |headers: HeaderMap| async move {
                    if gateway && !signed(&headers) {
                        return denied();
                    }
                    axum::Json(serde_json::json!({"status": "ok"})).into_response()
                }),
            )
            .route(
                "/v1/models",
                get(move |headers: HeaderMap| async move {
                    let token = if gateway {
                        if !signed(&headers) {
                            return denied();
                        }
                        headers.get(USER_TOKEN_HEADER)
                    } else {
                        headers
                            .get("authorization")
                            .filter(|v| v.as_bytes().starts_with(b"Bearer "))
                    };
                    if token.is_none_or(|t| t != "Bearer user.jwt") {
                        return (
                            StatusCode::UNAUTHORIZED,
                            axum::Json(serde_json::json!({"error": {"message": "missing bearer token: send `authorization: Bearer <token>`"}})),
                        )
                            .into_response();
                    }
                    axum::Json(serde_json::json!({"data": [{"id": "claude-sonnet"}]})).into_response()
                }),
            )
    }

    /// The doctor's report in `sigv4` mode against `fake_aws(gateway)`, with the port hidden.
    async fn sigv4_doctor(gateway: bool, region: &str) -> (u8, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let text = format!(
            r#"
hub_url = "{url}"
application = "claims-triage"
default_purpose = "evaluation"

[workload_identity]
mode = "sigv4"
role_arn = "arn:aws:iam::111122223333:role/causeway-invoker"
sts_endpoint = "{url}"
region = "{region}"
"#
        );
        let config = AgentConfig::from_toml("agent.toml", &text, |_| None).unwrap();
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-2"))
            .endpoint_url(&url)
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(
                        "AKIAWORKLOAD",
                        "workload-secret",
                        None,
                        None,
                        "test",
                    ),
                ),
            )
            .build();
        let workload = Workload::from_config(&config, &sdk, "test-host").unwrap();
        assert_eq!(workload.signer.kind(), "sigv4");
        let token = SecretString::from("user.jwt".to_owned());
        let peer = async move {
            let _ = axum::serve(listener, fake_aws(gateway)).await;
        };
        let report = tokio::select! {
            biased;
            report = run(&config, &workload, Some(&token)) => report,
            () = peer => unreachable!("the fake peer stopped before the doctor finished"),
        };
        let mut out = Vec::new();
        report.write_to(&mut out).unwrap();
        let text = String::from_utf8(out)
            .unwrap()
            .replace(&port.to_string(), "PORT");
        (report.exit_code(), text)
    }

    #[tokio::test]
    async fn sigv4_doctor_signs_its_calls_and_the_gateway_accepts_them() {
        let (code, text) = sigv4_doctor(true, "eu-west-2").await;
        assert_eq!(code, 0, "{text}");
        insta::assert_snapshot!(text, @r#"
        causeway-agent doctor: hub `http://127.0.0.1:PORT`
          ok    local credentials  arn:aws:sts::444455556666:assumed-role/causeway-agent/i-0abc
          ok    assume role        arn:aws:sts::111122223333:assumed-role/causeway-invoker/claims
          ok    hub reachable      `/healthz` answered 200
          ok    identity accepted  api gateway accepted the signature of `arn:aws:iam::111122223333:role/causeway-invoker` and the hub accepted the user and the workload
          ok    authorization      purpose `evaluation`: claude-sonnet
        every link works
        "#);
    }

    #[tokio::test]
    async fn sigv4_doctor_says_a_hub_reached_directly_cannot_check_the_signature() {
        let (code, text) = sigv4_doctor(false, "eu-west-2").await;
        assert_eq!(code, 13, "{text}");
        insta::assert_snapshot!(text, @r#"
        causeway-agent doctor: hub `http://127.0.0.1:PORT`
          ok    local credentials  arn:aws:sts::444455556666:assumed-role/causeway-agent/i-0abc
          ok    assume role        arn:aws:sts::111122223333:assumed-role/causeway-invoker/claims
          ok    hub reachable      `/healthz` answered 200
          FAIL  identity accepted  the hub answered 401: missing bearer token: send `authorization: Bearer <token>`; it is not behind api gateway with iam authorization, which alone checks the signature and hands the user's token on, so this link cannot be checked here
                                   what to do: point `hub_url` at the hub's api stage url, or use `workload_identity.mode = "sts_proof"` for a hub reached directly
          --    authorization      not checked
        `identity accepted` failed (exit code 13)
        "#);
    }

    #[tokio::test]
    async fn sigv4_doctor_names_a_signature_the_gateway_refuses() {
        let (code, text) = sigv4_doctor(true, "eu-west-1").await;
        assert_eq!(code, 12, "{text}");
        insta::assert_snapshot!(text, @r#"
        causeway-agent doctor: hub `http://127.0.0.1:PORT`
          ok    local credentials  arn:aws:sts::444455556666:assumed-role/causeway-agent/i-0abc
          ok    assume role        arn:aws:sts::111122223333:assumed-role/causeway-invoker/claims
          FAIL  hub reachable      `/healthz` answered 403: Missing Authentication Token
                                   what to do: check that the hub api's resource policy allows `arn:aws:iam::111122223333:role/causeway-invoker` to call it, that `workload_identity.region` is the api's region, and that `hub_url` is the api's stage url
          --    identity accepted  not checked
          --    authorization      not checked
        `hub reachable` failed (exit code 12)
        "#);
    }

    #[test]
    fn exit_codes_are_distinct_per_link() {
        let codes: Vec<u8> = Link::ALL.iter().map(|l| l.exit_code()).collect();
        assert_eq!(codes, vec![10, 11, 12, 13, 14]);
    }

    #[test]
    fn a_report_names_the_first_failure() {
        let report = Report {
            hub_url: "http://hub".to_owned(),
            checks: vec![
                skipped(Link::LocalCredentials, "`workload_identity.mode` is `none`"),
                skipped(Link::AssumeRole, "`workload_identity.mode` is `none`"),
                failed(
                    Link::HubReachable,
                    "cannot reach the hub at `http://hub`: connection refused".to_owned(),
                    "start it",
                ),
                Check {
                    link: Link::IdentityAccepted,
                    status: Status::NotChecked,
                },
                Check {
                    link: Link::Authorization,
                    status: Status::NotChecked,
                },
            ],
        };
        assert_eq!(report.exit_code(), 12);
        let mut out = Vec::new();
        report.write_to(&mut out).unwrap();
        insta::assert_snapshot!(String::from_utf8(out).unwrap(), @r"
        causeway-agent doctor: hub `http://hub`
          skip  local credentials  `workload_identity.mode` is `none`
          skip  assume role        `workload_identity.mode` is `none`
          FAIL  hub reachable      cannot reach the hub at `http://hub`: connection refused
                                   what to do: start it
          --    identity accepted  not checked
          --    authorization      not checked
        `hub reachable` failed (exit code 12)
        ");
    }
}
