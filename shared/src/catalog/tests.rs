//! The catalog as a specification: the built-in entries, the file format's error messages, the
//! `PROVIDERS_FILE` merge, request building and the public view.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::validate::UrlPolicy;
use super::*;
use url::Url;

/// Every provider of the original systems the built-in catalog must carry.
const SPEC_PROVIDERS: [(&str, Category); 28] = [
    ("google_calendar", Category::Calendar),
    ("outlook_calendar", Category::Calendar),
    ("apple_calendar", Category::Calendar),
    ("google_drive", Category::Storage),
    ("dropbox", Category::Storage),
    ("onedrive", Category::Storage),
    ("quickbooks", Category::Accounting),
    ("xero", Category::Accounting),
    ("hashavshevet", Category::Accounting),
    ("priority", Category::Accounting),
    ("whatsapp_business", Category::Communication),
    ("twilio", Category::Communication),
    ("sendgrid", Category::Communication),
    ("mailchimp", Category::Communication),
    ("slack", Category::Communication),
    ("kavenegar", Category::Communication),
    ("stripe", Category::Payments),
    ("payplus", Category::Payments),
    ("cardcom", Category::Payments),
    ("canva", Category::Design),
    ("figma", Category::Design),
    ("hubspot", Category::Crm),
    ("monday", Category::Crm),
    ("seha", Category::Health),
    ("tatman", Category::Health),
    ("openai", Category::Ai),
    ("custom_webhook", Category::Custom),
    ("custom_api", Category::Custom),
];

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test fixture must be an object, got {other}"),
    }
}

