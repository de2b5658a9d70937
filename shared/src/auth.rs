//! Who is calling: the tenant and user from the API Gateway v2 JWT authorizer's claims.
//!
//! In AWS the authorizer verified the token; the function only reads the claims it injected into the
//! request context (the local stack injects them the same way). No claims, or no tenant claim, is a
//! 401 even if a route was misconfigured as public: every management route needs a tenant.

use std::sync::Arc;

#[cfg(feature = "http")]
use axum::extract::{FromRef, FromRequestParts};
#[cfg(feature = "http")]
use http::request::Parts;
#[cfg(feature = "http")]
use lambda_http::request::RequestContext;

use crate::domain::TenantId;
#[cfg(feature = "http")]
use crate::error::ApiError;

/// The name of the claim that carries the tenant (`TENANT_CLAIM`).
#[derive(Debug, Clone)]
pub struct TenantClaim(pub Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthContext {
    pub tenant: TenantId,
    /// The `sub` claim, when the token has one.
    pub user: Option<String>,
}

#[cfg(feature = "http")]
impl AuthContext {
    /// Reads the authorizer claims of an API Gateway HTTP API (payload 2.0) request context.
    pub fn from_request_context(
        context: Option<&RequestContext>,
        tenant_claim: &str,
    ) -> Result<AuthContext, ApiError> {
        let claims = match context {
            Some(RequestContext::ApiGatewayV2(context)) => context
                .authorizer
                .as_ref()
                .and_then(|authorizer| authorizer.jwt.as_ref())
                .map(|jwt| &jwt.claims),
            _ => None,
        };
        let claims = claims
            .ok_or_else(|| ApiError::unauthorized("no verified token came with the request"))?;
        let tenant = claims.get(tenant_claim).ok_or_else(|| {
            ApiError::unauthorized(format!("the token has no `{tenant_claim}` claim"))
        })?;
        let tenant = TenantId::parse(tenant).map_err(|e| {
            ApiError::unauthorized(format!(
                "the `{tenant_claim}` claim is not a valid tenant id: {e}"
            ))
        })?;
        let user = claims.get("sub").filter(|sub| !sub.is_empty()).cloned();
        Ok(AuthContext { tenant, user })
    }
}

#[cfg(feature = "http")]
impl<S> FromRequestParts<S> for AuthContext
where
    S: Send + Sync,
    TenantClaim: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let TenantClaim(claim) = TenantClaim::from_ref(state);
        AuthContext::from_request_context(parts.extensions.get::<RequestContext>(), &claim)
    }
}

#[cfg(all(test, feature = "http"))]
mod tests {
    use super::*;

    fn request_with_claims(claims: serde_json::Value) -> lambda_http::Request {
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "GET /api/integrations",
            "rawPath": "/api/integrations",
            "rawQueryString": "",
            "headers": {"host": "api.example.com"},
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
                "domainPrefix": "api", "requestId": "req-1", "routeKey": "GET /api/integrations",
                "stage": "$default", "time": "22/Nov/2026:12:00:00 +0000", "timeEpoch": 1795000000000_i64,
                "http": {"method": "GET", "path": "/api/integrations", "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": "test"},
                "authorizer": {"jwt": {"claims": claims, "scopes": null}}
            },
            "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).expect("valid v2 event")
    }

    fn context_of(request: &lambda_http::Request) -> Option<&RequestContext> {
        request.extensions().get::<RequestContext>()
    }

    #[test]
    fn tenant_and_user_come_from_the_configured_claims() {
        let request = request_with_claims(serde_json::json!({"sub": "user-7", "org": "clinic-1"}));
        let auth =
            AuthContext::from_request_context(context_of(&request), "org").expect("authorized");
        assert_eq!(auth.tenant.as_str(), "clinic-1");
        assert_eq!(auth.user.as_deref(), Some("user-7"));
    }

    #[test]
    fn a_token_without_the_tenant_claim_is_unauthorized() {
        let request = request_with_claims(serde_json::json!({"sub": "user-7"}));
        let error =
            AuthContext::from_request_context(context_of(&request), "tenant_id").unwrap_err();
        assert_eq!(error.status, http::StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn a_request_without_an_authorizer_is_unauthorized() {
        let error = AuthContext::from_request_context(None, "tenant_id").unwrap_err();
        assert_eq!(error.status, http::StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn a_tenant_claim_with_a_key_separator_is_unauthorized() {
        let request = request_with_claims(serde_json::json!({"tenant_id": "a#b"}));
        let error =
            AuthContext::from_request_context(context_of(&request), "tenant_id").unwrap_err();
        assert_eq!(error.code, "unauthorized");
    }
}
