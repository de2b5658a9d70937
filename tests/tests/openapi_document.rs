//! The one OpenAPI document of the whole API (`api/openapi.json`) against what is deployed and served:
//!
//! - route parity: the documented operations are exactly the union of every function's router, and
//!   the SAM template routes exactly those operations to the function that serves them;
//! - the per-provider part of the create body (`credentials`, `config`, `syncSettings` entities, one
//!   `oneOf` branch per provider discriminated by `provider`) is generated from the built-in catalog:
//!   the test rebuilds it and fails if the document differs. `UPDATE_OPENAPI=1` rewrites the file
//!   instead (then review the diff and commit it).

use std::collections::{BTreeMap, BTreeSet};

use hub_local::template::http_routes;
use hub_shared::catalog::{AuthMode, Catalog, Provider};
use serde_json::{json, Map, Value};

const DOCUMENT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../api/openapi.json");
const DOCUMENT: &str = include_str!("../../api/openapi.json");

/// Every function's router, by the template logical id of the function that serves it. A new
/// function adds its line here (its `ROUTES` is declared next to its router, as integrations' is).
const FUNCTION_ROUTERS: &[(&str, &[(&str, &str)])] = &[
    ("IntegrationsFunction", integrations::ROUTES),
    ("InboundWebhookFunction", inbound_webhook::ROUTES),
    ("OAuthFunction", oauth::ROUTES),
];

/// The template's catch-all: it sends every other `/api` path to the integrations function so unknown
/// paths and wrong methods are answered as problems; it is not an operation of the document.
const CATCH_ALL: (&str, &str) = ("ANY", "/api/{proxy+}");

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("api/openapi.json is JSON")
}

type Route = (String, String);

fn documented_routes(doc: &Value) -> BTreeSet<Route> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            HTTP_METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

/// A path in the document's spelling: axum's `{*path}` and API Gateway's `{path+}` (a variable
/// over several segments) are OpenAPI's `{path}`.
fn normalized(path: &str) -> String {
    path.replace("{*path}", "{path}")
        .replace("{path+}", "{path}")
}

/// `(METHOD, path)` → the function whose router serves it.
fn served_routes() -> BTreeMap<Route, &'static str> {
    let mut served = BTreeMap::new();
    for (function, routes) in FUNCTION_ROUTERS {
        for (method, path) in *routes {
            let previous = served.insert((method.to_string(), normalized(path)), *function);
            assert!(
                previous.is_none(),
                "{method} {path} is served by both {function} and {previous:?}"
            );
        }
    }
    served
}

#[test]
fn the_document_describes_exactly_the_union_of_every_function_router() {
    let served: BTreeSet<Route> = served_routes().into_keys().collect();
    let documented = documented_routes(&document());

    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes served but missing from api/openapi.json: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented routes no function's router serves: {unserved:?}"
    );
}

#[test]
fn the_template_routes_every_documented_operation_to_the_function_that_serves_it() {
    let served = served_routes();
    // An `ANY` route (the proxy's) stands for every method served on its path.
    let template: BTreeMap<Route, String> = http_routes()
        .expect("infra/template.yaml routes")
        .into_iter()
        .filter(|route| (route.method.as_str(), route.path.as_str()) != CATCH_ALL)
        .flat_map(|route| {
            let path = normalized(&route.path);
            let methods: Vec<String> = if route.method == "ANY" {
                served
                    .keys()
                    .filter(|(_, served_path)| *served_path == path)
                    .map(|(method, _)| method.clone())
                    .collect()
            } else {
                vec![route.method.clone()]
            };
            methods
                .into_iter()
                .map(move |method| ((method, path.clone()), route.function.clone()))
        })
        .collect();

    let expected: BTreeMap<Route, String> = served
        .iter()
        .map(|(route, function)| (route.clone(), function.to_string()))
        .collect();
    assert_eq!(
        template, expected,
        "infra/template.yaml must route each documented operation (and nothing else besides the \
         catch-all) to the function whose router serves it"
    );
}

#[test]
fn the_document_is_openapi_3_1_with_problem_responses() {
    let doc = document();
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["schemas"]["Integration"].is_object());
}

#[test]
fn public_operations_are_the_template_routes_without_an_authorizer() {
    let doc = document();
    let public_in_template: BTreeSet<Route> = http_routes()
        .expect("template routes")
        .into_iter()
        .filter(|route| route.public)
        .map(|route| (route.method, route.path))
        .collect();
    let public_in_document: BTreeSet<Route> = documented_routes(&doc)
        .into_iter()
        .filter(|(method, path)| doc["paths"][path][method.to_lowercase()]["security"] == json!([]))
        .collect();
    assert_eq!(public_in_document, public_in_template);
}

// --- The per-provider part, generated from the built-in catalog -----------------------------------

