//! The development signing key: an ES256 key pair the embedded default creates in its data directory, so a
//! new user can mint tokens with `causeway dev token` and call the hub with no identity provider.
//!
//! INVARIANT: the hub trusts this key only when `identity.mode = "dev"`, and refuses that mode on Lambda.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `iss` of development tokens.
pub const DEV_ISSUER: &str = "causeway-dev";
/// The `aud` of development tokens.
pub const DEV_AUDIENCE: &str = "causeway";
/// The key file inside the data directory (PKCS#8 DER, mode 0600).
pub const KEY_FILE: &str = "dev-signing-key.p8";

/// The development key could not be created or used.
#[derive(Debug, thiserror::Error)]
pub enum DevKeyError {
    /// File system error.
    #[error("`{path}`: {message}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
    /// The key file is not a P-256 PKCS#8 key.
    #[error("`{path}` is not a valid development key: {message}; delete it to create a new one")]
    Corrupt {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// Signing failed.
    #[error("cannot sign the token: {0}")]
    Sign(String),
}

/// The development key pair.
pub struct DevKey {
    path: PathBuf,
    pkcs8: Vec<u8>,
    jwk: Jwk,
}

impl std::fmt::Debug for DevKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevKey")
            .field("path", &self.path)
            .field("kid", &self.jwk.common.key_id)
            .finish_non_exhaustive()
    }
}

/// The claims of a development token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevClaims {
    /// [`DEV_ISSUER`].
    pub iss: String,
    /// [`DEV_AUDIENCE`].
    pub aud: String,
    /// The user.
    pub sub: String,
    /// The user's groups.
    pub groups: Vec<String>,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires.
    pub exp: i64,
}

impl DevKey {
    /// Loads the key from `data_dir`, creating the directory and a new key if there is none.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, DevKeyError> {
        let path = data_dir.join(KEY_FILE);
        let io = |e: std::io::Error, p: &Path| DevKeyError::Io {
            path: p.display().to_string(),
            message: e.to_string(),
        };
        let pkcs8 = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(|e| io(e, data_dir))?;
                let doc = EcdsaKeyPair::generate_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &SystemRandom::new(),
                )
                .map_err(|e| DevKeyError::Sign(e.to_string()))?;
                write_private(&path, doc.as_ref()).map_err(|e| io(e, &path))?;
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(io(e, &path)),
        };
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8).map_err(|e| {
                DevKeyError::Corrupt {
                    path: path.display().to_string(),
                    message: e.to_string(),
                }
            })?;
        let public = pair.public_key().as_ref();
        // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
        let (x, y) = match public {
            [0x04, rest @ ..] if rest.len() == 64 => rest.split_at(32),
            _ => {
                return Err(DevKeyError::Corrupt {
                    path: path.display().to_string(),
                    message: "unexpected public key encoding".to_owned(),
                });
            }
        };
        let kid = format!(
            "causeway-dev-{}",
            &hex::encode(Sha256::digest(public))[..16]
        );
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }))
        .map_err(|e| DevKeyError::Corrupt {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Self { path, pkcs8, jwk })
    }

    /// The key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public key as a JWKS, for the hub's verifier.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    /// Mints a development token for `sub` with `groups`, valid for `ttl_secs` from `now_unix`.
    pub fn mint(
        &self,
        sub: &str,
        groups: &[String],
        now_unix: i64,
        ttl_secs: i64,
    ) -> Result<String, DevKeyError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = self.jwk.common.key_id.clone();
        let claims = DevClaims {
            iss: DEV_ISSUER.to_owned(),
            aud: DEV_AUDIENCE.to_owned(),
            sub: sub.to_owned(),
            groups: groups.to_vec(),
            iat: now_unix,
            nbf: now_unix,
            exp: now_unix.saturating_add(ttl_secs),
        };
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&self.pkcs8))
            .map_err(|e| DevKeyError::Sign(e.to_string()))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