fn builtin(slug: &str) -> Provider {
    Catalog::builtin()
        .get(slug)
        .cloned()
        .unwrap_or_else(|| panic!("{slug} is built in"))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A providers file in the temp dir, removed when dropped.
struct ProvidersFile(PathBuf);

/// A providers file that must be rejected with `expected` as the acme_crm entry's problem.
fn assert_rejected_with(yaml: &str, expected: &str) {
    let message = ProvidersFile::new(yaml).error();
    assert!(
        message.contains(&format!("provider \"acme_crm\": {expected}")),
        "expected `{expected}`, got `{message}`"
    );
}

impl ProvidersFile {
    fn new(yaml: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "hub-catalog-test-{}-{}.yaml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, yaml).expect("temp file is writable");
        ProvidersFile(path)
    }

    fn load(&self) -> Result<Catalog, CatalogError> {
        Catalog::load(Some(&self.0))
    }

    fn error(&self) -> String {
        match self.load() {
            Ok(_) => panic!("the providers file was expected to be rejected"),
            Err(e) => e.to_string(),
        }
    }
}

impl Drop for ProvidersFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A minimal valid oauth2 entry for `acme_crm`, with `extra_auth` lines appended under `auth`.
fn acme_oauth(extra_auth: &str) -> String {
    format!(
        "acme_crm:
  name: Acme CRM
  category: crm
  auth:
    mode: oauth2
    authorizeUrl: https://auth.acme.example/authorize
    scopes: [contacts.read]
{extra_auth}
  api:
    baseUrl: https://api.acme.example/v2
"
    )
}

// ───────────── the built-in catalog ─────────────

#[test]
fn every_builtin_entry_parses_and_validates_with_https_urls_only() {
    let parsed = parse_catalog(BUILTIN_YAML, BUILTIN_ORIGIN, UrlPolicy::HttpsOnly);

    let providers = parsed.unwrap_or_else(|e| panic!("built-in catalog is invalid: {e}"));
    assert_eq!(providers.len(), Catalog::builtin().iter().count());
}

#[test]
fn the_json_compiled_by_build_rs_is_the_same_catalog_as_the_yaml() {
    let from_yaml =
        parse_catalog(BUILTIN_YAML, BUILTIN_ORIGIN, UrlPolicy::HttpsOnly).expect("valid");
    let from_json = parse_builtin().expect("valid");
    assert_eq!(from_yaml, from_json);
}

#[test]
fn every_provider_of_the_spec_is_built_in_with_its_category() {
    let catalog = Catalog::builtin();

    for (slug, category) in SPEC_PROVIDERS {
        let provider = catalog
            .get(slug)
            .unwrap_or_else(|| panic!("{slug} is missing from the built-in catalog"));
        assert_eq!(provider.category, category, "category of {slug}");
    }
}

#[test]
fn twilio_credentials_are_account_sid_and_auth_token_applied_as_basic_auth() {
    let twilio = builtin("twilio");

    assert_eq!(
        twilio.credential_fields(),
        &[
            CredentialField {
                name: "accountSid".into(),
                secret: false
            },
            CredentialField {
                name: "authToken".into(),
                secret: true
            },
        ]
    );
    let request = twilio
        .build_health_check(
            &Map::new(),
            &obj(json!({"accountSid": "AC123", "authToken": "tok"})),
        )
        .expect("builds");
    let expected = base64::engine::general_purpose::STANDARD.encode("AC123:tok");
    assert_eq!(
        header(&request.headers, "authorization"),
        Some(format!("Basic {expected}").as_str())
    );
    assert_eq!(
        request.url.as_str(),
        "https://api.twilio.com/2010-04-01/Accounts/AC123.json"
    );
    assert_eq!(request.method, http::Method::GET);
    assert_eq!(request.expect.status, 200);
}

#[test]
fn google_calendar_asks_for_offline_access_and_syncs_events_with_a_sync_token() {
    let google = builtin("google_calendar");

    let oauth = google.oauth2().expect("oauth2");
    assert_eq!(
        oauth
            .authorize_params
            .get("access_type")
            .map(String::as_str),
        Some("offline")
    );
    assert_eq!(
        oauth.authorize_params.get("prompt").map(String::as_str),
        Some("consent")
    );
    assert!(oauth.pkce);
    let event = google.entity("event").expect("event entity");
    assert_eq!(
        event.incremental,
        Some(Incremental::SyncToken {
            param: "syncToken".into(),
            next: "nextSyncToken".into(),
            expired_status: Some(410)
        })
    );
    let mappings = event.default_mappings.as_ref().expect("default mappings");
    assert_eq!(mappings.local_entity, "meeting");
    assert!(mappings
        .fields
        .iter()
        .any(|f| f.local_field == "title" && f.remote_field == "summary"));
}

// ───────────── file format errors ─────────────

#[test]
fn a_file_missing_an_oauth2_token_url_names_the_file_slug_and_field() {
    let file = ProvidersFile::new(&acme_oauth(""));

    let message = file.error();

    assert_eq!(
        message,
        format!(
            "providers file {}: provider \"acme_crm\": auth.tokenUrl: missing field",
            file.0.display()
        )
    );
}

#[test]
fn an_unknown_field_name_is_an_error_naming_slug_and_path() {
    let file = ProvidersFile::new(&acme_oauth(
        "    tokenUrl: https://auth.acme.example/token\n    tokenUrll: https://typo.example",
    ));

    let message = file.error();

    assert!(
        message.contains("provider \"acme_crm\": auth.tokenUrll: unknown field"),
        "{message}"
    );
}

#[test]
fn an_unknown_field_deep_in_a_sync_entity_is_reported_at_its_exact_path() {
    let yaml = format!(
        "{}  sync:
    entities:
      contact:
        request: {{method: GET, path: /contacts}}
        records: results
        id: id
        pagination: {{type: cursor, param: after, nextt: paging.next.after}}
",
        acme_oauth("    tokenUrl: https://auth.acme.example/token")
    );
    let file = ProvidersFile::new(&yaml);

    let message = file.error();

    assert!(
        message.contains(
            "provider \"acme_crm\": sync.entities.contact.pagination.nextt: unknown field"
        ),
        "{message}"
    );
}

#[test]
fn required_fields_of_each_mode_are_named_when_missing() {
    let cases = [
        (
            "acme_crm:\n  category: crm\n  auth: {mode: none}\n",
            "name: missing field",
        ),
        (
            "acme_crm:\n  name: A\n  category: crm\n  auth: {mode: oauth2, tokenUrl: https://a.example/t, scopes: []}\n  api: {baseUrl: https://a.example}\n",
            "auth.authorizeUrl: missing field",
        ),
        (
            "acme_crm:\n  name: A\n  category: crm\n  auth: {mode: oauth2, authorizeUrl: https://a.example/a, tokenUrl: https://a.example/t}\n  api: {baseUrl: https://a.example}\n",
            "auth.scopes: missing field",
        ),
        (
            "acme_crm:\n  name: A\n  category: crm\n  auth: {mode: api_key, apply: {header: X-Key, format: \"{key}\"}}\n  api: {baseUrl: https://a.example}\n",
            "auth.fields: missing field",
        ),
        (
            "acme_crm:\n  name: A\n  category: crm\n  auth: {mode: basic, fields: [{name: user, secret: false}, {name: pass, secret: true}]}\n  api: {baseUrl: https://a.example}\n",
            "auth.apply: missing field",
        ),
        (
            "acme_crm:\n  name: A\n  category: crm\n  auth: {mode: api_key, fields: [{name: key, secret: true}], apply: {header: X-Key, format: \"{key}\"}}\n",
            "api: missing field",
        ),
        (
            "acme_crm:\n  name: A\n  category: crm\n  auth: {mode: none}\n  api: {rateLimit: {requests: 1, perSeconds: 1}}\n",
            "api.baseUrl: missing field",
        ),
    ];
    for (yaml, expected) in cases {
        let message = ProvidersFile::new(yaml).error();
        assert!(
            message.ends_with(&format!("provider \"acme_crm\": {expected}")),
            "expected `{expected}`, got `{message}`"
        );
    }
}

#[test]
fn semantic_errors_name_the_field_and_the_problem() {
    let api_key = |apply: &str, api: &str| {
        format!("acme_crm:\n  name: A\n  category: crm\n  auth: {{mode: api_key, fields: [{{name: accountId, secret: false}}, {{name: key, secret: true}}], apply: {apply}}}\n  api: {api}\n")
    };
    let cases = [
        (
            api_key("{header: X-Key, format: \"{apikey}\"}", "{baseUrl: https://a.example}"),
            "auth.apply.format: {apikey} names no credential field (declared: accountId, key)",
        ),
        (
            api_key("{header: X-Key, format: \"{key}\"}", "{baseUrl: \"https://a.example/{key}\"}"),
            "api.baseUrl: {key} is a secret field and may not appear in a URL unless auth.apply is {url: true}",
        ),
        (
            api_key("{header: X-Key, format: \"{key}\"}", "{baseUrl: \"ftp://a.example\"}"),
            "api.baseUrl: must be an absolute http(s) URL",
        ),
        (
            api_key("{header: X-Key, query: key, format: \"{key}\"}", "{baseUrl: https://a.example}"),
            "auth.apply: must have exactly one of `header`, `query`, `basic`, `url`",
        ),
        (
            api_key(
                "{header: X-Key, format: \"{key}\"}",
                "{baseUrl: https://a.example, healthCheck: {method: GET, path: me, expect: 200}}",
            ),
            "api.healthCheck.path: must start with `/`",
        ),
        (
            api_key(
                "{header: X-Key, format: \"{key}\"}",
                "{baseUrl: https://a.example, healthCheck: {method: get, path: /me, expect: 200}}",
            ),
            "api.healthCheck.method: `get` is not an upper-case HTTP method",
        ),
        (
            format!("{}  webhook: {{scheme: hmac_sha1}}\n", api_key("{header: X-Key, format: \"{key}\"}", "{baseUrl: https://a.example}")),
            "webhook.scheme: unknown variant `hmac_sha1`",
        ),
    ];
    for (yaml, expected) in cases {
        assert_rejected_with(&yaml, expected);
    }
}

#[test]
fn a_field_of_another_mode_is_rejected() {
    let yaml = "acme_crm:\n  name: A\n  category: crm\n  auth: {mode: none, scopes: [a]}\n";

    let message = ProvidersFile::new(yaml).error();

    assert!(
        message.ends_with("provider \"acme_crm\": auth.scopes: not used by mode none"),
        "{message}"
    );
}

#[test]
fn slugs_must_match_the_slug_pattern() {
    for slug in ["Acme", "a", "9acme", "acme-crm"] {
        let yaml = format!("{slug}:\n  name: A\n  category: custom\n  auth: {{mode: none}}\n");

        let message = ProvidersFile::new(&yaml).error();

        assert!(
            message.contains(&format!("\"{slug}\" is not a valid provider slug")),
            "{message}"
        );
    }
}

#[test]
fn an_unreadable_or_malformed_providers_file_is_an_error() {
    let missing = Catalog::load(Some(std::path::Path::new("/nonexistent/providers.yaml")));
    assert!(matches!(missing, Err(CatalogError::ReadFile { .. })));

    let list = ProvidersFile::new("- just\n- a list\n").error();
    assert!(
        list.contains("expected a map of provider slug to entry"),
        "{list}"
    );
}

// ───────────── PROVIDERS_FILE merge ─────────────

#[test]
fn providers_file_adds_new_slugs_and_replaces_builtin_entries_wholesale() {
    let yaml = "
acme_crm:
  name: Acme CRM
  category: crm
  auth:
    mode: oauth2
    authorizeUrl: http://127.0.0.1:9000/authorize
    tokenUrl: http://127.0.0.1:9000/token
    scopes: [contacts.read, offline_access]
    pkce: true
  api:
    baseUrl: http://127.0.0.1:9000/v2
    healthCheck: {method: GET, path: /me, expect: 200}
stripe:
  name: Stripe (local)
  category: payments
  auth:
    mode: api_key
    fields: [{name: secretKey, secret: true}]
    apply: {header: Authorization, format: \"Bearer {secretKey}\"}
  api:
    baseUrl: http://127.0.0.1:9001
";
    let file = ProvidersFile::new(yaml);

    let catalog = file.load().expect("loads");

    let acme = catalog.get("acme_crm").expect("added");
    let oauth = acme.oauth2().expect("oauth2");
    assert_eq!(oauth.scope_separator, " ", "default separator");
    assert_eq!(oauth.token_auth, TokenAuth::Body, "default token auth");
    assert!(oauth.pkce);
    let stripe = catalog.get("stripe").expect("still present");
    assert_eq!(stripe.name, "Stripe (local)");
    assert_eq!(
        stripe.sync, None,
        "the built-in entry is replaced, not merged"
    );
    assert_eq!(stripe.webhook, None);
    assert_eq!(
        catalog.get("google_calendar"),
        Catalog::builtin().get("google_calendar")
    );
    let slugs: Vec<&str> = catalog.iter().map(|(slug, _)| slug).collect();
    let mut sorted = slugs.clone();
    sorted.sort_unstable();
    assert_eq!(slugs, sorted, "iter() is sorted by slug");
}

#[test]
fn an_empty_providers_file_leaves_the_builtin_catalog() {
    let catalog = ProvidersFile::new("# nothing here\n")
        .load()
        .expect("loads");

    assert_eq!(catalog.iter().count(), Catalog::builtin().iter().count());
}

// ───────────── health checks and request building ─────────────

#[test]
fn header_credentials_follow_the_catalog_format() {
    let stripe = builtin("stripe");

    let request = stripe
        .build_health_check(&Map::new(), &obj(json!({"secretKey": "sk_test_123"})))
        .expect("builds");

    assert_eq!(request.url.as_str(), "https://api.stripe.com/v1/balance");
    assert_eq!(
        header(&request.headers, "Authorization"),
        Some("Bearer sk_test_123")
    );
}

#[test]
fn oauth2_providers_send_the_access_token_as_bearer() {
    let google = builtin("google_calendar");

    let request = google
        .build_health_check(
            &Map::new(),
            &obj(json!({"accessToken": "ya29.tok", "refreshToken": "r"})),
        )
        .expect("builds");

    assert_eq!(
        request.url.as_str(),
        "https://www.googleapis.com/calendar/v3/users/me/calendarList?maxResults=1"
    );
    assert_eq!(
        header(&request.headers, "authorization"),
        Some("Bearer ya29.tok")
    );
}

#[test]
fn an_oauth2_apply_overrides_the_bearer_default() {
    let monday = builtin("monday");
    let request = monday
        .prepare_request(
            http::Method::POST,
            "/v2",
            &Default::default(),
            &Values::new(&Map::new(), &obj(json!({"accessToken": "tok"}))),
        )
        .expect("builds");

    assert_eq!(request.url.as_str(), "https://api.monday.com/v2");
    assert_eq!(header(&request.headers, "authorization"), Some("tok"));
}

#[test]
fn query_credentials_are_added_as_an_encoded_parameter() {
    let file = ProvidersFile::new(
        "acme_sms:
  name: Acme SMS
  category: communication
  auth:
    mode: api_key
    fields: [{name: apiKey, secret: true}]
    apply: {query: api_key, format: \"{apiKey}\"}
  api:
    baseUrl: http://127.0.0.1:9000/v1
    healthCheck: {method: GET, path: \"/account?verbose=1\", expect: 204}
",
    );
    let catalog = file.load().expect("loads");

    let request = catalog
        .get("acme_sms")
        .expect("loaded")
        .build_health_check(&Map::new(), &obj(json!({"apiKey": "k&y=1"})))
        .expect("builds");

    assert_eq!(
        request.url.as_str(),
        "http://127.0.0.1:9000/v1/account?verbose=1&api_key=k%26y%3D1"
    );
    assert_eq!(request.expect.status, 204);
    assert!(header(&request.headers, "authorization").is_none());
}

#[test]
fn config_base_url_overrides_the_catalog_base_url() {
    let stripe = builtin("stripe");

    let request = stripe
        .build_health_check(
            &obj(json!({"baseUrl": "http://127.0.0.1:8089/stripe/"})),
            &obj(json!({"secretKey": "sk"})),
        )
        .expect("builds");

    assert_eq!(
        request.url.as_str(),
        "http://127.0.0.1:8089/stripe/v1/balance"
    );
}

#[test]
fn api_headers_and_config_placeholders_are_rendered() {
    let xero = builtin("xero");

    let request = xero
        .build_health_check(
            &obj(json!({"tenantId": "t-42"})),
            &obj(json!({"accessToken": "tok"})),
        )
        .expect("builds");

    assert_eq!(
        request.url.as_str(),
        "https://api.xero.com/api.xro/2.0/Organisation"
    );
    assert_eq!(header(&request.headers, "xero-tenant-id"), Some("t-42"));
    assert_eq!(header(&request.headers, "accept"), Some("application/json"));
}

#[test]
fn values_rendered_into_paths_are_percent_encoded() {
    let google = builtin("google_calendar");
    let event = google.entity("event").expect("event");
    let config = obj(json!({"calendarId": "team/room a@group.calendar.google.com"}));
    let creds = obj(json!({"accessToken": "tok"}));

    let request = google
        .prepare_request(
            event.request.method.clone(),
            &event.request.path,
            &event.request.params,
            &Values::new(&config, &creds),
        )
        .expect("builds");

    assert_eq!(
        request.url.path(),
        "/calendar/v3/calendars/team%2Froom%20a%40group.calendar.google.com/events"
    );
    let pairs: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    assert!(
        pairs.contains(&("singleEvents".into(), "true".into())),
        "{pairs:?}"
    );
}

#[test]
fn config_placeholders_fall_back_to_their_default() {
    let google = builtin("google_calendar");
    let write = google
        .entity("event")
        .and_then(|e| e.write.as_ref())
        .expect("write");
    let update = write.update.as_ref().expect("update");
    let creds = obj(json!({"accessToken": "tok"}));
    let config = Map::new();

    let request = google
        .prepare_request(
            update.method.clone(),
            &update.path,
            &Default::default(),
            &Values::new(&config, &creds).with_remote_id("evt 1"),
        )
        .expect("builds");

    assert_eq!(request.method, http::Method::PATCH);
    assert_eq!(
        request.url.path(),
        "/calendar/v3/calendars/primary/events/evt%201"
    );
}

#[test]
fn a_key_in_the_url_is_rendered_into_the_base_url() {
    let kavenegar = builtin("kavenegar");

    let request = kavenegar
        .build_health_check(&Map::new(), &obj(json!({"apiKey": "ab/cd"})))
        .expect("builds");

    assert_eq!(
        request.url.as_str(),
        "https://api.kavenegar.com/v1/ab%2Fcd/account/info.json"
    );
    assert!(request.headers.is_empty());
}

#[test]
fn a_missing_placeholder_value_is_an_error_naming_it() {
    let quickbooks = builtin("quickbooks");
    let missing_config = quickbooks
        .build_health_check(&Map::new(), &obj(json!({"accessToken": "tok"})))
        .expect_err("realmId is missing");
    assert_eq!(
        missing_config.to_string(),
        "cannot build the request: {config.realmId}: no value"
    );

    let google = builtin("google_calendar");
    let missing_token = google
        .build_health_check(&Map::new(), &Map::new())
        .expect_err("no token");
    assert_eq!(
        missing_token.to_string(),
        "cannot build the request: {accessToken}: no value"
    );

    let custom = builtin("custom_api");
    let no_base = custom
        .prepare_request(
            http::Method::GET,
            "/x",
            &Default::default(),
            &Values::new(&Map::new(), &obj(json!({"apiKey": "k"}))),
        )
        .expect_err("no base URL");
    assert!(
        matches!(no_base, CatalogError::MissingValue { ref placeholder, .. } if placeholder == "{config.baseUrl}")
    );
}

#[test]
fn a_non_scalar_placeholder_value_is_rejected_without_echoing_it() {
    let twilio = builtin("twilio");

    let error = twilio
        .build_health_check(
            &Map::new(),
            &obj(json!({"accountSid": {"nested": "AC1"}, "authToken": "secret-tok"})),
        )
        .expect_err("object value");

    let message = error.to_string();
    assert!(message.contains("{accountSid}"), "{message}");
    assert!(!message.contains("secret-tok"));
}

#[test]
fn debug_output_of_a_request_hides_credentials() {
    let kavenegar = builtin("kavenegar");
    let stripe = builtin("stripe");

    let in_url = kavenegar
        .build_health_check(&Map::new(), &obj(json!({"apiKey": "key-in-path"})))
        .expect("builds");
    let in_header = stripe
        .build_health_check(&Map::new(), &obj(json!({"secretKey": "sk_live_secret"})))
        .expect("builds");

    let printed = format!("{in_url:?} {in_header:?}");
    assert!(!printed.contains("key-in-path"), "{printed}");
    assert!(!printed.contains("sk_live_secret"), "{printed}");
    assert!(
        printed.contains("https://api.stripe.com") && printed.contains("Authorization"),
        "{printed}"
    );
}

#[test]
fn a_provider_without_health_check_cannot_be_tested() {
    let seha = builtin("seha");

    let error = seha
        .build_health_check(&Map::new(), &obj(json!({"apiKey": "k"})))
        .expect_err("no health check");

    assert!(matches!(error, CatalogError::NoHealthCheck));
}

#[test]
fn custom_api_takes_its_base_url_and_key_header_from_config() {
    let custom = builtin("custom_api");
    let creds = obj(json!({"apiKey": "k1"}));

    let default_header = custom
        .prepare_request(
            http::Method::GET,
            "/items",
            &Default::default(),
            &Values::new(
                &obj(json!({"baseUrl": "https://erp.example.com/api"})),
                &creds,
            ),
        )
        .expect("builds");
    let own_header = custom
        .prepare_request(
            http::Method::GET,
            "/items",
            &Default::default(),
            &Values::new(
                &obj(json!({"baseUrl": "https://erp.example.com/api", "authHeader": "X-Api-Key", "authPrefix": ""})),
                &creds,
            ),
        )
        .expect("builds");

    assert_eq!(
        default_header.url.as_str(),
        "https://erp.example.com/api/items"
    );
    assert_eq!(
        header(&default_header.headers, "Authorization"),
        Some("Bearer k1")
    );
    assert_eq!(header(&own_header.headers, "X-Api-Key"), Some("k1"));
}

#[test]
fn payplus_sends_its_keys_as_a_json_authorization_header() {
    let payplus = builtin("payplus");

    let request = payplus
        .build_health_check(
            &obj(json!({"terminalUid": "term 1"})),
            &obj(json!({"apiKey": "a1", "secretKey": "s1"})),
        )
        .expect("builds");

    assert_eq!(
        header(&request.headers, "authorization"),
        Some(r#"{"api_key":"a1","secret_key":"s1"}"#)
    );
    assert_eq!(
        request.url.as_str(),
        "https://restapi.payplus.co.il/api/v1.0/PaymentPages/list?terminal_uid=term%201"
    );
    assert_eq!(
        request
            .expect
            .evaluate(200, br#"{"results": {"status": "error"}}"#),
        ExpectOutcome::UnexpectedBody("`results.status` is \"error\", expected \"success\"".into())
    );
}

#[test]
fn custom_api_entity_definitions_from_config_are_parsed_and_checked() {
    let custom = builtin("custom_api");

    let entities = custom
        .parse_entities(&json!({
            "item": {"request": {"method": "GET", "path": "/items", "params": {"limit": 50}},
                     "records": "data", "id": "id",
                     "pagination": {"type": "page", "param": "page", "sizeParam": "per_page", "pageSize": 50}}
        }))
        .expect("valid");
    let item = entities.get("item").expect("parsed");
    assert_eq!(
        item.request.params.get("limit").map(String::as_str),
        Some("50")
    );

    let bad = custom
        .parse_entities(&json!({"item": {"request": {"method": "GET", "path": "/items/{apiKey}"}, "records": "", "id": "id"}}))
        .expect_err("secret in URL");
    assert!(
        bad.to_string()
            .starts_with("item.request.path: {apiKey} is a secret field"),
        "{bad}"
    );

    let unknown = custom
        .parse_entities(&json!({"item": {"request": {"method": "GET", "path": "/i"}, "records": "", "id": "id", "extra": 1}}))
        .expect_err("unknown field");
    assert!(
        unknown.to_string().starts_with("item.extra: unknown field"),
        "{unknown}"
    );
}

// ───────────── the public view ─────────────

#[test]
fn public_view_of_an_oauth_provider_lists_scopes_capabilities_and_limits() {
    let google = builtin("google_calendar");

    let view = google.public_view("google_calendar");

    // The declared actions, with their input schemas as the catalog writes them.
    let google_calendar_actions = json!([
        {"name": "create_event", "description": "Create an event.",
         "input": google.actions["create_event"].input, "output": ["htmlLink", "id"]},
        {"name": "list_events", "description": "The events between two times, recurring ones expanded.",
         "input": google.actions["list_events"].input, "output": ["events"]}
    ]);
    assert_eq!(
        view["actions"][1]["input"]["required"],
        json!(["start", "end"])
    );
    assert_eq!(
        view,
        json!({
            "slug": "google_calendar",
            "name": "Google Calendar",
            "category": "calendar",
            "authMode": "oauth2",
            "scopes": [
                "https://www.googleapis.com/auth/calendar.events",
                "https://www.googleapis.com/auth/calendar.readonly"
            ],
            "credentialFields": [],
            "settings": [
                {"name": "calendarId", "kind": "string", "required": false,
                 "description": "The calendar to sync and write events to (its id, e.g. team@group.calendar.google.com).",
                 "default": "primary", "pattern": null},
                {"name": "baseUrl", "kind": "string", "required": false,
                 "description": "Replaces the provider's API base URL, path included (a sandbox, a proxy).",
                 "default": null, "pattern": null}
            ],
            "baseUrl": "https://www.googleapis.com/calendar/v3",
            "capabilities": {
                "syncEntities": ["event"],
                "webhookScheme": "google_channel",
                "actions": ["create_event", "list_events"],
                "operations": ["oauth_connect", "test_connection", "sync", "export", "webhooks", "actions", "proxy"]
            },
            "actions": google_calendar_actions,
            "healthCheck": true,
            "rateLimit": {"requests": 600, "perSeconds": 60}
        })
    );
}

#[test]
fn public_view_of_credential_and_webhook_only_providers() {
    let twilio = builtin("twilio").public_view("twilio");
    assert_eq!(twilio["authMode"], "basic");
    assert_eq!(
        twilio["credentialFields"],
        json!([{"name": "accountSid", "secret": false}, {"name": "authToken", "secret": true}])
    );
    assert_eq!(twilio["scopes"], json!([]));
    assert_eq!(twilio["rateLimit"], Value::Null);
    assert_eq!(twilio["capabilities"]["actions"], json!(["send_sms"]));
    assert_eq!(
        twilio["capabilities"]["operations"],
        json!(["test_connection", "webhooks", "actions", "proxy"])
    );

    let hook = builtin("custom_webhook").public_view("custom_webhook");
    assert_eq!(
        hook,
        json!({
            "slug": "custom_webhook", "name": "Custom webhook", "category": "custom",
            "authMode": "none", "scopes": [], "credentialFields": [],
            "settings": [{"name": "baseUrl", "kind": "string", "required": false,
                          "description": "Replaces the provider's API base URL, path included (a sandbox, a proxy).",
                          "default": null, "pattern": null}],
            "baseUrl": null,
            "capabilities": {"syncEntities": [], "webhookScheme": "hmac_sha256", "actions": [],
                             "operations": ["webhooks"]},
            "actions": [],
            "healthCheck": false, "rateLimit": null
        })
    );
}

#[test]
fn categories_and_modes_parse_from_their_wire_names() {
    assert_eq!("crm".parse::<Category>(), Ok(Category::Crm));
    assert!("CRM".parse::<Category>().is_err());
    assert_eq!(AuthMode::ApiKey.as_str(), "api_key");
    assert_eq!(WebhookScheme::HubspotV3.as_str(), "hubspot_v3");
}

// ───────────── provider settings (`config`) at load time ─────────────

/// A minimal valid api_key entry for `acme_crm` with `extra` lines appended at entry level and
/// `base_url` as its `api.baseUrl`.
fn acme_api_key(base_url: &str, extra: &str) -> String {
    format!(
        "acme_crm:
  name: Acme CRM
  category: crm
  auth:
    mode: api_key
    fields: [{{name: apiKey, secret: true}}]
    apply: {{header: Authorization, format: \"Bearer {{apiKey}}\"}}
  api:
    baseUrl: \"{base_url}\"
{extra}"
    )
}

#[test]
fn an_undeclared_config_placeholder_is_an_error_naming_slug_and_field_path() {
    let cases = [
        (
            acme_api_key("https://{config.region}.acme.example", ""),
            "api.baseUrl: {config.region} names no declared setting: declare it under `config` (declared: none)",
        ),
        (
            acme_api_key(
                "https://acme.example",
                "  config: [{name: region}]\n  sync:\n    entities:\n      deal:\n        request: {method: GET, path: \"/deals\", params: {owner: \"{config.ownerId}\"}}\n        records: items\n        id: id\n",
            ),
            "sync.entities.deal.request.params.owner: {config.ownerId} names no declared setting: declare it under `config` (declared: region)",
        ),
        (
            format!(
                "{}  api:\n    baseUrl: https://a.example\n    headers: {{X-Tenant: \"{{config.tenant}}\"}}\n",
                acme_oauth("    tokenUrl: https://auth.acme.example/token").replace("  api:\n    baseUrl: https://api.acme.example/v2\n", "")
            ),
            "api.headers.X-Tenant: {config.tenant} names no declared setting",
        ),
    ];
    for (yaml, expected) in cases {
        assert_rejected_with(&yaml, expected);
    }
}

#[test]
fn base_url_needs_no_declaration_and_declared_settings_fill_placeholders() {
    let file = ProvidersFile::new(&acme_api_key(
        "{config.baseUrl}",
        "  config:\n    - {name: region, default: eu, pattern: \"[a-z]{2}\"}\n",
    ));
    let catalog = file.load().expect("baseUrl and declared settings load");
    let acme = catalog.get("acme_crm").expect("loaded");

    let request = acme
        .prepare_request(
            http::Method::GET,
            "/{config.region}/deals",
            &Default::default(),
            &Values::new(
                &obj(json!({"baseUrl": "http://127.0.0.1:9000/api"})),
                &obj(json!({"apiKey": "k"})),
            ),
        )
        .expect("the default fills {config.region}");

    assert_eq!(request.url.as_str(), "http://127.0.0.1:9000/api/eu/deals");
    assert_eq!(acme.setting("region").map(|s| s.required), Some(false));
}

#[test]
fn setting_declarations_are_checked_with_their_path() {
    let cases = [
        (
            "  config: [{name: \"2fa\"}]\n",
            "config[0].name: `2fa` is not a valid setting name",
        ),
        (
            "  config: [{name: a}, {name: a}]\n",
            "config[1].name: `a` is declared twice",
        ),
        (
            "  config: [{name: a, pattern: \"[0-9\"}]\n",
            "config[0].pattern: not a valid pattern: non-empty character class has no closing bracket",
        ),
        (
            "  config: [{name: a, pattern: \"[0-9]+\", default: x}]\n",
            "config[0].default: `x` does not match the setting's pattern",
        ),
        (
            "  config: [{name: a, required: true, default: x}]\n",
            "config[0].default: a required setting never uses its default",
        ),
        (
            "  config: [{name: a, secret: true}]\n",
            "config[0].secret: unknown field",
        ),
        (
            "  config: [{name: a, description: \" \"}]\n",
            "config[0].description: must not be empty",
        ),
    ];
    for (extra, expected) in cases {
        assert_rejected_with(&acme_api_key("https://a.example", extra), expected);
    }
}

#[test]
fn every_config_placeholder_of_the_builtin_catalog_names_a_declared_setting() {
    // The loader enforces it; this pins the settings the spec names.
    let declared = |slug: &str, name: &str| builtin(slug).setting(name).cloned();

    assert!(declared("whatsapp_business", "phoneNumberId").is_some_and(|s| s.required));
    assert!(declared("mailchimp", "serverPrefix").is_some_and(|s| s.required));
    assert_eq!(
        declared("google_calendar", "calendarId").and_then(|s| s.default),
        Some("primary".to_owned())
    );
    assert!(declared("quickbooks", "realmId").is_some_and(|s| s.required));
    assert!(declared("xero", "tenantId").is_some_and(|s| s.required));
    assert!(declared("hashavshevet", "dbName").is_some_and(|s| s.required));
    assert!(declared("hashavshevet", "server").is_some());
    assert!(declared("seha", "facilityId").is_some());
    assert!(declared("tatman", "providerId").is_some());
    assert!(declared("twilio", "fromNumber").is_some());
    assert!(
        declared("sendgrid", "fromEmail").is_some() && declared("sendgrid", "fromName").is_some()
    );
    assert_eq!(
        declared("openai", "model").and_then(|s| s.default),
        Some("gpt-4o-mini".to_owned())
    );
    assert!(declared("figma", "projectId").is_some());
    assert!(declared("payplus", "terminalUid").is_some_and(|s| s.required));
    assert!(declared("cardcom", "terminalNumber").is_some_and(|s| s.required));
}

#[test]
fn every_builtin_entry_names_the_documentation_its_endpoints_came_from() {
    let mut slug = None;
    let mut documented = std::collections::BTreeMap::new();
    for line in BUILTIN_YAML.lines() {
        if let Some(name) = line
            .strip_suffix(':')
            .filter(|l| !l.starts_with([' ', '#']))
        {
            slug = Some(name.to_owned());
            documented.insert(name.to_owned(), false);
        } else if line.trim_start().starts_with("# Docs:") {
            if let Some(slug) = &slug {
                documented.insert(slug.clone(), true);
            }
        }
    }
    let undocumented: Vec<&String> = documented
        .iter()
        .filter(|(_, has_docs)| !**has_docs)
        .map(|(slug, _)| slug)
        .collect();
    assert_eq!(documented.len(), SPEC_PROVIDERS.len());
    assert!(
        undocumented.is_empty(),
        "no `# Docs:` comment: {undocumented:?}"
    );
}

// ───────────── provider settings (`config`) of an integration ─────────────

fn config_errors(slug: &str, config: Value) -> Vec<(String, String)> {
    builtin(slug)
        .check_config(&obj(config))
        .into_iter()
        .map(|e| (e.field, e.message))
        .collect()
}

fn fields_of(errors: &[(String, String)]) -> Vec<&str> {
    errors.iter().map(|(field, _)| field.as_str()).collect()
}

#[test]
fn a_missing_required_setting_is_named() {
    let errors = config_errors("whatsapp_business", json!({}));

    assert_eq!(fields_of(&errors), ["config.phoneNumberId"]);
    assert!(errors[0].1.starts_with("is required"), "{errors:?}");
}

#[test]
fn unknown_non_string_too_long_and_mismatching_values_are_each_named() {
    let errors = config_errors(
        "whatsapp_business",
        json!({"phoneNumberId": "10987 65", "colour": "red", "businessAccountId": 42,
               "baseUrl": {"nested": ""}}),
    );

    assert_eq!(
        errors,
        vec![
            ("config.phoneNumberId".into(), "does not match the pattern `[0-9]+`".into()),
            ("config.colour".into(), "is not a setting of this provider (expected: phoneNumberId, businessAccountId, baseUrl)".into()),
            ("config.businessAccountId".into(), "must be a string".into()),
            ("config.baseUrl".into(), "must be a string".into()),
        ]
    );
    let long = config_errors("twilio", json!({"fromNumber": "1".repeat(1025)}));
    assert_eq!(fields_of(&long), ["config.fromNumber"]);
}

#[test]
fn a_valid_config_has_no_errors_and_base_url_is_accepted_everywhere() {
    assert!(config_errors(
        "whatsapp_business",
        json!({"phoneNumberId": "109876543210"})
    )
    .is_empty());
    assert!(config_errors("stripe", json!({"baseUrl": "http://127.0.0.1:9"})).is_empty());
    assert!(
        config_errors("google_calendar", json!({})).is_empty(),
        "defaults are not required"
    );
    assert_eq!(
        fields_of(&config_errors("stripe", json!({"baseUrl": " "}))),
        ["config.baseUrl"]
    );
}

#[test]
fn seha_tatman_priority_and_custom_api_require_a_base_url() {
    for slug in ["seha", "tatman", "priority", "custom_api"] {
        let errors = config_errors(slug, json!({}));
        assert_eq!(fields_of(&errors), ["config.baseUrl"], "{slug}");
        let provider = builtin(slug);
        let base = provider.api.as_ref().map(|a| a.base_url.as_str());
        assert_eq!(
            base,
            Some("{config.baseUrl}"),
            "{slug}: no invented default host"
        );
    }
}

#[test]
fn an_empty_key_anywhere_in_config_is_rejected() {
    let top = config_errors("stripe", json!({"": "x"}));
    assert_eq!(fields_of(&top), ["config"]);

    let nested = config_errors("stripe", json!({"x": {"": 1}}));
    assert_eq!(
        fields_of(&nested),
        ["config.x"],
        "unknown, whatever it holds"
    );

    let in_definitions = config_errors(
        "custom_api",
        json!({"baseUrl": "https://erp.example.com",
               "entities": {"item": {"request": {"method": "GET", "path": "/items"}, "records": "", "id": "id",
                                     "deleted": {"path": "state", "equals": {"": true}}}}}),
    );
    assert_eq!(
        in_definitions,
        vec![(
            "config.entities.item.deleted.equals.\"\"".into(),
            "keys must not be empty".into()
        )]
    );
}

#[test]
fn custom_api_headers_and_entities_are_checked_and_headers_are_sent() {
    let custom = builtin("custom_api");
    let errors = config_errors(
        "custom_api",
        json!({"baseUrl": "https://erp.example.com", "headers": {"X-Team": 7, "bad header": "v", "Authorization": "x"},
               "entities": {"Item": {"request": {"method": "GET", "path": "/items"}, "records": "", "id": "id"}}}),
    );
    assert_eq!(
        fields_of(&errors),
        [
            "config.headers.X-Team",
            "config.headers.bad header",
            "config.headers.Authorization",
            "config.entities.Item"
        ],
        "{errors:?}"
    );

    let config = obj(json!({"baseUrl": "https://erp.example.com", "headers": {"X-Team": "blue"}}));
    assert!(custom.check_config(&config).is_empty());
    let request = custom
        .prepare_request(
            http::Method::GET,
            "/items",
            &Default::default(),
            &Values::new(&config, &obj(json!({"apiKey": "k1"}))),
        )
        .expect("builds");
    assert_eq!(header(&request.headers, "x-team"), Some("blue"));
    assert_eq!(header(&request.headers, "authorization"), Some("Bearer k1"));
}

#[test]
fn public_view_lists_required_settings_credential_secrecy_and_the_base_url() {
    let whatsapp = builtin("whatsapp_business").public_view("whatsapp_business");
    let settings = whatsapp["settings"].as_array().expect("settings");
    let phone = settings
        .iter()
        .find(|s| s["name"] == "phoneNumberId")
        .expect("phoneNumberId listed");
    assert_eq!(phone["required"], true);
    assert_eq!(phone["pattern"], "[0-9]+");
    assert!(settings.iter().any(|s| s["name"] == "baseUrl"));
    assert_eq!(whatsapp["baseUrl"], "https://graph.facebook.com/v23.0");
    assert_eq!(
        whatsapp["credentialFields"],
        json!([{"name": "accessToken", "secret": true}])
    );

    let custom = builtin("custom_api").public_view("custom_api");
    let kinds: Vec<(&str, &str)> = custom["settings"]
        .as_array()
        .expect("settings")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or(""),
                s["kind"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("baseUrl", "string"),
            ("authHeader", "string"),
            ("authPrefix", "string"),
            ("headers", "object"),
            ("entities", "object")
        ]
    );
}

// ───────────── issue 11: OAuth endpoints, health expectations, per-provider corrections ─────────────

#[test]
fn every_builtin_oauth2_entry_has_its_endpoints_and_https_revoke_and_refresh_urls() {
    let mut oauth_entries = 0;
    for (slug, provider) in Catalog::builtin().iter() {
        let Some(oauth) = provider.oauth2() else {
            continue;
        };
        oauth_entries += 1;
        for (what, url) in [
            ("authorizeUrl", Some(&oauth.authorize_url)),
            ("tokenUrl", Some(&oauth.token_url)),
            ("revokeUrl", oauth.revoke_url.as_ref()),
            ("refreshUrl", oauth.refresh_url.as_ref()),
        ] {
            if let Some(url) = url {
                assert_eq!(url.scheme(), "https", "{slug} {what}");
                assert!(url.host_str().is_some(), "{slug} {what}");
            }
        }
    }
    assert!(oauth_entries >= 10, "{oauth_entries} oauth2 entries");
    // And a file cannot leave them out or use another scheme.
    assert!(ProvidersFile::new(&acme_oauth(""))
        .error()
        .ends_with("auth.tokenUrl: missing field"));
    let no_authorize = ProvidersFile::new(
        &acme_oauth("    tokenUrl: https://auth.acme.example/token").replace(
            "    authorizeUrl: https://auth.acme.example/authorize\n",
            "",
        ),
    )
    .error();
    assert!(
        no_authorize.ends_with("auth.authorizeUrl: missing field"),
        "{no_authorize}"
    );
    for field in ["revokeUrl", "refreshUrl"] {
        let message = ProvidersFile::new(&acme_oauth(&format!(
            "    tokenUrl: https://auth.acme.example/token\n    {field}: ftp://auth.acme.example/x"
        )))
        .error();
        assert!(
            message.ends_with(&format!("auth.{field}: must be an absolute http(s) URL")),
            "{message}"
        );
    }
}

#[test]
fn refresh_url_is_an_oauth2_field() {
    let message = ProvidersFile::new(&acme_api_key("https://a.example", "").replace(
        "    mode: api_key\n",
        "    mode: api_key\n    refreshUrl: https://a.example/refresh\n",
    ))
    .error();

    assert!(
        message.ends_with("auth.refreshUrl: not used by mode api_key"),
        "{message}"
    );
}

#[test]
fn figma_refreshes_at_its_own_endpoint_and_hubspot_uses_the_2026_03_endpoints() {
    let figma = builtin("figma");
    let figma = figma.oauth2().expect("oauth2");
    assert_eq!(
        figma.token_url.as_str(),
        "https://api.figma.com/v1/oauth/token"
    );
    assert_eq!(
        figma.refresh_url.as_ref().map(Url::as_str),
        Some("https://api.figma.com/v1/oauth/refresh")
    );

    let hubspot = builtin("hubspot");
    let hubspot = hubspot.oauth2().expect("oauth2");
    assert_eq!(
        hubspot.token_url.as_str(),
        "https://api.hubapi.com/oauth/2026-03/token"
    );
    assert_eq!(
        hubspot.revoke_url.as_ref().map(Url::as_str),
        Some("https://api.hubapi.com/oauth/2026-03/token/revoke")
    );
    assert!(hubspot.pkce);
}

#[test]
fn health_check_expect_is_a_status_or_a_body_condition() {
    let slack = builtin("slack");
    let check = slack
        .build_health_check(&Map::new(), &obj(json!({"accessToken": "xoxb-1"})))
        .expect("builds");
    assert_eq!(
        check.expect,
        HealthExpect {
            status: 200,
            body: Some(BodyCondition {
                path: "ok".into(),
                equals: json!(true)
            })
        }
    );
    let cases = [
        (
            "{method: GET, path: /me, expect: \"200\"}",
            "api.healthCheck.expect: expected a status (200) or {status, path, equals}",
        ),
        (
            "{method: GET, path: /me, expect: {status: 200, path: ok}}",
            "api.healthCheck.expect.equals: missing field",
        ),
        (
            "{method: GET, path: /me, expect: {status: 200, path: ok, equals: true, note: x}}",
            "api.healthCheck.expect.note: unknown field",
        ),
        (
            "{method: GET, path: /me, expect: {status: 99, path: ok, equals: true}}",
            "api.healthCheck.expect.status: must be an HTTP status (100-599)",
        ),
        (
            "{method: GET, path: /me, expect: {status: 200, path: \"\", equals: true}}",
            "api.healthCheck.expect.path: must not be empty",
        ),
    ];
    for (health_check, expected) in cases {
        let yaml = acme_api_key("https://a.example", "").replace(
            "    baseUrl: \"https://a.example\"\n",
            &format!("    baseUrl: https://a.example\n    healthCheck: {health_check}\n"),
        );
        assert_rejected_with(&yaml, expected);
    }
}

#[test]
fn a_body_condition_decides_a_200_answer() {
    let expect = HealthExpect {
        status: 200,
        body: Some(BodyCondition {
            path: "entries.0.status".into(),
            equals: json!(200),
        }),
    };

    assert_eq!(
        expect.evaluate(200, br#"{"entries": [{"status": 200.0}]}"#),
        ExpectOutcome::Met
    );
    assert_eq!(expect.evaluate(401, b""), ExpectOutcome::WrongStatus);
    assert_eq!(
        expect.evaluate(200, br#"{"entries": [{"status": 418}]}"#),
        ExpectOutcome::UnexpectedBody("`entries.0.status` is 418, expected 200".into())
    );
    assert_eq!(
        expect.evaluate(200, br#"{"entries": []}"#),
        ExpectOutcome::UnexpectedBody("`entries.0.status` is absent, expected 200".into())
    );
    assert_eq!(
        expect.evaluate(200, b"<html>"),
        ExpectOutcome::UnexpectedBody("the body is not JSON".into())
    );
    let status_only = HealthExpect {
        status: 204,
        body: None,
    };
    assert_eq!(status_only.evaluate(204, b"anything"), ExpectOutcome::Met);
}

#[test]
fn cardcom_sends_its_terminal_number_and_api_name_and_only_the_password_is_secret() {
    let cardcom = builtin("cardcom");
    assert_eq!(
        cardcom.credential_fields(),
        &[
            CredentialField {
                name: "apiName".into(),
                secret: false
            },
            CredentialField {
                name: "apiPassword".into(),
                secret: true
            },
        ]
    );

    let request = cardcom
        .prepare_request(
            http::Method::GET,
            "/Interface/BillGoldGetLowProfileIndicator.aspx",
            &Default::default(),
            &Values::new(
                &obj(json!({"terminalNumber": "1000"})),
                &obj(json!({"apiName": "test9611", "apiPassword": "p"})),
            ),
        )
        .expect("builds");

    assert_eq!(
        request.url.query(),
        Some("terminalnumber=1000&username=test9611")
    );
    assert_eq!(
        config_errors("cardcom", json!({})),
        vec![(
            "config.terminalNumber".to_owned(),
            "is required: The Cardcom terminal number.".to_owned()
        )]
    );
}

#[test]
fn monday_stays_within_the_smallest_paid_daily_cap() {
    let monday = builtin("monday");
    let limit = monday
        .api
        .as_ref()
        .and_then(|a| a.rate_limit)
        .expect("a limit");

    // Burst plus one day of refill never exceeds 1,000 calls (basic/standard daily cap).
    let per_day = limit.requests as u64 + limit.requests as u64 * 86_400 / limit.per_seconds as u64;
    assert!(per_day <= 1_000, "{per_day} calls a day");
    assert!(limit.requests as u64 * 60 / limit.per_seconds as u64 <= 1_000);
}

#[test]
fn default_mappings_are_the_sync_settings_mapping_type_and_their_transform_configs_are_parsed() {
    let entity = |config: &str| {
        acme_api_key(
            "https://acme.example",
            &format!("  sync:\n    entities:\n      deal:\n        request: {{method: GET, path: /deals}}\n        records: items\n        id: id\n        defaultMappings:\n          localEntity: opportunity\n          fields:\n            - {{localField: closedAt, remoteField: closed, transform: date_format, transformConfig: {config}}}\n"),
        )
    };
    let catalog = ProvidersFile::new(&entity("{format: date}"))
        .load()
        .expect("valid defaults load");
    let mappings = catalog
        .get("acme_crm")
        .and_then(|p| p.entity("deal"))
        .and_then(|e| e.default_mappings.as_ref())
        .expect("default mappings");
    assert_eq!(mappings.fields[0].local_entity, "opportunity");
    assert!(mappings.fields[0].transformation("x").is_ok());

    let message = ProvidersFile::new(&entity("{format: 42}")).error();
    assert!(
        message.contains("sync.entities.deal.defaultMappings.fields[0].transformConfig.format"),
        "{message}"
    );
}

#[test]
fn the_complete_example_of_docs_catalog_md_loads_as_a_providers_file() {
    let doc = include_str!("../../../docs/catalog.md");
    let example = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/catalog.md has a yaml example");
    let catalog = ProvidersFile::new(example)
        .load()
        .expect("the example loads");
    let acme = catalog.get("acme_crm").expect("acme_crm");

    assert!(acme.setting("region").is_some_and(|s| s.required));
    assert_eq!(
        acme.oauth2()
            .and_then(|o| o.refresh_url.as_ref())
            .map(Url::as_str),
        Some("https://auth.acme.example/refresh")
    );
    let request = acme
        .prepare_request(
            http::Method::GET,
            &acme.entity("deal").expect("deal").request.path,
            &Default::default(),
            &Values::new(
                &obj(json!({"region": "eu1"})),
                &obj(json!({"accessToken": "t"})),
            ),
        )
        .expect("builds");
    assert_eq!(
        request.url.as_str(),
        "https://eu1.api.acme.example/v2/pipelines/main/deals"
    );
}

#[test]
fn action_definitions_are_checked_when_loaded() {
    let entry = |action: &str| {
        format!(
            "acme_crm:\n  name: A\n  category: crm\n  config: [{{name: region}}]\n  auth: {{mode: api_key, fields: [{{name: key, secret: true}}], apply: {{header: X-Key, format: \"{{key}}\"}}}}\n  api: {{baseUrl: https://a.example}}\n  actions:\n    notify:\n{action}"
        )
    };
    let input =
        "      input: {type: object, properties: {to: {type: string}, list: {type: array}}}\n";
    let cases = [
        (
            format!("      description: Notify\n{input}      request: {{method: POST, path: /n, json: {{to: \"{{input.too}}\"}}}}\n"),
            "actions.notify.request.json.to: {input.too} names no property of the action's input (declared: to, list)",
        ),
        (
            format!("      description: Notify\n{input}      request: {{method: POST, path: /n, json: {{to: \"{{item}}\"}}}}\n"),
            "actions.notify.request.json.to: {item} is only allowed in the `as` of a `$each`",
        ),
        (
            format!("      description: Notify\n{input}      request: {{method: POST, path: \"/n/{{key}}\"}}\n"),
            "actions.notify.request.path: {key} is a secret field and may not appear in a URL",
        ),
        (
            format!("      description: Notify\n{input}      request: {{method: GET, path: /n, json: {{a: 1}}}}\n"),
            "actions.notify.request.method: a GET request has no body: use query",
        ),
        (
            format!("      description: Notify\n{input}      request: {{method: POST, path: /n, json: {{a: 1}}, form: {{b: c}}}}\n"),
            "actions.notify.request: has either json or form, not both",
        ),
        (
            format!("      description: Notify\n{input}      request: {{method: POST, path: /n, json: {{l: {{$each: \"{{config.region}}\", as: x}}}}}}\n"),
            "actions.notify.request.json.l.$each: must be one {input.*} placeholder (a list)",
        ),
        (
            format!("      description: Notify\n{input}      request: {{method: POST, path: /n}}\n      output: {{id: $body}}\n"),
            "actions.notify.output.id: a path",
        ),
        (
            "      description: Notify\n      input: {type: array}\n      request: {method: POST, path: /n}\n".to_string(),
            "actions.notify.input.type: must be `object`",
        ),
        (
            format!("      description: Notify\n{input}      request: {{method: POST, path: /n, json: {{to: \"{{input.to|config.zone}}\"}}}}\n"),
            "actions.notify.request.json.to: {config.zone} names no declared setting",
        ),
        (
            format!("      description: Notify\n{input}      request: {{method: POST, path: /n, json: {{to: \"{{input.to}}\"}}}}\n      okWhen: {{path: ok}}\n"),
            "actions.notify.okWhen",
        ),
    ];
    for (action, expected) in cases {
        assert_rejected_with(&entry(&action), expected);
    }
}
