//! Every API Gateway event in `events/` is parsed by lambda_http and handled by the function, so the
//! fixtures cannot rot: each file names its expected status here, and a new file without one fails.
//! `apigw-*.json` go to the integrations function, except the oauth function's (`OAUTH_FIXTURES`),
//! and `inbound-post-unknown-webhook.json` to the public receiver (the signed `inbound-*.json` are
//! `inbound_fixtures.rs`'s).

use std::collections::BTreeMap;
use std::path::PathBuf;

use hub_local::oauth_server::{AuthServerOptions, ClientAuthMethod, LocalAuthServer};
use hub_shared::domain::{IntegrationId, RemoteId, TenantId};
use hub_shared::events::{EntityName, RecordSource};
use hub_tests::{oauth, spawn_app, spawn_app_with};
use serde_json::json;
use tower::ServiceExt;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const PLACEHOLDER_ID: &str = "int_00000000000000000000000000";
/// The Twilio integration of the action fixture.
const TWILIO_PLACEHOLDER_ID: &str = "int_00000000000000000000000001";
const FIXTURE_TENANT: &str = "tenant-events";

fn expected_statuses() -> BTreeMap<&'static str, u16> {
    BTreeMap::from([
        ("apigw-get-health.json", 200),
        ("apigw-get-openapi.json", 200),
        ("apigw-get-providers.json", 200),
        ("apigw-get-provider.json", 200),
        ("apigw-post-integrations.json", 201),
        ("apigw-get-integrations.json", 200),
        ("apigw-get-integration.json", 200),
        ("apigw-get-integration-status.json", 200),
        ("apigw-get-integration-logs.json", 200),
        ("apigw-get-integration-records.json", 200),
        ("apigw-post-integration-test.json", 200),
        ("apigw-get-event-types.json", 200),
        ("apigw-post-integration-action.json", 200),
        ("apigw-get-integration-proxy.json", 200),
        ("apigw-patch-integration.json", 200),
        ("apigw-post-outgoing-webhook.json", 201),
        ("apigw-get-outgoing-webhooks.json", 200),
        // Last: it removes the integration the others use.
        ("apigw-delete-integration.json", 204),
    ])
}

/// The oauth function's fixtures, in the order they run, with their status: the tenant's Google
/// Calendar app is configured and read, connect redirects to Google (302), the public callback
/// refuses a state connect never issued and one without any state (400 `invalid_state`, the latter
/// before any AWS request: B5's first invocation), and refresh (on an integration connected through
/// a local authorization server, the placeholder id replaced by its id) answers 200.
const OAUTH_FIXTURES: [(&str, u16); 6] = [
    ("apigw-put-oauth-app.json", 200),
    ("apigw-get-oauth-app.json", 200),
    ("apigw-get-connect.json", 302),
    ("apigw-get-callback-bad-state.json", 400),
    ("apigw-get-callback-no-state.json", 400),
    ("apigw-post-integration-refresh.json", 200),
];

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

