//! Signing reviewers in and keeping their sessions.
//!
//! Constraints:
//! - Session ids, CSRF tokens, OIDC `state`, `nonce` and PKCE verifiers are 256-bit random values from the
//!   system's CSPRNG; the server keeps sessions in memory, so a restart signs everyone out.
//! - A session lasts [`SESSION_TTL`]; a sign-in in progress lasts [`PENDING_TTL`] and is bound to the browser
//!   that started it by a short-lived cookie.
//! - A viewer who is in no reviewer group gets no session: the refusal says which groups are needed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::view::{self, Page};
use crate::{Console, SignIn, TokenCheck};

/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::hours(8);
/// How long a sign-in may take at the provider.
pub const PENDING_TTL: Duration = Duration::minutes(10);
/// The session cookie.
const SESSION_COOKIE: &str = "causeway_console";
/// The cookie that binds a sign-in in progress to its browser.
const PENDING_COOKIE: &str = "causeway_console_login";

/// Who is reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    /// The user (`sub`).
    pub sub: String,
    /// Who vouched for them.
    pub issuer: String,
    /// Their groups.
    pub groups: Vec<String>,
}

/// The organisation's OIDC provider.
#[derive(Debug, Clone)]
pub struct Oidc {
    /// Where the browser is sent to sign in.
    pub authorization_endpoint: String,
    /// Where the code is exchanged for tokens.
    pub token_endpoint: String,
    /// The console's client id.
    pub client_id: String,
    /// The client secret, for providers that require one with PKCE (Cognito app clients with a secret).
    pub client_secret: Option<String>,
    /// This console's callback, as registered with the provider (`https://hub.example/console/callback`).
    pub redirect_uri: String,
    /// Checks the ID token (signature, issuer, audience, expiry) and reads the viewer from it.
    pub check: Arc<dyn TokenCheck>,
    /// The HTTP client for the token exchange.
    pub http: reqwest::Client,
}

/// A signed-in reviewer, as sealed in the session cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    pub viewer: Viewer,
    pub csrf: String,
    /// Unix seconds.
    expires: i64,
}

/// A sign-in in progress at the provider, as sealed in the binding cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    state: String,
    verifier: String,
    nonce: String,
    /// Unix seconds.
    expires: i64,
}

/// Sessions and sign-ins in progress, kept by the browser in cookies sealed with the console's key
/// (AES-256-GCM): any instance holding the key can read them, so a console on several hub instances (AWS
/// Lambda's among them) signs a reviewer in once. The server keeps nothing but the sessions signed out here,
/// until they expire.
pub(crate) struct Sessions {
    key: LessSafeKey,
    /// Sessions signed out on this instance (by their CSRF token), until they expire.
    ended: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

/// The system's random number generator failed: no secret can be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct NoRandomness;

/// A 256-bit random value from the system CSPRNG, URL-safe.
///
/// # Errors
///
/// When the generator fails (then nothing that needs a secret may proceed).
pub fn random_token() -> Result<String, NoRandomness> {
    let mut bytes = [0_u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| NoRandomness)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn no_randomness() -> Response {
    tracing::error!("console: the system random number generator failed");
    view::refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in is unavailable",
        "The server could not make a secret for your session. Try again; if it persists, the host's random number generator needs attention.",
    )
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

impl Sessions {
    /// Sessions sealed with `key` (32 bytes shared by every instance), or with a random key of this process.
    pub(crate) fn new(key: Option<[u8; 32]>) -> Result<Self, NoRandomness> {
        let key = match key {
            Some(key) => key,
            None => {
                let mut key = [0_u8; 32];
                aws_lc_rs::rand::fill(&mut key).map_err(|_| NoRandomness)?;
                key
            }
        };
        let key = UnboundKey::new(&AES_256_GCM, &key).map_err(|_| NoRandomness)?;
        Ok(Self {
            key: LessSafeKey::new(key),
            ended: Mutex::default(),
        })
    }

    /// `value` as JSON, sealed under a fresh nonce, with `purpose` bound as associated data.
    fn seal<T: Serialize>(&self, purpose: &str, value: &T) -> Result<String, NoRandomness> {
        let mut nonce = [0_u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| NoRandomness)?;
        let mut sealed = serde_json::to_vec(value).map_err(|_| NoRandomness)?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| NoRandomness)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// What `seal` sealed for `purpose`, if the value is intact and was sealed with this key.
    fn open<T: for<'de> Deserialize<'de>>(&self, purpose: &str, value: &str) -> Option<T> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(
                Nonce::try_assume_unique_for_key(nonce).ok()?,
                Aad::from(purpose.as_bytes()),
                &mut sealed,
            )
            .ok()?;
        serde_json::from_slice(plain).ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The live session of this request, if any.
    pub(crate) fn current(&self, headers: &HeaderMap) -> Option<Session> {
        let session: Session = self.open(SESSION_COOKIE, &cookie(headers, SESSION_COOKIE)?)?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut ended = self.lock();
        ended.retain(|_, expires| *expires > now);
        (session.expires > now && !ended.contains_key(&session.csrf)).then_some(session)
    }

    fn start(&self, viewer: Viewer) -> Result<String, NoRandomness> {
        self.seal(
            SESSION_COOKIE,
            &Session {
                viewer,
                csrf: random_token()?,
                expires: (OffsetDateTime::now_utc() + SESSION_TTL).unix_timestamp(),
            },
        )
    }

    fn end(&self, session: &Session) {
        self.lock().insert(session.csrf.clone(), session.expires);
    }
}

fn session_cookie(console: &Console, value: &str, max_age: i64) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if console.config.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    )
}

