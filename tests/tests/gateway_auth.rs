//! Through the local gateway every management route needs a valid JWT: none, expired, forged or
//! unsigned → 401 problem, and the function is never reached.

use hub_local::jwt::sign_hs256;
use hub_tests::spawn_app;
use serde_json::json;

const SAMPLE_ID: &str = "int_00000000000000000000000000";

#[tokio::test]
async fn management_routes_refuse_missing_expired_and_forged_tokens() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| {
        json!({"sub": "u", "tenant_id": "acme", "iss": app.options.jwt_issuer, "aud": app.options.jwt_audience,
               "iat": now - 7200, "exp": exp})
    };
    let expired = sign_hs256(&claims(now - 3600), app.options.jwt_secret.as_bytes());
    let forged = sign_hs256(&claims(now + 3600), b"not-the-secret");
    let unsigned = {
        let valid = app.token("acme");
        let mut parts: Vec<&str> = valid.split('.').collect();
        parts[0] = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
        parts[2] = "";
        parts.join(".")
    };

    let public = ["/api/health", "/api/openapi.json"];
    // The OAuth callback is public too, but answers 400 without a state: it is checked below.
    let guarded_oauth = oauth::ROUTES
        .iter()
        .filter(|(_, path)| !path.contains("/callback/"));
    for (method, template) in integrations::ROUTES.iter().chain(guarded_oauth) {
        let path = template
            .replace("{id}", SAMPLE_ID)
            .replace("{slug}", "stripe")
            .replace("{provider}", "google_calendar");
        if public.contains(&path.as_str()) {
            let reply = app
                .send(app.http.request(
                    method.parse().expect("method"),
                    format!("{}{path}", app.url),
                ))
                .await;
            assert_eq!(reply.status, 200, "{method} {path} is public");
            continue;
        }
        for (label, token) in [
            ("no token", None),
            ("expired", Some(&expired)),
            ("forged", Some(&forged)),
            ("alg none", Some(&unsigned)),
        ] {
            let mut request = app.http.request(
                method.parse().expect("method"),
                format!("{}{path}", app.url),
            );
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let reply = app
                .send(
                    request
                        .header("content-type", "application/json")
                        .body("{}"),
                )
                .await;
            assert_eq!(
                reply.status, 401,
                "{method} {path} with {label}: {}",
                reply.text
            );
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json")
            );
            assert_eq!(reply.json()["code"], "unauthorized");
            assert!(reply.header("x-request-id").is_some());
        }
    }
}

#[tokio::test]
async fn the_oauth_callback_is_public_and_proves_its_caller_by_the_state_alone() {
    let app = spawn_app().await;
    for query in ["", "?state=never-issued&code=x"] {
        let reply = app
            .send(app.http.get(format!(
                "{}/api/integrations/callback/google_calendar{query}",
                app.url
            )))
            .await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.text);
        assert_eq!(reply.json()["code"], "invalid_state");
    }
}

#[tokio::test]
async fn a_token_without_the_tenant_claim_is_refused_by_the_function() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    let token = sign_hs256(
        &json!({"sub": "u", "iss": app.options.jwt_issuer, "aud": app.options.jwt_audience, "iat": now, "exp": now + 600}),
        app.options.jwt_secret.as_bytes(),
    );
    let reply = app
        .send(
            app.http
                .get(format!("{}/api/integrations", app.url))
                .bearer_auth(token),
        )
        .await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert!(reply.json()["detail"]
        .as_str()
        .expect("detail")
        .contains("tenant_id"));
}

#[tokio::test]
async fn head_of_health_answers_like_get_without_a_token_and_without_a_body() {
    // Given the local stack
    let app = spawn_app().await;

    // When health is asked for with GET and with HEAD, without a token
    let get = app
        .send(app.http.get(format!("{}/api/health", app.url)))
        .await;
    let head = app
        .send(app.http.head(format!("{}/api/health", app.url)))
        .await;

    // Then HEAD has GET's status and headers, and no body
    assert_eq!(get.status, 200, "{}", get.text);
    assert_eq!(head.status, 200, "{}", head.text);
    assert_eq!(head.text, "");
    for name in ["content-type", "content-length"] {
        assert_eq!(head.header(name), get.header(name), "{name}");
    }
    assert!(head.header("x-request-id").is_some());
    assert!(head.header("apigw-requestid").is_some());
}
