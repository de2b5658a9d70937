//! OAuth connections end to end: the local stack against moto and a local authorization server
//! that checks what a real one checks (client authentication, redirect URI, PKCE verifier,
//! single-use codes, refresh-token rotation).

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use hub_local::oauth_server::{
    s256_challenge, AuthServerOptions, ClientAuthMethod, InjectedFailure, LocalAuthServer,
};
use hub_shared::services::Services;
use hub_tests::oauth::{
    browser, client_id, configure_app, connect, consent, follow_callback, location_params,
    provider_yaml, register_client, start_connect, ProviderShape, CLIENT_SECRET,
};
use hub_tests::{spawn_app_with, write_providers_file, TestApp};
use serde_json::{json, Value};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TENANT: &str = "acme";

/// An authorization server, and a stack whose catalog has `slugs` pointing at it.
async fn given_stack(
    options: AuthServerOptions,
    providers: &[(&str, ProviderShape, ClientAuthMethod)],
) -> (TestApp, LocalAuthServer) {
    let server = LocalAuthServer::start(options).await.expect("auth server");
    let yaml: String = providers
        .iter()
        .map(|(slug, shape, _)| provider_yaml(slug, &server, *shape))
        .collect();
    let file = write_providers_file(&yaml);
    let app = spawn_app_with(|options| {
        options.providers_file = Some(file);
        // The tests tick the schedule themselves (the token sweep).
        options.schedule_interval = Duration::from_secs(3600);
    })
    .await;
    for (slug, _, auth) in providers {
        register_client(&app, &server, slug, *auth);
        configure_app(&app, TENANT, slug).await;
    }
    (app, server)
}

fn server_options() -> AuthServerOptions {
    AuthServerOptions {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..AuthServerOptions::default()
    }
}

fn basic_shape() -> ProviderShape {
    ProviderShape {
        token_auth_basic: true,
        ..ProviderShape::default()
    }
}

/// `POST /api/integrations/{id}/refresh`.
async fn refresh(app: &TestApp, id: &str) -> hub_tests::Reply {
    app.post_json(
        TENANT,
        &format!("/api/integrations/{id}/refresh"),
        &json!({}),
    )
    .await
}

/// The integration id of a successful callback (asserting the redirect's shape).
fn connected_id(reply: &hub_tests::Reply) -> String {
    assert_eq!(reply.status, 302, "callback: {}", reply.text);
    let location = reply.header("location").expect("location");
    assert!(location.starts_with("http://localhost/done?"), "{location}");
    let params = location_params(reply);
    assert_eq!(params.get("status").map(String::as_str), Some("connected"));
    params["integrationId"].clone()
}

/// The stored token set, opened as the functions open it.
async fn stored_tokens(app: &TestApp, id: &str) -> hub_shared::credentials::CredentialFields {
    let services =
        Services::new(app.stack.config.clone(), &hub_tests::sdk_config()).expect("services");
    let item = services
        .store
        .get_integration(
            &hub_shared::domain::TenantId::parse(TENANT).expect("tenant"),
            &hub_shared::domain::IntegrationId::parse(id).expect("id"),
        )
        .await
        .expect("read")
        .expect("exists");
    hub_shared::credentials::open(
        services.store.cipher(),
        TENANT,
        &item.id,
        item.credentials.as_ref().expect("credentials"),
    )
    .await
    .expect("open")
}

