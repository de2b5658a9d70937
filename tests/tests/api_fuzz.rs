//! API fuzzing (quality.md "API fuzzing"; docs/api-fuzzing.md): schemathesis generates requests from
//! `api/openapi.json` — valid ones and ones that break the document — sends them to a fresh local
//! stack with a valid token, and applies every one of its checks to each response: no 5xx, every
//! status, content type, header and body as documented, schema-valid requests accepted and
//! schema-violating ones rejected, and the stateful checks (a deleted integration is gone, a created
//! one can be read, another tenant's token is refused). The run has a fixed seed and a fixed number
//! of examples per operation, so it is the same run every time; it fails with schemathesis' report.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hub_local::oauth_server::{AuthServerOptions, ClientAuthMethod, LocalAuthServer};
use hub_shared::domain::{IntegrationId, RemoteId, TenantId};
use hub_shared::events::{EntityName, RecordSource};
use hub_shared::services::Services;
use hub_tests::provider::LocalProvider;
use hub_tests::{oauth, spawn_app_with, TestApp};
use serde_json::{json, Value};

/// The settings a reader can change in one place; docs/api-fuzzing.md quotes them.
const SEED: &str = "20261201";
const MAX_EXAMPLES: &str = "30";
/// One worker: with two, CPython 3.11's `ast` module (which hypothesis calls to describe its
/// strategies) can fail with "AST constructor recursion depth mismatch" when two threads parse at
/// once, a runtime error that would make the run flaky.
const WORKERS: &str = "1";
/// A run takes about 4.5 minutes alone on 2 cores; this only stops a hung one.
const HARD_LIMIT: Duration = Duration::from_secs(15 * 60);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// `SCHEMATHESIS` if set, else `schemathesis` on the PATH (`make deps` installs it from
/// requirements-dev.txt).
fn schemathesis_program() -> String {
    std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".to_string())
}

