//! The secret envelope format (docs/envelope-format.md) against a
//! real KMS API (moto): an envelope opens with nothing but KMS Decrypt, AES-GCM and the documented
//! byte layout; a hand-made envelope opens with the product's cipher; moved or altered envelopes
//! are refused; and a warm cipher makes no KMS call per request.
//!
//! The helpers below parse and build envelopes by hand on purpose: they restate the layout from
//! docs/envelope-format.md rather than calling the crate, so they check the crate against the doc.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use hub_shared::crypto::{
    field, CacheLimits, CryptoError, EnvelopeCipher, KmsCallCounts, ManualClock, OpenRefusal,
    SecretSlot,
};

fn kms() -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&hub_tests::sdk_config())
}

/// A new symmetric KMS key with a unique alias; returns the alias, which the cipher uses as KeyId.
async fn new_kms_key(kms: &aws_sdk_kms::Client) -> String {
    let key = kms.create_key().send().await.expect("CreateKey");
    let key_id = key
        .key_metadata()
        .map(|metadata| metadata.key_id().to_owned())
        .expect("key metadata");
    let alias = format!("alias/{}", hub_tests::unique_name("envelope"));
    kms.create_alias()
        .alias_name(&alias)
        .target_key_id(key_id)
        .send()
        .await
        .expect("CreateAlias");
    alias
}

fn aad(tenant_id: &str, owner_id: &str, field: &str) -> String {
    format!("{tenant_id}/{owner_id}/{field}")
}

/// An envelope split by the documented layout.
struct HandParsed {
    version: u8,
    encrypted_data_key: Vec<u8>,
    nonce: [u8; 12],
    ciphertext_and_tag: Vec<u8>,
}

/// byte 0 version; bytes 1..3 length L (u16 BE); bytes 3..3+L encrypted data key; 12-byte nonce;
/// the rest is AES-256-GCM ciphertext followed by its 16-byte tag.
fn parse_by_hand(envelope: &[u8]) -> HandParsed {
    let length = usize::from(u16::from_be_bytes([envelope[1], envelope[2]]));
    let nonce_start = 3 + length;
    let body_start = nonce_start + 12;
    assert!(envelope.len() >= body_start + 16, "room for nonce and tag");
    HandParsed {
        version: envelope[0],
        encrypted_data_key: envelope[3..nonce_start].to_vec(),
        nonce: envelope[nonce_start..body_start]
            .try_into()
            .expect("12 bytes"),
        ciphertext_and_tag: envelope[body_start..].to_vec(),
    }
}

/// Opens an envelope with KMS Decrypt and aes-gcm only.
async fn open_by_hand(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
    envelope: &[u8],
    (tenant_id, owner_id, field): (&str, &str, &str),
) -> Result<Vec<u8>, String> {
    let parsed = parse_by_hand(envelope);
    assert_eq!(parsed.version, 0x01, "format version");
    let data_key = kms
        .decrypt()
        .key_id(key_id)
        .ciphertext_blob(Blob::new(parsed.encrypted_data_key))
        .encryption_context("tenantId", tenant_id)
        .send()
        .await
        .map_err(|error| format!("KMS Decrypt: {error:?}"))?
        .plaintext
        .expect("plaintext data key")
        .into_inner();
    let cipher = Aes256Gcm::new_from_slice(&data_key).expect("32-byte data key");
    cipher
        .decrypt(
            Nonce::from_slice(&parsed.nonce),
            Payload {
                msg: &parsed.ciphertext_and_tag,
                aad: aad(tenant_id, owner_id, field).as_bytes(),
            },
        )
        .map_err(|_| "AES-GCM tag mismatch".to_owned())
}

/// Builds an envelope with KMS GenerateDataKey and aes-gcm only.
async fn seal_by_hand(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
    plaintext: &[u8],
    (tenant_id, owner_id, field): (&str, &str, &str),
) -> Vec<u8> {
    let data_key = kms
        .generate_data_key()
        .key_id(key_id)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context("tenantId", tenant_id)
        .send()
        .await
        .expect("GenerateDataKey");
    let encrypted_data_key = data_key.ciphertext_blob().expect("blob").as_ref().to_vec();
    let cipher =
        Aes256Gcm::new_from_slice(data_key.plaintext().expect("plaintext").as_ref()).expect("key");
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ciphertext_and_tag = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: aad(tenant_id, owner_id, field).as_bytes(),
            },
        )
        .expect("encrypt");
    let length = u16::try_from(encrypted_data_key.len()).expect("fits u16");
    let mut envelope = vec![0x01];
    envelope.extend_from_slice(&length.to_be_bytes());
    envelope.extend_from_slice(&encrypted_data_key);
    envelope.extend_from_slice(&nonce);
    envelope.extend_from_slice(&ciphertext_and_tag);
    envelope
}

