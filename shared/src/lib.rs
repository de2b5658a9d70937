//! The library every Integrations Hub function links: configuration, the problem-response error type,
//! auth context, ids and domain types, the DynamoDB store, the KMS envelope cipher, the provider catalog
//! and the SSRF-guarded HTTP client.

pub mod auth;
pub mod aws;
pub mod catalog;
pub mod config;
pub mod credentials;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod health;
pub mod http_client;
pub mod ids;
pub mod store;
pub mod sync_settings;
pub mod telemetry;