#[tokio::test]
async fn connect_consent_callback_stores_a_connected_integration_for_both_token_auth_modes() {
    let (app, server) = given_stack(
        server_options(),
        &[
            (
                "acme_body",
                ProviderShape::default(),
                ClientAuthMethod::Post,
            ),
            ("acme_basic", basic_shape(), ClientAuthMethod::Basic),
        ],
    )
    .await;

    // Without Accept: application/json, connect is the redirect itself.
    let redirect = app
        .send(
            browser()
                .get(format!(
                    "{}/api/integrations/connect/acme_body?returnUrl=http%3A%2F%2Flocalhost%2Fdone",
                    app.url
                ))
                .bearer_auth(app.token(TENANT)),
        )
        .await;
    assert_eq!(redirect.status, 302, "{}", redirect.text);
    assert!(redirect
        .header("location")
        .is_some_and(|l| l.starts_with(&server.authorize_url())));
    assert_eq!(redirect.header("cache-control"), Some("no-store"));

    for (slug, method) in [
        ("acme_body", ClientAuthMethod::Post),
        ("acme_basic", ClientAuthMethod::Basic),
    ] {
        let authorize = start_connect(
            &app,
            TENANT,
            slug,
            "returnUrl=http%3A%2F%2Flocalhost%2Fdone&scopes=extra.scope",
        )
        .await;
        let query: std::collections::HashMap<String, String> = url::Url::parse(&authorize)
            .expect("url")
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(query["client_id"], client_id(slug));
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["access_type"], "offline");
        assert_eq!(query["scope"], "contacts.read offline_access extra.scope");
        assert_eq!(
            query["redirect_uri"],
            format!("{}/api/integrations/callback/{slug}", app.url)
        );
        let callback = consent(&authorize).await;
        assert!(callback.contains("iss="), "the server sends RFC 9207 iss");
        let id = connected_id(&follow_callback(&app, &callback).await);

        let exchange = server
            .token_requests()
            .into_iter()
            .rfind(|r| r.grant_type == "authorization_code")
            .expect("a code exchange");
        assert_eq!(exchange.status, 200, "{exchange:?}");
        assert_eq!(exchange.client_auth, Some(method));
        assert_eq!(exchange.client_id, Some(client_id(slug)));
        let verifier = exchange.code_verifier.expect("a PKCE verifier");
        assert_eq!(s256_challenge(&verifier), query["code_challenge"]);
        assert_eq!(
            exchange.redirect_uri.as_deref(),
            Some(query["redirect_uri"].as_str())
        );

        let integration = app
            .get(TENANT, &format!("/api/integrations/{id}"))
            .await
            .json();
        assert_eq!(integration["status"], "connected");
        assert_eq!(integration["authMode"], "oauth2");
        assert_eq!(integration["provider"], slug);
        assert_eq!(integration["connectionKey"], "default");
        assert_eq!(integration["connectedBy"], format!("user-{TENANT}"));
        assert_eq!(integration["credentials"]["configured"], true);
        assert!(integration["credentials"]["tokenExpiresAt"].is_string());
        assert_eq!(integration["credentials"]["hint"], Value::Null);

        // The token works at the provider's API (test connection applies it as a bearer).
        let test = app
            .post_json(TENANT, &format!("/api/integrations/{id}/test"), &json!({}))
            .await;
        assert_eq!(test.json()["ok"], true, "{}", test.text);
    }
}