fn counts(generate_data_key: u64, decrypt: u64) -> KmsCallCounts {
    KmsCallCounts {
        generate_data_key,
        decrypt,
    }
}

fn assert_cannot_open<T>(result: Result<T, CryptoError>, case: &str) {
    match result {
        Err(CryptoError::CannotOpen(_)) => {}
        other => panic!(
            "{case}: expected CannotOpen, got {:?}",
            other.map(|_| "plaintext")
        ),
    }
}

#[tokio::test]
async fn envelope_sealed_by_the_cipher_opens_with_plain_kms_decrypt_and_aes_gcm() {
    // Given a cipher on a fresh KMS key and an integration's credentials
    let kms = kms();
    let key_id = new_kms_key(&kms).await;
    let cipher = EnvelopeCipher::new(kms.clone(), &key_id);
    let credentials = serde_json::json!({"apiKey": "sk_live_abc", "accountId": "acct_42"});
    let slot = SecretSlot::new("tenant-a", "int_1", field::CREDENTIALS);

    // When the cipher seals them
    let envelope = cipher.seal_json(slot, &credentials).await.expect("sealed");

    // Then the bytes follow the documented layout and open with KMS Decrypt + AES-GCM alone
    let parsed = parse_by_hand(&envelope);
    assert_eq!(parsed.version, 0x01);
    assert!(!parsed.encrypted_data_key.is_empty());
    assert_eq!(
        envelope.len(),
        3 + parsed.encrypted_data_key.len() + 12 + credentials.to_string().len() + 16
    );
    let plaintext = open_by_hand(
        &kms,
        &key_id,
        &envelope,
        ("tenant-a", "int_1", "credentials"),
    )
    .await
    .expect("opened by hand");
    let opened: serde_json::Value = serde_json::from_slice(&plaintext).expect("UTF-8 JSON");
    assert_eq!(opened, credentials);

    // And the data key is bound to the tenant by the KMS encryption context
    let other_tenant = open_by_hand(
        &kms,
        &key_id,
        &envelope,
        ("tenant-b", "int_1", "credentials"),
    )
    .await;
    assert!(
        other_tenant.is_err(),
        "KMS releases the key to tenant-a only"
    );
}

#[tokio::test]
async fn envelope_made_by_hand_opens_with_the_cipher() {
    // Given an envelope built from the documented format with GenerateDataKey and aes-gcm
    let kms = kms();
    let key_id = new_kms_key(&kms).await;
    let envelope = seal_by_hand(
        &kms,
        &key_id,
        br#"{"current":"whsec_1"}"#,
        ("tenant-a", "wh_9", "secret"),
    )
    .await;

    // When the product's cipher opens it
    let cipher = EnvelopeCipher::new(kms, &key_id);
    let opened: serde_json::Value = cipher
        .open_json(
            SecretSlot::new("tenant-a", "wh_9", field::SECRET),
            &envelope,
        )
        .await
        .expect("opened");

    // Then it reads the secret
    assert_eq!(opened, serde_json::json!({"current": "whsec_1"}));
}

