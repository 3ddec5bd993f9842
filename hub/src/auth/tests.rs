//! Token verification against an RS256 issuer whose JWKS is served over HTTP on 127.0.0.1: every way a token
//! can be wrong is refused with its own reason (a 401 at the boundary), keys rotate by `kid`, and unknown key
//! ids cannot make the hub hammer the issuer, whether it answers or fails.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::jwt::{JwtVerifier, KeySource};
use crate::error::HubError;

const ISSUER: &str = "https://idp.example.test/pool";
const AUDIENCE: &str = "causeway-api";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// An issuer's RSA signing key.
struct RsaKey {
    pair: RsaKeyPair,
    kid: String,
}

impl RsaKey {
    fn generate(kid: &str) -> Self {
        Self {
            pair: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
            kid: kid.to_owned(),
        }
    }

    fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// The public key as DER, the bytes an attacker would try as an HMAC secret.
    fn public_der(&self) -> Vec<u8> {
        self.pair.public_key().as_der().unwrap().as_ref().to_vec()
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .unwrap();
        format!("{input}.{}", b64(&signature))
    }

    fn token(&self, claims: &Value) -> String {
        self.token_as(&self.kid, claims)
    }

    /// A token whose header names `kid`, whatever this key's own id.
    fn token_as(&self, kid: &str, claims: &Value) -> String {
        self.sign(&json!({"alg": "RS256", "typ": "JWT", "kid": kid}), claims)
    }
}

fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice",
        "iat": now(), "nbf": now(), "exp": now() + 600,
        "groups": ["analysts"],
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

/// A JWKS endpoint on 127.0.0.1 that counts its fetches, and can be made slow or failing.
#[derive(Clone)]
struct Issuer {
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
}

