//! OAuth 2.0 connections: which OAuth app a tenant uses ([`apps`]), the connect flow's state,
//! PKCE and authorize URL ([`authorize`]), the token endpoint ([`token_endpoint`]), and the token
//! lifecycle every provider call goes through ([`tokens`]): refresh under a DynamoDB lease,
//! rotated refresh tokens saved, a refused refresh turning the integration `expired`, and
//! revocation on delete.

pub mod apps;
pub mod authorize;
pub mod token_endpoint;
pub mod tokens;

pub use apps::{resolve_app, OAuthAppSource, ResolvedApp};
pub use token_endpoint::{ClientCredentials, TokenEndpointError, TokenGrant};
pub use tokens::{
    provider_credentials, refresh_now, revoke_tokens, sweep_expiring_tokens, SweepReport,
    TokenError,
};