#[tokio::test]
async fn states_are_single_use_bound_to_their_provider_and_expire() {
    let (app, server) = given_stack(
        server_options(),
        &[
            ("acme_one", ProviderShape::default(), ClientAuthMethod::Post),
            ("acme_two", ProviderShape::default(), ClientAuthMethod::Post),
        ],
    )
    .await;
    let return_url = "returnUrl=http%3A%2F%2Flocalhost%2Fdone";

    // Reused: the second arrival of the same callback is refused.
    let callback = consent(&start_connect(&app, TENANT, "acme_one", return_url).await).await;
    connected_id(&follow_callback(&app, &callback).await);
    let reused = follow_callback(&app, &callback).await;
    assert_eq!(reused.status, 400, "{}", reused.text);
    assert_eq!(reused.json()["code"], "invalid_state");

    // Tampered: one character changed.
    let callback = consent(&start_connect(&app, TENANT, "acme_one", return_url).await).await;
    let state = url::Url::parse(&callback)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .expect("state")
        .1
        .to_string();
    let mut tampered = state.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = callback.replace(&state, std::str::from_utf8(&tampered).expect("utf8"));
    assert_eq!(follow_callback(&app, &tampered).await.status, 400);

    // Another provider's callback: refused, and the state is spent.
    let foreign = callback.replace("/callback/acme_one", "/callback/acme_two");
    let refused = follow_callback(&app, &foreign).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["code"], "invalid_state");
    assert_eq!(follow_callback(&app, &callback).await.status, 400);

    // Expired: the state's expiry moved into the past (DynamoDB's TTL deletes late).
    let callback = consent(&start_connect(&app, TENANT, "acme_one", return_url).await).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&hub_tests::sdk_config());
    for item in app.scan_table().await {
        if item
            .get("type")
            .and_then(|t| t.as_s().ok())
            .map(String::as_str)
            == Some("oauth_state")
        {
            dynamo
                .update_item()
                .table_name(&app.stack.provisioned.table_name)
                .key("pk", item["pk"].clone())
                .key("sk", item["sk"].clone())
                .update_expression("SET expiresAt = :past")
                .expression_attribute_values(":past", AttributeValue::N("1".into()))
                .send()
                .await
                .expect("update");
        }
    }
    assert_eq!(follow_callback(&app, &callback).await.status, 400);
    // No state is stored in the clear: only its hash is a key.
    let raw_state_seen = app
        .scan_table()
        .await
        .iter()
        .any(|item| format!("{item:?}").contains(&state));
    assert!(!raw_state_seen);

    // Return URLs outside the allowlist are refused at connect time.
    for url in [
        "https%3A%2F%2Fevil.test%2F",
        "http%3A%2F%2Flocalhost.evil.test%2F",
        "http%3A%2F%2Flocalhost%40evil.test%2F",
    ] {
        let reply = app
            .get(
                TENANT,
                &format!("/api/integrations/connect/acme_one?returnUrl={url}"),
            )
            .await;
        assert_eq!(reply.status, 400, "{url}: {}", reply.text);
        assert_eq!(reply.json()["errors"][0]["field"], "returnUrl");
    }
    assert_eq!(
        app.get(TENANT, "/api/integrations/connect/acme_one")
            .await
            .status,
        400
    );

    // Denied consent: back to the app with the error, nothing connected.
    server.deny_next_consent();
    let denied = follow_callback(
        &app,
        &consent(&start_connect(&app, TENANT, "acme_two", return_url).await).await,
    )
    .await;
    assert_eq!(denied.status, 302);
    assert_eq!(location_params(&denied)["error"], "access_denied");

    // A different iss (RFC 9207 mix-up): refused before any code exchange.
    let exchanges_before = server.token_requests().len();
    let callback = consent(&start_connect(&app, TENANT, "acme_two", return_url).await).await;
    let wrong_iss = url::Url::parse(&callback).expect("url");
    let mut pairs: Vec<(String, String)> = wrong_iss.query_pairs().into_owned().collect();
    for (name, value) in &mut pairs {
        if name == "iss" {
            *value = "https://attacker.example".to_string();
        }
    }
    let mut wrong_iss = wrong_iss.clone();
    wrong_iss.query_pairs_mut().clear().extend_pairs(pairs);
    let mixed_up = follow_callback(&app, wrong_iss.as_str()).await;
    assert_eq!(mixed_up.status, 302);
    assert_eq!(location_params(&mixed_up)["error"], "invalid_issuer");
    assert_eq!(server.token_requests().len(), exchanges_before);

    let listed = app
        .get(TENANT, "/api/integrations?provider=acme_two")
        .await
        .json();
    assert_eq!(
        listed["items"],
        json!([]),
        "nothing was connected for acme_two"
    );

    // Another tenant has no OAuth app for the provider (and no platform default).
    let missing = app
        .get(
            "globex",
            &format!("/api/integrations/connect/acme_one?{return_url}"),
        )
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["code"], "oauth_app_missing");
}

