//! One paged Query over a partition, shared by every list route: filters, TTL-awareness and a
//! continuation position that is the sort key of the last item returned (so each item is listed once).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{
    aws_error, keys, now_epoch_seconds, s, CursorCodec, InvalidCursor, Item, Store, StoreError,
};
use crate::domain::TenantId;

/// One page of a list: `nextCursor` is null on the last page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// How many DynamoDB pages one API page may read before it returns short (sparse filters).
const MAX_ROUND_TRIPS: usize = 10;
const READ_BATCH: i32 = 100;

pub(crate) struct PagedQuery {
    pub pk: String,
    pub sk_prefix: String,
    pub newest_first: bool,
    /// Filter expression conditions joined with AND; names `#f0..`, values `:f0..` are the caller's.
    pub conditions: Vec<String>,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
    pub limit: usize,
    pub start_after: Option<String>,
    pub ignore_expired: bool,
}

impl PagedQuery {
    pub fn new(pk: String, sk_prefix: impl Into<String>, limit: usize) -> PagedQuery {
        PagedQuery {
            pk,
            sk_prefix: sk_prefix.into(),
            newest_first: false,
            conditions: Vec::new(),
            names: HashMap::new(),
            values: HashMap::new(),
            limit,
            start_after: None,
            ignore_expired: false,
        }
    }

    /// Keeps only items whose `attribute` equals `value`.
    pub fn equals(&mut self, attribute: &str, value: &str) {
        self.conditions.push(format!("#{attribute} = :{attribute}"));
        self.names
            .insert(format!("#{attribute}"), attribute.to_string());
        self.values.insert(format!(":{attribute}"), s(value));
    }

    /// Keeps only items whose boolean `attribute` is `value`.
    pub fn flag(&mut self, attribute: &str, value: bool) {
        self.conditions.push(format!("#{attribute} = :{attribute}"));
        self.names
            .insert(format!("#{attribute}"), attribute.to_string());
        self.values
            .insert(format!(":{attribute}"), AttributeValue::Bool(value));
    }

    /// Keeps only items whose string `attribute` sorts strictly after `value` (for timestamps of
    /// the one fixed format, [`super::timestamp`], that is: strictly later).
    pub fn after(&mut self, attribute: &str, value: &str) {
        self.conditions.push(format!("#{attribute} > :{attribute}"));
        self.names
            .insert(format!("#{attribute}"), attribute.to_string());
        self.values.insert(format!(":{attribute}"), s(value));
    }
}

impl Store {
    /// One page of a list route: checks the cursor against this tenant and list `scope`, reads, and
    /// signs the cursor of the next page.
    pub(crate) async fn list_page<T: serde::de::DeserializeOwned>(
        &self,
        tenant: &TenantId,
        scope: &str,
        cursor: Option<&str>,
        mut query: PagedQuery,
    ) -> Result<Result<Page<T>, InvalidCursor>, StoreError> {
        let key = self.cursor_key().await?;
        let codec = CursorCodec::new(key);
        if let Some(cursor) = cursor {
            match codec.decode(tenant, scope, cursor) {
                Ok(position) if position.starts_with(&query.sk_prefix) => {
                    query.start_after = Some(position)
                }
                _ => return Ok(Err(InvalidCursor)),
            }
        }
        let (items, next) = self.query_page(query).await?;
        let items = items
            .into_iter()
            .map(|item| {
                serde_dynamo::from_item(item)
                    .map_err(|e| StoreError::Corrupt(format!("listed item: {e}")))
            })
            .collect::<Result<Vec<T>, _>>()?;
        let next_cursor = next.map(|position| codec.encode(tenant, scope, &position));
        Ok(Ok(Page { items, next_cursor }))
    }

    /// Every item a Query matches, following its pages.
    pub(crate) async fn query_all(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = query
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| aws_error("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(items),
            }
        }
    }

    /// Returns up to `limit` items and, when more may follow, the sort key to continue after.
    pub(crate) async fn query_page(
        &self,
        query: PagedQuery,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let PagedQuery {
            pk,
            sk_prefix,
            newest_first,
            mut conditions,
            mut names,
            mut values,
            limit,
            start_after,
            ignore_expired,
        } = query;
        names.insert("#pk".into(), keys::PK.into());
        names.insert("#sk".into(), keys::SK.into());
        values.insert(":pk".into(), s(pk.clone()));
        values.insert(":prefix".into(), s(sk_prefix));
        if ignore_expired {
            names.insert("#exp".into(), keys::EXPIRES_AT.into());
            values.insert(
                ":now".into(),
                AttributeValue::N(now_epoch_seconds().to_string()),
            );
            conditions.push("(attribute_not_exists(#exp) OR #exp > :now)".into());
        }
        let filter = (!conditions.is_empty()).then(|| conditions.join(" AND "));
        let unfiltered = filter.is_none();

        let mut collected: Vec<Item> = Vec::with_capacity(limit + 1);
        let mut start_key = start_after.map(|sk| {
            HashMap::from([
                (keys::PK.to_string(), s(pk.clone())),
                (keys::SK.to_string(), s(sk)),
            ])
        });
        for _ in 0..MAX_ROUND_TRIPS {
            let wanted = (limit + 1 - collected.len()) as i32;
            let out = self
                .dynamo()
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .set_filter_expression(filter.clone())
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(!newest_first)
                .limit(if unfiltered { wanted } else { READ_BATCH })
                .set_exclusive_start_key(start_key.take())
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| aws_error("Query", e))?;
            collected.extend(out.items.unwrap_or_default());
            if collected.len() > limit {
                collected.truncate(limit);
                let next = sort_key_of(collected.last())?;
                return Ok((collected, next));
            }
            match out.last_evaluated_key {
                Some(key) => start_key = Some(key),
                None => return Ok((collected, None)),
            }
        }
        // Sparse filter: return a short page and continue from where the reads stopped.
        let next = start_key
            .as_ref()
            .and_then(|key| key.get(keys::SK))
            .and_then(|sk| sk.as_s().ok())
            .cloned();
        Ok((collected, next))
    }
}

fn sort_key_of(item: Option<&Item>) -> Result<Option<String>, StoreError> {
    match item.and_then(|item| item.get(keys::SK)) {
        Some(AttributeValue::S(sk)) => Ok(Some(sk.clone())),
        _ => Err(StoreError::Corrupt(
            "a listed item has no string sort key".into(),
        )),
    }
}
