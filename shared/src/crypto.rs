//! The one KMS envelope cipher of the product (docs/envelope-format.md). Every secret is
//! stored as a version-1 envelope: a KMS-encrypted AES-256 data key bound to the tenant by the KMS
//! encryption context, then AES-256-GCM with `<tenantId>/<ownerId>/<field>` as associated data,
//! binding the ciphertext to the item and attribute that hold it. The byte layout is in `layout`
//! and in docs/envelope-format.md; any KMS client can open an envelope from that description.
//!
//! Data keys are cached (see [`CacheLimits`]) so a warm function makes no KMS call per request.

mod error;
mod key_cache;
mod layout;

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aes_gcm::aead::{AeadCore, AeadInPlace, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

pub use error::{CryptoError, KmsOperation, OpenRefusal};
pub use key_cache::{CacheLimits, Clock, ManualClock, SystemClock};
pub use layout::{EnvelopeFormatError, FORMAT_VERSION};

use key_cache::{ActiveDataKey, DataKey, DecryptCache, EncryptCache};
use layout::{NONCE_LEN, TAG_LEN};

/// The KMS encryption context key that binds a data key to its tenant.
pub const TENANT_CONTEXT_KEY: &str = "tenantId";

/// The `field` part of the associated data for each kind of secret (docs/envelope-format.md).
pub mod field {
    /// Integration credentials (API key fields or the OAuth token set); owner: integration id.
    pub const CREDENTIALS: &str = "credentials";
    /// A tenant's OAuth app client secret; owner: [`super::oauth_app_owner_id`].
    pub const CLIENT_SECRET: &str = "clientSecret";
    /// Incoming webhook verification secrets `{secret?, verifyToken?, previousSecret?,
    /// previousExpiresAt?}`; owner: webhook id.
    pub const VERIFICATION: &str = "verification";
    /// Incoming webhook forward signing secret (the current one and the one a rotation replaced);
    /// owner: webhook id.
    pub const FORWARD_SECRET: &str = "forwardSecret";
    /// Outgoing webhook signing secret(s) `{current, previous?, previousExpiresAt?}`; owner: webhook id.
    pub const SECRET: &str = "secret";
}

/// The owner id of a tenant's OAuth app client secret: `oauth-app:<provider slug>`.
pub fn oauth_app_owner_id(provider_slug: &str) -> String {
    format!("oauth-app:{provider_slug}")
}

/// Where a secret lives; the three parts form the AES-GCM associated data, so an envelope opens
/// only for the tenant, owner and field it was sealed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretSlot<'a> {
    pub tenant_id: &'a str,
    pub owner_id: &'a str,
    pub field: &'a str,
}

impl<'a> SecretSlot<'a> {
    pub fn new(tenant_id: &'a str, owner_id: &'a str, field: &'a str) -> Self {
        Self {
            tenant_id,
            owner_id,
            field,
        }
    }

    fn associated_data(&self) -> String {
        format!("{}/{}/{}", self.tenant_id, self.owner_id, self.field)
    }
}

/// How many KMS calls a cipher has made (attempted), by operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KmsCallCounts {
    pub generate_data_key: u64,
    pub decrypt: u64,
}

impl KmsCallCounts {
    pub fn total(&self) -> u64 {
        self.generate_data_key + self.decrypt
    }
}

/// Seals and opens secret envelopes with one KMS key. Cheap to clone: clones share the KMS client,
/// the data-key caches and the call counters, so build one per process and pass it around.
#[derive(Clone)]
pub struct EnvelopeCipher {
    inner: Arc<Inner>,
}

struct Inner {
    kms: aws_sdk_kms::Client,
    key_id: String,
    clock: Arc<dyn Clock>,
    encrypt_cache: EncryptCache,
    decrypt_cache: DecryptCache,
    generate_data_key_calls: AtomicU64,
    decrypt_calls: AtomicU64,
}

