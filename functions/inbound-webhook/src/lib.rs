//! The inbound-webhook function: the public receiver of incoming webhooks.
//! `POST /api/webhooks/tenant/{tenantId}/{webhookId}` verifies, dedupes, filters, stores and
//! queues an event (two AWS requests on a warm function); `GET` of the same path answers Meta's
//! verification handshake.

pub mod cache;
pub mod receive;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hub_shared::services::Services;

use crate::cache::WebhookCache;

/// How long a warm function trusts what it read of a webhook (its configuration and opened
/// secrets): a disable or a secret rotation takes effect within this window.
pub const CONFIG_CACHE_TTL: Duration = Duration::from_secs(30);

/// What every request shares: the services and the webhook cache.
#[derive(Clone)]
pub struct InboundState {
    pub services: Services,
    pub cache: Arc<WebhookCache>,
}

impl InboundState {
    pub fn new(services: Services) -> InboundState {
        InboundState {
            services,
            cache: Arc::new(WebhookCache::new(CONFIG_CACHE_TTL)),
        }
    }
}

hub_shared::api_routes! { state: InboundState;
    post "/api/webhooks/tenant/{tenantId}/{webhookId}" => receive::receive;
    get "/api/webhooks/tenant/{tenantId}/{webhookId}" => receive::handshake;
}

/// The whole function as one router.
pub fn app(state: InboundState) -> Router {
    hub_shared::http::finish_router(route_table(), ROUTES, state)
}
