//! The per-(tenant, provider) token bucket every function draws from before a provider call
//! (the catalog's `sync.rateLimit`): capacity `requests` (the burst), refilled at `requests / perSeconds`.
//! Shared across processes through optimistic conditional writes on one item.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{aws_error, keys, n, s, Store, StoreError};
use crate::domain::TenantId;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    Granted,
    /// The bucket is empty: a token will be there after this long.
    Wait(Duration),
}

const MAX_RACES: usize = 8;

impl Store {
    pub async fn take_rate_token(
        &self,
        tenant: &TenantId,
        provider: &str,
        requests: u32,
        per_seconds: u32,
    ) -> Result<Admission, StoreError> {
        let capacity = f64::from(requests.max(1));
        let per_ms = capacity / (f64::from(per_seconds.max(1)) * 1000.0);
        let pk = keys::tenant_pk(tenant);
        let sk = keys::rate_bucket_sk(provider);
        for _ in 0..MAX_RACES {
            let now_ms = chrono::Utc::now().timestamp_millis();
            let current = self
                .dynamo()
                .get_item()
                .table_name(self.table())
                .key(keys::PK, s(pk.clone()))
                .key(keys::SK, s(sk.clone()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| aws_error("GetItem", e))?
                .item
                // An expired bucket has been idle long enough to be full again.
                .filter(|item| {
                    number(item.get(keys::EXPIRES_AT)).is_some_and(|at| at * 1000.0 > now_ms as f64)
                });
            let (tokens, stamp) = match &current {
                Some(item) => {
                    let stamp = number(item.get("refilledAtMs")).unwrap_or(now_ms as f64);
                    let tokens = number(item.get("tokens")).unwrap_or(capacity);
                    (
                        (tokens + (now_ms as f64 - stamp).max(0.0) * per_ms).min(capacity),
                        Some(stamp),
                    )
                }
                None => (capacity, None),
            };
            if tokens < 1.0 {
                return Ok(Admission::Wait(Duration::from_millis(
                    ((1.0 - tokens) / per_ms).ceil() as u64,
                )));
            }
            let idle_expiry = now_ms / 1000 + i64::from(per_seconds.max(1)) * 2 + 1;
            let mut put = self
                .dynamo()
                .put_item()
                .table_name(self.table())
                .item(keys::PK, s(pk.clone()))
                .item(keys::SK, s(sk.clone()))
                .item("type", s("rate_bucket"))
                .item("tokens", n(tokens - 1.0))
                .item("refilledAtMs", n(now_ms))
                .item(keys::EXPIRES_AT, n(idle_expiry));
            put = match stamp {
                Some(stamp) => put
                    .condition_expression("refilledAtMs = :stamp")
                    .expression_attribute_values(":stamp", AttributeValue::N(format_number(stamp))),
                None => put
                    .condition_expression("attribute_not_exists(pk) OR expiresAt <= :now")
                    .expression_attribute_values(":now", n(now_ms / 1000)),
            };
            match put.send().await {
                Ok(_) => return Ok(Admission::Granted),
                Err(SdkError::ServiceError(service))
                    if service.err().is_conditional_check_failed_exception() =>
                {
                    continue
                }
                Err(error) => return Err(aws_error("PutItem", error)),
            }
        }
        Err(StoreError::Unavailable {
            operation: "PutItem",
            detail: "the rate bucket is heavily contended".into(),
        })
    }
}

fn number(value: Option<&AttributeValue>) -> Option<f64> {
    value
        .and_then(|v| v.as_n().ok())
        .and_then(|raw| raw.parse().ok())
}

/// The stored form of a number, so a condition compares equal to what was read.
fn format_number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{}", value as i64)
    } else {
        value.to_string()
    }
}
