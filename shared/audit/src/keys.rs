//! Keys: the checkpoint signer and the payload encryption keys.
//!
//! - [`CheckpointSigner`] signs checkpoints and evidence-pack manifests. The embedded mode uses
//!   [`Ed25519FileSigner`], an Ed25519 key kept as PKCS#8 (mode 0600) in the data directory; on AWS a KMS
//!   asymmetric key implements the same trait, so the private key never leaves KMS.
//! - Payloads (prompt and answer) are sealed with AES-256-GCM under a data key per UTC day. Data keys are
//!   stored wrapped (AES-256-GCM) by a master key file in the data directory. Erasing a day deletes its data
//!   key, which makes that day's payloads unreadable while the records and their hashes still verify.
//!
//! Embedded-mode limit: the master key and the signing key sit on the same disk as the store. Whoever can
//! read the data directory can read payloads of periods not yet erased, and whoever can write it can sign
//! checkpoints; pin the public key out of band (`causeway evidence keys`) so at least a rewrite with a
//! *different* key is caught, and use the AWS store (KMS keys, Object Lock) where that is not enough. A
//! backup taken before a period was erased still holds that period's wrapped data key.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AuditError;

/// The signing key file in the key directory (PKCS#8 v2 DER, mode 0600).
pub const SIGNING_KEY_FILE: &str = "audit-signing-key.p8";
/// The master key file in the key directory (32 random bytes, mode 0600).
pub const MASTER_KEY_FILE: &str = "audit-master.key";
/// The only signature algorithm the embedded mode writes.
pub const ED25519_ALG: &str = "ed25519";
/// ECDSA on P-256 with SHA-256, signatures DER-encoded: a KMS `ECC_NIST_P256` key with `ECDSA_SHA_256`.
pub const ECDSA_P256_ALG: &str = "ecdsa-p256-sha256";

/// A public key that can check checkpoint signatures, as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyInfo {
    /// The algorithm's prefix (`ed25519:`, `ecdsa-p256:`) and the first 32 hex digits of the SHA-256 of the
    /// public key bytes.
    pub key_id: String,
    /// `ed25519` or `ecdsa-p256-sha256`.
    pub algorithm: String,
    /// The public key, hex: the raw 32 bytes for Ed25519, the DER `SubjectPublicKeyInfo` for ECDSA (as KMS
    /// `GetPublicKey` returns it).
    pub public_key: String,
}

impl PublicKeyInfo {
    /// Describes a raw Ed25519 public key.
    pub fn ed25519(raw: &[u8]) -> Self {
        Self {
            key_id: ed25519_key_id(raw),
            algorithm: ED25519_ALG.to_owned(),
            public_key: hex::encode(raw),
        }
    }

    /// Describes an ECDSA P-256 public key given as DER `SubjectPublicKeyInfo`.
    pub fn ecdsa_p256(spki_der: &[u8]) -> Self {
        Self {
            key_id: ecdsa_p256_key_id(spki_der),
            algorithm: ECDSA_P256_ALG.to_owned(),
            public_key: hex::encode(spki_der),
        }
    }

    /// Checks `signature` (hex) over `message`. Also checks that the key id belongs to the key, so a key
    /// cannot be passed off under another key's id.
    pub fn verify(&self, message: &[u8], signature_hex: &str) -> bool {
        let (Ok(raw), Ok(signature)) = (hex::decode(&self.public_key), hex::decode(signature_hex))
        else {
            return false;
        };
        match self.algorithm.as_str() {
            ED25519_ALG if ed25519_key_id(&raw) == self.key_id => {
                UnparsedPublicKey::new(&ED25519, &raw)
                    .verify(message, &signature)
                    .is_ok()
            }
            ECDSA_P256_ALG if ecdsa_p256_key_id(&raw) == self.key_id => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &raw)
                    .verify(message, &signature)
                    .is_ok()
            }
            _ => false,
        }
    }
}

/// The key id of an ECDSA P-256 public key (DER `SubjectPublicKeyInfo`).
pub fn ecdsa_p256_key_id(spki_der: &[u8]) -> String {
    format!(
        "ecdsa-p256:{}",
        &hex::encode(Sha256::digest(spki_der))[..32]
    )
}

/// The key id of a raw Ed25519 public key.
pub fn ed25519_key_id(raw: &[u8]) -> String {
    format!("ed25519:{}", &hex::encode(Sha256::digest(raw))[..32])
}

/// A new data key for a period: the key, and the form of it to store (wrapped by a key the store never
/// holds).
pub struct NewDataKey {
    /// The AES-256 key payloads of the period are sealed with.
    pub key: [u8; 32],
    /// The key wrapped, to store beside the records.
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for NewDataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDataKey")
            .field("wrapped_bytes", &self.wrapped.len())
            .finish_non_exhaustive()
    }
}

/// Makes and unwraps the per-period data keys payloads are sealed under. Destroying a period's wrapped key
/// erases its payloads (crypto-shredding); the wrapping key itself never leaves its keeper (KMS in the AWS
/// store), and every key is bound to its period, so a wrapped key cannot be replayed for another.
#[async_trait]
pub trait DataKeys: Send + Sync + std::fmt::Debug {
    /// A new key for `period` (a UTC day, `YYYY-MM-DD`).
    async fn generate(&self, period: &str) -> Result<NewDataKey, AuditError>;