#[tokio::test]
async fn concurrent_callers_make_one_refresh_and_all_use_its_rotated_tokens() {
    let (app, server) = given_stack(
        AuthServerOptions {
            // Inside the 5-minute refresh window from the start.
            access_token_ttl: Duration::from_secs(120),
            // Long enough that every caller arrives while the refresh is in flight.
            token_delay: Duration::from_millis(400),
            ..server_options()
        },
        &[("acme_crm", ProviderShape::default(), ClientAuthMethod::Post)],
    )
    .await;
    let id = connected_id(&connect(&app, TENANT, "acme_crm", "").await);
    let before = stored_tokens(&app, &id).await;
    server.set_access_token_ttl(Duration::from_secs(3600));

    // Ten callers in separate services (own clients, caches and connections): they share only
    // DynamoDB.
    let config = app.stack.config.clone();
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let services =
                Services::new(config.clone(), &hub_tests::sdk_config()).expect("services");
            let id = id.clone();
            tokio::spawn(async move {
                let tenant = hub_shared::domain::TenantId::parse(TENANT).expect("tenant");
                let item = services
                    .store
                    .get_integration(
                        &tenant,
                        &hub_shared::domain::IntegrationId::parse(&id).expect("id"),
                    )
                    .await
                    .expect("read")
                    .expect("exists");
                let provider = services.catalog.get("acme_crm").expect("provider").clone();
                hub_shared::oauth::provider_credentials(&services, &provider, &item)
                    .await
                    .map(|fields| fields["accessToken"].as_str().to_string())
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(
            caller
                .await
                .expect("task")
                .expect("every caller gets a token"),
        );
    }

    let refreshes: Vec<_> = server
        .token_requests()
        .into_iter()
        .filter(|r| r.grant_type == "refresh_token")
        .collect();
    assert_eq!(
        refreshes.len(),
        1,
        "exactly one refresh reached the server: {refreshes:?}"
    );
    assert_eq!(refreshes[0].status, 200);
    assert_eq!(
        refreshes[0].refresh_token.as_deref(),
        Some(before["refreshToken"].as_str())
    );
    assert!(
        tokens.iter().all(|token| token == &tokens[0]),
        "one new token for all"
    );
    assert_ne!(tokens[0].as_str(), before["accessToken"].as_str());
    assert!(server.is_access_token_active(&tokens[0]));

    // The rotated refresh token is the stored one.
    let after = stored_tokens(&app, &id).await;
    assert_eq!(
        server.active_refresh_tokens(),
        vec![after["refreshToken"].as_str().to_string()]
    );
    assert_ne!(
        after["refreshToken"].as_str(),
        before["refreshToken"].as_str()
    );

    // Refresh on demand answers the expiry, never a token.
    let refreshed = refresh(&app, &id).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let body = refreshed.json();
    assert_eq!(body["status"], "connected");
    assert!(body["tokenExpiresAt"].is_string());
    assert!(!refreshed.text.contains(after["accessToken"].as_str()));
    let log = app
        .get(
            TENANT,
            &format!("/api/integrations/{id}/logs?action=refresh"),
        )
        .await
        .json();
    assert_eq!(log["items"].as_array().map(Vec::len), Some(2), "{log}");
}

#[tokio::test]
async fn a_refused_refresh_expires_the_integration_announces_it_and_reconnect_restores_it() {
    let (app, server) = given_stack(
        server_options(),
        &[("acme_crm", ProviderShape::default(), ClientAuthMethod::Post)],
    )
    .await;
    let target = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&target)
        .await;
    let webhook = app
        .post_json(
            TENANT,
            "/api/webhooks/outgoing",
            &json!({"name": "Status", "url": format!("{}/hooks", target.uri()),
                    "triggers": [{"entityType": "integration", "events": ["status_changed"]}], "retryAttempts": 3,
                    "retryDelaySeconds": 1, "timeoutSeconds": 5}),
        )
        .await;
    assert_eq!(webhook.status, 201, "{}", webhook.text);
    let id = connected_id(&connect(&app, TENANT, "acme_crm", "").await);

    // An outage: the asked-for refresh did not happen (502), and the status is kept.
    server.fail_next_token_requests(InjectedFailure::ServerError, 3);
    let outage = refresh(&app, &id).await;
    assert_eq!(outage.status, 502, "{}", outage.text);
    assert_eq!(outage.json()["code"], "provider_error");
    let kept = app
        .get(TENANT, &format!("/api/integrations/{id}"))
        .await
        .json();
    assert_eq!(kept["status"], "connected");

    server.fail_next_token_requests(InjectedFailure::InvalidGrant, 1);
    let refused = refresh(&app, &id).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.json()["code"], "reconnect_required");
    let expired = app
        .get(TENANT, &format!("/api/integrations/{id}"))
        .await
        .json();
    assert_eq!(expired["status"], "expired");
    assert!(expired["lastError"]
        .as_str()
        .is_some_and(|e| e.contains("invalid_grant")));

    // The change reaches the subscribed webhook.
    let mut announced = None;
    for _ in 0..100 {
        let received = target.received_requests().await.expect("recording");
        announced = received
            .iter()
            .map(|request| serde_json::from_slice::<Value>(&request.body).expect("json"))
            .find(|event| event["type"] == "integration.status_changed");
        if announced.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let event = announced.expect("integration.status_changed delivered");
    assert_eq!(event["data"]["id"], id.as_str());
    assert_eq!(event["data"]["from"], "connected");
    assert_eq!(event["data"]["to"], "expired");
    assert_eq!(event["data"]["reason"], "refresh_failed");

    // A provider call now fails without a request to the provider; no further refresh is tried.
    let requests_before = server.token_requests().len();
    let test = app
        .post_json(TENANT, &format!("/api/integrations/{id}/test"), &json!({}))
        .await
        .json();
    assert_eq!(test["ok"], false);
    assert_eq!(test["error"], "reconnect_required");
    assert_eq!(server.token_requests().len(), requests_before);

    // Reconnecting restores the same integration.
    let again = connected_id(&connect(&app, TENANT, "acme_crm", "").await);
    assert_eq!(again, id);
    let restored = app
        .get(TENANT, &format!("/api/integrations/{id}"))
        .await
        .json();
    assert_eq!(restored["status"], "connected");
    assert_eq!(restored["lastError"], Value::Null);
    assert!(restored["version"].as_u64() > expired["version"].as_u64());
}

