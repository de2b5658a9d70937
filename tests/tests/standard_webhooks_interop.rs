//! Outgoing signatures checked by an independent implementation: the `standardwebhooks` package
//! (PyPI, pinned in requirements-dev.txt, installed by `make test`) verifies what the hub signs with
//! the `standard` scheme, and Python's own `hmac` recomputes the `hmac_sha256_hex` signature. Python
//! or the package missing is a failure, not a skip.

use std::io::Write;
use std::process::{Command, Stdio};

use chrono::Utc;
use http::{HeaderName, HeaderValue};
use hub_shared::webhooks::sign::{
    generate_secret, SignatureScheme, Signing, SigningKeys, WebhookSecret, ROTATION_OVERLAP,
};
use serde_json::{json, Value};

/// Reads `[{scheme, secret, headers, body, signatureHeader?}]` on stdin and prints, for each case,
/// `true` when it verifies and otherwise the reason.
const VERIFIER: &str = r#"
import hashlib, hmac, json, sys
try:
    from standardwebhooks.webhooks import Webhook
except ImportError as error:
    print(f"cannot import standardwebhooks: {error}", file=sys.stderr)
    sys.exit(3)
results = []
for case in json.load(sys.stdin):
    body = case["body"].encode("utf-8")
    if case["scheme"] == "standard":
        try:
            Webhook(case["secret"]).verify(body, case["headers"], json_parse=False)
            results.append(True)
        except Exception as error:
            results.append(f"{type(error).__name__}: {error}")
    else:
        expected = hmac.new(case["secret"].encode("utf-8"), body, hashlib.sha256).hexdigest()
        sent = case["headers"][case["signatureHeader"]].split(" ")
        results.append(True if expected in sent else f"{expected} not in {sent}")
print(json.dumps(results))
"#;

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Runs the verifier over `cases`; panics with a clear message when Python or the package is
/// missing.
fn verify_in_python(cases: &[Value]) -> Vec<Value> {
    let python = python();
    let mut child = Command::new(&python)
        .args(["-c", VERIFIER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run `{python}` ({error}): this test needs Python 3 with the \
                 `standardwebhooks` package (`make deps` or `pip install -r requirements-dev.txt`)"
            )
        });
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(Value::from(cases.to_vec()).to_string().as_bytes())
        .expect("cases written to the verifier");
    let output = child.wait_with_output().expect("the verifier finishes");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.code() != Some(3),
        "{stderr}\nthe `standardwebhooks` package is missing for `{python}`: run `make deps` \
         (or `pip install -r requirements-dev.txt`)"
    );
    assert!(
        output.status.success(),
        "the Python verifier failed: {stderr}"
    );
    let results: Vec<Value> = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("verifier output is not JSON ({e}): {stderr}"));
    assert_eq!(results.len(), cases.len());
    results
}

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