impl fmt::Debug for EnvelopeCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeCipher")
            .field("key_id", &self.inner.key_id)
            .field("limits", self.inner.encrypt_cache.limits())
            .field("kms_calls", &self.kms_call_counts())
            .finish_non_exhaustive()
    }
}

impl EnvelopeCipher {
    /// A cipher for the KMS key `key_id` (key id, key ARN, alias name or alias ARN) with the
    /// default cache limits (5 minutes, 1,000 uses, 10,000 entries) and the system clock.
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self::with_cache(kms, key_id, CacheLimits::default(), Arc::new(SystemClock))
    }

    /// A cipher with explicit cache limits (lowered to the security limits if above them) and
    /// clock; tests use small limits and a [`ManualClock`].
    pub fn with_cache(
        kms: aws_sdk_kms::Client,
        key_id: impl Into<String>,
        limits: CacheLimits,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let limits = limits.within_security_limits();
        Self {
            inner: Arc::new(Inner {
                kms,
                key_id: key_id.into(),
                clock,
                encrypt_cache: EncryptCache::new(limits),
                decrypt_cache: DecryptCache::new(&limits),
                generate_data_key_calls: AtomicU64::new(0),
                decrypt_calls: AtomicU64::new(0),
            }),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.inner.key_id
    }

    pub fn limits(&self) -> CacheLimits {
        *self.inner.encrypt_cache.limits()
    }

    /// KMS calls this cipher (and its clones) has attempted, successful or not.
    pub fn kms_calls(&self) -> u64 {
        self.kms_call_counts().total()
    }

    pub fn kms_call_counts(&self) -> KmsCallCounts {
        KmsCallCounts {
            generate_data_key: self.inner.generate_data_key_calls.load(Ordering::Relaxed),
            decrypt: self.inner.decrypt_calls.load(Ordering::Relaxed),
        }
    }

    /// Seals `plaintext` for `slot` into a version-1 envelope with a fresh random nonce.
    pub async fn seal(
        &self,
        slot: SecretSlot<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let (key, encrypted_data_key) = self.data_key_for_seal(slot.tenant_id).await?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let nonce_bytes: [u8; NONCE_LEN] = nonce.into();
        let mut envelope = Zeroizing::new(layout::start_envelope(
            &encrypted_data_key,
            &nonce_bytes,
            plaintext.len() + TAG_LEN,
        )?);
        let body_start = envelope.len();
        // Encrypting in place inside the envelope buffer: the plaintext is never copied elsewhere,
        // and the buffer is zeroized if encryption fails while it still holds plaintext.
        envelope.extend_from_slice(plaintext);
        let tag = key
            .cipher()
            .encrypt_in_place_detached(
                &nonce,
                slot.associated_data().as_bytes(),
                &mut envelope[body_start..],
            )
            .map_err(|_| CryptoError::SecretTooLarge {
                len: plaintext.len(),
            })?;
        envelope.extend_from_slice(&tag);
        Ok(std::mem::take(&mut *envelope))
    }

    /// Opens an envelope read from `slot`; fails with [`CryptoError::CannotOpen`] if it was sealed
    /// for another tenant, owner or field, under another KMS key, or was altered.
    pub async fn open(
        &self,
        slot: SecretSlot<'_>,
        envelope: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let parts = layout::parse(envelope)?;
        let key = self
            .data_key_for_open(slot.tenant_id, parts.encrypted_data_key)
            .await?;
        // Exact capacity: decrypting in place only shrinks, so no plaintext copy is left behind.
        let mut plaintext = Zeroizing::new(Vec::with_capacity(parts.sealed.len()));
        plaintext.extend_from_slice(parts.sealed);
        key.cipher()
            .decrypt_in_place(
                Nonce::from_slice(parts.nonce),
                slot.associated_data().as_bytes(),
                &mut *plaintext,
            )
            .map_err(|_| CryptoError::CannotOpen(OpenRefusal::TagMismatch))?;
        Ok(plaintext)
    }

    /// Seals the UTF-8 JSON of `value` (the plaintext format of every envelope).
    pub async fn seal_json<T: Serialize + ?Sized>(
        &self,
        slot: SecretSlot<'_>,
        value: &T,
    ) -> Result<Vec<u8>, CryptoError> {
        let json = to_json_zeroizing(value)?;
        self.seal(slot, &json).await
    }

    /// Opens an envelope and parses its JSON; the intermediate plaintext buffer is zeroized.
    pub async fn open_json<T: DeserializeOwned>(
        &self,
        slot: SecretSlot<'_>,
        envelope: &[u8],
    ) -> Result<T, CryptoError> {
        let json = self.open(slot, envelope).await?;
        serde_json::from_slice(&json).map_err(|error| CryptoError::from_json(&error, true))
    }

    /// The tenant's cached data key while it is young and has uses left, else a new one from KMS.
    /// The tenant's slot stays locked during the KMS call so concurrent seals wait for one call.
    async fn data_key_for_seal(
        &self,
        tenant_id: &str,
    ) -> Result<(Arc<DataKey>, Arc<[u8]>), CryptoError> {
        let inner = &self.inner;
        let limits = inner.encrypt_cache.limits();
        let slot = inner
            .encrypt_cache
            .tenant_slot(tenant_id, inner.clock.now());
        let mut active = slot.lock().await;
        if let Some(cached) = active
            .as_mut()
            .and_then(|key| key.take_use(inner.clock.now(), limits))
        {
            return Ok(cached);
        }
        let (key, encrypted) = self.generate_data_key(tenant_id).await?;
        let now = inner.clock.now();
        // This process may open what it seals (read-after-write), so the decrypt side learns the key too.
        inner
            .decrypt_cache
            .insert(tenant_id, &encrypted, Arc::clone(&key), now);
        let taken = (Arc::clone(&key), Arc::clone(&encrypted));
        *active = Some(ActiveDataKey::used_once(key, encrypted, now));
        Ok(taken)
    }

    async fn generate_data_key(
        &self,
        tenant_id: &str,
    ) -> Result<(Arc<DataKey>, Arc<[u8]>), CryptoError> {
        const OPERATION: KmsOperation = KmsOperation::GenerateDataKey;
        let inner = &self.inner;
        inner
            .generate_data_key_calls
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(tenant_id, "KMS GenerateDataKey");
        let mut output = inner
            .kms
            .generate_data_key()
            .key_id(&inner.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context(TENANT_CONTEXT_KEY, tenant_id)
            .send()
            .await
            .map_err(|error| CryptoError::from_kms(OPERATION, error))?;
        let plaintext = output
            .plaintext
            .take()
            .map(|blob| Zeroizing::new(blob.into_inner()))
            .ok_or(bad_response(OPERATION, "no plaintext data key"))?;
        let key = DataKey::from_slice(&plaintext)
            .ok_or(bad_response(OPERATION, "the data key is not 32 bytes"))?;
        let encrypted = output
            .ciphertext_blob
            .take()
            .map(Blob::into_inner)
            .filter(|blob| !blob.is_empty())
            .ok_or(bad_response(OPERATION, "no encrypted data key"))?;
        if encrypted.len() > usize::from(u16::MAX) {
            return Err(bad_response(
                OPERATION,
                "the encrypted data key is longer than 65,535 bytes",
            ));
        }
        Ok((Arc::new(key), Arc::from(encrypted)))
    }

    async fn data_key_for_open(
        &self,
        tenant_id: &str,
        encrypted_data_key: &[u8],
    ) -> Result<Arc<DataKey>, CryptoError> {
        const OPERATION: KmsOperation = KmsOperation::Decrypt;
        let inner = &self.inner;
        if let Some(key) = inner
            .decrypt_cache
            .get(tenant_id, encrypted_data_key, inner.clock.now())
        {
            return Ok(key);
        }
        inner.decrypt_calls.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(tenant_id, "KMS Decrypt");
        // KeyId is given so that KMS refuses a data key encrypted under any other key.
        let mut output = inner
            .kms
            .decrypt()
            .key_id(&inner.key_id)
            .ciphertext_blob(Blob::new(encrypted_data_key))
            .encryption_context(TENANT_CONTEXT_KEY, tenant_id)
            .send()
            .await
            .map_err(|error| CryptoError::from_kms(OPERATION, error))?;
        let plaintext = output
            .plaintext
            .take()
            .map(|blob| Zeroizing::new(blob.into_inner()))
            .ok_or(bad_response(OPERATION, "no plaintext data key"))?;
        let key = Arc::new(
            DataKey::from_slice(&plaintext)
                .ok_or(bad_response(OPERATION, "the data key is not 32 bytes"))?,
        );
        inner.decrypt_cache.insert(
            tenant_id,
            encrypted_data_key,
            Arc::clone(&key),
            inner.clock.now(),
        );
        Ok(key)
    }
}

fn bad_response(operation: KmsOperation, problem: &'static str) -> CryptoError {
    CryptoError::KmsBadResponse { operation, problem }
}

/// Serialises into a buffer sized by a first counting pass, so growing it never leaves a partial
/// copy of the secret in freed memory.
fn to_json_zeroizing<T: Serialize + ?Sized>(value: &T) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, value)
        .map_err(|error| CryptoError::from_json(&error, false))?;
    let mut json = Zeroizing::new(Vec::with_capacity(counter.0));
    serde_json::to_writer(&mut *json, value)
        .map_err(|error| CryptoError::from_json(&error, false))?;
    Ok(json)
}

struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Faults moto cannot produce, against a hand-written KMS stand-in (wiremock): throttling, an
    //! internal error, a refusal worded as AWS words it, a GenerateDataKey answer with a data key of
    //! the wrong size, and a KMS that must not be called at all. Everything KMS does when it works
    //! (envelope round trips, tenant binding through the encryption context, owner and field binding
    //! through the associated data, the JSON helpers) is tested against moto's real KMS API in
    //! tests/tests/envelope_format.rs, never against this stand-in.

    use super::*;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine;
    use wiremock::matchers::{header, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const KEY_ARN: &str =
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const FAKE_ENCRYPTED_KEY: &[u8] = b"fake-kms-ciphertext-blob";

    fn slot(tenant_id: &str) -> SecretSlot<'_> {
        SecretSlot::new(tenant_id, "int_1", field::CREDENTIALS)
    }

    fn kms_client(server: &MockServer) -> aws_sdk_kms::Client {
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .endpoint_url(server.uri())
            .credentials_provider(aws_sdk_kms::config::Credentials::new(
                "test", "test", None, None, "unit",
            ))
            .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_kms::Client::from_conf(config)
    }

    fn kms_target(operation: &str) -> wiremock::matchers::HeaderExactMatcher {
        header("x-amz-target", format!("TrentService.{operation}").as_str())
    }

    fn kms_error(code: &str, status: u16) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_raw(
            format!(r#"{{"__type":"{code}","message":"Rate exceeded for key {KEY_ARN}"}}"#),
            "application/x-amz-json-1.1",
        )
    }

    fn kms_json(body: serde_json::Value) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_raw(body.to_string(), "application/x-amz-json-1.1")
    }

    #[tokio::test]
    async fn throttled_generate_data_key_is_retryable_and_does_not_name_the_key() {
        // Given KMS throttles GenerateDataKey
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(kms_target("GenerateDataKey"))
            .respond_with(kms_error("ThrottlingException", 400))
            .mount(&server)
            .await;
        let cipher = EnvelopeCipher::new(kms_client(&server), KEY_ARN);
        // When a secret is sealed
        let error = cipher.seal(slot("t1"), b"{}").await.expect_err("throttled");
        // Then the error is retryable, names the error kind and not the key ARN
        assert!(error.is_retryable());
        assert!(matches!(
            &error,
            CryptoError::KmsUnavailable { operation: KmsOperation::GenerateDataKey, kind } if kind == "ThrottlingException"
        ));
        assert_eq!(
            error.to_string(),
            "KMS GenerateDataKey is unavailable (ThrottlingException); the request can be retried"
        );
        assert!(!format!("{error:?}").contains("arn:aws"));
        assert_eq!(cipher.kms_calls(), 1);
    }

    #[tokio::test]
    async fn kms_outage_is_retryable() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(kms_error("KMSInternalException", 500))
            .mount(&server)
            .await;
        let cipher = EnvelopeCipher::new(kms_client(&server), KEY_ARN);
        let error = cipher.seal(slot("t1"), b"{}").await.expect_err("outage");
        assert!(error.is_retryable(), "{error}");
    }

    #[tokio::test]
    async fn unreachable_kms_is_retryable() {
        // Given a KMS endpoint nobody listens on (a port just bound and released)
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .credentials_provider(aws_sdk_kms::config::Credentials::new(
                "test", "test", None, None, "unit",
            ))
            .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
            .build();
        let cipher = EnvelopeCipher::new(aws_sdk_kms::Client::from_conf(config), KEY_ARN);
        // When a secret is sealed
        let error = cipher.seal(slot("t1"), b"{}").await.expect_err("no KMS");
        // Then the failure is worth retrying
        assert!(error.is_retryable(), "{error}");
        assert_eq!(
            error.to_string(),
            "KMS GenerateDataKey is unavailable (connection failure); the request can be retried"
        );
    }

    #[tokio::test]
    async fn access_denied_on_generate_is_a_refusal_not_worth_retrying() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(kms_error("AccessDeniedException", 400))
            .mount(&server)
            .await;
        let cipher = EnvelopeCipher::new(kms_client(&server), KEY_ARN);
        let error = cipher.seal(slot("t1"), b"{}").await.expect_err("denied");
        assert!(matches!(error, CryptoError::KmsRefused { .. }), "{error:?}");
        assert!(!error.is_retryable());
        assert!(!error.to_string().contains("arn:aws"), "{error}");
    }

    #[tokio::test]
    async fn data_key_of_the_wrong_size_is_refused() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(kms_json(serde_json::json!({
                "CiphertextBlob": BASE64.encode(FAKE_ENCRYPTED_KEY),
                "Plaintext": BASE64.encode([1u8; 16]),
            })))
            .mount(&server)
            .await;
        let cipher = EnvelopeCipher::new(kms_client(&server), KEY_ARN);
        let error = cipher.seal(slot("t1"), b"{}").await.expect_err("short key");
        assert_eq!(
            error.to_string(),
            "KMS GenerateDataKey returned an unusable response: the data key is not 32 bytes"
        );
    }

    #[tokio::test]
    async fn malformed_envelope_is_rejected_without_calling_kms() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(kms_error("ShouldNotBeCalled", 400))
            .expect(0)
            .mount(&server)
            .await;
        let cipher = EnvelopeCipher::new(kms_client(&server), KEY_ARN);
        for envelope in [&b""[..], b"\x02\x00\x01x", b"\x01\x00", b"\x01\xff\xffabc"] {
            let error = cipher
                .open(slot("t1"), envelope)
                .await
                .expect_err("malformed");
            assert!(
                matches!(error, CryptoError::MalformedEnvelope(_)),
                "{error:?}"
            );
        }
        assert_eq!(cipher.kms_calls(), 0);
    }

    #[test]
    fn oauth_app_owner_id_follows_the_security_table() {
        assert_eq!(oauth_app_owner_id("hubspot"), "oauth-app:hubspot");
    }

    #[test]
    fn debug_output_names_the_kms_key_and_call_counts() {
        let server_uri = "http://127.0.0.1:9";
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .endpoint_url(server_uri)
            .build();
        let cipher = EnvelopeCipher::new(aws_sdk_kms::Client::from_conf(config), "alias/hub");
        let debug = format!("{cipher:?}");
        assert!(
            debug.contains("alias/hub") && debug.contains("kms_calls"),
            "{debug}"
        );
    }
}
