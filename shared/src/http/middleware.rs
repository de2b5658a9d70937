//! What wraps every route of an API function: the request id (API Gateway's, or a fresh one) on the
//! response and on every log line of the request, unknown paths as 404 problems, and axum's bare 405
//! turned into a problem that keeps `Allow`.

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use tracing::Instrument;

use crate::error::ApiError;

/// Adds the fallback and the layers every function's router has. `routes` is the function's
/// `ROUTES` (from [`api_routes!`](crate::api_routes)), used to answer 405 with the right `Allow`.
pub fn finish_router<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    routes: &'static [(&'static str, &'static str)],
    state: S,
) -> Router {
    finish_router_beside(router, routes, &[], state)
}

/// [`finish_router`] for the function behind the API's catch-all route: a path that `others` (the
/// routes other functions serve) know, with a method none of them serves, reaches this function
/// and is answered 405 with their `Allow`, as it would be by the function that owns the path.
pub fn finish_router_beside<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    routes: &'static [(&'static str, &'static str)],
    others: &'static [(&'static str, &'static str)],
    state: S,
) -> Router {
    router
        .fallback(move |request: Request| async move {
            let allow = allowed_methods(others, request.uri().path());
            if allow.is_empty() {
                ApiError::route_not_found()
            } else {
                ApiError::method_not_allowed(
                    HeaderValue::from_str(&allow.join(", "))
                        .unwrap_or(HeaderValue::from_static("")),
                )
            }
        })
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            problem_for_bare_errors(routes, request, next)
        }))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// The request id of a request: API Gateway's, when it came through API Gateway (or the local
/// stack, which sets it the same way).
pub fn request_id_of(request: &Request) -> Option<String> {
    match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    }
}

/// Every response carries `x-request-id`, and every log line of the request carries `requestId`
/// (the span is attached to this request's future only, so concurrent requests never nest).
async fn request_id(request: Request, next: Next) -> Response {
    let id = request_id_of(&request)
        .unwrap_or_else(|| crate::ids::new_id(crate::ids::IdKind::Log).replacen("log_", "req_", 1));
    let span = tracing::info_span!("request", requestId = %id);
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// axum answers a known path with a wrong method by a bare 405: make it a problem, keeping `Allow`.
async fn problem_for_bare_errors(
    routes: &'static [(&'static str, &'static str)],
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        let allow = allowed_methods(routes, &path).join(", ");
        return ApiError::method_not_allowed(
            HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static("")),
        )
        .into_response();
    }
    response
}

/// The methods `routes` serve on `path` (template segments `{x}` match any one segment).
pub fn allowed_methods(routes: &[(&'static str, &'static str)], path: &str) -> Vec<&'static str> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut methods: Vec<&'static str> = routes
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

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &[(&str, &str)] = &[
        ("GET", "/api/integrations/{id}"),
        ("PATCH", "/api/integrations/{id}"),
        ("POST", "/api/integrations/{id}/test"),
    ];

    #[test]
    fn allowed_methods_match_templates_segment_by_segment() {
        assert_eq!(
            allowed_methods(ROUTES, "/api/integrations/int_1"),
            ["GET", "PATCH"]
        );
        assert_eq!(
            allowed_methods(ROUTES, "/api/integrations/int_1/test"),
            ["POST"]
        );
        assert!(allowed_methods(ROUTES, "/api/other").is_empty());
    }
}