    /// The key `wrapped` holds, which must have been made for `period`.
    async fn unwrap(&self, period: &str, wrapped: &[u8]) -> Result<[u8; 32], AuditError>;
}

/// Signs checkpoints and pack manifests.
///
/// `sign` is called on the embedded store's writer thread (and by `causeway evidence export`) and may block;
/// asynchronous writers (the AWS store) call `sign_async`, which a remote signer (KMS `Sign`) implements
/// without blocking.
#[async_trait]
pub trait CheckpointSigner: Send + Sync + std::fmt::Debug {
    /// The public half, with its key id (written into every checkpoint).
    fn public_key(&self) -> &PublicKeyInfo;

    /// Signs `message`, returning the raw signature bytes.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, AuditError>;

    /// Signs `message` from asynchronous code. Default: [`CheckpointSigner::sign`].
    async fn sign_async(&self, message: &[u8]) -> Result<Vec<u8>, AuditError> {
        self.sign(message)
    }
}

/// An Ed25519 key kept in a PKCS#8 file: the embedded mode's signer.
pub struct Ed25519FileSigner {
    path: PathBuf,
    pair: Ed25519KeyPair,
    public: PublicKeyInfo,
}

impl std::fmt::Debug for Ed25519FileSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519FileSigner")
            .field("path", &self.path)
            .field("key_id", &self.public.key_id)
            .finish_non_exhaustive()
    }
}

impl Ed25519FileSigner {
    /// Loads the key from `dir`, creating the directory and a new key if there is none.
    pub fn load_or_create(dir: &Path) -> Result<Self, AuditError> {
        let path = dir.join(SIGNING_KEY_FILE);
        let pkcs8 = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
                    .map_err(|_| {
                        AuditError::Unavailable("cannot generate the signing key".into())
                    })?;
                create_private(&path, doc.as_ref())?;
                // Another process may have created it first: read back whichever is stored.
                std::fs::read(&path).map_err(|e| file_error(&path, &e))?
            }
            Err(e) => return Err(file_error(&path, &e)),
        };
        Self::from_pkcs8(&path, &pkcs8)
    }

    /// Loads an existing key from `dir`; an error if there is none.
    pub fn load(dir: &Path) -> Result<Self, AuditError> {
        let path = dir.join(SIGNING_KEY_FILE);
        let pkcs8 = std::fs::read(&path).map_err(|e| file_error(&path, &e))?;
        Self::from_pkcs8(&path, &pkcs8)
    }

    fn from_pkcs8(path: &Path, pkcs8: &[u8]) -> Result<Self, AuditError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| {
            AuditError::Unavailable(format!(
                "`{}` is not an Ed25519 PKCS#8 key: {e}",
                path.display()
            ))
        })?;
        let public = PublicKeyInfo::ed25519(pair.public_key().as_ref());
        Ok(Self {
            path: path.to_owned(),
            pair,
            public,
        })
    }
}

impl CheckpointSigner for Ed25519FileSigner {
    fn public_key(&self) -> &PublicKeyInfo {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, AuditError> {
        Ok(self.pair.sign(message).as_ref().to_vec())
    }
}

fn file_error(path: &Path, e: &std::io::Error) -> AuditError {
    AuditError::Unavailable(format!("`{}`: {e}", path.display()))
}

/// Writes a new private file (mode 0600 on unix). Succeeds without writing when the file already exists.
fn create_private(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| file_error(dir, &e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(bytes)
                .and_then(|()| file.sync_all())
                .map_err(|e| file_error(path, &e))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                && let Ok(dir) = std::fs::File::open(dir)
            {
                // Make the new directory entry durable too; best effort on platforms that cannot.
                let _ = dir.sync_all();
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(file_error(path, &e)),
    }
}

/// Fresh random bytes.
pub(crate) fn random<const N: usize>() -> Result<[u8; N], AuditError> {
    let mut bytes = [0_u8; N];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| AuditError::Encode("the random generator failed".into()))?;
    Ok(bytes)
}

/// An AES-256-GCM key.
pub(crate) struct AeadKey(LessSafeKey);

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AeadKey(..)")
    }
}

impl AeadKey {
    pub(crate) fn new(bytes: &[u8]) -> Result<Self, AuditError> {
        UnboundKey::new(&AES_256_GCM, bytes)
            .map(|k| Self(LessSafeKey::new(k)))
            .map_err(|_| AuditError::Encode("not a 256-bit key".into()))
    }

    /// Seals `plain` with a random nonce: returns `nonce || ciphertext || tag`.
    pub(crate) fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, AuditError> {
        let nonce = random::<NONCE_LEN>()?;
        let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + 16);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| AuditError::Encode("encryption failed".into()))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens `nonce || ciphertext || tag`; `None` when it was altered or sealed under another key or aad.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, body) = sealed.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// The master key that wraps data keys.
