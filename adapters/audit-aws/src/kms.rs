//! Checkpoints signed by a KMS asymmetric key (`ECC_NIST_P256`, `SIGN_VERIFY`, `ECDSA_SHA_256`): the private
//! key never leaves KMS, and the public key, read once with `GetPublicKey`, goes into every evidence pack so
//! `verify` needs no AWS access.

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use causeway_audit::{AuditError, CheckpointSigner, PublicKeyInfo};

/// Signed once at start-up to check the key and its public half agree.
const PROBE: &[u8] = b"causeway-checkpoint-signer-probe";

/// A [`CheckpointSigner`] backed by KMS `Sign`.
pub struct KmsSigner {
    kms: aws_sdk_kms::Client,
    key_id: String,
    public: PublicKeyInfo,
}

impl std::fmt::Debug for KmsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsSigner")
            .field("key_id", &self.key_id)
            .field("public_key_id", &self.public.key_id)
            .finish_non_exhaustive()
    }
}

fn kms_error(e: impl std::fmt::Display) -> AuditError {
    AuditError::Unavailable(format!("kms: {e}"))
}

/// The public half of the checkpoint signing key `key_id` (KMS `GetPublicKey`), as evidence packs carry it and
/// `causeway evidence verify --key` pins it. Refuses a key that is not `ECC_NIST_P256` for `SIGN_VERIFY`.
pub async fn public_key(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
) -> Result<PublicKeyInfo, AuditError> {
    let out = kms
        .get_public_key()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| kms_error(aws_sdk_kms::error::DisplayErrorContext(e)))?;
    if out
        .key_spec()
        .is_some_and(|spec| *spec != KeySpec::EccNistP256)
    {
        return Err(AuditError::Unavailable(format!(
            "kms key `{key_id}` must have key spec `ECC_NIST_P256`"
        )));
    }
    if out.key_usage() != Some(&KeyUsageType::SignVerify) {
        return Err(AuditError::Unavailable(format!(
            "kms key `{key_id}` must have key usage `SIGN_VERIFY`"
        )));
    }
    let der = out
        .public_key()
        .ok_or_else(|| kms_error(format!("no public key returned for `{key_id}`")))?;
    Ok(PublicKeyInfo::ecdsa_p256(der.as_ref()))
}

impl KmsSigner {
    /// Reads the public half of `key_id` (an id, ARN or alias) and checks the key can sign checkpoints: its
    /// spec and usage, and one probe signature verified with the public key read.
    pub async fn new(kms: aws_sdk_kms::Client, key_id: &str) -> Result<Self, AuditError> {
        let public = public_key(&kms, key_id).await?;
        let signer = Self {
            kms,
            key_id: key_id.to_owned(),
            public,
        };
        let probe = signer.sign_remote(PROBE).await?;
        if !signer.public.verify(PROBE, &hex::encode(probe)) {
            return Err(AuditError::Unavailable(format!(
                "kms key `{key_id}` must be an `ECC_NIST_P256` key signing with `ECDSA_SHA_256`"
            )));
        }
        Ok(signer)
    }

    async fn sign_remote(&self, message: &[u8]) -> Result<Vec<u8>, AuditError> {
        let out = self
            .kms
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| kms_error(aws_sdk_kms::error::DisplayErrorContext(e)))?;
        out.signature()
            .map(|s| s.as_ref().to_vec())
            .ok_or_else(|| kms_error("no signature returned"))
    }
}

#[async_trait]
impl CheckpointSigner for KmsSigner {
    fn public_key(&self) -> &PublicKeyInfo {
        &self.public
    }

    /// Blocks on KMS `Sign`: outside a Tokio runtime on a runtime of its own, inside a multi-threaded one
    /// with `block_in_place`. A single-threaded runtime would deadlock, so it is refused.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, AuditError> {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => match handle.runtime_flavor() {
                tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(|| handle.block_on(self.sign_remote(message)))
                }
                _ => Err(AuditError::Unavailable(
                    "kms signing cannot block a single-threaded runtime".to_owned(),
                )),
            },
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(kms_error)?
                .block_on(self.sign_remote(message)),
        }
    }

    async fn sign_async(&self, message: &[u8]) -> Result<Vec<u8>, AuditError> {
        self.sign_remote(message).await
    }
}

/// Per-day payload data keys from KMS: `GenerateDataKey` (AES-256) under the payload key, unwrapped with
/// `Decrypt`; both bound to the day by the encryption context `causeway-day`, which the hub role's policy
/// requires.
#[derive(Debug, Clone)]
pub struct KmsDataKeys {
    kms: aws_sdk_kms::Client,
    key_id: Option<String>,
}

impl KmsDataKeys {
    /// Keys wrapped under `key_id` (needed to make new ones; unwrapping needs only the client).
    pub const fn new(kms: aws_sdk_kms::Client, key_id: Option<String>) -> Self {
        Self { kms, key_id }
    }
}

#[async_trait]
impl causeway_audit::DataKeys for KmsDataKeys {
    async fn generate(&self, period: &str) -> Result<causeway_audit::NewDataKey, AuditError> {
        let key_id = self.key_id.as_deref().ok_or_else(|| {
            AuditError::Unavailable("payload encryption needs `kms_key_id`".into())
        })?;
        let out = self
            .kms
            .generate_data_key()
            .key_id(key_id)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .encryption_context("causeway-day", period)
            .send()
            .await
            .map_err(|e| kms_error(aws_sdk_kms::error::DisplayErrorContext(e)))?;
        let key = out
            .plaintext()
            .and_then(|p| <[u8; 32]>::try_from(p.as_ref()).ok())
            .ok_or_else(|| kms_error("generate data key returned no 256-bit key"))?;
        let wrapped = out
            .ciphertext_blob()
            .ok_or_else(|| kms_error("generate data key returned no wrapped key"))?
            .as_ref()
            .to_vec();
        Ok(causeway_audit::NewDataKey { key, wrapped })
    }

    async fn unwrap(&self, period: &str, wrapped: &[u8]) -> Result<[u8; 32], AuditError> {
        let out = self
            .kms
            .decrypt()
            .ciphertext_blob(Blob::new(wrapped))
            .encryption_context("causeway-day", period)
            .send()
            .await
            .map_err(|e| kms_error(aws_sdk_kms::error::DisplayErrorContext(e)))?;
        out.plaintext()
            .and_then(|p| <[u8; 32]>::try_from(p.as_ref()).ok())
            .ok_or_else(|| {
                kms_error(format!(
                    "the data key of {period} does not unwrap to 256 bits"
                ))
            })
    }
}