#[tokio::test]
async fn delete_revokes_at_the_provider_and_no_token_leaks_anywhere() {
    let captured = hub_tests::capture_logs("debug");
    let (app, server) = given_stack(
        AuthServerOptions {
            issue_id_token: true,
            ..server_options()
        },
        &[("acme_crm", basic_shape(), ClientAuthMethod::Basic)],
    )
    .await;
    let id = connected_id(&connect(&app, TENANT, "acme_crm", "").await);
    let first = stored_tokens(&app, &id).await;
    assert!(
        first.contains_key("idToken"),
        "the id_token is kept in the envelope"
    );
    let refreshed = refresh(&app, &id).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let second = stored_tokens(&app, &id).await;
    app.get(TENANT, &format!("/api/integrations/{id}")).await;
    app.get(TENANT, "/api/integrations").await;
    app.get(TENANT, "/api/providers/acme_crm/oauth-app").await;

    let deleted = app.delete(TENANT, &format!("/api/integrations/{id}")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let revocations = server.revocations();
    assert_eq!(revocations.len(), 1, "{revocations:?}");
    assert_eq!(revocations[0].token, second["refreshToken"].as_str());
    assert_eq!(
        revocations[0].token_type_hint.as_deref(),
        Some("refresh_token")
    );
    assert_eq!(revocations[0].client_auth, Some(ClientAuthMethod::Basic));
    assert!(revocations[0].revoked);
    assert!(!server.is_access_token_active(second["accessToken"].as_str()));
    assert_eq!(
        app.get(TENANT, &format!("/api/integrations/{id}"))
            .await
            .status,
        404
    );

    let mut secrets: Vec<String> = [&first, &second]
        .iter()
        .flat_map(|fields| {
            ["accessToken", "refreshToken", "idToken"]
                .iter()
                .filter_map(|name| fields.get(*name).map(|v| v.as_str().to_string()))
        })
        .collect();
    secrets.push(CLIENT_SECRET.to_string());
    for body in app.response_bodies() {
        for secret in &secrets {
            assert!(
                !body.contains(secret.as_str()),
                "a response holds a secret: {body}"
            );
        }
    }
    let logs = captured.text();
    assert!(
        logs.contains("oauth connected"),
        "the scenario's logs were captured"
    );
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a log line holds a secret");
    }
    let items = app.scan_table().await;
    assert!(items.iter().any(|item| item.contains_key("clientSecret")));
    for item in &items {
        let dump = format!("{item:?}");
        for secret in &secrets {
            assert!(
                !dump.contains(secret.as_str()),
                "a stored item holds a secret: {dump}"
            );
        }
    }
}