#[derive(Debug)]
pub(crate) struct MasterKey(AeadKey);

impl MasterKey {
    /// Loads the master key file from `dir`, creating it if there is none.
    pub(crate) fn load_or_create(dir: &Path) -> Result<Self, AuditError> {
        let path = dir.join(MASTER_KEY_FILE);
        if !path.exists() {
            create_private(&path, &random::<32>()?)?;
        }
        Self::load(dir)
    }

    /// Loads the master key file from `dir`.
    pub(crate) fn load(dir: &Path) -> Result<Self, AuditError> {
        let path = dir.join(MASTER_KEY_FILE);
        let bytes = std::fs::read(&path).map_err(|e| file_error(&path, &e))?;
        AeadKey::new(&bytes).map(Self).map_err(|_| {
            AuditError::Unavailable(format!("`{}` is not a 32-byte key", path.display()))
        })
    }

    fn aad(period: &str) -> Vec<u8> {
        format!("causeway-data-key-v1:{period}").into_bytes()
    }

    /// A new data key for `period`: the key and its wrapped form.
    pub(crate) fn new_data_key(&self, period: &str) -> Result<(AeadKey, Vec<u8>), AuditError> {
        let raw = random::<32>()?;
        let wrapped = self.0.seal(&Self::aad(period), &raw)?;
        Ok((AeadKey::new(&raw)?, wrapped))
    }

    /// Unwraps the data key of `period`.
    pub(crate) fn unwrap_data_key(
        &self,
        period: &str,
        wrapped: &[u8],
    ) -> Result<AeadKey, AuditError> {
        let raw = self.0.open(&Self::aad(period), wrapped).ok_or_else(|| {
            AuditError::Read(format!(
                "the data key of {period} does not open with the master key"
            ))
        })?;
        AeadKey::new(&raw)
    }
}

/// The associated data binding a payload to its record.
pub(crate) fn payload_aad(record_id: &str, period: &str) -> Vec<u8> {
    format!("causeway-payload-v1:{record_id}:{period}").into_bytes()
}

/// Seals a payload under a raw 256-bit data key exactly as the embedded store does: AES-256-GCM,
/// `nonce (12) || ciphertext || tag (16)`, associated data `causeway-payload-v1:<record id>:<period>`.
pub fn seal_payload(
    data_key: &[u8],
    record_id: &str,
    period: &str,
    plain: &[u8],
) -> Result<Vec<u8>, AuditError> {
    AeadKey::new(data_key)?.seal(&payload_aad(record_id, period), plain)
}

/// Opens a payload sealed by [`seal_payload`]; `None` when it was altered or sealed under another key, record
/// or period.
pub fn open_payload(
    data_key: &[u8],
    record_id: &str,
    period: &str,
    sealed: &[u8],
) -> Result<Option<Vec<u8>>, AuditError> {
    Ok(AeadKey::new(data_key)?.open(&payload_aad(record_id, period), sealed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_p256_signatures_verify_offline_under_their_own_key_id() {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let der: PublicKeyX509Der<'static> = pair.public_key().as_der().unwrap();
        let public = PublicKeyInfo::ecdsa_p256(der.as_ref());
        assert!(public.key_id.starts_with("ecdsa-p256:"));
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = hex::encode(pair.sign(&rng, b"checkpoint").unwrap().as_ref());
        assert!(public.verify(b"checkpoint", &sig));
        assert!(!public.verify(b"checkpoinT", &sig));
        let mut renamed = public.clone();
        renamed.key_id = "ecdsa-p256:00000000000000000000000000000000".into();
        assert!(!renamed.verify(b"checkpoint", &sig));
        let mut relabelled = public.clone();
        relabelled.algorithm = ED25519_ALG.into();
        assert!(!relabelled.verify(b"checkpoint", &sig));
    }

    #[test]
    fn signer_round_trip_and_key_file_mode() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Ed25519FileSigner::load_or_create(dir.path()).unwrap();
        let again = Ed25519FileSigner::load_or_create(dir.path()).unwrap();
        assert_eq!(signer.public_key(), again.public_key());
        let sig = hex::encode(signer.sign(b"hello").unwrap());
        assert!(signer.public_key().verify(b"hello", &sig));
        assert!(!signer.public_key().verify(b"hullo", &sig));
        let mut forged = signer.public_key().clone();
        forged.key_id = "ed25519:00000000000000000000000000000000".into();
        assert!(
            !forged.verify(b"hello", &sig),
            "a key under another key's id"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SIGNING_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn data_keys_wrap_and_payloads_seal() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::load_or_create(dir.path()).unwrap();
        let (key, wrapped) = master.new_data_key("2026-01-02").unwrap();
        let sealed = key.seal(b"aad", b"secret").unwrap();
        let back = master.unwrap_data_key("2026-01-02", &wrapped).unwrap();
        assert_eq!(back.open(b"aad", &sealed).unwrap(), b"secret");
        assert!(back.open(b"other", &sealed).is_none());
        assert!(master.unwrap_data_key("2026-01-03", &wrapped).is_err());
    }
}
