//! The sync runner: the scheduled handler (every minute, EventBridge) queues one job per due
//! integration and sweeps the OAuth tokens that expire within 10 minutes, and the sync-queue consumer runs the jobs (`hub_shared::sync::engine`). One job at
//! a time per integration: a job is claimed on the integration before its message is sent, and
//! the runner takes it with one more conditional write, so a second job is dropped.

use std::time::{Duration, Instant};

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use hub_shared::domain::JobId;
use hub_shared::oauth::{sweep_expiring_tokens, SweepReport};
use hub_shared::queue::{decode, Job, SyncJob, SyncTrigger};
use hub_shared::schedule;
use hub_shared::services::Services;
use hub_shared::store::QueueClaim;
use hub_shared::sync::engine::{run_job, JobOutcome};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

/// Due integrations read per tick.
pub const DUE_PER_TICK: usize = 500;
/// Without a deadline from the runtime, a run hands on after this long.
const DEFAULT_BUDGET: Duration = Duration::from_secs(300);

/// What one scheduled tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TickReport {
    pub due: usize,
    pub queued: usize,
    /// Due, but another job holds the integration (it is moved to its next due time).
    pub busy: usize,
    /// The token sweep: OAuth tokens expiring within 10 minutes.
    pub tokens: SweepReport,
}

/// The function's one entry point: an SQS batch (`Records`) or a scheduled event.
pub async fn handle_any(
    services: Services,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let (payload, context) = (event.payload, event.context);
    if payload.get("Records").is_some() {
        let sqs: SqsEvent = serde_json::from_value(payload)?;
        let response = handle_jobs(services, LambdaEvent::new(sqs, context)).await?;
        Ok(serde_json::to_value(response)?)
    } else {
        let scheduled: EventBridgeEvent = serde_json::from_value(payload)?;
        let report = handle_schedule(services, LambdaEvent::new(scheduled, context)).await?;
        Ok(serde_json::to_value(report)?)
    }
}

/// The scheduled tick: every integration the sync-due index says is due gets one job, unless a
/// job holds it already; either way it moves to its next due time, so the index stops returning
/// it (the run sets the time again from its own start when it finishes).
pub async fn handle_schedule(
    services: Services,
    _event: LambdaEvent<EventBridgeEvent>,
) -> Result<TickReport, lambda_runtime::Error> {
    let now = chrono::Utc::now();
    let due = services.store.due_integrations(now, DUE_PER_TICK).await?;
    let mut report = TickReport {
        due: due.len(),
        ..TickReport::default()
    };
    let mut jobs = Vec::new();
    for entry in due {
        let Some(item) = services
            .store
            .get_integration(&entry.tenant, &entry.id)
            .await?
        else {
            continue;
        };
        let Some(next) = schedule::next_sync_at_after_run(&item.sync_settings, now) else {
            continue; // no longer scheduled: the PATCH that said so removed the index entry too
        };
        let job_id = JobId::generate();
        match services
            .store
            .claim_sync_queued(&entry.tenant, &entry.id, &job_id)
            .await?
        {
            QueueClaim::Claimed => {
                report.queued += 1;
                jobs.push(Job::Sync(SyncJob {
                    tenant_id: entry.tenant.clone(),
                    integration_id: entry.id.clone(),
                    job_id,
                    trigger: SyncTrigger::Schedule,
                    entities: Vec::new(),
                    full: false,
                }));
            }
            QueueClaim::Busy => report.busy += 1,
            QueueClaim::Gone => continue,
        }
        services
            .store
            .reschedule_sync(&entry.tenant, &entry.id, &entry.next_sync_at, &next)
            .await?;
    }
    if let Err(error) = services.queues.send(&jobs).await {
        // The claims lapse after their queued lease; the integrations are due again then.
        error!(%error, jobs = jobs.len(), "scheduled sync jobs could not be queued");
        return Err(Box::new(error));
    }
    report.tokens = sweep_expiring_tokens(&services).await?;
    info!(
        due = report.due,
        queued = report.queued,
        busy = report.busy,
        tokensExpiring = report.tokens.expiring,
        tokensRefreshed = report.tokens.refreshed,
        tokenExpiringAnnounced = report.tokens.announced,
        "sync schedule tick"
    );
    Ok(report)
}

/// One batch of the sync queue: each job runs until it finishes, hands off or is dropped; a job
/// that met an unavailable store or queue is reported failed so SQS brings it back.
pub async fn handle_jobs(
    services: Services,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let deadline = deadline_of(&event.context);
    let mut tasks = JoinSet::new();
    for record in event.payload.records {
        let services = services.clone();
        tasks.spawn(async move {
            let id = record.message_id.clone();
            (id, process(&services, record, deadline).await)
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, true)) => {}
            Ok((Some(id), false)) => failures.push(id),
            Ok((None, false)) => {
                return Err("a record without a messageId could not be reported failed".into())
            }
            Err(panicked) => {
                error!(error = %panicked, "a sync task panicked");
                return Err(Box::new(panicked));
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    Ok(response)
}

/// `true` when the message is done with (finished, handed off, dropped).
async fn process(services: &Services, record: SqsMessage, deadline: Instant) -> bool {
    let job = match decode(record.body.as_deref().unwrap_or_default()) {
        Ok(Job::Sync(job)) => job,
        Ok(_) => {
            warn!("a message that is not a sync job on the sync queue; left for the dead-letter queue");
            return false;
        }
        Err(error) => {
            warn!(%error, "an unreadable message; left for the dead-letter queue");
            return false;
        }
    };
    match run_job(services, &job, deadline).await {
        Ok(outcome) => {
            if let JobOutcome::Finished(outcome) = outcome {
                info!(jobId = %job.job_id, ?outcome, "sync job done");
            }
            true
        }
        Err(error) => {
            warn!(jobId = %job.job_id, %error, "the sync job could not go on; SQS brings it back");
            // Let the next delivery of the message start it again.
            if let Err(error) = services
                .store
                .hand_off_sync_run(&job.tenant_id, &job.integration_id, &job.job_id)
                .await
            {
                warn!(jobId = %job.job_id, %error, "the job could not be handed back");
            }
            false
        }
    }
}

/// When this invocation must be over, from the runtime's deadline (epoch milliseconds).
fn deadline_of(context: &lambda_runtime::Context) -> Instant {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let left = (context.deadline as i64).saturating_sub(now_ms);
    if left <= 0 {
        return Instant::now() + DEFAULT_BUDGET;
    }
    Instant::now() + Duration::from_millis(left as u64)
}
