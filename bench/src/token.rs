//! A throwaway identity provider for the hub under test: a fresh ES256 key, its JWKS file (the hub runs in
//! `oidc` mode with `jwks_file`, so every call pays real JWT verification) and one signed token.

use std::path::Path;

use anyhow::Context as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

/// The `iss` the hub is configured to trust.
pub const ISSUER: &str = "https://idp.bench.invalid";
/// The `aud` the hub is configured to expect.
pub const AUDIENCE: &str = "causeway-bench";
/// The key id in the JWKS and the token header.
pub const KID: &str = "bench-es256";

/// Creates a key, writes its public half as a JWKS to `jwks_path`, and returns a token for `sub` in `groups`
/// valid for `ttl_secs`.
pub fn issue(
    jwks_path: &Path,
    sub: &str,
    groups: &[&str],
    ttl_secs: i64,
) -> anyhow::Result<String> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("cannot generate a P-256 key"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("cannot read the generated key"))?;
    // The public key is the uncompressed point: 0x04, then x and y, 32 bytes each.
    let point = pair.public_key().as_ref();
    anyhow::ensure!(
        point.len() == 65 && point.first() == Some(&4),
        "unexpected public key encoding"
    );
    let (x, y) = point[1..].split_at(32);
    let jwks = json!({"keys": [{
        "kty": "EC",
        "crv": "P-256",
        "alg": "ES256",
        "use": "sig",
        "kid": KID,
        "x": URL_SAFE_NO_PAD.encode(x),
        "y": URL_SAFE_NO_PAD.encode(y),
    }]});
    std::fs::write(jwks_path, jwks.to_string())
        .with_context(|| format!("writing `{}`", jwks_path.display()))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "groups": groups,
        "iat": now,
        "nbf": now,
        "exp": now.saturating_add(ttl_secs),
    });
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(KID.to_owned());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(pkcs8.as_ref()))
        .context("signing the token")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn the_token_verifies_against_the_written_jwks() {
        let dir = std::env::temp_dir().join(format!("causeway-bench-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwks.json");
        let token = issue(&path, "bench-user", &["analysts"], 600).unwrap();
        let jwks: JwkSet = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap();
        assert_eq!(data.claims["sub"], "bench-user");
        assert_eq!(data.claims["groups"][0], "analysts");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
