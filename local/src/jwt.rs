//! HS256 JWT verification: what the API Gateway JWT authorizer does in AWS, for the local stack.
//!
//! Deployed, API Gateway verifies the caller's token before the function runs and hands the function
//! the claims in the request context. Locally the gateway does the same with a shared secret
//! (`LOCAL_JWT_SECRET`), so the functions see the same claims without an identity provider.
//!
//! Hand-written on `hmac` + `sha2` + `base64` (URL-safe alphabet, no padding) because the rules are
//! few and every one of them is tested here: the header `alg` must be exactly `HS256` (no `none`, no
//! algorithm confusion), the signature is compared in constant time, `exp` is required, `nbf` and `iat`
//! are honoured when present, and `iss` / `aud` are checked when the verifier is configured with them.
//! Time checks allow [`CLOCK_SKEW_LEEWAY_SECONDS`] of clock skew.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Clock skew tolerated on `exp`, `nbf` and `iat` (seconds): the issuer's clock and ours may differ a
/// little, and a token rejected for a one-second drift is a confusing failure in development.
pub const CLOCK_SKEW_LEEWAY_SECONDS: i64 = 30;

/// The only signing algorithm accepted.
const ALGORITHM: &str = "HS256";

/// Why a token was refused. The messages are safe to show to the caller: they never repeat any part
/// of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("no bearer token was sent")]
    Missing,
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the token signature is not valid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by an issuer that is not accepted")]
    WrongIssuer,
    #[error("the token is not meant for this audience")]
    WrongAudience,
    #[error("the token uses a signing algorithm other than HS256")]
    UnsupportedAlgorithm,
}

/// Verifies HS256 tokens signed with one shared secret, optionally pinned to an issuer and to a set
/// of accepted audiences (as the API Gateway authorizer's `Issuer` and `Audience` settings).
#[derive(Clone)]
pub struct JwtVerifier {
    secret: Vec<u8>,
    issuer: Option<String>,
    audience: Option<Vec<String>>,
}

impl std::fmt::Debug for JwtVerifier {
    // The secret stays out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl JwtVerifier {
    /// `issuer`: when set, the `iss` claim must equal it. `audience`: when set, the token's `aud`
    /// (a string or an array; `client_id` when there is no `aud`, as API Gateway does) must contain at
    /// least one of these values.
    pub fn new(
        secret: impl Into<Vec<u8>>,
        issuer: Option<String>,
        audience: Option<Vec<String>>,
    ) -> JwtVerifier {
        JwtVerifier {
            secret: secret.into(),
            issuer,
            audience,
        }
    }

    /// Checks `token` at unix time `now` (seconds) and returns its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Map<String, Value>, JwtError> {
        if token.is_empty() {
            return Err(JwtError::Missing);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed(
                "a JWT has exactly three dot-separated parts",
            ));
        };

        let header = decode_json_object(header_b64, "the header is not base64url-encoded JSON")?;
        match header.get("alg") {
            Some(Value::String(alg)) if alg == ALGORITHM => {}
            Some(_) => return Err(JwtError::UnsupportedAlgorithm),
            None => return Err(JwtError::Malformed("the header has no alg")),
        }
        if header.contains_key("crit") {
            return Err(JwtError::Malformed(
                "the header lists critical extensions, which are not supported",
            ));
        }

        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| JwtError::Malformed("the signature is not base64url-encoded"))?;
        let signing_input_len = header_b64.len() + 1 + payload_b64.len();
        let signing_input = &token.as_bytes()[..signing_input_len];
        let mut mac = self.mac();
        mac.update(signing_input);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&signature)
            .map_err(|_| JwtError::BadSignature)?;

        let claims = decode_json_object(payload_b64, "the payload is not base64url-encoded JSON")?;
        self.check_claims(&claims, now)?;
        Ok(claims)
    }

    fn check_claims(&self, claims: &Map<String, Value>, now: i64) -> Result<(), JwtError> {
        let exp = numeric_date(claims, "exp", "exp is not a number")?
            .ok_or(JwtError::Malformed("the token has no exp claim"))?;
        if now >= exp.saturating_add(CLOCK_SKEW_LEEWAY_SECONDS) {
            return Err(JwtError::Expired);
        }
        if let Some(nbf) = numeric_date(claims, "nbf", "nbf is not a number")? {
            if now < nbf.saturating_sub(CLOCK_SKEW_LEEWAY_SECONDS) {
                return Err(JwtError::NotYetValid);
            }
        }
        if let Some(iat) = numeric_date(claims, "iat", "iat is not a number")? {
            if iat > now.saturating_add(CLOCK_SKEW_LEEWAY_SECONDS) {
                return Err(JwtError::NotYetValid);
            }
        }
        if let Some(issuer) = &self.issuer {
            match claims.get("iss") {
                Some(Value::String(iss)) if iss == issuer => {}
                _ => return Err(JwtError::WrongIssuer),
            }
        }
        if let Some(accepted) = &self.audience {
            // API Gateway checks `client_id` only when the token has no `aud`.
            let presented = claims.get("aud").or_else(|| claims.get("client_id"));
            let matches = |value: &Value| {
                value
                    .as_str()
                    .is_some_and(|aud| accepted.iter().any(|a| a == aud))
            };
            let ok = match presented {
                Some(Value::Array(values)) => values.iter().any(matches),
                Some(value) => matches(value),
                None => false,
            };
            if !ok {
                return Err(JwtError::WrongAudience);
            }
        }
        Ok(())
    }

    fn mac(&self) -> HmacSha256 {
        hmac_sha256(&self.secret)
    }
}