const CREATE: &str = "CreateIntegrationRequest";
/// Component names the generator owns: `CreateIntegrationRequest` and one of each per provider.
const GENERATED_PREFIXES: [&str; 3] = [
    "CreateIntegrationRequest.",
    "ProviderCredentials.",
    "ProviderConfig.",
];

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The providers `POST /api/integrations` accepts: every one but OAuth (those use the connect flow).
fn creatable(catalog: &Catalog) -> Vec<(&str, &Provider)> {
    catalog
        .iter()
        .filter(|(_, provider)| provider.auth_mode() != AuthMode::OAuth2)
        .collect()
}

fn credentials_schema(slug: &str, provider: &Provider) -> Value {
    let fields = provider.credential_fields();
    let properties: Map<String, Value> = fields
        .iter()
        .map(|field| {
            let description = if field.secret {
                "Secret: stored encrypted, never returned."
            } else {
                "Not secret (may be used in URLs and shown in the hint)."
            };
            (
                field.name.clone(),
                json!({ "$ref": "#/components/schemas/CredentialValue", "description": description }),
            )
        })
        .collect();
    let required: Vec<&str> = fields.iter().map(|field| field.name.as_str()).collect();
    json!({
        "type": "object",
        "description": format!("The credential fields of `{slug}`, all required; no other field is accepted."),
        "required": required,
        "additionalProperties": false,
        "properties": properties,
    })
}

