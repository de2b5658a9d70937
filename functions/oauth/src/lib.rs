//! The oauth function: tenants' OAuth apps, the connect flow (state, PKCE, authorize redirect),
//! the public callback (state consumed once, code exchanged, integration created or reconnected)
//! and refresh on demand. Token refresh itself is `hub_shared::oauth`, shared by every function
//! that calls providers.

pub mod routes;

use axum::Router;
pub use hub_shared::services::{Services as AppState, StartupError};

hub_shared::api_routes! { state: AppState;
    put "/api/providers/{slug}/oauth-app" => routes::oauth_app::put;
    get "/api/providers/{slug}/oauth-app" => routes::oauth_app::get;
    get "/api/integrations/connect/{provider}" => routes::connect::connect;
    get "/api/integrations/callback/{provider}" => routes::callback::callback;
    post "/api/integrations/{id}/refresh" => routes::refresh::refresh;
}

/// The whole function as one router.
pub fn app(state: AppState) -> Router {
    hub_shared::http::finish_router_beside(route_table(), ROUTES, &[], state)
}