#[tokio::test]
async fn envelope_moved_to_another_tenant_is_refused() {
    // Given an envelope sealed for tenant-a
    let kms = kms();
    let key_id = new_kms_key(&kms).await;
    let sealing = EnvelopeCipher::new(kms.clone(), &key_id);
    let envelope = sealing
        .seal(
            SecretSlot::new("tenant-a", "int_1", field::CREDENTIALS),
            b"\"k\"",
        )
        .await
        .expect("sealed");
    let moved = SecretSlot::new("tenant-b", "int_1", field::CREDENTIALS);

    // When it is read as tenant-b's, by a cold process and by the warm one that sealed it
    let cold = EnvelopeCipher::new(kms, &key_id);
    let cold_result = cold.open(moved, &envelope).await;
    let warm_result = sealing.open(moved, &envelope).await;

    // Then KMS refuses the data key both times (the warm cache does not skip the tenant check)
    for (case, result) in [("cold", cold_result), ("warm", warm_result)] {
        match result {
            Err(error @ CryptoError::CannotOpen(OpenRefusal::DataKeyRefused { .. })) => {
                assert!(!error.is_retryable(), "{case}: a refusal is final");
            }
            other => panic!(
                "{case}: expected DataKeyRefused, got {:?}",
                other.map(|_| "plaintext")
            ),
        }
    }
    assert_eq!(sealing.kms_call_counts(), counts(1, 1));
}

#[tokio::test]
async fn envelope_read_from_another_owner_or_field_is_refused() {
    // Given an integration's credentials sealed for int_1
    let kms = kms();
    let key_id = new_kms_key(&kms).await;
    let cipher = EnvelopeCipher::new(kms, &key_id);
    let envelope = cipher
        .seal(
            SecretSlot::new("tenant-a", "int_1", field::CREDENTIALS),
            b"{\"apiKey\":\"x\"}",
        )
        .await
        .expect("sealed");

    // When it is read from another integration or another attribute of the same tenant
    for other in [
        SecretSlot::new("tenant-a", "int_2", field::CREDENTIALS),
        SecretSlot::new("tenant-a", "int_1", field::CLIENT_SECRET),
    ] {
        let result = cipher.open(other, &envelope).await;
        // Then the AES-GCM tag does not match
        assert!(
            matches!(
                result,
                Err(CryptoError::CannotOpen(OpenRefusal::TagMismatch))
            ),
            "{other:?}"
        );
    }
}

#[tokio::test]
async fn altered_envelope_is_refused() {
    // Given a sealed envelope
    let kms = kms();
    let key_id = new_kms_key(&kms).await;
    let cipher = EnvelopeCipher::new(kms.clone(), &key_id);
    let slot = SecretSlot::new("tenant-a", "wh_1", field::VERIFICATION);
    let envelope = cipher
        .seal_json(slot, &serde_json::json!({"secret": "s"}))
        .await
        .expect("sealed");
    let key_len = parse_by_hand(&envelope).encrypted_data_key.len();
    let nonce_at = 3 + key_len;

    // When one byte is flipped in each part of it
    let positions = [
        ("version", 0),
        ("length high byte", 1),
        ("length low byte", 2),
        ("encrypted data key, first byte", 3),
        ("encrypted data key, last byte", 3 + key_len - 1),
        ("nonce", nonce_at),
        ("ciphertext", nonce_at + 12),
        ("tag", envelope.len() - 1),
    ];
    for (part, at) in positions {
        let mut altered = envelope.clone();
        altered[at] ^= 0x01;
        // Then it is refused, by a warm and by a cold cipher, and never retried
        for opener in [cipher.clone(), EnvelopeCipher::new(kms.clone(), &key_id)] {
            let error = opener
                .open(slot, &altered)
                .await
                .map(|_| "plaintext")
                .expect_err(part);
            assert!(
                matches!(
                    error,
                    CryptoError::CannotOpen(_) | CryptoError::MalformedEnvelope(_)
                ),
                "{part}: {error:?}"
            );
            assert!(!error.is_retryable(), "{part}");
        }
    }
}