#[tokio::test]
async fn tenants_without_an_app_of_their_own_connect_with_the_platform_default() {
    let server = LocalAuthServer::start(server_options())
        .await
        .expect("auth server");
    let file = write_providers_file(&provider_yaml(
        "acme_crm",
        &server,
        ProviderShape::default(),
    ));
    let platform =
        json!({"acme_crm": {"clientId": client_id("acme_crm"), "clientSecret": CLIENT_SECRET}});
    let app = spawn_app_with(|options| {
        options.providers_file = Some(file);
        options.platform_oauth_apps = Some(platform.to_string());
    })
    .await;
    register_client(&app, &server, "acme_crm", ClientAuthMethod::Post);

    // The tenant has no app of its own: GET says so, connect uses the platform's.
    let own = app.get(TENANT, "/api/providers/acme_crm/oauth-app").await;
    assert_eq!(own.status, 404, "{}", own.text);
    let id = connected_id(&connect(&app, TENANT, "acme_crm", "&connectionKey=second").await);
    let integration = app
        .get(TENANT, &format!("/api/integrations/{id}"))
        .await
        .json();
    assert_eq!(integration["connectionKey"], "second");
    assert_eq!(integration["status"], "connected");

    // The app routes: bad input is refused naming the field; a provider that is not OAuth is not
    // supported; an unknown one is not found; the secret is never answered.
    let put = |slug: &str, body: Value| {
        app.request(
            reqwest::Method::PUT,
            TENANT,
            &format!("/api/providers/{slug}/oauth-app"),
        )
        .json(&body)
    };
    let bad = app
        .send(put(
            "acme_crm",
            json!({"clientId": "", "clientSecret": "x"}),
        ))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["errors"][0]["field"], "clientId");
    let typo = app
        .send(put(
            "acme_crm",
            json!({"clientId": "a", "clientSecret": "b", "scope": []}),
        ))
        .await;
    assert_eq!(typo.status, 400);
    let stripe = app
        .send(put("stripe", json!({"clientId": "a", "clientSecret": "b"})))
        .await;
    assert_eq!(stripe.status, 400);
    assert_eq!(stripe.json()["code"], "not_supported");
    let unknown = app
        .send(put("nope", json!({"clientId": "a", "clientSecret": "b"})))
        .await;
    assert_eq!(unknown.status, 404);
    let saved = app
        .send(put(
            "acme_crm",
            json!({"clientId": "own-client", "clientSecret": "own-secret-value", "scopes": ["contacts.read"]}),
        ))
        .await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    let read = app.get(TENANT, "/api/providers/acme_crm/oauth-app").await;
    assert_eq!(read.json()["clientId"], "own-client");
    assert_eq!(read.json()["scopes"], json!(["contacts.read"]));
    assert_eq!(read.json()["configured"], true);
    assert!(!read.text.contains("own-secret-value") && !saved.text.contains("own-secret-value"));
}

