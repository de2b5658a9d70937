//! The integrations function: providers, integration CRUD, status, logs, records, test connection,
//! the event-type catalog, incoming and outgoing webhook management, outgoing deliveries (logs,
//! retry, recover, test) and incoming receipts and dry runs, served by one axum router that API
//! Gateway (or the local stack) feeds with payload-2.0 requests.

pub mod routes;
pub mod state;

use axum::Router;

pub use state::{AppState, StartupError};

hub_shared::api_routes! { state: AppState;
    get "/api/health" => routes::health::health;
    head "/api/health" => routes::health::health;
    get "/api/openapi.json" => routes::openapi::document;
    get "/api/providers" => routes::providers::list;
    get "/api/providers/{slug}" => routes::providers::get;
    post "/api/integrations" => routes::integrations::create;
    get "/api/integrations" => routes::integrations::list;
    get "/api/integrations/{id}" => routes::integrations::get;
    patch "/api/integrations/{id}" => routes::integrations::patch;
    delete "/api/integrations/{id}" => routes::integrations::delete;
    get "/api/integrations/{id}/status" => routes::status::status;
    get "/api/integrations/{id}/logs" => routes::logs::list;
    get "/api/integrations/{id}/records/{entity}" => routes::records::list;
    post "/api/integrations/{id}/test" => routes::test_connection::test;
    post "/api/integrations/{id}/sync" => routes::sync::trigger;
    post "/api/integrations/{id}/actions/{action}" => routes::actions::run;
    get "/api/integrations/{id}/proxy/{*path}" => routes::proxy::forward;
    post "/api/integrations/{id}/proxy/{*path}" => routes::proxy::forward;
    put "/api/integrations/{id}/proxy/{*path}" => routes::proxy::forward;
    patch "/api/integrations/{id}/proxy/{*path}" => routes::proxy::forward;
    delete "/api/integrations/{id}/proxy/{*path}" => routes::proxy::forward;
    get "/api/event-types" => routes::event_types::list;
    post "/api/webhooks/incoming" => routes::incoming_webhooks::create;
    get "/api/webhooks/incoming" => routes::incoming_webhooks::list;
    get "/api/webhooks/incoming/{id}" => routes::incoming_webhooks::get;
    patch "/api/webhooks/incoming/{id}" => routes::incoming_webhooks::patch;
    delete "/api/webhooks/incoming/{id}" => routes::incoming_webhooks::delete;
    post "/api/webhooks/outgoing" => routes::outgoing_webhooks::create;
    get "/api/webhooks/outgoing" => routes::outgoing_webhooks::list;
    get "/api/webhooks/outgoing/{id}" => routes::outgoing_webhooks::get;
    patch "/api/webhooks/outgoing/{id}" => routes::outgoing_webhooks::patch;
    delete "/api/webhooks/outgoing/{id}" => routes::outgoing_webhooks::delete;
    post "/api/webhooks/{id}/rotate-secret" => routes::outgoing_webhooks::rotate_secret;
    post "/api/webhooks/{id}/test" => routes::webhook_deliveries::test;
    get "/api/webhooks/{id}/logs" => routes::webhook_deliveries::list_logs;
    get "/api/webhook-logs/{logId}" => routes::webhook_deliveries::get_log;
    post "/api/webhook-logs/{logId}/retry" => routes::webhook_deliveries::retry;
    post "/api/webhooks/outgoing/{id}/recover" => routes::webhook_deliveries::recover;
}

/// The routes the inbound-webhook function serves: the API's catch-all sends their other methods
/// here, which answers them 405 with this `Allow` (a test holds this list to that function's own).
pub const INBOUND_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/webhooks/tenant/{tenantId}/{webhookId}"),
    ("GET", "/api/webhooks/tenant/{tenantId}/{webhookId}"),
];

/// The oauth function's routes (a test holds this list to that function's own).
pub const OAUTH_ROUTES: &[(&str, &str)] = &[
    ("PUT", "/api/providers/{slug}/oauth-app"),
    ("GET", "/api/providers/{slug}/oauth-app"),
    ("GET", "/api/integrations/connect/{provider}"),
    ("GET", "/api/integrations/callback/{provider}"),
    ("POST", "/api/integrations/{id}/refresh"),
];

/// Every route another function serves: the API's catch-all answers their other methods 405 with
/// the right `Allow`.
const OTHER_FUNCTIONS_ROUTES: &[(&str, &str)] = &[
    INBOUND_ROUTES[0],
    INBOUND_ROUTES[1],
    OAUTH_ROUTES[0],
    OAUTH_ROUTES[1],
    OAUTH_ROUTES[2],
    OAUTH_ROUTES[3],
    OAUTH_ROUTES[4],
];

/// The function's start-up checks beyond [`AppState::new`]: with a `PROVIDERS_FILE`, every
/// action's input schema must compile (the built-in ones are compiled by the test suite, so a
/// cold start without a file spends nothing on them).
pub fn checked(state: AppState) -> Result<AppState, StartupError> {
    if state.config.providers_file.is_some() {
        hub_shared::actions::check_catalog_schemas(&state.catalog).map_err(|message| {
            StartupError::Catalog(hub_shared::catalog::CatalogError::Document {
                origin: "PROVIDERS_FILE".to_string(),
                message,
            })
        })?;
    }
    Ok(state)
}

/// The whole function as one router.
pub fn app(state: AppState) -> Router {
    hub_shared::http::finish_router_beside(route_table(), ROUTES, OTHER_FUNCTIONS_ROUTES, state)
}
