//! The HTTP layer every API function shares (feature `http`): the strict JSON body extractor, the
//! problem response, and the router finish — request id on every response, 404 and 405 as problems.
//! A function declares its routes once with [`api_routes!`](crate::api_routes) and hands the router
//! to [`finish_router`].

pub mod body;
mod middleware;
mod problem;

pub use body::{parse_json, parse_value_at, JsonBody, OptionalJsonBody, MAX_BODY_BYTES};
pub use middleware::{allowed_methods, finish_router, finish_router_beside, request_id_of};

/// Declares an HTTP function's routes once: the router is built from this list, and the route
/// parity test compares the same list with the OpenAPI document, so neither can gain a route the
/// other lacks. Expands to `pub const ROUTES: &[(&str, &str)]` and `fn route_table() -> Router<S>`.
///
/// ```ignore
/// hub_shared::api_routes! { state: AppState;
///     get "/api/health" => routes::health::health;
/// }
/// ```
#[macro_export]
macro_rules! api_routes {
    (state: $state:ty; $($method:ident $path:literal => $handler:path;)*) => {
        /// Every `(METHOD, path)` this function serves.
        pub const ROUTES: &[(&str, &str)] =
            &[$(($crate::http::method_name(stringify!($method)), $path)),*];

        fn route_table() -> ::axum::Router<$state> {
            ::axum::Router::new()$(.route($path, ::axum::routing::$method($handler)))*
        }
    };
}

/// `get` → `GET`, at compile time (used by [`api_routes!`](crate::api_routes)).
pub const fn method_name(method: &'static str) -> &'static str {
    match method.as_bytes() {
        b"get" => "GET",
        b"post" => "POST",
        b"patch" => "PATCH",
        b"put" => "PUT",
        b"delete" => "DELETE",
        b"head" => "HEAD",
        b"any" => "ANY",
        _ => panic!("unsupported method in api_routes!"),
    }
}
