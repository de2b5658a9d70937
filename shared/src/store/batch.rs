//! BatchWriteItem, the one way the store writes or deletes many items: at most 25 per request (AWS
//! refuses more; moto does not, so the cap is ours), unprocessed items retried with backoff. Deleting
//! a whole partition (an integration's logs or records) is a paged key-only Query feeding it.

use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};

use super::{aws_error, keys, s, Store, StoreError};

/// The most requests one BatchWriteItem may carry.
pub(crate) const BATCH_WRITE_MAX: usize = 25;

impl Store {
    /// BatchWriteItem with the unprocessed items retried (backing off) until none are left.
    /// `requests` must be at most [`BATCH_WRITE_MAX`].
    pub(crate) async fn batch_write_all(
        &self,
        mut requests: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        let mut delay = std::time::Duration::from_millis(50);
        for _ in 0..8 {
            if requests.is_empty() {
                return Ok(());
            }
            let out = self
                .dynamo()
                .batch_write_item()
                .request_items(self.table(), requests)
                .send()
                .await
                .map_err(|e| aws_error("BatchWriteItem", e))?;
            requests = out
                .unprocessed_items
                .and_then(|mut unprocessed| unprocessed.remove(self.table()))
                .unwrap_or_default();
            if !requests.is_empty() {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        Err(StoreError::Unavailable {
            operation: "BatchWriteItem",
            detail: "items stayed unprocessed".into(),
        })
    }

    /// Deletes every item of partition `pk`; returns how many there were.
    pub(crate) async fn delete_partition(&self, pk: String) -> Result<usize, StoreError> {
        let mut deleted = 0;
        let mut start_key = None;
        loop {
            let out = self
                .dynamo()
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", keys::PK)
                .expression_attribute_names("#sk", keys::SK)
                .expression_attribute_values(":pk", s(pk.clone()))
                .projection_expression("#pk, #sk")
                .consistent_read(true)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|e| aws_error("Query", e))?;
            let requests: Vec<WriteRequest> = out
                .items
                .unwrap_or_default()
                .into_iter()
                .filter_map(|key| DeleteRequest::builder().set_key(Some(key)).build().ok())
                .map(|delete| WriteRequest::builder().delete_request(delete).build())
                .collect();
            for chunk in requests.chunks(BATCH_WRITE_MAX) {
                self.batch_write_all(chunk.to_vec()).await?;
                deleted += chunk.len();
            }
            match out.last_evaluated_key {
                Some(key) => start_key = Some(key),
                None => return Ok(deleted),
            }
        }
    }
}
