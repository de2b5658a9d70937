//! The per-(tenant, provider) rate limit every function draws from before a provider call
//! (the catalog's `api.rateLimit`): a token bucket of capacity `requests` (the burst), refilled at
//! `requests / perSeconds`, shared across processes through one item.
//!
//! The bucket is kept as GCRA (the generic cell rate algorithm, the exact equivalent of a token
//! bucket): one number, the theoretical arrival time `tat` (µs since the epoch). A request at `now`
//! is admitted when `max(tat, now) <= now + (burst - 1) × interval`, and moves `tat` to
//! `max(tat, now) + interval`. Both cases of `max` are a single conditional UpdateItem:
//! - busy bucket (`now <= tat <= now + tolerance`): `SET tat = tat + interval`;
//! - idle bucket (no item, or `tat < now`): `SET tat = now + interval`.
//!
//! `tat` only grows, so at most three conditional writes decide any request, however many callers
//! race: no read-modify-write loop, nothing that gives up under contention. An empty bucket answers
//! how long until a token is back.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::{aws_error, keys, n, s, Item, Store, StoreError};
use crate::domain::{ProviderSlug, TenantId};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    Granted,
    /// The bucket is empty: a token will be there after this long.
    Wait(Duration),
}

/// The two conditional writes, tried in turn: a request needs at most three.
const MAX_WRITES: usize = 3;

/// What one conditional write found.
enum Attempt {
    Granted,
    /// The bucket was idle (or absent): the idle-case write applies.
    Idle,
    /// The bucket was busy: the busy-case write applies.
    Busy,
    /// The bucket is empty until `tat` moves below the tolerance: wait this long (µs).
    Empty(i64),
}

impl Store {
    pub async fn take_rate_token(
        &self,
        tenant: &TenantId,
        provider: &ProviderSlug,
        requests: u32,
        per_seconds: u32,
    ) -> Result<Admission, StoreError> {
        let burst = i64::from(requests.max(1));
        let interval = (i64::from(per_seconds.max(1)) * 1_000_000 / burst).max(1);
        self.take_token(
            keys::tenant_pk(tenant),
            keys::rate_bucket_sk(provider.as_str()),
            interval,
            (burst - 1) * interval,
        )
        .await
    }

    /// A start slot of an outgoing webhook's `rateLimit` (`requests` per `perSeconds`): a strict
    /// sliding window, so starts are spaced evenly, [`SPACING_MARGIN`] wider than
    /// `perSeconds / requests`, and no burst is admitted. Any window of `perSeconds` seconds then
    /// holds at most `requests` starts, with room for the network jitter between a start and the
    /// request reaching the target.
    pub async fn take_spaced_token(
        &self,
        tenant: &TenantId,
        bucket_sk: String,
        requests: u32,
        per_seconds: u32,
    ) -> Result<Admission, StoreError> {
        let exact = f64::from(per_seconds.max(1)) * 1_000_000.0 / f64::from(requests.max(1));
        let interval = ((exact * SPACING_MARGIN) as i64).max(1);
        self.take_token(keys::tenant_pk(tenant), bucket_sk, interval, 0)
            .await
    }

    async fn take_token(
        &self,
        pk: String,
        sk: String,
        interval: i64,
        tolerance: i64,
    ) -> Result<Admission, StoreError> {
        let now = chrono::Utc::now().timestamp_micros();
        let expires_at = (now + tolerance + interval) / 1_000_000 + 60;
        let bucket = Bucket {
            store: self,
            pk,
            sk,
            now,
            interval,
            tolerance,
            expires_at,
        };
        let mut next = Attempt::Busy;
        for _ in 0..MAX_WRITES {
            next = match next {
                Attempt::Busy => bucket.take_from_busy().await?,
                Attempt::Idle => bucket.take_from_idle().await?,
                Attempt::Granted => return Ok(Admission::Granted),
                Attempt::Empty(wait) => return Ok(wait_for(wait)),
            };
        }
        Ok(match next {
            Attempt::Granted => Admission::Granted,
            Attempt::Empty(wait) => wait_for(wait),
            Attempt::Idle | Attempt::Busy => wait_for(interval),
        })
    }
}

/// How much wider than `perSeconds / requests` the spacing of [`Store::take_spaced_token`] is.
pub const SPACING_MARGIN: f64 = 1.1;

fn wait_for(micros: i64) -> Admission {
    Admission::Wait(Duration::from_micros(micros.max(1) as u64))
}

struct Bucket<'a> {
    store: &'a Store,
    pk: String,
    sk: String,
    now: i64,
    interval: i64,
    tolerance: i64,
    expires_at: i64,
}

impl Bucket<'_> {
    async fn take_from_busy(&self) -> Result<Attempt, StoreError> {
        let result = self
            .update()
            .update_expression("SET tat = tat + :interval, #expiresAt = :expiresAt")
            .condition_expression("tat >= :now AND tat <= :limit")
            .expression_attribute_values(":interval", n(self.interval))
            .expression_attribute_values(":now", n(self.now))
            .expression_attribute_values(":limit", n(self.now + self.tolerance))
            .send()
            .await;
        self.judge(result)
    }

    async fn take_from_idle(&self) -> Result<Attempt, StoreError> {
        let result = self
            .update()
            .update_expression("SET tat = :next, #type = :type, #expiresAt = :expiresAt")
            .condition_expression("attribute_not_exists(tat) OR tat < :now")
            .expression_attribute_names("#type", "type")
            .expression_attribute_values(":type", s("rate_bucket"))
            .expression_attribute_values(":next", n(self.now + self.interval))
            .expression_attribute_values(":now", n(self.now))
            .send()
            .await;
        self.judge(result)
    }

    fn update(
        &self,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.store
            .dynamo()
            .update_item()
            .table_name(self.store.table())
            .key(keys::PK, s(self.pk.clone()))
            .key(keys::SK, s(self.sk.clone()))
            .expression_attribute_names("#expiresAt", keys::EXPIRES_AT)
            .expression_attribute_values(":expiresAt", n(self.expires_at))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }

    /// A refused write says, through the item it returns, which case the bucket is in.
    fn judge<R: std::fmt::Debug>(
        &self,
        result: Result<
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
            SdkError<UpdateItemError, R>,
        >,
    ) -> Result<Attempt, StoreError> {
        match result {
            Ok(_) => Ok(Attempt::Granted),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                let tat = match service.err() {
                    UpdateItemError::ConditionalCheckFailedException(failed) => {
                        failed.item.as_ref().and_then(tat_of)
                    }
                    _ => None,
                };
                Ok(match tat {
                    None => Attempt::Idle,
                    Some(tat) if tat < self.now => Attempt::Idle,
                    Some(tat) if tat <= self.now + self.tolerance => Attempt::Busy,
                    Some(tat) => Attempt::Empty(tat - (self.now + self.tolerance)),
                })
            }
            Err(error) => Err(aws_error("UpdateItem", error)),
        }
    }
}

fn tat_of(item: &Item) -> Option<i64> {
    item.get("tat")?.as_n().ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_never_zero() {
        assert_eq!(wait_for(0), Admission::Wait(Duration::from_micros(1)));
        assert_eq!(
            wait_for(1_500_000),
            Admission::Wait(Duration::from_micros(1_500_000))
        );
    }
}