/// Non-secret settings of one provider. Today every provider takes `baseUrl` (an override of its API
/// base URL) and `custom_api` its own entity definitions; other keys are stored as given. When the
/// catalog declares per-provider settings, build `properties`/`required` from them here and make
/// `additionalProperties` false, then run the test with `UPDATE_OPENAPI=1`.
fn config_schema(slug: &str, provider: &Provider) -> Value {
    // The settings the catalog declares (docs/catalog.md): strings, the whole value matching the
    // pattern, non-empty when required; `baseUrl` is accepted for every provider.
    let mut properties = Map::new();
    properties.insert("baseUrl".into(), schema_ref("ConfigBaseUrl"));
    let mut required = Vec::new();
    for setting in &provider.config {
        if setting.name == "baseUrl" {
            if setting.required {
                required.push(Value::String(setting.name.clone()));
            }
            continue;
        }
        let mut schema = json!({"type": "string", "maxLength": 1024});
        if let Some(description) = &setting.description {
            schema["description"] = Value::String(description.clone());
        }
        if let Some(pattern) = &setting.pattern {
            schema["pattern"] = Value::String(format!("^(?:{pattern})$"));
        }
        if setting.required {
            schema["minLength"] = json!(1);
            required.push(Value::String(setting.name.clone()));
        }
        if let Some(default) = &setting.default {
            schema["default"] = Value::String(default.clone());
        }
        properties.insert(setting.name.clone(), schema);
    }
    for key in provider.product_config.structured_keys() {
        let schema = match *key {
            "headers" => json!({
                "type": "object",
                "description": "Headers sent with every request to your API (name → value); Authorization, Host, Cookie and the like are refused.",
                "propertyNames": {"pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"},
                "additionalProperties": {"type": "string"}
            }),
            _ => json!({
                "type": "object",
                "description": "Your API's entities, by name: each definition has the shape of a catalog entity (request, pagination, incremental, mappings). The names are the `remoteEntity` values of `syncSettings.entities`."
            }),
        };
        properties.insert(key.to_string(), schema);
    }
    let mut schema = json!({
        "type": "object",
        "description": format!("Non-secret settings of `{slug}` (its declared settings and `baseUrl`), at most 16 KiB of JSON."),
        "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        schema["required"] = Value::Array(required);
    }
    schema
}

/// `syncSettings` narrowed to the provider: its remote entities only (none: no entities and so no
/// mappings). `custom_api` defines its entities in `config.entities`, which a schema cannot follow.
fn sync_settings_schema(slug: &str, provider: &Provider) -> Value {
    let base = schema_ref("SyncSettingsInput");
    if slug == "custom_api" {
        return base;
    }
    let entities: Vec<String> = provider
        .sync
        .as_ref()
        .map(|sync| sync.entities.keys().cloned().collect())
        .unwrap_or_default();
    let narrowed = if entities.is_empty() {
        json!({ "properties": {
            "entities": { "maxItems": 0 },
            "fieldMappings": { "maxItems": 0 }
        }})
    } else {
        json!({ "properties": {
            "entities": { "items": { "properties": { "remoteEntity": { "enum": entities } } } }
        }})
    };
    json!({ "allOf": [base, narrowed] })
}

fn create_schema(slug: &str, provider: &Provider) -> Value {
    let mut required = vec!["provider", "name"];
    if !provider.credential_fields().is_empty() {
        required.push("credentials");
    }
    // A provider with a required setting needs `config` (with it) on create.
    if provider.config.iter().any(|setting| setting.required) {
        required.push("config");
    }
    let mut properties = Map::new();
    properties.insert(
        "provider".into(),
        json!({ "type": "string", "const": slug }),
    );
    properties.insert("name".into(), schema_ref("IntegrationName"));
    properties.insert("description".into(), schema_ref("IntegrationDescription"));
    properties.insert(
        "connectionKey".into(),
        json!({ "$ref": "#/components/schemas/ConnectionKey", "default": "default" }),
    );
    if !provider.credential_fields().is_empty() {
        properties.insert(
            "credentials".into(),
            schema_ref(&format!("ProviderCredentials.{slug}")),
        );
    }
    properties.insert(
        "config".into(),
        schema_ref(&format!("ProviderConfig.{slug}")),
    );
    properties.insert("syncSettings".into(), sync_settings_schema(slug, provider));
    json!({
        "type": "object",
        "title": format!("{} ({slug})", provider.name),
        "required": required,
        "additionalProperties": false,
        "properties": properties,
    })
}

/// Every generated component, in document order.
fn generated_components(catalog: &Catalog) -> Vec<(String, Value)> {
    let providers = creatable(catalog);
    let branches: Vec<Value> = providers
        .iter()
        .map(|(slug, _)| schema_ref(&format!("{CREATE}.{slug}")))
        .collect();
    let mapping: Map<String, Value> = providers
        .iter()
        .map(|(slug, _)| {
            (
                slug.to_string(),
                Value::String(format!("#/components/schemas/{CREATE}.{slug}")),
            )
        })
        .collect();
    let mut components = vec![(
        CREATE.to_string(),
        json!({
            "description": "Creates a non-OAuth integration (API key, basic auth, custom API, custom webhook); OAuth providers are connected through the connect flow instead. One branch per provider of the built-in catalog, chosen by `provider`: each lists exactly the credential fields and settings that provider takes. Generated from the built-in catalog.",
            "oneOf": branches,
            "discriminator": { "propertyName": "provider", "mapping": mapping },
            "examples": [{
                "provider": "stripe",
                "name": "Stripe (test mode)",
                "connectionKey": "default",
                "credentials": { "secretKey": "sk_test_fixture_0000" }
            }]
        }),
    )];
    for (slug, provider) in &providers {
        components.push((format!("{CREATE}.{slug}"), create_schema(slug, provider)));
    }
    for (slug, provider) in &providers {
        if !provider.credential_fields().is_empty() {
            components.push((
                format!("ProviderCredentials.{slug}"),
                credentials_schema(slug, provider),
            ));
        }
    }
    for (slug, provider) in &providers {
        components.push((
            format!("ProviderConfig.{slug}"),
            config_schema(slug, provider),
        ));
    }
    components
}

/// The document with the generated components replaced (kept where `CreateIntegrationRequest` is).
fn regenerate(doc: &Value, catalog: &Catalog) -> Value {
    let mut doc = doc.clone();
    let schemas = doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas")
        .clone();
    let mut rebuilt = Map::new();
    let mut generated = Some(generated_components(catalog));
    for (name, schema) in schemas {
        let owned = name == CREATE || GENERATED_PREFIXES.iter().any(|p| name.starts_with(p));
        if !owned {
            rebuilt.insert(name, schema);
        } else if let Some(components) = generated.take() {
            rebuilt.extend(components);
        }
    }
    if let Some(components) = generated {
        rebuilt.extend(components);
    }
    doc["components"]["schemas"] = Value::Object(rebuilt);
    doc
}

#[test]
fn the_per_provider_create_schemas_are_generated_from_the_builtin_catalog() {
    let current = document();
    let expected = regenerate(&current, &Catalog::builtin());
    if current == expected {
        return;
    }
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        let text = serde_json::to_string_pretty(&expected).expect("serialises") + "\n";
        std::fs::write(DOCUMENT_PATH, text).expect("api/openapi.json written");
        eprintln!("api/openapi.json rewritten from the catalog: review and commit the diff");
        return;
    }
    let differing: Vec<&String> = expected["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .iter()
        .filter(|(name, schema)| {
            current["components"]["schemas"].get(name.as_str()) != Some(schema)
        })
        .map(|(name, _)| name)
        .collect();
    panic!(
        "api/openapi.json's per-provider schemas differ from the built-in catalog ({differing:?}); \
         run `UPDATE_OPENAPI=1 cargo test -p hub-tests --test openapi_document` and commit the result"
    );
}

#[test]
fn every_creatable_provider_has_one_branch_and_oauth_providers_none() {
    let doc = document();
    let catalog = Catalog::builtin();
    let mapping = doc["components"]["schemas"][CREATE]["discriminator"]["mapping"]
        .as_object()
        .expect("discriminator mapping");
    for (slug, provider) in catalog.iter() {
        assert_eq!(
            mapping.contains_key(slug),
            provider.auth_mode() != AuthMode::OAuth2,
            "{slug}"
        );
    }
}

#[test]
fn the_integrations_function_knows_the_inbound_routes_it_answers_405_for() {
    // The catch-all sends other methods of the receiver's path to the integrations function.
    assert_eq!(integrations::INBOUND_ROUTES, inbound_webhook::ROUTES);
}

#[test]
fn the_integrations_function_knows_the_oauth_routes_it_answers_405_for() {
    // The catch-all sends other methods of the oauth function's paths to the integrations function.
    assert_eq!(integrations::OAUTH_ROUTES, oauth::ROUTES);
}