#[tokio::test]
async fn the_schedule_refreshes_tokens_expiring_within_ten_minutes_and_announces_those_it_cannot() {
    let (app, server) = given_stack(
        AuthServerOptions {
            // Outside the 5-minute window of a call, inside the sweep's 10 minutes.
            access_token_ttl: Duration::from_secs(7 * 60),
            ..server_options()
        },
        &[("acme_crm", ProviderShape::default(), ClientAuthMethod::Post)],
    )
    .await;
    let target = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&target)
        .await;
    let webhook = app
        .post_json(
            TENANT,
            "/api/webhooks/outgoing",
            &json!({"name": "Tokens", "url": format!("{}/hooks", target.uri()),
                    "triggers": [{"entityType": "integration", "events": ["token_expiring"]}],
                    "retryAttempts": 3, "retryDelaySeconds": 1, "timeoutSeconds": 5}),
        )
        .await;
    assert_eq!(webhook.status, 201, "{}", webhook.text);
    let refreshable = connected_id(&connect(&app, TENANT, "acme_crm", "").await);
    let stuck = connected_id(&connect(&app, TENANT, "acme_crm", "&connectionKey=no-refresh").await);
    server.set_access_token_ttl(Duration::from_secs(3600));

    // The second one holds a token set without a refresh token (a provider that issues none).
    let services =
        Services::new(app.stack.config.clone(), &hub_tests::sdk_config()).expect("services");
    let tenant = hub_shared::domain::TenantId::parse(TENANT).expect("tenant");
    let stuck_id = hub_shared::domain::IntegrationId::parse(&stuck).expect("id");
    let mut fields = hub_shared::credentials::CredentialFields::new();
    fields.insert(
        "accessToken".into(),
        zeroize::Zeroizing::new("an-access-token-only".into()),
    );
    fields.insert("tokenType".into(), zeroize::Zeroizing::new("Bearer".into()));
    let envelope =
        hub_shared::credentials::seal(services.store.cipher(), TENANT, &stuck_id, &fields)
            .await
            .expect("seal");
    services
        .store
        .save_refreshed_tokens(
            &tenant,
            &stuck_id,
            hub_shared::store::TokenWrite {
                envelope,
                token_expires_at: Some(hub_shared::store::timestamp(
                    chrono::Utc::now() + chrono::Duration::minutes(8),
                )),
                scopes: vec![],
            },
        )
        .await
        .expect("stored");

    let tick = || async {
        let event: aws_lambda_events::event::eventbridge::EventBridgeEvent =
            serde_json::from_str(include_str!("../../events/eventbridge-schedule.json"))
                .expect("fixture");
        sync_runner::handle_schedule(
            services.clone(),
            lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
        )
        .await
        .expect("tick")
    };
    let before = stored_tokens(&app, &refreshable).await;
    let first = tick().await;
    assert_eq!(first.tokens.expiring, 2, "{first:?}");
    assert_eq!(first.tokens.refreshed, 1, "{first:?}");
    assert_eq!(first.tokens.announced, 1, "{first:?}");
    let after = stored_tokens(&app, &refreshable).await;
    assert_ne!(
        after["accessToken"].as_str(),
        before["accessToken"].as_str()
    );
    let refreshed = app
        .get(TENANT, &format!("/api/integrations/{refreshable}"))
        .await
        .json();
    let expiry = chrono::DateTime::parse_from_rfc3339(
        refreshed["credentials"]["tokenExpiresAt"]
            .as_str()
            .expect("expiry"),
    )
    .expect("time");
    assert!(expiry > chrono::Utc::now() + chrono::Duration::minutes(50));

    // Announced once: the next tick finds nothing to do.
    let second = tick().await;
    assert_eq!(
        (second.tokens.expiring, second.tokens.announced),
        (0, 0),
        "{second:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let received = target.received_requests().await.expect("recording");
        let announced: Vec<Value> = received
            .iter()
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .filter(|e| e["type"] == "integration.token_expiring")
            .collect();
        if !announced.is_empty() {
            assert_eq!(announced.len(), 1);
            assert_eq!(announced[0]["data"]["id"], stuck.as_str());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "token_expiring not delivered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refresh_grants = server
        .token_requests()
        .iter()
        .filter(|r| r.grant_type == "refresh_token")
        .count();
    assert_eq!(refresh_grants, 1);
}

#[tokio::test]
async fn a_setting_the_provider_sends_to_the_callback_is_kept_in_config() {
    // QuickBooks sends the company id (`realmId`) to the callback, next to the code.
    let server = LocalAuthServer::start(server_options())
        .await
        .expect("auth server");
    let url = server.url();
    let yaml = format!(
        "acme_books:\n  name: Acme Books\n  category: accounting\n  config:\n    - {{name: realmId, required: true, pattern: \"[0-9]+\"}}\n  auth:\n    mode: oauth2\n    authorizeUrl: {url}/authorize\n    tokenUrl: {url}/token\n    scopes: [accounting]\n  api:\n    baseUrl: \"{url}/v3/company/{{config.realmId}}\"\n"
    );
    let file = write_providers_file(&yaml);
    let app = spawn_app_with(|options| options.providers_file = Some(file)).await;
    register_client(&app, &server, "acme_books", ClientAuthMethod::Post);
    configure_app(&app, TENANT, "acme_books").await;

    let return_url = "returnUrl=http%3A%2F%2Flocalhost%2Fdone";
    let callback = consent(&start_connect(&app, TENANT, "acme_books", return_url).await).await;
    let id = connected_id(&follow_callback(&app, &format!("{callback}&realmId=4620816365")).await);
    let integration = app
        .get(TENANT, &format!("/api/integrations/{id}"))
        .await
        .json();
    assert_eq!(integration["config"], json!({"realmId": "4620816365"}));

    // A reconnect with another company replaces it; a value the setting refuses is not kept.
    let callback = consent(&start_connect(&app, TENANT, "acme_books", return_url).await).await;
    let again = connected_id(&follow_callback(&app, &format!("{callback}&realmId=123")).await);
    assert_eq!(again, id);
    let callback = consent(&start_connect(&app, TENANT, "acme_books", return_url).await).await;
    connected_id(&follow_callback(&app, &format!("{callback}&realmId=not-a-number")).await);
    let integration = app
        .get(TENANT, &format!("/api/integrations/{id}"))
        .await
        .json();
    assert_eq!(integration["config"], json!({"realmId": "123"}));
}