async fn jwks_show(State(issuer): State<Issuer>) -> Result<Json<Value>, StatusCode> {
    issuer.fetches.fetch_add(1, Ordering::SeqCst);
    let delay = issuer.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if issuer.failing.load(Ordering::SeqCst) {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    let keys = issuer.keys.lock().unwrap().clone();
    Ok(Json(json!({ "keys": keys })))
}

impl Issuer {
    /// Serves `keys` and returns the issuer and its JWKS URL.
    async fn serve(keys: Vec<Value>) -> (Self, String) {
        let issuer = Self {
            keys: Arc::new(Mutex::new(keys)),
            fetches: Arc::new(AtomicUsize::new(0)),
            failing: Arc::new(AtomicBool::new(false)),
            delay_ms: Arc::new(AtomicU64::new(0)),
        };
        let app = Router::new()
            .route("/.well-known/jwks.json", get(jwks_show))
            .with_state(issuer.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        crate::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (issuer, format!("http://{addr}/.well-known/jwks.json"))
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn publish(&self, jwk: Value) {
        self.keys.lock().unwrap().push(jwk);
    }

    /// Answers every fetch with a 503 (`true`) or the keys (`false`).
    fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Holds every answer for `delay`, so concurrent fetches would overlap.
    fn slow_down(&self, delay: Duration) {
        self.delay_ms
            .store(u64::try_from(delay.as_millis()).unwrap(), Ordering::SeqCst);
    }
}

fn verifier(url: &str, interval: Duration) -> JwtVerifier {
    JwtVerifier::new(
        ISSUER.into(),
        AUDIENCE.into(),
        30,
        "groups".into(),
        KeySource::Url(url.to_owned()),
    )
    .with_refresh_interval(interval)
}

/// The message and the HTTP status a refusal becomes at the boundary.
async fn refusal(v: &JwtVerifier, token: &str) -> (u16, String) {
    let err = v.verify(token).await.unwrap_err();
    let message = err.to_string();
    (HubError::from(err).status_code().as_u16(), message)
}

#[tokio::test]
async fn a_valid_rs256_token_from_a_jwks_url_is_accepted() {
    let key = RsaKey::generate("key-1");
    let (issuer, url) = Issuer::serve(vec![key.jwk()]).await;
    let v = verifier(&url, Duration::from_secs(3600));
    v.refresh().await.unwrap();

    let user = v.verify(&key.token(&claims())).await.unwrap();
    assert_eq!(user.sub, "alice");
    assert_eq!(user.issuer, ISSUER);
    assert_eq!(user.groups, vec!["analysts".to_owned()]);

    // A Cognito access token: no `aud`, the app client in `client_id`, groups in `cognito:groups`.
    let mut cognito = claims();
    cognito.as_object_mut().unwrap().remove("aud");
    cognito.as_object_mut().unwrap().remove("groups");
    cognito["client_id"] = json!(AUDIENCE);
    cognito["cognito:groups"] = json!(["engineers", "analysts"]);
    let user = v.verify(&key.token(&cognito)).await.unwrap();
    assert_eq!(
        user.groups,
        vec!["analysts".to_owned(), "engineers".to_owned()]
    );
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn every_bad_token_is_refused_with_its_reason() {
    let key = RsaKey::generate("key-1");
    let stranger = RsaKey::generate("key-unknown");
    let (_issuer, url) = Issuer::serve(vec![key.jwk()]).await;
    let v = verifier(&url, Duration::from_secs(3600));
    v.refresh().await.unwrap();

    let valid = key.token(&claims());
    let mut parts: Vec<&str> = valid.split('.').collect();
    let forged_claims = b64(with(claims(), "sub", json!("mallory"))
        .to_string()
        .as_bytes());
    parts[1] = &forged_claims;
    let tampered = parts.join(".");

    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "kid": key.kid})
            .to_string()
            .as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    // HS256 with the issuer's public key as the HMAC secret: the classic algorithm-confusion forgery.
    let hs_input = format!(
        "{}.{}",
        b64(json!({"alg": "HS256", "kid": key.kid})
            .to_string()
            .as_bytes()),
        b64(claims().to_string().as_bytes())
    );
    let hmac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key.public_der());
    let hs_tag = aws_lc_rs::hmac::sign(&hmac_key, hs_input.as_bytes());
    let hs256 = format!("{hs_input}.{}", b64(hs_tag.as_ref()));

    let cases = [
        (
            "expired",
            key.token(&with(claims(), "exp", json!(now() - 3600))),
            "invalid token: the token has expired (`exp`)",
        ),
        (
            "not yet valid",
            key.token(&with(claims(), "nbf", json!(now() + 3600))),
            "invalid token: the token is not valid yet (`nbf`)",
        ),
        (
            "wrong issuer",
            key.token(&with(claims(), "iss", json!("https://evil.example.test"))),
            "invalid token: the token was issued by an issuer this hub does not trust (`iss`)",
        ),
        (
            "wrong audience",
            key.token(&with(claims(), "aud", json!("another-app"))),
            "invalid token: the token is not for this audience",
        ),
        (
            "unknown kid",
            stranger.token(&claims()),
            "invalid token: signed by an unknown key",
        ),
        (
            "alg none",
            none,
            "invalid token: the token's algorithm `none` is not accepted (only RS256 and ES256)",
        ),
        (
            "hs256 with the public key",
            hs256,
            "invalid token: the token's algorithm `HS256` is not accepted (only RS256 and ES256)",
        ),
        (
            "tampered payload",
            tampered,
            "invalid token: the signature does not verify",
        ),
        (
            "not a jwt",
            "not-a-token".to_owned(),
            "invalid token: the token is not a well-formed JWT",
        ),
    ];
    for (name, token, expected) in cases {
        let (status, message) = refusal(&v, &token).await;
        assert_eq!(status, 401, "{name}");
        assert_eq!(message, expected, "{name}");
    }
    // The untampered token still verifies: the refusals above are about the tokens, not the keys.
    assert_eq!(v.verify(&valid).await.unwrap().sub, "alice");
}

#[tokio::test]
async fn a_rotated_key_is_fetched_by_its_kid() {
    let old = RsaKey::generate("2026-10");
    let (issuer, url) = Issuer::serve(vec![old.jwk()]).await;
    let v = verifier(&url, Duration::ZERO);
    v.refresh().await.unwrap();
    assert_eq!(issuer.fetches(), 1);

    // The issuer publishes a new key and starts signing with it.
    let new = RsaKey::generate("2026-11");
    issuer.publish(new.jwk());
    assert_eq!(v.verify(&new.token(&claims())).await.unwrap().sub, "alice");
    assert_eq!(issuer.fetches(), 2);
    // Known keys are served from the cache.
    v.verify(&old.token(&claims())).await.unwrap();
    v.verify(&new.token(&claims())).await.unwrap();
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let key = RsaKey::generate("key-1");
    let (issuer, url) = Issuer::serve(vec![key.jwk()]).await;
    let v = verifier(&url, Duration::from_secs(3600));

    // Nothing fetched yet: the first unknown kid loads the keys once.
    let stranger = RsaKey::generate("flood");
    let (status, _) = refusal(&v, &stranger.token_as("flood-0", &claims())).await;
    assert_eq!(status, 401);
    assert_eq!(issuer.fetches(), 1);

    // A flood of unknown kids within the interval fetches nothing more.
    for i in 1..20 {
        let (status, message) =
            refusal(&v, &stranger.token_as(&format!("flood-{i}"), &claims())).await;
        assert_eq!(status, 401);
        assert_eq!(message, "invalid token: signed by an unknown key");
    }
    assert_eq!(issuer.fetches(), 1);

    // Even a key the issuer has meanwhile published waits for the interval.
    let rotated = RsaKey::generate("key-2");
    issuer.publish(rotated.jwk());
    assert!(v.verify(&rotated.token(&claims())).await.is_err());
    assert_eq!(issuer.fetches(), 1);
    // The known key keeps working throughout.
    assert!(v.verify(&key.token(&claims())).await.is_ok());
}

#[tokio::test]
async fn a_burst_of_tokens_with_a_new_kid_fetches_the_jwks_once() {
    let old = RsaKey::generate("2026-10");
    let (issuer, url) = Issuer::serve(vec![old.jwk()]).await;
    // No least interval: only single-flight stands between the burst and the issuer.
    let v = verifier(&url, Duration::ZERO);
    v.refresh().await.unwrap();
    assert_eq!(issuer.fetches(), 1);

    // The issuer rotates; 16 requests signed with the new key arrive while its JWKS is slow to answer.
    let new = RsaKey::generate("2026-11");
    issuer.publish(new.jwk());
    issuer.slow_down(Duration::from_millis(200));
    let tokens: Vec<String> = (0..16)
        .map(|i| new.token(&with(claims(), "sub", json!(format!("user-{i}")))))
        .collect();
    let users = futures::future::join_all(tokens.iter().map(|t| v.verify(t))).await;
    // One fetch served them all: the others waited for it and took its keys.
    assert_eq!(issuer.fetches(), 2);
    for (i, user) in users.into_iter().enumerate() {
        assert_eq!(user.unwrap().sub, format!("user-{i}"));
    }
}

#[tokio::test]
async fn an_issuer_that_is_down_is_not_hammered_by_unknown_kids() {
    let key = RsaKey::generate("key-1");
    let (issuer, url) = Issuer::serve(vec![key.jwk()]).await;
    let v = verifier(&url, Duration::ZERO);
    v.refresh().await.unwrap();
    issuer.fail(true);
    let stranger = RsaKey::generate("flood");
    let unknown = |i: usize| stranger.token_as(&format!("flood-{i}"), &claims());

    // The first unknown kid tries once; the failure is the hub's (the issuer is down), not the caller's.
    let (status, _) = refusal(&v, &unknown(0)).await;
    assert_eq!(status, 500);
    assert_eq!(issuer.fetches(), 2);
    // Within the backoff after that failure, unknown kids (one after another, or all at once) fetch nothing.
    for i in 1..10 {
        let (status, message) = refusal(&v, &unknown(i)).await;
        assert_eq!(status, 401);
        assert_eq!(message, "invalid token: signed by an unknown key");
    }
    let burst: Vec<String> = (10..26).map(unknown).collect();
    for result in futures::future::join_all(burst.iter().map(|t| v.verify(t))).await {
        assert_eq!(
            result.unwrap_err().to_string(),
            "invalid token: signed by an unknown key"
        );
    }
    assert_eq!(issuer.fetches(), 2);
    // The known key keeps working throughout.
    assert!(v.verify(&key.token(&claims())).await.is_ok());

    // After the backoff (1 s) one more attempt; it fails too, and the next wait is longer (2 s).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(refusal(&v, &unknown(26)).await.0, 500);
    assert_eq!(issuer.fetches(), 3);
    assert_eq!(refusal(&v, &unknown(27)).await.0, 401);
    assert_eq!(issuer.fetches(), 3);

    // The issuer recovers with a rotated key: once the backoff is over, one fetch brings it in.
    issuer.fail(false);
    let rotated = RsaKey::generate("key-2");
    issuer.publish(rotated.jwk());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        v.verify(&rotated.token(&claims())).await.unwrap().sub,
        "alice"
    );
    assert_eq!(issuer.fetches(), 4);
}

