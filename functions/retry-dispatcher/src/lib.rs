//! The retry dispatcher: an SQS consumer of the dispatch queue. Each record is one delivery
//! attempt ([`hub_shared::delivery::Dispatcher::process_in`]) or the actions of one accepted
//! incoming webhook event ([`hub_shared::inbound::process::InboundProcessor::process`]); a batch
//! is worked on concurrently
//! (sharing one read of each webhook it names) and the answer names only the records SQS should
//! bring back (`ReportBatchItemFailures`).
//!
//! A record that is not a delivery message of this version (malformed, from a newer producer, a
//! sync job on the wrong queue) is reported failed, so it ends in the dead-letter queue, where the
//! alarm sees it, instead of being deleted unread.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use std::sync::Arc;

use hub_shared::delivery::{BatchCache, Dispatcher, Disposition};
use hub_shared::http_client::{ClientBuildError, GuardOptions, GuardedHttpClient};
use hub_shared::inbound::process::InboundProcessor;
use hub_shared::queue::{decode, Job};
use hub_shared::services::Services;
use lambda_runtime::LambdaEvent;
use tokio::task::JoinSet;
use tracing::{error, warn};

/// Everything the dispatch queue's messages need: outgoing deliveries and inbound processing.
#[derive(Clone)]
pub struct Consumer {
    deliveries: Dispatcher,
    inbound: InboundProcessor,
}

impl Consumer {
    pub fn new(services: &Services) -> Result<Consumer, ClientBuildError> {
        let http = GuardedHttpClient::new(GuardOptions::webhook_deliveries(
            services.config.allow_private_targets,
        ))?;
        Ok(Consumer {
            deliveries: Dispatcher::new(services)?,
            inbound: InboundProcessor::new(
                services.store.clone(),
                services.queues.clone(),
                services.payloads().clone(),
                http,
            ),
        })
    }
}

/// Handles one SQS batch.
pub async fn handle(
    dispatcher: Consumer,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let mut tasks = JoinSet::new();
    let mut failures = Vec::new();
    let cache = Arc::new(BatchCache::default());
    for record in event.payload.records {
        // SQS always sets one; a record without it could not be named in the answer.
        let message_id = record.message_id.clone();
        let dispatcher = dispatcher.clone();
        let cache = cache.clone();
        tasks.spawn(async move { (message_id, process(&dispatcher, &cache, record).await) });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Disposition::Done)) => {}
            Ok((Some(message_id), Disposition::RetryLater)) => failures.push(message_id),
            Ok((None, Disposition::RetryLater)) => {
                // Unnamed, it would count as done and be deleted: fail the whole batch instead.
                error!("a record without a messageId failed; the whole batch comes back");
                return Err("a record without a messageId could not be reported failed".into());
            }
            Err(panicked) => {
                // The message id went down with the task; fail the whole batch so nothing is lost.
                error!(error = %panicked, "a delivery task panicked");
                return Err(Box::new(panicked));
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|item_identifier| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = item_identifier;
            failure
        })
        .collect();
    Ok(response)
}

async fn process(consumer: &Consumer, cache: &BatchCache, record: SqsMessage) -> Disposition {
    let body = record.body.as_deref().unwrap_or_default();
    let job = match decode(body) {
        Ok(Job::Delivery(job)) => job,
        Ok(Job::Inbound(job)) => {
            let (event, attempt) = (job.event_id.clone(), job.attempt);
            return match consumer.inbound.process(job, cache).await {
                Ok(disposition) => disposition,
                Err(error) => {
                    warn!(%event, attempt, %error, "the inbound event could not be worked on; SQS brings it back");
                    Disposition::RetryLater
                }
            };
        }
        Ok(Job::Sync(job)) => {
            warn!(job = %job.job_id, "a sync job on the dispatch queue; left for the dead-letter queue");
            return Disposition::RetryLater;
        }
        Err(error) => {
            warn!(%error, "an unreadable message; left for the dead-letter queue");
            return Disposition::RetryLater;
        }
    };
    let delivery = job.delivery_id.clone();
    let attempt = job.attempt;
    match consumer.deliveries.process_in(job, cache).await {
        Ok(disposition) => disposition,
        Err(error) => {
            warn!(%delivery, attempt, %error, "the attempt could not be worked on; SQS brings it back");
            Disposition::RetryLater
        }
    }
}
