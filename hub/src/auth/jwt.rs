//! OIDC JWT verification against a JWKS.
//!
//! Constraints:
//! - The algorithm comes from the key, never from the token: a key is used only with the algorithm its JWK
//!   declares (or that its type implies), and only RS256 and ES256 are accepted. `none` and HMAC never
//!   verify.
//! - `iss`, `aud`, `exp` and `nbf` are checked, with a small leeway for clock skew. Cognito access tokens,
//!   which carry `client_id` instead of `aud`, are accepted when `client_id` equals the audience.
//! - A JWKS fetched from a URL is cached. A token with an unknown `kid` may trigger a refetch, single-flight:
//!   one fetch at a time, and the tokens that arrive meanwhile wait for it and use its result. Every attempt
//!   is timed, failed or not, and the next may start only [`REFRESH_INTERVAL`] after it; after consecutive
//!   failures that wait doubles up to [`MAX_REFRESH_BACKOFF`]. So key rotation works, and neither a flood of
//!   bad tokens nor an issuer that is down makes the hub hammer the issuer.
//! - A token that verified is remembered by its SHA-256 for at most [`VERIFIED_TTL`] and never past its
//!   `exp` (plus the leeway), so a client's repeated calls with one token skip the signature check. Only
//!   successes are remembered, keyed by the whole token (any change is a different key), at most
//!   [`VERIFIED_CAPACITY`] of them; reloading the keys forgets them all, so a key removed from the JWKS stops
//!   being honoured at the next reload.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{AuthError, UserIdentity};

/// Least time between two JWKS fetch attempts caused by unknown key ids.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// Least wait after a failed fetch, when the refresh interval is shorter.
pub const MIN_REFRESH_BACKOFF: Duration = Duration::from_secs(1);

/// Longest wait between fetch attempts while the issuer keeps failing.
pub const MAX_REFRESH_BACKOFF: Duration = Duration::from_secs(300);

/// Longest time a verified token is remembered (never past its `exp`).
pub const VERIFIED_TTL: Duration = Duration::from_secs(60);

/// Most verified tokens remembered at once.
pub const VERIFIED_CAPACITY: usize = 10_000;

/// A token that verified, and until when (unix seconds) it may be taken without verifying again.
#[derive(Debug, Clone)]
struct Verified {
    identity: UserIdentity,
    until: i64,
}

/// Where the trusted keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Fixed keys (a JWKS file, or the development key).
    Static(JwkSet),
    /// A JWKS file re-read on unknown `kid`.
    File(PathBuf),
    /// A JWKS URL fetched at start and on unknown `kid`.
    Url(String),
}

#[derive(Debug)]
struct KeyCache {
    keys: JwkSet,
    /// Counts the key sets loaded, so a caller that waited for a fetch can tell whether it brought new keys.
    generation: u64,
}

/// The state of fetches, held by the one fetch in flight.
#[derive(Debug, Default)]
struct Refresher {
    /// When the last attempt started, whether it succeeded or not.
    attempted: Option<Instant>,
    /// Failed attempts since the last success.
    failures: u32,
}

impl Refresher {
    /// How long after the last attempt the next one may start.
    fn wait(&self, interval: Duration) -> Duration {
        if self.failures == 0 {
            return interval;
        }
        let doubled = interval
            .max(MIN_REFRESH_BACKOFF)
            .saturating_mul(2_u32.saturating_pow(self.failures - 1));
        doubled.min(MAX_REFRESH_BACKOFF)
    }

    /// Whether an attempt may start at `now`.
    fn may_attempt(&self, now: Instant, interval: Duration) -> bool {
        self.attempted
            .is_none_or(|at| now.saturating_duration_since(at) >= self.wait(interval))
    }
}

/// Verifies bearer tokens from one issuer.
#[derive(Debug)]
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    leeway_secs: u64,
    groups_claim: String,
    source: KeySource,
    cache: RwLock<KeyCache>,
    refresher: tokio::sync::Mutex<Refresher>,
    refresh_interval: Duration,
    /// Built on the first fetch of a URL key set, not at start-up: loading the platform's CA certificates
    /// is a noticeable share of a cold start, and static and file key sets never need it.
    http: std::sync::OnceLock<Result<reqwest::Client, String>>,
    verified: Mutex<HashMap<[u8; 32], Verified>>,
}