fn hmac_sha256(secret: &[u8]) -> HmacSha256 {
    // HMAC is defined for keys of any length, so this cannot fail.
    match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

fn decode_json_object(part: &str, reason: &'static str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed(reason))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed(reason)),
    }
}

/// A NumericDate claim (RFC 7519: seconds, possibly fractional), truncated to whole seconds.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &str,
    reason: &'static str,
) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or(JwtError::Malformed(reason)),
        Some(_) => Err(JwtError::Malformed(reason)),
    }
}

/// Signs `claims` as an HS256 JWT (`{"alg":"HS256","typ":"JWT"}` header).
pub fn sign_hs256(claims: &Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = hmac_sha256(secret);
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// A ready-to-use development token for `tenant` / `sub`, valid for `ttl_seconds` from now:
/// claims `{sub, <tenant_claim>, iss, aud, iat, exp}` (`tenant_claim` is `TENANT_CLAIM`, default
/// `tenant_id`).
pub fn dev_token(
    secret: &[u8],
    tenant_claim: &str,
    tenant: &str,
    sub: &str,
    issuer: &str,
    audience: &str,
    ttl_seconds: i64,
) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "sub": sub,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now.saturating_add(ttl_seconds),
    });
    claims[tenant_claim] = json!(tenant);
    sign_hs256(&claims, secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    const SECRET: &[u8] = b"test-secret";
    const NOW: i64 = 1_700_000_000;

    fn verifier() -> JwtVerifier {
        JwtVerifier::new(
            SECRET,
            Some("https://issuer.local".to_owned()),
            Some(vec!["hub-api".to_owned()]),
        )
    }

    fn claims_with(overrides: Value) -> Value {
        let mut claims = json!({
            "sub": "user-1",
            "tenant_id": "demo",
            "iss": "https://issuer.local",
            "aud": "hub-api",
            "iat": NOW - 10,
            "exp": NOW + 3600,
        });
        if let (Some(base), Some(extra)) = (claims.as_object_mut(), overrides.as_object()) {
            for (k, v) in extra {
                if v.is_null() {
                    base.remove(k);
                } else {
                    base.insert(k.clone(), v.clone());
                }
            }
        }
        claims
    }

    fn token_with(overrides: Value) -> String {
        sign_hs256(&claims_with(overrides), SECRET)
    }

    /// Builds a token with an arbitrary header, signed with the test secret.
    fn token_with_header(header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut mac = hmac_sha256(SECRET);
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn signed_token_round_trips_to_its_claims() {
        let token = token_with(json!({}));

        let claims = verifier().verify(&token, NOW).expect("valid token");

        assert_eq!(claims["sub"], "user-1");
        assert_eq!(claims["tenant_id"], "demo");
        assert_eq!(claims["exp"], NOW + 3600);
    }

    #[test]
    fn verifier_without_issuer_or_audience_accepts_any_of_them() {
        let token = token_with(json!({"iss": "someone", "aud": "something"}));

        let claims = JwtVerifier::new(SECRET, None, None).verify(&token, NOW);

        assert!(claims.is_ok(), "{claims:?}");
    }

    #[test]
    fn tampered_payload_is_rejected_as_bad_signature() {
        let token = token_with(json!({}));
        let parts: Vec<&str> = token.split('.').collect();
        let forged_payload =
            URL_SAFE_NO_PAD.encode(claims_with(json!({"tenant_id": "other"})).to_string());
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);

        assert_eq!(verifier().verify(&forged, NOW), Err(JwtError::BadSignature));
    }

    #[test]
    fn tampered_signature_is_rejected() {
        let token = token_with(json!({}));
        let (input, signature) = token.rsplit_once('.').expect("three parts");
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64");
        bytes[0] ^= 0x01;
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(bytes));

        assert_eq!(verifier().verify(&forged, NOW), Err(JwtError::BadSignature));
    }

    #[test]
    fn token_signed_with_another_secret_is_rejected() {
        let token = sign_hs256(&claims_with(json!({})), b"another-secret");

        assert_eq!(verifier().verify(&token, NOW), Err(JwtError::BadSignature));
    }

    #[test]
    fn alg_none_is_rejected_even_without_a_signature() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims_with(json!({})).to_string());

        let unsigned = format!("{header}.{payload}.");

        assert_eq!(
            verifier().verify(&unsigned, NOW),
            Err(JwtError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn algorithms_other_than_hs256_are_rejected_even_when_the_mac_is_right() {
        for alg in ["RS256", "HS512", "hs256", "ES256", "none"] {
            let token = token_with_header(&json!({"alg": alg}), &claims_with(json!({})));

            assert_eq!(
                verifier().verify(&token, NOW),
                Err(JwtError::UnsupportedAlgorithm),
                "alg {alg}"
            );
        }
    }

    #[test]
    fn header_without_alg_or_with_crit_is_malformed() {
        let claims = claims_with(json!({}));
        for header in [
            json!({"typ": "JWT"}),
            json!({"alg": "HS256", "crit": ["b64"]}),
        ] {
            let token = token_with_header(&header, &claims);

            assert!(
                matches!(verifier().verify(&token, NOW), Err(JwtError::Malformed(_))),
                "header {header}"
            );
        }
    }

    #[test]
    fn expired_token_is_rejected_after_the_leeway() {
        let token = token_with(json!({"exp": NOW - CLOCK_SKEW_LEEWAY_SECONDS}));

        assert_eq!(verifier().verify(&token, NOW), Err(JwtError::Expired));
    }

    #[test]
    fn token_expired_within_the_leeway_is_still_accepted() {
        let token = token_with(json!({"exp": NOW - CLOCK_SKEW_LEEWAY_SECONDS + 1}));

        assert!(verifier().verify(&token, NOW).is_ok());
    }

    #[test]
    fn token_without_exp_is_malformed() {
        let token = token_with(json!({"exp": null}));

        assert_eq!(
            verifier().verify(&token, NOW),
            Err(JwtError::Malformed("the token has no exp claim"))
        );
    }

    #[test]
    fn non_numeric_exp_is_malformed() {
        let token = token_with(json!({"exp": "tomorrow"}));

        assert!(matches!(
            verifier().verify(&token, NOW),
            Err(JwtError::Malformed(_))
        ));
    }

    #[test]
    fn fractional_exp_is_accepted_as_a_numeric_date() {
        let token = token_with(json!({"exp": (NOW + 100) as f64 + 0.5}));

        assert!(verifier().verify(&token, NOW).is_ok());
    }

    #[test]
    fn nbf_in_the_future_is_not_yet_valid() {
        let token = token_with(json!({"nbf": NOW + CLOCK_SKEW_LEEWAY_SECONDS + 1}));

        assert_eq!(verifier().verify(&token, NOW), Err(JwtError::NotYetValid));
    }

    #[test]
    fn nbf_in_the_past_is_accepted() {
        let token = token_with(json!({"nbf": NOW - 5}));

        assert!(verifier().verify(&token, NOW).is_ok());
    }

    #[test]
    fn iat_in_the_future_is_not_yet_valid() {
        let token = token_with(json!({"iat": NOW + CLOCK_SKEW_LEEWAY_SECONDS + 1}));

        assert_eq!(verifier().verify(&token, NOW), Err(JwtError::NotYetValid));
    }

    #[test]
    fn wrong_or_missing_issuer_is_rejected() {
        for iss in [json!("https://evil.example"), Value::Null] {
            let token = token_with(json!({ "iss": iss }));

            assert_eq!(
                verifier().verify(&token, NOW),
                Err(JwtError::WrongIssuer),
                "iss {iss}"
            );
        }
    }

    #[test]
    fn wrong_or_missing_audience_is_rejected() {
        for aud in [
            json!("other-api"),
            json!(["a", "b"]),
            json!(42),
            Value::Null,
        ] {
            let token = token_with(json!({ "aud": aud }));

            assert_eq!(
                verifier().verify(&token, NOW),
                Err(JwtError::WrongAudience),
                "aud {aud}"
            );
        }
    }

    #[test]
    fn audience_array_containing_an_accepted_value_is_accepted() {
        let token = token_with(json!({"aud": ["other", "hub-api"]}));

        assert!(verifier().verify(&token, NOW).is_ok());
    }

    #[test]
    fn client_id_stands_in_for_a_missing_audience_as_in_api_gateway() {
        let token = token_with(json!({"aud": null, "client_id": "hub-api"}));

        assert!(verifier().verify(&token, NOW).is_ok());
    }

    #[test]
    fn empty_token_is_missing() {
        assert_eq!(verifier().verify("", NOW), Err(JwtError::Missing));
    }

    #[test]
    fn structurally_wrong_tokens_are_malformed() {
        let valid = token_with(json!({}));
        for token in [
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.???.***",
            &format!("{valid}.extra"),
            &format!("{}=", valid),
        ] {
            let result = verifier().verify(token, NOW);

            assert!(
                matches!(
                    result,
                    Err(JwtError::Malformed(_)) | Err(JwtError::BadSignature)
                ),
                "{token}: {result:?}"
            );
        }
    }

    #[test]
    fn payload_that_is_not_a_json_object_is_malformed() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#);
        let payload = URL_SAFE_NO_PAD.encode("[1,2,3]");
        let input = format!("{header}.{payload}");
        let mut mac = hmac_sha256(SECRET);
        mac.update(input.as_bytes());
        let token = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );

        assert!(matches!(
            verifier().verify(&token, NOW),
            Err(JwtError::Malformed(_))
        ));
    }

    #[test]
    fn random_garbage_never_verifies_and_never_panics() {
        let mut rng = rand::thread_rng();
        let alphabet: Vec<char> = "abcXYZ019-_.=+/ \u{e9}\u{1F600}{}\"".chars().collect();
        for _ in 0..5_000 {
            let len = rng.gen_range(0..80);
            let token: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();

            assert!(verifier().verify(&token, NOW).is_err(), "{token}");
        }
        // Random bytes behind a valid-looking header, too.
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#);
        for _ in 0..1_000 {
            let payload: Vec<u8> = (0..rng.gen_range(0..40)).map(|_| rng.gen()).collect();
            let signature: Vec<u8> = (0..32).map(|_| rng.gen()).collect();
            let token = format!(
                "{header}.{}.{}",
                URL_SAFE_NO_PAD.encode(payload),
                URL_SAFE_NO_PAD.encode(signature)
            );

            assert!(verifier().verify(&token, NOW).is_err());
        }
    }

    #[test]
    fn dev_token_carries_tenant_subject_issuer_and_audience() {
        let token = dev_token(
            SECRET,
            "tenant_id",
            "demo",
            "dev-user",
            "https://issuer.local",
            "hub-api",
            600,
        );
        let now = chrono::Utc::now().timestamp();

        let claims = verifier().verify(&token, now).expect("dev token verifies");

        assert_eq!(claims["tenant_id"], "demo");
        assert_eq!(claims["sub"], "dev-user");
        assert_eq!(claims["iss"], "https://issuer.local");
        assert_eq!(claims["aud"], "hub-api");
        let iat = claims["iat"].as_i64().expect("iat");
        assert_eq!(claims["exp"].as_i64(), Some(iat + 600));
    }

    #[test]
    fn debug_output_does_not_reveal_the_secret() {
        let printed = format!("{:?}", verifier());

        assert!(!printed.contains("test-secret"), "{printed}");
    }
}