#[test]
fn the_user_token_header_is_read_only_for_a_verified_iam_call() {
    use axum::http::{HeaderMap, HeaderValue};

    use super::{AuthError, USER_TOKEN_HEADER, user_token};

    let headers = |pairs: &[(&'static str, &str)]| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    };
    let sigv4 = "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261121/eu-west-2/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";

    let bare = headers(&[("authorization", sigv4), (USER_TOKEN_HEADER, "h.p.s")]);
    assert_eq!(user_token(&bare, true).unwrap(), "h.p.s");
    let prefixed = headers(&[(USER_TOKEN_HEADER, "Bearer  h.p.s ")]);
    assert_eq!(user_token(&prefixed, true).unwrap(), "h.p.s");

    // Without a verified IAM caller the header means nothing.
    assert!(matches!(
        user_token(&bare, false),
        Err(AuthError::Malformed)
    ));
    assert!(matches!(
        user_token(&prefixed, false),
        Err(AuthError::Missing)
    ));

    // With one, `authorization` holds the signature and is never read as the user's token.
    let only_bearer = headers(&[("authorization", "Bearer h.p.s")]);
    let err = user_token(&only_bearer, true).unwrap_err();
    assert!(matches!(err, AuthError::MissingUserToken));
    assert_eq!(
        err.to_string(),
        "missing user token: with iam authorization `authorization` carries the aws signature, so send the user's token in `x-causeway-user-token`"
    );
    assert_eq!(HubError::from(err).status_code().as_u16(), 401);
    for bad in ["", "Bearer ", "Basic abc", "a b"] {
        let err = user_token(&headers(&[(USER_TOKEN_HEADER, bad)]), true).unwrap_err();
        assert!(matches!(err, AuthError::MalformedUserToken), "{bad}: {err}");
    }
}