#[tokio::test]
async fn every_event_fixture_is_handled_by_the_function() {
    let app = spawn_app().await;
    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&provider)
        .await;
    let created = app
        .create_integration(
            FIXTURE_TENANT,
            &json!({"provider": "stripe", "name": "Fixture target", "config": {"baseUrl": provider.uri()},
                    "credentials": {"secretKey": "sk_test_fixture_target_0000"}}),
        )
        .await;
    let id = created["id"].as_str().expect("id").to_string();
    // The action fixture sends an SMS through a Twilio integration whose API is the same server.
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SM0001", "status": "queued"})),
        )
        .mount(&provider)
        .await;
    let twilio = app
        .create_integration(
            FIXTURE_TENANT,
            &json!({"provider": "twilio", "name": "Clinic SMS",
                    "config": {"baseUrl": provider.uri(), "fromNumber": "+15005550006"},
                    "credentials": {"accountSid": "AC0001", "authToken": "fixture-auth-token"}}),
        )
        .await;
    let twilio_id = twilio["id"].as_str().expect("id").to_string();
    let state = integrations::AppState::new(app.stack.config.clone(), &hub_tests::sdk_config())
        .expect("state");
    // One soft-deleted `meeting` record, which the records fixture lists (`includeDeleted=true`).
    let (tenant, integration, meeting, remote_id) = (
        TenantId::parse(FIXTURE_TENANT).expect("tenant"),
        IntegrationId::parse(&id).expect("integration id"),
        EntityName::parse("meeting").expect("entity"),
        RemoteId::parse("meeting-1").expect("remote id"),
    );
    let store = &state.store;
    store
        .upsert_record(
            &tenant,
            &integration,
            &meeting,
            &remote_id,
            serde_json::Map::from_iter([("title".to_string(), json!("Check-up"))]),
            RecordSource::Integration(integration.clone()),
        )
        .await
        .expect("record stored");
    store
        .soft_delete_record(&tenant, &integration, &meeting, &remote_id)
        .await
        .expect("record deleted")
        .expect("it was not deleted before");
    let router = integrations::app(state);

    let mut on_disk: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("apigw-") && name.ends_with(".json"))
        .collect();
    on_disk.sort();
    let expected = expected_statuses();
    let listed: Vec<String> = expected
        .keys()
        .chain(OAUTH_FIXTURES.iter().map(|(name, _)| name))
        .map(|k| k.to_string())
        .collect();
    let mut sorted_listed = listed.clone();
    sorted_listed.sort();
    assert_eq!(
        on_disk, sorted_listed,
        "every events/apigw-*.json needs an expected status here"
    );

    let order: Vec<&str> = [
        "apigw-get-health.json",
        "apigw-get-openapi.json",
        "apigw-get-providers.json",
        "apigw-get-provider.json",
        "apigw-post-integrations.json",
        "apigw-get-integrations.json",
        "apigw-get-integration.json",
        "apigw-get-integration-status.json",
        "apigw-post-integration-test.json",
        "apigw-get-integration-logs.json",
        "apigw-get-integration-records.json",
        "apigw-get-event-types.json",
        "apigw-post-integration-action.json",
        "apigw-get-integration-proxy.json",
        "apigw-patch-integration.json",
        "apigw-post-outgoing-webhook.json",
        "apigw-get-outgoing-webhooks.json",
        "apigw-delete-integration.json",
    ]
    .to_vec();
    assert_eq!(order.len(), expected.len());
    for name in order {
        let raw = std::fs::read_to_string(events_dir().join(name)).expect("fixture");
        let event = raw
            .replace(PLACEHOLDER_ID, &id)
            .replace(TWILIO_PLACEHOLDER_ID, &twilio_id);
        let request = lambda_http::request::from_str(&event)
            .unwrap_or_else(|e| panic!("{name} is not a v2 event: {e}"));
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let request_id = response.headers().get("x-request-id").cloned();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(
            status,
            expected[name],
            "{name}: {}",
            String::from_utf8_lossy(&body)
        );
        assert!(request_id.is_some(), "{name}: x-request-id");
        if name == "apigw-post-integration-test.json" {
            let result: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(result["ok"], true, "{result}");
        }
        if name == "apigw-get-integration-records.json" {
            let list: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(list["items"][0]["id"], "meeting-1", "{list}");
            assert_eq!(list["items"][0]["meta"]["deleted"], true, "{list}");
        }
        if name == "apigw-get-event-types.json" {
            let list: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(list["items"][0]["type"], "integration.connected", "{list}");
        }
    }
    assert_eq!(
        app.get(FIXTURE_TENANT, &format!("/api/integrations/{id}"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn every_inbound_event_fixture_is_answered_by_the_receiver() {
    let app = spawn_app().await;
    let services =
        hub_shared::services::Services::new(app.stack.config.clone(), &hub_tests::sdk_config())
            .expect("services");
    let router = inbound_webhook::app(inbound_webhook::InboundState::new(services));
    // A malformed webhook id is refused before any AWS request, as an unknown one (the same 404).
    let expected = BTreeMap::from([(
        "inbound-post-unknown-webhook.json",
        (404, "webhook not found"),
    )]);
    // The signed inbound fixtures are tests/tests/inbound_fixtures.rs's (signed fresh per run).
    for (name, (status, detail)) in expected {
        let raw = std::fs::read_to_string(events_dir().join(name)).expect("fixture");
        let request = lambda_http::request::from_str(&raw)
            .unwrap_or_else(|e| panic!("{name} is not a v2 event: {e}"));
        let response = router.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status().as_u16(), status, "{name}");
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        let problem: serde_json::Value = serde_json::from_slice(&body).expect("a JSON problem");
        assert_eq!(problem["code"], "not_found", "{name}: {problem}");
        assert_eq!(problem["detail"], detail, "{name}: {problem}");
    }
}

#[tokio::test]
async fn every_oauth_event_fixture_is_handled_by_the_oauth_function() {
    // Given a stack whose catalog has an OAuth provider served by a local authorization server, and
    // an integration of the fixtures' tenant connected through it (the refresh fixture's target),
    let server = LocalAuthServer::start(AuthServerOptions::default())
        .await
        .expect("the local authorization server starts");
    let file = hub_tests::write_providers_file(&oauth::provider_yaml(
        "local_oauth",
        &server,
        Default::default(),
    ));
    let app = spawn_app_with(|options| options.providers_file = Some(file.clone())).await;
    oauth::register_client(&app, &server, "local_oauth", ClientAuthMethod::Post);
    oauth::configure_app(&app, FIXTURE_TENANT, "local_oauth").await;
    let connected = oauth::connect(&app, FIXTURE_TENANT, "local_oauth", "").await;
    assert_eq!(connected.status, 302, "{}", connected.text);
    let params = oauth::location_params(&connected);
    assert_eq!(params.get("status").map(String::as_str), Some("connected"));
    let id = params["integrationId"].clone();
    let services =
        hub_shared::services::Services::new(app.stack.config.clone(), &hub_tests::sdk_config())
            .expect("services");
    let router = ::oauth::app(services);

    // when each fixture is handed to the oauth function through lambda_http,
    for (name, status) in OAUTH_FIXTURES {
        let raw = std::fs::read_to_string(events_dir().join(name)).expect("fixture");
        let event = raw.replace(PLACEHOLDER_ID, &id);
        let request = lambda_http::request::from_str(&event)
            .unwrap_or_else(|e| panic!("{name} is not a v2 event: {e}"));
        let response = router.clone().oneshot(request).await.expect("infallible");
        let answered = response.status().as_u16();
        let headers = response.headers().clone();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        let text = String::from_utf8_lossy(&body).to_string();

        // then each is answered as documented.
        assert_eq!(answered, status, "{name}: {text}");
        assert!(
            headers.get("x-request-id").is_some(),
            "{name}: x-request-id"
        );
        let json = || -> serde_json::Value {
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{name}: {e}: {text}"))
        };
        match name {
            "apigw-put-oauth-app.json" | "apigw-get-oauth-app.json" => {
                let app = json();
                assert_eq!(app["provider"], "google_calendar", "{name}: {app}");
                assert_eq!(app["configured"], true, "{name}: {app}");
                assert_eq!(
                    app["scopes"],
                    json!(["https://www.googleapis.com/auth/calendar.events"]),
                    "{name}: {app}"
                );
                assert!(
                    !text.contains("GOCSPX"),
                    "{name}: the secret is never returned"
                );
            }
            "apigw-get-connect.json" => {
                let location = headers
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .expect("location");
                let url = url::Url::parse(location).expect("absolute");
                assert_eq!(
                    url.origin().ascii_serialization(),
                    "https://accounts.google.com",
                    "{location}"
                );
                let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
                assert_eq!(
                    query.get("client_id").map(String::as_str),
                    Some("1234567890-fixture.apps.googleusercontent.com")
                );
                assert_eq!(
                    query.get("redirect_uri"),
                    Some(&format!(
                        "{}/api/integrations/callback/google_calendar",
                        app.stack.config.public_base_url
                    ))
                );
                assert!(query.contains_key("state") && query.contains_key("code_challenge"));
                assert_eq!(headers["cache-control"], "no-store");
            }
            "apigw-get-callback-bad-state.json" | "apigw-get-callback-no-state.json" => {
                let problem = json();
                assert_eq!(problem["code"], "invalid_state", "{name}: {problem}");
                assert!(headers.get("location").is_none(), "{name}: no redirect");
            }
            "apigw-post-integration-refresh.json" => {
                let refreshed = json();
                assert_eq!(refreshed["status"], "connected", "{refreshed}");
                assert!(refreshed["tokenExpiresAt"].is_string(), "{refreshed}");
                assert!(!text.contains("access"), "no token in {text}");
            }
            other => unreachable!("{other}"),
        }
    }
    assert_eq!(
        server
            .token_requests()
            .iter()
            .map(|r| r.grant_type.as_str())
            .collect::<Vec<_>>(),
        ["authorization_code", "refresh_token"],
        "one exchange (the setup's connect), one refresh (the fixture's)"
    );
}