/// The log id of one test delivery of a new webhook of `tenant` (to a closed local port): what
/// schemathesis.toml gives the log-id operations, which a generated id would only ever 404.
async fn webhook_log_of(app: &TestApp, tenant: &str) -> String {
    let created = app
        .post_json(
            tenant,
            "/api/webhooks/outgoing",
            &json!({"name": "Fuzz target", "url": "http://127.0.0.1:9/hooks",
                    "triggers": [{"entityType": "integration", "events": ["connected"]}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"]
        .as_str()
        .expect("webhook id")
        .to_string();
    let tested = app
        .post_json(tenant, &format!("/api/webhooks/{id}/test"), &json!({}))
        .await;
    assert_eq!(tested.status, 200, "{}", tested.text);
    let logs = app.get(tenant, &format!("/api/webhooks/{id}/logs")).await;
    logs.json()["items"][0]["id"]
        .as_str()
        .expect("the test delivery is logged")
        .to_string()
}

/// An integration of `tenant` and an incoming webhook of it (a generated secret, one forward
/// action): what schemathesis.toml gives the operations that take a real integration or incoming
/// webhook (`map_case` puts the integration into generated bodies; the shared webhook operations
/// run against the webhook), which generated ids would only ever miss.
async fn incoming_webhook_of(app: &TestApp, tenant: &str) -> (String, String) {
    let integration = app
        .create_integration(
            tenant,
            &json!({"provider": "custom_webhook", "name": "Fuzz hooks"}),
        )
        .await["id"]
        .as_str()
        .expect("integration id")
        .to_string();
    let created = app
        .post_json(
            tenant,
            "/api/webhooks/incoming",
            &json!({"name": "Fuzz inbound", "integrationId": integration,
                    "verification": {"scheme": "standard"},
                    "actions": [{"type": "forward", "config": {"forwardUrl": "http://127.0.0.1:9/hooks"}}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let webhook = created.json()["id"]
        .as_str()
        .expect("webhook id")
        .to_string();
    (integration, webhook)
}

/// An incoming webhook of `tenant` with `verification`: what schemathesis.toml gives the public
/// receiver's two operations (a `none` one for posts, a Meta one with the verify token the config
/// passes for handshakes), so generated requests reach the accept path and the handshake instead of
/// the one 404 of an unknown webhook.
async fn receiver_of(app: &TestApp, tenant: &str, verification: Value) -> String {
    let created = app
        .post_json(
            tenant,
            "/api/webhooks/incoming",
            &json!({"name": "Fuzz receiver", "verification": verification}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json()["id"]
        .as_str()
        .expect("webhook id")
        .to_string()
}

/// A custom_api integration of `tenant` that syncs `contact` records from a local provider API:
/// what schemathesis.toml gives the sync operation (a generated id would only ever 404, and a real
/// provider would be called over the network).
async fn syncable_integration(app: &TestApp, tenant: &str, provider: &LocalProvider) -> String {
    let created = app
        .create_integration(
            tenant,
            &json!({"provider": "custom_api", "name": "Fuzz sync", "connectionKey": "fuzz-sync",
                    "credentials": {"apiKey": "fuzz-sync-api-key-0001"},
                    "config": {"baseUrl": provider.url(), "entities": {"contact": {
                        "request": {"method": "GET", "path": "/offset"}, "records": "results", "id": "id",
                        "pagination": {"type": "offset", "param": "offset", "limitParam": "limit", "pageSize": 5}}}},
                    "syncSettings": {"entities": [{"localEntity": "contact", "remoteEntity": "contact"}]}}),
        )
        .await;
    created["id"].as_str().expect("integration id").to_string()
}

/// A Twilio integration of `tenant` whose API is a local Twilio-shaped server: what
/// schemathesis.toml gives the action operation (with `send_sms`) and the proxy, which a generated
/// id would only ever 404.
async fn action_integration(
    app: &TestApp,
    tenant: &str,
    shapes: &hub_local::provider_shapes::ProviderShapes,
) -> String {
    use hub_local::provider_shapes::{TWILIO_SID, TWILIO_TOKEN};
    let created = app
        .create_integration(
            tenant,
            &json!({"provider": "twilio", "name": "Fuzz SMS", "connectionKey": "fuzz-sms",
                    "credentials": {"accountSid": TWILIO_SID, "authToken": TWILIO_TOKEN},
                    "config": {"baseUrl": format!("{}/2010-04-01", shapes.url()), "fromNumber": "+15005550006"}}),
        )
        .await;
    created["id"].as_str().expect("integration id").to_string()
}

/// An integration of `tenant` with a few `meeting` records (one soft-deleted, Unicode in ids and
/// data): what schemathesis.toml gives the records operation, which a generated integration id would
/// only ever 404. No route writes records yet, so they go through the store.
async fn integration_with_records(app: &TestApp, tenant: &str) -> String {
    let created = app
        .create_integration(
            tenant,
            &json!({"provider": "stripe", "name": "Fuzz records", "connectionKey": "fuzz-records",
                    "credentials": {"secretKey": "sk_test_fuzz_records_0000"}}),
        )
        .await;
    let id = created["id"].as_str().expect("integration id").to_string();
    let store = Services::new(app.stack.config.clone(), &hub_tests::sdk_config())
        .expect("services")
        .store;
    let tenant = TenantId::parse(tenant).expect("tenant");
    let integration = IntegrationId::parse(&id).expect("integration id");
    let meeting = EntityName::parse("meeting").expect("entity");
    for (remote_id, data) in [
        ("evt-1", json!({"title": "פגישה", "room": {"floor": 2}})),
        (
            "evt-2",
            json!({"title": "اجتماع 📅", "cost": 12.5, "tags": ["a"]}),
        ),
        ("evt-3", json!({"title": "جلسه", "notes": null})),
    ] {
        let remote_id = RemoteId::parse(remote_id).expect("remote id");
        let serde_json::Value::Object(data) = data else {
            unreachable!("an object")
        };
        store
            .upsert_record(
                &tenant,
                &integration,
                &meeting,
                &remote_id,
                data,
                RecordSource::Integration(integration.clone()),
            )
            .await
            .expect("record stored");
    }
    store
        .soft_delete_record(
            &tenant,
            &integration,
            &meeting,
            &RemoteId::parse("evt-3").expect("remote id"),
        )
        .await
        .expect("record deleted");
    id
}

/// The OAuth provider connect, the callback and refresh are fuzzed on (through the platform's app,
/// which fuzzed PUTs of a tenant app cannot change), and the one the tenant-app operations are
/// fuzzed on; both are served by the run's local authorization server.
const OAUTH_SLUG: &str = "fuzz_oauth";
const OAUTH_APP_SLUG: &str = "fuzz_oauth_app";

/// A stack whose catalog has the two OAuth providers of `server`, with a platform app for
/// [`OAUTH_SLUG`] registered at the server.
async fn spawn_app_for(server: &LocalAuthServer) -> TestApp {
    let providers = hub_tests::write_providers_file(&format!(
        "{}{}",
        oauth::provider_yaml(OAUTH_SLUG, server, Default::default()),
        oauth::provider_yaml(OAUTH_APP_SLUG, server, Default::default())
    ));
    let platform_apps = json!({ OAUTH_SLUG: {
        "clientId": oauth::client_id(OAUTH_SLUG), "clientSecret": oauth::CLIENT_SECRET }})
    .to_string();
    let app = spawn_app_with(|options| {
        options.providers_file = Some(providers);
        options.platform_oauth_apps = Some(platform_apps);
    })
    .await;
    oauth::register_client(&app, server, OAUTH_SLUG, ClientAuthMethod::Post);
    app
}

/// An integration of `tenant` connected through the whole OAuth flow (the platform's app): what
/// schemathesis.toml gives refresh, which a generated id would only ever 404. Also a tenant app
/// for [`OAUTH_APP_SLUG`], so its GET finds one before any fuzzed PUT.
async fn oauth_integration_of(app: &TestApp, tenant: &str) -> String {
    let connected = oauth::connect(app, tenant, OAUTH_SLUG, "").await;
    assert_eq!(connected.status, 302, "{}", connected.text);
    let params = oauth::location_params(&connected);
    assert_eq!(params.get("status").map(String::as_str), Some("connected"));
    oauth::configure_app(app, tenant, OAUTH_APP_SLUG).await;
    params["integrationId"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_with_every_check() {
    // Given a fresh local stack with two OAuth providers of a local authorization server, a token
    // of one tenant, one webhook log of that tenant, one integration of it with records, one
    // integration and one incoming webhook of it, and one OAuth integration of it
    let server = LocalAuthServer::start(AuthServerOptions::default())
        .await
        .expect("the local authorization server starts");
    let app = spawn_app_for(&server).await;
    let token = app.token("fuzz-tenant");
    let root = workspace_root();
    let log_id = webhook_log_of(&app, "fuzz-tenant").await;
    let records_integration_id = integration_with_records(&app, "fuzz-tenant").await;
    let (integration_id, incoming_id) = incoming_webhook_of(&app, "fuzz-tenant").await;
    let open_id = receiver_of(&app, "fuzz-tenant", json!({"scheme": "none"})).await;
    let meta_id = receiver_of(
        &app,
        "fuzz-tenant",
        json!({"scheme": "meta", "secret": "fuzz-app-secret", "verifyToken": "fuzz-verify-token"}),
    )
    .await;
    let oauth_id = oauth_integration_of(&app, "fuzz-tenant").await;
    let sync_provider = LocalProvider::start(12, 5).await;
    let sync_id = syncable_integration(&app, "fuzz-tenant", &sync_provider).await;
    let shapes = hub_local::provider_shapes::ProviderShapes::start().await;
    let action_id = action_integration(&app, "fuzz-tenant", &shapes).await;

    // When schemathesis runs every check against it
    let mut command = tokio::process::Command::new(schemathesis_program());
    command
        .current_dir(&root)
        .env("SCHEMATHESIS_HOOKS", root.join("tests/fuzz/hooks.py"))
        .env("HUB_FUZZ_WEBHOOK_LOG_ID", &log_id)
        .env("HUB_FUZZ_RECORDS_INTEGRATION_ID", &records_integration_id)
        .env("HUB_FUZZ_INTEGRATION_ID", &integration_id)
        .env("HUB_FUZZ_INCOMING_WEBHOOK_ID", &incoming_id)
        .env("HUB_FUZZ_OPEN_WEBHOOK_ID", &open_id)
        .env("HUB_FUZZ_META_WEBHOOK_ID", &meta_id)
        .env("HUB_FUZZ_OAUTH_INTEGRATION_ID", &oauth_id)
        .env("HUB_FUZZ_SYNC_INTEGRATION_ID", &sync_id)
        .env("HUB_FUZZ_ACTION_INTEGRATION_ID", &action_id)
        // map_case mints a real state per valid callback with this connect and token.
        .env(
            "HUB_FUZZ_CONNECT_URL",
            format!(
                "{}/api/integrations/connect/{OAUTH_SLUG}?returnUrl=http%3A%2F%2Flocalhost%2Ffuzz-done",
                app.url
            ),
        )
        .env("HUB_FUZZ_TOKEN", &token)
        .arg("--config-file")
        .arg(root.join("tests/fuzz/schemathesis.toml"))
        .args(["run", "api/openapi.json", "--url", &app.url])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all", "--seed", SEED])
        .args(["--max-examples", MAX_EXAMPLES, "--workers", WORKERS])
        // moto serves ~150 DynamoDB operations/s on 2 cores shared with the other suites: a slow
        // answer is not a failure of the API (the default timeout is 10 s).
        .args(["--request-timeout", "60"])
        .args(["--no-color", "--continue-on-failure"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot start {} ({e}): run `make deps` (pip install -r requirements-dev.txt)",
            schemathesis_program()
        )
    });
    let output = tokio::time::timeout(HARD_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis did not finish within {HARD_LIMIT:?}"))
        .expect("schemathesis ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    // Then it reports no failure and no error (its report is printed either way)
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success() && stdout.contains("No issues found"),
        "schemathesis reported failures (exit {:?}):\n{stdout}\n{stderr}",
        output.status.code()
    );
    // (for the record: how often the oauth operations reached the token endpoint, with the run's
    // integration and with generated codes, which the server refuses: it never issued them)
    let requests = server.token_requests();
    let count = |grant: &str| requests.iter().filter(|r| r.grant_type == grant).count();
    println!(
        "token endpoint: {} refreshes, {} code exchanges (1 by the setup)",
        count("refresh_token"),
        count("authorization_code")
    );
}