/// A clear, lowercase reason for a token that failed the library's checks. Never contains the token.
fn rejection(err: &jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind;
    let reason = match err.kind() {
        ErrorKind::ExpiredSignature => "the token has expired (`exp`)".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (`nbf`)".to_owned(),
        ErrorKind::InvalidIssuer => {
            "the token was issued by an issuer this hub does not trust (`iss`)".to_owned()
        }
        ErrorKind::InvalidAudience => "the token is not for this audience".to_owned(),
        ErrorKind::InvalidSignature => "the signature does not verify".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the `{claim}` claim is malformed"),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm => {
            "the token's algorithm is not accepted (only RS256 and ES256)".to_owned()
        }
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "the token is not a well-formed JWT".to_owned(),
        _ => "the token cannot be verified".to_owned(),
    };
    AuthError::Invalid(reason)
}

/// The algorithm a key may be used with.
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    match (&jwk.common.key_algorithm, &jwk.algorithm) {
        (Some(KeyAlgorithm::RS256), AlgorithmParameters::RSA(_)) => Some(Algorithm::RS256),
        (Some(KeyAlgorithm::ES256), AlgorithmParameters::EllipticCurve(p))
            if p.curve == EllipticCurve::P256 =>
        {
            Some(Algorithm::ES256)
        }
        (None, AlgorithmParameters::RSA(_)) => Some(Algorithm::RS256),
        (None, AlgorithmParameters::EllipticCurve(p)) if p.curve == EllipticCurve::P256 => {
            Some(Algorithm::ES256)
        }
        _ => None,
    }
}