#[tokio::test]
async fn seal_json_and_open_json_round_trip_a_secret_object() {
    // Given a cipher on a fresh KMS key and an OAuth token set
    let kms = kms();
    let key_id = new_kms_key(&kms).await;
    let cipher = EnvelopeCipher::new(kms, &key_id);
    let slot = SecretSlot::new("tenant-a", "int_1", field::CREDENTIALS);
    let secret = serde_json::json!({"accessToken": "at-1", "refreshToken": "rt-1"});

    // When it is sealed as JSON and opened again, as JSON and as raw bytes
    let envelope = cipher.seal_json(slot, &secret).await.expect("sealed");
    let opened: serde_json::Value = cipher.open_json(slot, &envelope).await.expect("opened");
    let raw = cipher.open(slot, &envelope).await.expect("opened");

    // Then it is the same object, its plaintext is its UTF-8 JSON, and the envelope hides it
    assert_eq!(opened, secret);
    assert_eq!(&raw[..], br#"{"accessToken":"at-1","refreshToken":"rt-1"}"#);
    assert!(
        !envelope.windows(4).any(|w| w == b"at-1"),
        "no plaintext in the envelope"
    );
}

#[tokio::test]
async fn open_json_of_another_shape_reports_position_but_not_the_value() {
    // Given a string secret
    let kms = kms();
    let key_id = new_kms_key(&kms).await;
    let cipher = EnvelopeCipher::new(kms, &key_id);
    let slot = SecretSlot::new("tenant-a", "oauth-app:hubspot", field::CLIENT_SECRET);
    let envelope = cipher.seal_json(slot, "hunter2").await.expect("sealed");

    // When it is opened as a number
    let error = cipher
        .open_json::<u64>(slot, &envelope)
        .await
        .expect_err("a string is not a number");

    // Then the error says so without showing the secret
    assert!(matches!(error, CryptoError::SecretNotExpectedJson { .. }));
    assert!(!format!("{error} {error:?}").contains("hunter2"));
}

#[tokio::test]
async fn each_slot_part_is_bound_into_the_envelope() {
    // Given an outgoing webhook's signing secret sealed for (t1, wh_1, secret)
    let kms = kms();
    let key_id = new_kms_key(&kms).await;
    let cipher = EnvelopeCipher::new(kms, &key_id);
    let sealed_for = SecretSlot::new("t1", "wh_1", field::SECRET);
    let envelope = cipher.seal(sealed_for, b"\"whsec\"").await.expect("sealed");

    // When it is opened for another owner or another field of the same tenant
    for other in [
        SecretSlot::new("t1", "wh_2", field::SECRET),
        SecretSlot::new("t1", "wh_1", field::FORWARD_SECRET),
    ] {
        let error = cipher.open(other, &envelope).await.expect_err("other slot");
        // Then the AES-GCM tag (over the associated data) does not match
        assert!(
            matches!(error, CryptoError::CannotOpen(OpenRefusal::TagMismatch)),
            "{other:?}: {error:?}"
        );
    }
    // And slot parts that would join to the same "t1/wh_1/secret" are another tenant to KMS:
    // the encryption context refuses the data key before the associated data is even compared
    let shifted = SecretSlot::new("t1/wh_1", "secret", "");
    let error = cipher
        .open(shifted, &envelope)
        .await
        .expect_err("shifted slot");
    assert!(
        matches!(
            error,
            CryptoError::CannotOpen(OpenRefusal::DataKeyRefused { .. })
        ),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    // While the slot it was sealed for opens it
    assert_eq!(
        &cipher.open(sealed_for, &envelope).await.expect("own slot")[..],
        b"\"whsec\""
    );
}

#[tokio::test]
async fn envelope_sealed_under_another_kms_key_is_refused() {
    // Given an envelope sealed under key A
    let kms = kms();
    let key_a = new_kms_key(&kms).await;
    let key_b = new_kms_key(&kms).await;
    let slot = SecretSlot::new("tenant-a", "int_1", field::CREDENTIALS);
    let envelope = EnvelopeCipher::new(kms.clone(), &key_a)
        .seal(slot, b"\"k\"")
        .await
        .expect("sealed");

    // When a cipher configured for key B opens it
    let result = EnvelopeCipher::new(kms, &key_b).open(slot, &envelope).await;

    // Then KMS refuses, because Decrypt names the expected key
    assert_cannot_open(result, "other KMS key");
}

#[tokio::test]
async fn warm_cipher_makes_one_kms_call_for_fifty_seals_and_fifty_opens() {
    // Given a cipher with the production limits
    let kms = kms();
    let key_id = new_kms_key(&kms).await;
    let cipher = EnvelopeCipher::new(kms.clone(), &key_id);
    let tenant = hub_tests::unique_name("tenant");

    // When it seals 50 secrets and opens them again
    let mut envelopes = Vec::new();
    for n in 0..50 {
        let owner = format!("int_{n}");
        let slot = SecretSlot::new(&tenant, &owner, field::CREDENTIALS);
        envelopes.push(cipher.seal_json(slot, &n).await.expect("sealed"));
    }
    for (n, envelope) in envelopes.iter().enumerate() {
        let owner = format!("int_{n}");
        let slot = SecretSlot::new(&tenant, &owner, field::CREDENTIALS);
        let opened: usize = cipher.open_json(slot, envelope).await.expect("opened");
        assert_eq!(opened, n);
    }

    // Then one GenerateDataKey served them all, and the opens needed no Decrypt
    assert_eq!(cipher.kms_call_counts(), counts(1, 0));
    assert_eq!(cipher.kms_calls(), 1);
    let data_keys: HashSet<Vec<u8>> = envelopes
        .iter()
        .map(|envelope| parse_by_hand(envelope).encrypted_data_key)
        .collect();
    assert_eq!(data_keys.len(), 1, "one data key in every envelope");

    // And another process (cold cache) opens all 50 with a single Decrypt
    let cold = EnvelopeCipher::new(kms, &key_id);
    for (n, envelope) in envelopes.iter().enumerate() {
        let owner = format!("int_{n}");
        let slot = SecretSlot::new(&tenant, &owner, field::CREDENTIALS);
        let opened: usize = cold.open_json(slot, envelope).await.expect("opened");
        assert_eq!(opened, n);
    }
    assert_eq!(cold.kms_call_counts(), counts(0, 1));
}

#[tokio::test]
async fn tenants_get_separate_data_keys() {
    let kms = kms();
    let key_id = new_kms_key(&kms).await;
    let cipher = EnvelopeCipher::new(kms, &key_id);

    let a = cipher
        .seal(SecretSlot::new("tenant-a", "o", "f"), b"1")
        .await
        .expect("sealed");
    let b = cipher
        .seal(SecretSlot::new("tenant-b", "o", "f"), b"1")
        .await
        .expect("sealed");

    assert_ne!(
        parse_by_hand(&a).encrypted_data_key,
        parse_by_hand(&b).encrypted_data_key
    );
    assert_eq!(cipher.kms_call_counts(), counts(2, 0));
}

#[tokio::test]
async fn concurrent_cold_seals_for_one_tenant_share_one_data_key() {
    // Given a cold cipher
    let kms = kms();
    let key_id = new_kms_key(&kms).await;
    let cipher = EnvelopeCipher::new(kms, &key_id);

    // When 20 seals for one tenant run at once
    let mut seals = tokio::task::JoinSet::new();
    for n in 0..20 {
        let cipher = cipher.clone();
        seals.spawn(async move {
            let owner = format!("int_{n}");
            cipher
                .seal(
                    SecretSlot::new("tenant-a", &owner, field::CREDENTIALS),
                    b"{}",
                )
                .await
        });
    }
    let mut sealed = 0;
    while let Some(result) = seals.join_next().await {
        result.expect("task").expect("sealed");
        sealed += 1;
    }

    // Then they waited for a single GenerateDataKey
    assert_eq!(sealed, 20);
    assert_eq!(cipher.kms_call_counts(), counts(1, 0));
}

#[tokio::test]
async fn data_key_is_replaced_after_its_use_limit() {
    // Given a cipher whose data keys seal 3 envelopes each
    let kms = kms();
    let key_id = new_kms_key(&kms).await;
    let limits = CacheLimits {
        data_key_max_uses: 3,
        ..CacheLimits::default()
    };
    let cipher = EnvelopeCipher::with_cache(kms, &key_id, limits, Arc::new(ManualClock::new()));
    let slot = SecretSlot::new("tenant-a", "int_1", field::CREDENTIALS);

    // When it seals 7 envelopes
    let mut envelopes = Vec::new();
    for _ in 0..7 {
        envelopes.push(cipher.seal(slot, b"{}").await.expect("sealed"));
    }

    // Then three data keys were generated, used 3, 3 and 1 times
    assert_eq!(cipher.kms_call_counts().generate_data_key, 3);
    let keys: Vec<Vec<u8>> = envelopes
        .iter()
        .map(|envelope| parse_by_hand(envelope).encrypted_data_key)
        .collect();
    assert!(keys[0] == keys[1] && keys[1] == keys[2]);
    assert!(keys[3] == keys[4] && keys[4] == keys[5]);
    assert!(keys[2] != keys[3] && keys[5] != keys[6] && keys[0] != keys[6]);
    // And every envelope still opens (the decrypt cache knows all three keys)
    for envelope in &envelopes {
        assert_eq!(
            &cipher.open(slot, envelope).await.expect("opened")[..],
            b"{}"
        );
    }
    assert_eq!(cipher.kms_call_counts().decrypt, 0);
}

#[tokio::test]
async fn data_key_is_replaced_after_five_minutes_even_if_configured_longer() {
    // Given a cipher asking for a one-hour data-key lifetime, on a clock the test moves
    let kms = kms();
    let key_id = new_kms_key(&kms).await;
    let clock = ManualClock::new();
    let limits = CacheLimits {
        data_key_ttl: Duration::from_secs(3600),
        ..CacheLimits::default()
    };
    let cipher = EnvelopeCipher::with_cache(kms, &key_id, limits, Arc::new(clock.clone()));
    let slot = SecretSlot::new("tenant-a", "int_1", field::CREDENTIALS);
    assert_eq!(cipher.limits().data_key_ttl, Duration::from_secs(300));

    // When it seals now, 4:59 later, and at 5:00
    let first = cipher.seal(slot, b"{}").await.expect("sealed");
    clock.advance(Duration::from_secs(299));
    let before_expiry = cipher.seal(slot, b"{}").await.expect("sealed");
    clock.advance(Duration::from_secs(1));
    let after_expiry = cipher.seal(slot, b"{}").await.expect("sealed");

    // Then the data key is reused until 5 minutes and replaced at 5 minutes
    let key_of = |envelope: &[u8]| parse_by_hand(envelope).encrypted_data_key;
    assert_eq!(key_of(&first), key_of(&before_expiry));
    assert_ne!(key_of(&before_expiry), key_of(&after_expiry));
    assert_eq!(cipher.kms_call_counts().generate_data_key, 2);
}

#[tokio::test]
async fn decrypted_data_key_is_forgotten_after_five_minutes() {
    // Given an envelope and a cold cipher on a clock the test moves
    let kms = kms();
    let key_id = new_kms_key(&kms).await;
    let slot = SecretSlot::new("tenant-a", "int_1", field::CREDENTIALS);
    let envelope = seal_by_hand(&kms, &key_id, b"{}", ("tenant-a", "int_1", "credentials")).await;
    let clock = ManualClock::new();
    let cipher = EnvelopeCipher::with_cache(
        kms,
        &key_id,
        CacheLimits::default(),
        Arc::new(clock.clone()),
    );

    // When it opens the envelope, again 4:59 later, and again at 5:00
    cipher.open(slot, &envelope).await.expect("opened");
    clock.advance(Duration::from_secs(299));
    cipher.open(slot, &envelope).await.expect("opened");
    let within_ttl = cipher.kms_call_counts();
    clock.advance(Duration::from_secs(1));
    cipher.open(slot, &envelope).await.expect("opened");

    // Then KMS Decrypt was called once for the first two opens and again after 5 minutes
    assert_eq!(within_ttl, counts(0, 1));
    assert_eq!(cipher.kms_call_counts(), counts(0, 2));
}

#[tokio::test]
async fn every_envelope_gets_a_fresh_random_nonce() {
    // Given one warm data key
    let kms = kms();
    let key_id = new_kms_key(&kms).await;
    let cipher = EnvelopeCipher::new(kms, &key_id);
    let slot = SecretSlot::new("tenant-a", "int_1", field::CREDENTIALS);

    // When the same plaintext is sealed 200 times
    let mut nonces = HashSet::new();
    let mut bodies = HashSet::new();
    for _ in 0..200 {
        let parsed = parse_by_hand(
            &cipher
                .seal(slot, b"{\"apiKey\":\"same\"}")
                .await
                .expect("sealed"),
        );
        nonces.insert(parsed.nonce);
        bodies.insert(parsed.ciphertext_and_tag);
    }

    // Then no nonce (and so no ciphertext) repeats, though the data key is the same
    assert_eq!(nonces.len(), 200);
    assert_eq!(bodies.len(), 200);
    assert!(!nonces.contains(&[0u8; 12]));
    assert_eq!(cipher.kms_call_counts().generate_data_key, 1);
}
