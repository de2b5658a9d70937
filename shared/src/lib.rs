//! The library every Integrations Hub function links: configuration, the problem-response error type,
//! auth context, ids and domain types, the DynamoDB store, the KMS envelope cipher, the provider catalog,
//! the SSRF-guarded HTTP client, the declarative sync engine's pure logic ([`sync`]), the SQS queue,
//! the S3 claim check of large inbound bodies ([`payloads`]), events (envelope, types, triggers,
//! schemas) and the start-up that builds them all ([`services`]).
//! The HTTP plumbing of the API functions (axum, lambda_http) is behind the `http` feature, the
//! payloads bucket (S3, gzip) behind the `payloads` feature.

#[cfg(feature = "actions")]
pub mod actions;
pub mod api_document;
pub mod auth;
pub mod aws;
pub mod catalog;
pub mod config;
pub mod credentials;
pub mod crypto;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod events;
pub mod health;
#[cfg(feature = "http")]
pub mod http;
pub mod http_client;
pub mod ids;
pub mod inbound;
pub mod oauth;
#[cfg(feature = "payloads")]
pub mod payloads;
pub mod queue;
pub mod retry;
pub mod schedule;
pub mod services;
pub mod store;
pub mod sync;
pub mod sync_settings;
pub mod telemetry;
pub mod transform;
pub mod webhooks;
