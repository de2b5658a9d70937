//! Outgoing signatures checked by an independent implementation: the `standardwebhooks` package
//! (PyPI, pinned in requirements-dev.txt, installed by `make test`) verifies what the hub signs with
//! the `standard` scheme, and Python's own `hmac` recomputes the `hmac_sha256_hex` signature. Python
//! or the package missing is a failure, not a skip.

use chrono::Utc;
use http::{HeaderName, HeaderValue};
use hub_shared::webhooks::sign::{
    generate_secret, SignatureScheme, Signing, SigningKeys, WebhookSecret, ROTATION_OVERLAP,
};
use hub_tests::verify_in_python;
use serde_json::{json, Value};

fn as_json(headers: &[(HeaderName, HeaderValue)]) -> Value {
    headers
        .iter()
        .map(|(name, value)| (name.to_string(), json!(value.to_str().unwrap())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn case(scheme: &str, secret: &WebhookSecret, headers: &Value, body: &str) -> Value {
    json!({"scheme": scheme, "secret": secret.expose(), "headers": headers, "body": body})
}

#[test]
fn standard_webhooks_python_library_verifies_what_the_hub_signs() {
    let (old, new) = (generate_secret(), generate_secret());
    let now = Utc::now();
    let body = r#"{"type":"meeting.created","data":{"name":"ישיבת צוות — اجتماع 🎉","n":1}}"#;
    let sign = |keys: &SigningKeys, body: &str| {
        as_json(
            &Signing::Standard
                .sign(keys, "dlv_01interop", now.timestamp(), body.as_bytes())
                .unwrap(),
        )
    };
    let single = sign(&SigningKeys::new(new.clone()), body);
    let rotated_keys =
        SigningKeys::new(new.clone()).with_previous(old.clone(), now + ROTATION_OVERLAP, now);
    let rotated = sign(&rotated_keys, body);
    assert_eq!(
        rotated["webhook-signature"]
            .as_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );

    let results = verify_in_python(&[
        case("standard", &new, &single, body),
        case("standard", &new, &rotated, body),
        case("standard", &old, &rotated, body),
        case("standard", &new, &single, &body.replace("🎉", "🎈")),
        case("standard", &generate_secret(), &single, body),
    ]);

    assert_eq!(
        results[..3],
        [json!(true), json!(true), json!(true)],
        "{results:?}"
    );
    for refused in &results[3..] {
        assert!(
            refused
                .as_str()
                .is_some_and(|reason| reason.contains("No matching signature")),
            "{results:?}"
        );
    }
}

#[test]
fn python_hmac_recomputes_the_hex_scheme_signature_with_the_whole_secret_as_key() {
    let (old, new) = (generate_secret(), generate_secret());
    let now = Utc::now();
    let body = r#"{"name":"שלום","emoji":"👩‍💻"}"#;
    let signing =
        Signing::from_settings(SignatureScheme::HmacSha256Hex, Some("X-Acme-Signature")).unwrap();
    let keys =
        SigningKeys::new(new.clone()).with_previous(old.clone(), now + ROTATION_OVERLAP, now);
    let headers = as_json(
        &signing
            .sign(&keys, "dlv_01interop", now.timestamp(), body.as_bytes())
            .unwrap(),
    );
    let hex_case = |secret: &WebhookSecret| {
        let mut case = case("hmac_sha256_hex", secret, &headers, body);
        case["signatureHeader"] = json!("x-acme-signature");
        case
    };

    let results = verify_in_python(&[hex_case(&new), hex_case(&old), hex_case(&generate_secret())]);

    assert_eq!(results[..2], [json!(true), json!(true)], "{results:?}");
    assert_ne!(results[2], json!(true));
    assert_eq!(headers["x-webhook-id"], "dlv_01interop");
}
