//! The integrations function: providers, integration CRUD, status, logs and test connection, served
//! by one axum router that API Gateway (or the local stack) feeds with payload-2.0 requests.

pub mod body;
pub mod routes;
pub mod state;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, HeaderValue, StatusCode};
use hub_shared::error::ApiError;
use lambda_http::request::RequestContext;

pub use state::{AppState, StartupError};

/// Declares every route once: the router is built from this list and the OpenAPI test compares the
/// same list with the document, so neither can gain a route the other lacks.
macro_rules! api_routes {
    ($($method:ident $path:literal => $handler:path;)*) => {
        /// Every `(METHOD, path)` this function serves.
        pub const ROUTES: &[(&str, &str)] = &[$((method_name(stringify!($method)), $path)),*];

        fn route_table() -> Router<AppState> {
            Router::new()$(.route($path, axum::routing::$method($handler)))*
        }
    };
}

const fn method_name(method: &'static str) -> &'static str {
    match method.as_bytes() {
        b"get" => "GET",
        b"post" => "POST",
        b"patch" => "PATCH",
        b"put" => "PUT",
        b"delete" => "DELETE",
        _ => panic!("unsupported method in api_routes!"),
    }
}

api_routes! {
    get "/api/health" => routes::health::health;
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
    post "/api/integrations/{id}/test" => routes::test_connection::test;
}

/// The whole function as one router.
pub fn app(state: AppState) -> Router {
    route_table()
        .fallback(|| async { ApiError::route_not_found() })
        .layer(middleware::from_fn(problem_for_bare_errors))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Every response carries `x-request-id`: API Gateway's request id, or a fresh one.
async fn request_id(request: Request, next: Next) -> Response {
    let id = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    }
    .unwrap_or_else(|| {
        hub_shared::ids::new_id(hub_shared::ids::IdKind::Log).replacen("log_", "req_", 1)
    });
    let span = tracing::info_span!("request", requestId = %id);
    let mut response = {
        let _entered = span.enter();
        next.run(request).await
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// axum answers a known path with a wrong method by a bare 405: make it a problem, keeping `Allow`.
async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        let allow = allowed_methods(&path).join(", ");
        return ApiError::method_not_allowed(
            HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static("")),
        )
        .into_response();
    }
    response
}

/// The methods [`ROUTES`] serves on `path` (template segments `{x}` match any one segment).
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut methods: Vec<&'static str> = ROUTES
        .iter()
        .filter(|(_, template)| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(part, segment)| part.starts_with('{') || part == segment)
        })
        .map(|(method, _)| *method)
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}