impl JwtVerifier {
    /// A verifier for `issuer` and `audience` with keys from `source`. URL and file sources are loaded on first
    /// use; call [`JwtVerifier::refresh`] at start-up to fail fast.
    pub fn new(
        issuer: String,
        audience: String,
        leeway_secs: u64,
        groups_claim: String,
        source: KeySource,
    ) -> Self {
        let keys = match &source {
            KeySource::Static(keys) => keys.clone(),
            KeySource::File(_) | KeySource::Url(_) => JwkSet { keys: Vec::new() },
        };
        Self {
            issuer,
            audience,
            leeway_secs,
            groups_claim,
            source,
            cache: RwLock::new(KeyCache {
                keys,
                generation: 0,
            }),
            refresher: tokio::sync::Mutex::new(Refresher::default()),
            refresh_interval: REFRESH_INTERVAL,
            http: std::sync::OnceLock::new(),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Changes the least time between two fetch attempts caused by unknown key ids (default
    /// [`REFRESH_INTERVAL`]); after failures the wait doubles from it (at least [`MIN_REFRESH_BACKOFF`]) up to
    /// [`MAX_REFRESH_BACKOFF`].
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// The issuer this verifier trusts.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Reloads the keys from the source now (at start-up, to fail fast), waiting for a fetch already in
    /// flight. The attempt counts for the refetch interval and backoff like any other.
    pub async fn refresh(&self) -> Result<(), AuthError> {
        if matches!(self.source, KeySource::Static(_)) {
            return Ok(());
        }
        let mut refresher = self.refresher.lock().await;
        self.fetch(&mut refresher).await
    }

    /// Refetches the keys for a token whose key was not in the set of generation `seen`: single-flight, so
    /// a caller that waited for another's fetch takes its result, and no attempt starts before the interval
    /// (or the backoff after failures) since the last one has passed.
    async fn refresh_for_unknown_key(&self, seen: u64) -> Result<(), AuthError> {
        if matches!(self.source, KeySource::Static(_)) {
            return Ok(());
        }
        let mut refresher = self.refresher.lock().await;
        if self.generation() != seen
            || !refresher.may_attempt(Instant::now(), self.refresh_interval)
        {
            return Ok(());
        }
        self.fetch(&mut refresher).await
    }

    /// One fetch, with the refresher held: records the attempt, and the keys or the failure.
    async fn fetch(&self, refresher: &mut Refresher) -> Result<(), AuthError> {
        refresher.attempted = Some(Instant::now());
        match self.load().await {
            Ok(keys) => {
                refresher.failures = 0;
                if let Ok(mut cache) = self.cache.write() {
                    cache.keys = keys;
                    cache.generation = cache.generation.wrapping_add(1);
                }
                if let Ok(mut verified) = self.verified.lock() {
                    verified.clear();
                }
                Ok(())
            }
            Err(err) => {
                refresher.failures = refresher.failures.saturating_add(1);
                tracing::warn!(
                    error = %err,
                    failures = refresher.failures,
                    retry_after_secs = refresher.wait(self.refresh_interval).as_secs(),
                    "cannot refresh the issuer's signing keys"
                );
                Err(err)
            }
        }
    }

    /// Reads the key set from the source.
    async fn load(&self) -> Result<JwkSet, AuthError> {
        match &self.source {
            KeySource::Static(keys) => Ok(keys.clone()),
            KeySource::File(path) => {
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| AuthError::Keys(format!("`{}`: {e}", path.display())))?;
                serde_json::from_str::<JwkSet>(&text).map_err(|e| {
                    AuthError::Keys(format!("`{}` is not a JWKS: {e}", path.display()))
                })
            }
            KeySource::Url(url) => {
                let response = self
                    .http()?
                    .get(url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| AuthError::Keys(format!("`{url}`: {e}")))?;
                response
                    .json::<JwkSet>()
                    .await
                    .map_err(|e| AuthError::Keys(format!("`{url}` is not a JWKS: {e}")))
            }
        }
    }

    /// The client that fetches URL key sets, built on first use.
    fn http(&self) -> Result<&reqwest::Client, AuthError> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| format!("cannot build the key set client: {e}"))
            })
            .as_ref()
            .map_err(|e| AuthError::Keys(e.clone()))
    }

    fn generation(&self) -> u64 {
        self.cache.read().map_or(0, |c| c.generation)
    }

    /// The key for `kid`, and the generation of the key set it was looked up in.
    fn find_key(&self, kid: Option<&str>) -> (Option<Jwk>, u64) {
        let Ok(cache) = self.cache.read() else {
            return (None, 0);
        };
        let key = match kid {
            Some(kid) => cache.keys.find(kid).cloned(),
            // Without a kid, only an unambiguous single key is acceptable.
            None if cache.keys.keys.len() == 1 => cache.keys.keys.first().cloned(),
            None => None,
        };
        (key, cache.generation)
    }

    /// Verifies a token and returns the user it names.
    pub async fn verify(&self, token: &str) -> Result<UserIdentity, AuthError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(identity) = self.remembered(&key, now) {
            return Ok(identity);
        }
        let (identity, exp) = self.verify_fully(token).await?;
        self.remember(key, identity.clone(), exp, now);
        Ok(identity)
    }

    /// The identity of a token that verified before, if it may still be taken at `now`.
    fn remembered(&self, key: &[u8; 32], now: i64) -> Option<UserIdentity> {
        let verified = self.verified.lock().ok()?;
        verified
            .get(key)
            .filter(|v| now < v.until)
            .map(|v| v.identity.clone())
    }

    /// Remembers a verified token until `exp` (plus the leeway) or [`VERIFIED_TTL`], whichever is sooner.
    fn remember(&self, key: [u8; 32], identity: UserIdentity, exp: i64, now: i64) {
        let ttl = i64::try_from(VERIFIED_TTL.as_secs()).unwrap_or(60);
        let leeway = i64::try_from(self.leeway_secs).unwrap_or(0);
        let until = (now + ttl).min(exp.saturating_add(leeway));
        let Ok(mut verified) = self.verified.lock() else {
            return;
        };
        if verified.len() >= VERIFIED_CAPACITY {
            verified.retain(|_, v| now < v.until);
        }
        if verified.len() < VERIFIED_CAPACITY {
            verified.insert(key, Verified { identity, until });
        }
    }

    /// Verifies a token with its signature and claims; returns the user and the token's `exp`.
    async fn verify_fully(&self, token: &str) -> Result<(UserIdentity, i64), AuthError> {
        // Refuse any algorithm but the two accepted ones by name, before any key is looked at.
        let alg = token
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
            .and_then(|h| h.get("alg").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| AuthError::Invalid("the token is not a well-formed JWT".to_owned()))?;
        if alg != "RS256" && alg != "ES256" {
            return Err(AuthError::Invalid(format!(
                "the token's algorithm `{}` is not accepted (only RS256 and ES256)",
                crate::error::shown_up_to(&alg, 16)
            )));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| rejection(&e))?;
        let kid = header.kid.as_deref();
        let jwk = match self.find_key(kid) {
            (Some(jwk), _) => jwk,
            (None, seen) => {
                self.refresh_for_unknown_key(seen).await?;
                self.find_key(kid)
                    .0
                    .ok_or_else(|| AuthError::Invalid("signed by an unknown key".to_owned()))?
            }
        };
        let algorithm = key_algorithm(&jwk).ok_or_else(|| {
            AuthError::Invalid("the signing key is not RS256 or ES256".to_owned())
        })?;
        if header.alg != algorithm {
            return Err(AuthError::Invalid(format!(
                "token algorithm {:?} does not match its key ({algorithm:?})",
                header.alg
            )));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| rejection(&e))?;

        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        // The audience is checked below so Cognito's `client_id` form is accepted too.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            .map_err(|e| rejection(&e))?;
        let claims = data.claims;

        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == self.audience,
            Some(Value::Array(auds)) => auds
                .iter()
                .any(|a| a.as_str() == Some(self.audience.as_str())),
            _ => claims.get("client_id").and_then(Value::as_str) == Some(self.audience.as_str()),
        };
        if !audience_ok {
            return Err(AuthError::Invalid(
                "the token is not for this audience".to_owned(),
            ));
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .ok_or_else(|| AuthError::Invalid("`sub` must be a non-empty string".to_owned()))?
            .to_owned();
        let mut groups = Vec::new();
        for claim in [self.groups_claim.as_str(), "cognito:groups"] {
            if let Some(Value::Array(values)) = claims.get(claim) {
                groups.extend(values.iter().filter_map(Value::as_str).map(str::to_owned));
            }
        }
        groups.sort();
        groups.dedup();
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| AuthError::Invalid("the `exp` claim is malformed".to_owned()))?;
        Ok((
            UserIdentity {
                sub,
                issuer: self.issuer.clone(),
                groups,
            },
            exp,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_contract::dev::{DEV_AUDIENCE, DEV_ISSUER, DevKey};

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn verifier(key: &DevKey) -> JwtVerifier {
        JwtVerifier::new(
            DEV_ISSUER.into(),
            DEV_AUDIENCE.into(),
            30,
            "groups".into(),
            KeySource::Static(key.jwks()),
        )
    }

    #[tokio::test]
    async fn dev_token_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        let token = key.mint("alice", &["analysts".into()], now(), 300).unwrap();
        let user = verifier(&key).verify(&token).await.unwrap();
        assert_eq!(user.sub, "alice");
        assert_eq!(user.groups, vec!["analysts".to_owned()]);
        // Reloading reads the same key.
        let again = DevKey::load_or_create(dir.path()).unwrap();
        assert!(verifier(&again).verify(&token).await.is_ok());
    }

    fn key_of(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    #[tokio::test]
    async fn a_verified_token_is_remembered_until_its_exp_or_the_ttl_and_no_longer() {
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        let v = verifier(&key);
        let start = now();
        // Expires in 20 s (leeway 30 s): remembered until exp + leeway, not for the whole TTL.
        let short = key.mint("alice", &[], start, 20).unwrap();
        v.verify(&short).await.unwrap();
        assert!(v.remembered(&key_of(&short), start + 49).is_some());
        assert!(v.remembered(&key_of(&short), start + 51).is_none());
        // Expires in an hour: remembered for the TTL only.
        let long = key.mint("alice", &[], start, 3600).unwrap();
        v.verify(&long).await.unwrap();
        assert!(v.remembered(&key_of(&long), start + 59).is_some());
        assert!(v.remembered(&key_of(&long), start + 61).is_none());
    }

    #[tokio::test]
    async fn a_changed_token_is_verified_again_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        let v = verifier(&key);
        let token = key.mint("alice", &[], now(), 300).unwrap();
        v.verify(&token).await.unwrap();
        let (head, signature) = token.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        let tampered = format!("{head}.{flipped}{}", &signature[1..]);
        assert!(v.verify(&tampered).await.is_err());
        assert!(v.remembered(&key_of(&tampered), now()).is_none());
    }

    #[tokio::test]
    async fn reloading_the_keys_forgets_verified_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, serde_json::to_string(&key.jwks()).unwrap()).unwrap();
        let v = JwtVerifier::new(
            DEV_ISSUER.into(),
            DEV_AUDIENCE.into(),
            30,
            "groups".into(),
            KeySource::File(jwks.clone()),
        );
        v.refresh().await.unwrap();
        let token = key.mint("alice", &[], now(), 300).unwrap();
        v.verify(&token).await.unwrap();
        assert!(v.remembered(&key_of(&token), now()).is_some());
        // The key is rotated out of the JWKS: after the reload the token is checked again, and refused.
        std::fs::write(&jwks, r#"{"keys":[]}"#).unwrap();
        v.refresh().await.unwrap();
        assert!(v.remembered(&key_of(&token), now()).is_none());
        assert!(v.verify(&token).await.is_err());
    }

    #[tokio::test]
    async fn expired_and_foreign_tokens_fail() {
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        let expired = key.mint("alice", &[], now() - 3600, 60).unwrap();
        let err = verifier(&key)
            .verify(&expired)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(err, "invalid token: the token has expired (`exp`)");

        let other_dir = tempfile::tempdir().unwrap();
        let other = DevKey::load_or_create(other_dir.path()).unwrap();
        let foreign = other.mint("mallory", &[], now(), 300).unwrap();
        let err = verifier(&key)
            .verify(&foreign)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(err, "invalid token: signed by an unknown key");
    }

    #[tokio::test]
    async fn alg_none_and_hmac_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        let v = verifier(&key);
        let kid = key.jwks().keys[0].common.key_id.clone().unwrap();
        let b64 = |s: &str| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
        };
        let claims = format!(
            r#"{{"iss":"{DEV_ISSUER}","aud":"{DEV_AUDIENCE}","sub":"mallory","exp":{}}}"#,
            now() + 300
        );
        let none = format!(
            "{}.{}.",
            b64(&format!(r#"{{"alg":"none","kid":"{kid}"}}"#)),
            b64(&claims)
        );
        assert!(v.verify(&none).await.is_err());
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header {
                alg: Algorithm::HS256,
                kid: Some(kid),
                ..Default::default()
            },
            &serde_json::from_str::<Value>(&claims).unwrap(),
            &jsonwebtoken::EncodingKey::from_secret(b"guess"),
        )
        .unwrap();
        let err = v.verify(&hs).await.unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid token: the token's algorithm `HS256` is not accepted (only RS256 and ES256)"
        );
    }

    #[test]
    fn the_refetch_wait_doubles_after_failures_up_to_its_bound() {
        let waits = |interval: Duration| -> Vec<u64> {
            (0..12)
                .map(|failures| {
                    Refresher {
                        attempted: None,
                        failures,
                    }
                    .wait(interval)
                    .as_secs()
                })
                .collect()
        };
        assert_eq!(
            waits(REFRESH_INTERVAL),
            [30, 30, 60, 120, 240, 300, 300, 300, 300, 300, 300, 300]
        );
        assert_eq!(
            waits(Duration::ZERO),
            [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
        );
        let mut refresher = Refresher::default();
        let now = Instant::now();
        assert!(refresher.may_attempt(now, REFRESH_INTERVAL));
        refresher.attempted = Some(now);
        assert!(!refresher.may_attempt(now + Duration::from_secs(29), REFRESH_INTERVAL));
        assert!(refresher.may_attempt(now + Duration::from_secs(30), REFRESH_INTERVAL));
        refresher.failures = 3;
        assert!(!refresher.may_attempt(now + Duration::from_secs(119), REFRESH_INTERVAL));
        assert!(refresher.may_attempt(now + Duration::from_secs(120), REFRESH_INTERVAL));
    }

    #[tokio::test]
    async fn wrong_audience_fails() {
        let dir = tempfile::tempdir().unwrap();
        let key = DevKey::load_or_create(dir.path()).unwrap();
        let v = JwtVerifier::new(
            DEV_ISSUER.into(),
            "another-app".into(),
            30,
            "groups".into(),
            KeySource::Static(key.jwks()),
        );
        let token = key.mint("alice", &[], now(), 300).unwrap();
        let err = v.verify(&token).await.unwrap_err().to_string();
        assert_eq!(err, "invalid token: the token is not for this audience");
    }
}