/// Signs `viewer` in when they are a reviewer: the session cookie and a redirect to `to`.
fn signed_in(console: &Console, viewer: Viewer, to: &str) -> Response {
    if !viewer
        .groups
        .iter()
        .any(|g| console.config.reviewer_groups.contains(g))
    {
        return view::refusal(
            StatusCode::FORBIDDEN,
            "Not a reviewer",
            &format!(
                "You are signed in as {}, who is not in a reviewer group ({}). Ask the console's administrator to add you to one.",
                viewer.sub,
                console.config.reviewer_groups.join(", ")
            ),
        );
    }
    tracing::info!(user = %viewer.sub, "console sign-in");
    let Ok(id) = console.sessions.start(viewer) else {
        return no_randomness();
    };
    (
        [(
            header::SET_COOKIE,
            session_cookie(console, &id, SESSION_TTL.whole_seconds()),
        )],
        Redirect::to(to),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    token: Option<String>,
}

/// `GET /console/login`: the link's sign-in, the development form, or a redirect to the OIDC provider.
pub(crate) async fn login(
    State(console): State<Arc<Console>>,
    Query(query): Query<LoginQuery>,
) -> Response {
    match &console.sign_in {
        SignIn::Link { token } => match query.token {
            Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => signed_in(
                &console,
                Viewer {
                    sub: "local-reviewer".to_owned(),
                    issuer: "causeway-console".to_owned(),
                    groups: console.config.reviewer_groups.clone(),
                },
                "/console",
            ),
            _ => view::refusal(
                StatusCode::UNAUTHORIZED,
                "Sign-in link needed",
                "Open the console with the link `causeway console` printed when it started; it carries the sign-in token.",
            ),
        },
        SignIn::Development => Page::public("Development sign-in")
            .body(view::development_login(&console.config.reviewer_groups))
            .into_response(),
        SignIn::Oidc(oidc) => {
            let (Ok(state), Ok(verifier), Ok(nonce)) =
                (random_token(), random_token(), random_token())
            else {
                return no_randomness();
            };
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            let Ok(binding) = console.sessions.seal(
                PENDING_COOKIE,
                &Pending {
                    state: state.clone(),
                    verifier,
                    nonce: nonce.clone(),
                    expires: (OffsetDateTime::now_utc() + PENDING_TTL).unix_timestamp(),
                },
            ) else {
                return no_randomness();
            };
            let mut url = match reqwest::Url::parse(&oidc.authorization_endpoint) {
                Ok(url) => url,
                Err(e) => {
                    return view::refusal(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Sign-in is misconfigured",
                        &format!(
                            "The provider's authorization endpoint is not a URL ({e}); fix `console.oidc.authorization_endpoint`."
                        ),
                    );
                }
            };
            url.query_pairs_mut()
                .append_pair("response_type", "code")
                .append_pair("client_id", &oidc.client_id)
                .append_pair("redirect_uri", &oidc.redirect_uri)
                .append_pair("scope", "openid email profile")
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            // Lax, so the provider's redirect back carries it.
            let binding = format!(
                "{PENDING_COOKIE}={binding}; Path=/console; HttpOnly; SameSite=Lax; Max-Age={}{}",
                PENDING_TTL.whole_seconds(),
                if console.config.secure_cookies {
                    "; Secure"
                } else {
                    ""
                }
            );
            ([(header::SET_COOKIE, binding)], Redirect::to(url.as_str())).into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct DevelopmentLogin {
    user: String,
    groups: String,
}

/// `POST /console/login`: the development sign-in form.
pub(crate) async fn login_form(
    State(console): State<Arc<Console>>,
    Form(form): Form<DevelopmentLogin>,
) -> Response {
    if !matches!(console.sign_in, SignIn::Development) {
        return view::refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            "Not here",
            "This console signs in through its identity provider: open /console/login.",
        );
    }
    let user = form.user.trim();
    if user.is_empty() || user.len() > 128 || user.chars().any(char::is_control) {
        return view::refusal(
            StatusCode::BAD_REQUEST,
            "A user is needed",
            "Name the user to sign in as (1 to 128 printable characters).",
        );
    }
    let groups = form
        .groups
        .split([',', ' '])
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    signed_in(
        &console,
        Viewer {
            sub: user.to_owned(),
            issuer: "causeway-dev".to_owned(),
            groups,
        },
        "/console",
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

/// `GET /console/callback`: the provider's redirect back with a code, exchanged with the PKCE verifier.
pub(crate) async fn callback(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(query): Query<Callback>,
) -> Response {
    let SignIn::Oidc(oidc) = &console.sign_in else {
        return view::refusal(
            StatusCode::NOT_FOUND,
            "Not here",
            "This console does not sign in through an identity provider.",
        );
    };
    let again = "Sign in again from /console/login.";
    if let Some(error) = query.error {
        let error: String = error
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        return view::refusal(
            StatusCode::UNAUTHORIZED,
            "The identity provider refused the sign-in",
            &format!("It answered `{error}`. {again}"),
        );
    }
    let (Some(code), Some(state)) = (query.code, query.state) else {
        return view::refusal(
            StatusCode::BAD_REQUEST,
            "Incomplete sign-in",
            &format!("The provider's answer has no code or state. {again}"),
        );
    };
    let pending: Option<Pending> = cookie(&headers, PENDING_COOKIE)
        .and_then(|sealed| console.sessions.open(PENDING_COOKIE, &sealed));
    let Some(pending) = pending.filter(|p| {
        p.expires > OffsetDateTime::now_utc().unix_timestamp()
            && constant_time_eq(p.state.as_bytes(), state.as_bytes())
    }) else {
        return view::refusal(
            StatusCode::UNAUTHORIZED,
            "Sign-in expired or started elsewhere",
            &format!(
                "This answer does not belong to a sign-in this browser started in the last ten minutes. {again}"
            ),
        );
    };
    let mut request = oidc.http.post(&oidc.token_endpoint).form(&[
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", oidc.redirect_uri.as_str()),
        ("client_id", oidc.client_id.as_str()),
        ("code_verifier", pending.verifier.as_str()),
    ]);
    if let Some(secret) = &oidc.client_secret {
        request = request.basic_auth(&oidc.client_id, Some(secret));
    }
    let tokens: Result<TokenResponse, String> = async {
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the token endpoint answered {status}"));
        }
        response.json().await.map_err(|e| e.to_string())
    }
    .await;
    let id_token = match tokens {
        Ok(TokenResponse {
            id_token: Some(token),
        }) => token,
        Ok(_) => {
            return view::refusal(
                StatusCode::BAD_GATEWAY,
                "No ID token",
                &format!(
                    "The provider answered without an ID token; the console's client needs the `openid` scope. {again}"
                ),
            );
        }
        Err(why) => {
            tracing::warn!(error = %why, "console sign-in: code exchange failed");
            return view::refusal(
                StatusCode::BAD_GATEWAY,
                "The code exchange failed",
                &format!(
                    "The identity provider's token endpoint could not be used ({why}). {again}"
                ),
            );
        }
    };
    if token_nonce(&id_token).as_deref() != Some(pending.nonce.as_str()) {
        return view::refusal(
            StatusCode::UNAUTHORIZED,
            "The ID token is not for this sign-in",
            &format!("Its nonce does not match the one this sign-in sent. {again}"),
        );
    }
    match oidc.check.viewer(&id_token).await {
        Ok(viewer) => {
            let mut response = signed_in(&console, viewer, "/console");
            if let Ok(clear) = format!("{PENDING_COOKIE}=; Path=/console; Max-Age=0").parse() {
                response.headers_mut().append(header::SET_COOKIE, clear);
            }
            response
        }
        Err(why) => view::refusal(
            StatusCode::UNAUTHORIZED,
            "The ID token was refused",
            &format!("{why}. {again}"),
        ),
    }
}

/// The `nonce` claim of a JWT, read without checking it (the check that follows verifies the signature).
fn token_nonce(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("nonce")?.as_str().map(str::to_owned)
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    pub csrf: String,
}

/// `POST /console/logout`.
pub(crate) async fn logout(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(session) = console.sessions.current(&headers) {
        if let Err(refused) = check_csrf(&session, &form.csrf) {
            return *refused;
        }
        console.sessions.end(&session);
    }
    (
        [(header::SET_COOKIE, session_cookie(&console, "", 0))],
        Redirect::to("/console/login"),
    )
        .into_response()
}

/// Refuses a form whose CSRF token is not its session's.
pub(crate) fn check_csrf(session: &Session, given: &str) -> Result<(), Box<Response>> {
    if constant_time_eq(given.as_bytes(), session.csrf.as_bytes()) {
        Ok(())
    } else {
        Err(Box::new(view::refusal(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form does not belong to your session (it may be from before you signed in again). Reload the page and submit it again.",
        )))
    }
}

/// Compares secrets in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nonce_is_read_from_the_token_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"a","nonce":"n-1"}"#);
        assert_eq!(
            token_nonce(&format!("h.{payload}.s")).as_deref(),
            Some("n-1")
        );
        assert_eq!(token_nonce("not a token"), None);
    }

    fn headers_with(name: &str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("other=1; {name}={value}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn a_sealed_session_opens_only_intact_unexpired_unended_and_under_its_key() {
        let key = [7_u8; 32];
        let sessions = Sessions::new(Some(key)).unwrap();
        let viewer = Viewer {
            sub: "rita".into(),
            issuer: "idp".into(),
            groups: vec!["compliance".into()],
        };
        let sealed = sessions.start(viewer.clone()).unwrap();
        let session = sessions
            .current(&headers_with(SESSION_COOKIE, &sealed))
            .unwrap();
        assert_eq!(session.viewer, viewer);

        // Another instance with the same key reads it; one with another key does not.
        let same = Sessions::new(Some(key)).unwrap();
        assert!(
            same.current(&headers_with(SESSION_COOKIE, &sealed))
                .is_some()
        );
        let other = Sessions::new(Some([8_u8; 32])).unwrap();
        assert!(
            other
                .current(&headers_with(SESSION_COOKIE, &sealed))
                .is_none()
        );

        // A changed byte, a sign-in binding used as a session, an expired session: nothing.
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(bytes);
        assert!(
            sessions
                .current(&headers_with(SESSION_COOKIE, &tampered))
                .is_none()
        );
        let pending = sessions
            .seal(
                PENDING_COOKIE,
                &Session {
                    viewer: viewer.clone(),
                    csrf: "c".into(),
                    expires: i64::MAX,
                },
            )
            .unwrap();
        assert!(
            sessions
                .current(&headers_with(SESSION_COOKIE, &pending))
                .is_none()
        );
        let expired = sessions
            .seal(
                SESSION_COOKIE,
                &Session {
                    viewer,
                    csrf: "c".into(),
                    expires: OffsetDateTime::now_utc().unix_timestamp() - 1,
                },
            )
            .unwrap();
        assert!(
            sessions
                .current(&headers_with(SESSION_COOKIE, &expired))
                .is_none()
        );

        // Signed out here: refused here from then on.
        sessions.end(&session);
        assert!(
            sessions
                .current(&headers_with(SESSION_COOKIE, &sealed))
                .is_none()
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_ne!(random_token().unwrap(), random_token().unwrap());
        assert_eq!(random_token().unwrap().len(), 43);
    }
}
