//! HS256 JWT verification: what the API Gateway JWT authorizer does in AWS, for the local stack.
//!
//! Deployed, API Gateway verifies the caller's token before the function runs and hands the function
//! the claims in the request context. Locally the gateway does the same with a shared secret
//! (`LOCAL_JWT_SECRET`), so the functions see the same claims without an identity provider.
//!
//! The signature and the registered claims are checked by `jsonwebtoken` (on aws-lc-rs, the crypto
//! the AWS SDK already links): HS256 only, `exp` required, `nbf` honoured, `iss` and `aud` when the
//! verifier is configured with them, [`CLOCK_SKEW_LEEWAY_SECONDS`] of clock skew. This module adds
//! the rules API Gateway applies and `jsonwebtoken` does not: the header's `alg` must be exactly
//! `HS256` (told apart from a malformed header), a `crit` header is refused whatever it lists, an
//! `iat` in the future is refused, a configured issuer must be present, an `aud` must be a string or
//! a list of strings, and `client_id` stands in for a missing `aud`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Map, Value};

/// Clock skew tolerated on `exp`, `nbf` and `iat` (seconds): the issuer's clock and ours may differ a
/// little, and a token rejected for a one-second drift is a confusing failure in development.
pub const CLOCK_SKEW_LEEWAY_SECONDS: u64 = 30;

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
    key: DecodingKey,
    validation: Validation,
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
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = CLOCK_SKEW_LEEWAY_SECONDS;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        // `aud` is checked here when present; without it, `client_id` is checked in `verify`.
        match &audience {
            Some(accepted) => validation.set_audience(accepted),
            // Otherwise jsonwebtoken would refuse every token that has an `aud`.
            None => validation.validate_aud = false,
        }
        JwtVerifier {
            key: DecodingKey::from_secret(&secret.into()),
            validation,
            issuer,
            audience,
        }
    }

    /// Checks `token` against the current time and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, JwtError> {
        if token.is_empty() {
            return Err(JwtError::Missing);
        }
        if token.split('.').count() != 3 {
            return Err(JwtError::Malformed(
                "a JWT has exactly three dot-separated parts",
            ));
        }
        check_header(token)?;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|error| jwt_error(error.kind()))?
            .claims;
        self.check_extra_claims(&claims, jsonwebtoken::get_current_timestamp())?;
        Ok(claims)
    }

    /// What API Gateway checks beyond `jsonwebtoken`'s registered-claim validation.
    fn check_extra_claims(&self, claims: &Map<String, Value>, now: u64) -> Result<(), JwtError> {
        if let Some(iat) = claims.get("iat") {
            let iat = iat
                .as_f64()
                .filter(|iat| iat.is_finite())
                .ok_or(JwtError::Malformed("iat is not a number"))?;
            if iat > now.saturating_add(CLOCK_SKEW_LEEWAY_SECONDS) as f64 {
                return Err(JwtError::NotYetValid);
            }
        }
        if let Some(accepted) = &self.audience {
            match claims.get("aud") {
                // API Gateway checks `client_id` only when the token has no `aud`.
                None => {
                    let matches = claims
                        .get("client_id")
                        .and_then(Value::as_str)
                        .is_some_and(|client_id| accepted.iter().any(|a| a == client_id));
                    if !matches {
                        return Err(JwtError::WrongAudience);
                    }
                }
                // jsonwebtoken 10 skips an `aud` it cannot parse (say `42`) instead of refusing it.
                Some(Value::String(_)) => {}
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
                Some(_) => return Err(JwtError::WrongAudience),
            }
        }
        Ok(())
    }
}

/// The header rules checked before `jsonwebtoken` sees the token, so that an unsupported algorithm
/// (`none`, `hs256`, `RS256`) is told apart from a malformed header, and `crit` is refused.
fn check_header(token: &str) -> Result<(), JwtError> {
    let reason = "the header is not base64url-encoded JSON";
    let header_b64 = token.split('.').next().unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| JwtError::Malformed(reason))?;
    let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(JwtError::Malformed(reason));
    };
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
    Ok(())
}

fn jwt_error(kind: &ErrorKind) -> JwtError {
    match kind {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
        ErrorKind::InvalidAudience => JwtError::WrongAudience,
        ErrorKind::InvalidAlgorithm => JwtError::UnsupportedAlgorithm,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => JwtError::Malformed("the token has no exp claim"),
            "iss" => JwtError::WrongIssuer,
            _ => JwtError::Malformed("a required claim is missing"),
        },
        ErrorKind::InvalidClaimFormat(claim) => match claim.as_str() {
            "exp" => JwtError::Malformed("exp is not a number"),
            "nbf" => JwtError::Malformed("nbf is not a number"),
            "iss" => JwtError::WrongIssuer,
            "aud" => JwtError::WrongAudience,
            _ => JwtError::Malformed("a claim has the wrong type"),
        },
        ErrorKind::Base64(_) => JwtError::Malformed("a part is not base64url-encoded"),
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            JwtError::Malformed("the payload is not base64url-encoded JSON")
        }
        _ => JwtError::Malformed("the token is not a valid JWT"),
    }
}

/// Signs `claims` as an HS256 JWT (`{"typ":"JWT","alg":"HS256"}` header).
pub fn sign_hs256(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing of a JSON value cannot fail")
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
    use hmac::{Hmac, Mac};
    use rand::Rng;
    use sha2::Sha256;

    const SECRET: &[u8] = b"test-secret";
    const LEEWAY: i64 = CLOCK_SKEW_LEEWAY_SECONDS as i64;

    /// Now, in the seconds of a NumericDate: `jsonwebtoken` checks against the system clock.
    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// Tokens with hand-made headers are signed here, below `jsonwebtoken`, which only writes
    /// headers it supports.
    fn hmac_sha256(secret: &[u8]) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length")
    }

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
            "iat": now() - 10,
            "exp": now() + 3600,
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

        let claims = verifier().verify(&token).expect("valid token");

        assert_eq!(claims["sub"], "user-1");
        assert_eq!(claims["tenant_id"], "demo");
        assert_eq!(claims["exp"], now() + 3600);
    }

    #[test]
    fn verifier_without_issuer_or_audience_accepts_any_of_them() {
        let token = token_with(json!({"iss": "someone", "aud": "something"}));

        let claims = JwtVerifier::new(SECRET, None, None).verify(&token);

        assert!(claims.is_ok(), "{claims:?}");
    }

    #[test]
    fn tampered_payload_is_rejected_as_bad_signature() {
        let token = token_with(json!({}));
        let parts: Vec<&str> = token.split('.').collect();
        let forged_payload =
            URL_SAFE_NO_PAD.encode(claims_with(json!({"tenant_id": "other"})).to_string());
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);

        assert_eq!(verifier().verify(&forged), Err(JwtError::BadSignature));
    }

    #[test]
    fn tampered_signature_is_rejected() {
        let token = token_with(json!({}));
        let (input, signature) = token.rsplit_once('.').expect("three parts");
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64");
        bytes[0] ^= 0x01;
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(bytes));

        assert_eq!(verifier().verify(&forged), Err(JwtError::BadSignature));
    }

    #[test]
    fn token_signed_with_another_secret_is_rejected() {
        let token = sign_hs256(&claims_with(json!({})), b"another-secret");

        assert_eq!(verifier().verify(&token), Err(JwtError::BadSignature));
    }

    #[test]
    fn alg_none_is_rejected_even_without_a_signature() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims_with(json!({})).to_string());

        let unsigned = format!("{header}.{payload}.");

        assert_eq!(
            verifier().verify(&unsigned),
            Err(JwtError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn algorithms_other_than_hs256_are_rejected_even_when_the_mac_is_right() {
        for alg in ["RS256", "HS512", "hs256", "ES256", "none"] {
            let token = token_with_header(&json!({"alg": alg}), &claims_with(json!({})));

            assert_eq!(
                verifier().verify(&token),
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
                matches!(verifier().verify(&token), Err(JwtError::Malformed(_))),
                "header {header}"
            );
        }
    }

    #[test]
    fn expired_token_is_rejected_after_the_leeway() {
        let token = token_with(json!({"exp": now() - LEEWAY - 2}));

        assert_eq!(verifier().verify(&token), Err(JwtError::Expired));
    }

    #[test]
    fn token_expired_within_the_leeway_is_still_accepted() {
        let token = token_with(json!({"exp": now() - LEEWAY + 2}));

        assert!(verifier().verify(&token).is_ok());
    }

    #[test]
    fn token_without_exp_is_malformed() {
        let token = token_with(json!({"exp": null}));

        assert_eq!(
            verifier().verify(&token),
            Err(JwtError::Malformed("the token has no exp claim"))
        );
    }

    #[test]
    fn non_numeric_exp_is_malformed() {
        let token = token_with(json!({"exp": "tomorrow"}));

        assert!(matches!(
            verifier().verify(&token),
            Err(JwtError::Malformed(_))
        ));
    }

    #[test]
    fn fractional_exp_is_accepted_as_a_numeric_date() {
        let token = token_with(json!({"exp": (now() + 100) as f64 + 0.5}));

        assert!(verifier().verify(&token).is_ok());
    }

    #[test]
    fn nbf_in_the_future_is_not_yet_valid() {
        let token = token_with(json!({"nbf": now() + LEEWAY + 2}));

        assert_eq!(verifier().verify(&token), Err(JwtError::NotYetValid));
    }

    #[test]
    fn nbf_in_the_past_is_accepted() {
        let token = token_with(json!({"nbf": now() - 5}));

        assert!(verifier().verify(&token).is_ok());
    }

    #[test]
    fn iat_in_the_future_is_not_yet_valid() {
        let token = token_with(json!({"iat": now() + LEEWAY + 2}));

        assert_eq!(verifier().verify(&token), Err(JwtError::NotYetValid));
    }

    #[test]
    fn wrong_or_missing_issuer_is_rejected() {
        for iss in [json!("https://evil.example"), Value::Null] {
            let token = token_with(json!({ "iss": iss }));

            assert_eq!(
                verifier().verify(&token),
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
            json!(["hub-api", 42]),
            Value::Null,
        ] {
            let token = token_with(json!({ "aud": aud }));

            assert_eq!(
                verifier().verify(&token),
                Err(JwtError::WrongAudience),
                "aud {aud}"
            );
        }
    }

    #[test]
    fn audience_array_containing_an_accepted_value_is_accepted() {
        let token = token_with(json!({"aud": ["other", "hub-api"]}));

        assert!(verifier().verify(&token).is_ok());
    }

    #[test]
    fn client_id_stands_in_for_a_missing_audience_as_in_api_gateway() {
        let token = token_with(json!({"aud": null, "client_id": "hub-api"}));

        assert!(verifier().verify(&token).is_ok());
    }

    #[test]
    fn empty_token_is_missing() {
        assert_eq!(verifier().verify(""), Err(JwtError::Missing));
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
            let result = verifier().verify(token);

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
            verifier().verify(&token),
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

            assert!(verifier().verify(&token).is_err(), "{token}");
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

            assert!(verifier().verify(&token).is_err());
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

        let claims = verifier().verify(&token).expect("dev token verifies");

        assert_eq!(claims["tenant_id"], "demo");
        assert_eq!(claims["sub"], "dev-user");
        assert_eq!(claims["iss"], "https://issuer.local");
        assert_eq!(claims["aud"], "hub-api");
        let iat = claims["iat"].as_i64().expect("iat");
        assert_eq!(claims["exp"].as_i64(), Some(iat + 600));
        assert!((iat - now()).abs() <= 2, "iat {iat} is now");
    }

    #[test]
    fn debug_output_does_not_reveal_the_secret() {
        let printed = format!("{:?}", verifier());

        assert!(!printed.contains("test-secret"), "{printed}");
    }
}
