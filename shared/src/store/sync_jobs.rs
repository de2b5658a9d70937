//! One sync job at a time per integration, kept on the integration item itself:
//! `syncJobId`, `syncJobState` (`queued` | `running`), `syncJobLeaseUntil` (epoch ms),
//! `syncJobStartedAt`, `syncJobProcessed`.
//!
//! Every step is one conditional `UpdateItem`:
//! - **queue** (the API's `POST /sync`, the scheduler): only when no job holds the integration, or
//!   the holder's lease ran out (a queued message that was lost, a run that died);
//! - **start** (the sync runner, per message): only the queued job of that id, or a running one
//!   whose lease ran out (the message came back after a crash) — so a redelivered message of a live
//!   run, and a second job, are dropped;
//! - **heartbeat** after every page: the lease moves on and `processed` grows;
//! - **hand off** before a continuation is queued: back to `queued` under the same id;
//! - **finish**: the job attributes go, and the run's outcome lands with the stats and the
//!   schedule, in the same write.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::integrations::IntegrationItem;
use super::{aws_error, keys, n, s, timestamp, unless_condition_failed, Store, StoreError};
use crate::domain::{IntegrationId, JobId, TenantId};

/// A queued job not started within this long is taken as lost (its message never arrived).
pub const QUEUED_LEASE: Duration = Duration::from_secs(15 * 60);
/// A running job that has not reported a page for this long is taken as dead.
pub const RUNNING_LEASE: Duration = Duration::from_secs(3 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncJobState {
    Queued,
    Running,
}

impl SyncJobState {
    pub const fn as_str(self) -> &'static str {
        match self {
            SyncJobState::Queued => "queued",
            SyncJobState::Running => "running",
        }
    }
}

/// The job holding an integration, as the item stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncJobHold {
    pub job_id: JobId,
    pub state: SyncJobState,
    pub lease_until_ms: i64,
    pub started_at: Option<String>,
    pub processed: u64,
}

/// Where one entity's run stands, saved after every page on the integration item
/// (`syncState.<localEntity>`), and what survives between runs (the sync token, the start of the
/// last successful run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityCheckpoint {
    /// The run in progress (it outlives a job: a resumed run keeps its id), or `None` when the
    /// entity's last run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<EntityRun>,
    /// The committed sync token (incremental `sync_token` entities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_token: Option<String>,
    /// RFC 3339 start of the entity's last successful run (`updated_since` entities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_started_at: Option<String>,
    /// How the entity's last finished run went, and for which job (the job's summary adds up
    /// the entities it finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<FinishedRun>,
}

/// An entity's finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinishedRun {
    pub job_id: JobId,
    pub counts: crate::events::SyncSummary,
    #[serde(default)]
    pub failed_items: Vec<Value>,
    /// Why the run stopped early, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An entity's run in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityRun {
    pub id: String,
    /// `full` or `incremental`.
    pub mode: String,
    pub started_at: String,
    /// The next page to read (the paging module's position, as JSON); `None` once every page is read
    /// and the run is in its deletion pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Value>,
    /// The deletion pass's next Query start key (as JSON), when it has begun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_start: Option<Value>,
    pub counts: crate::events::SyncSummary,
    #[serde(default)]
    pub failed_items: Vec<Value>,
    /// The sync token the pages handed out, committed when the run succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_sync_token: Option<String>,
    /// The store held no record of the entity when the run began (its pages need not read any).
    #[serde(default)]
    pub store_was_empty: bool,
    /// Continuations queued because the provider kept failing or throttling.
    #[serde(default)]
    pub deferrals: u32,
}

/// What queueing a job found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueClaim {
    Claimed,
    /// Another job holds the integration.
    Busy,
    Gone,
}

/// How a run ended, for the integration's stats.
#[derive(Debug, Clone)]
pub struct SyncRunOutcome {
    /// `success`, `partial` or `failed`.
    pub status: &'static str,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub error: Option<String>,
    /// `nextSyncAt` from here on (the schedule rule), or `None` when not scheduled.
    pub next_sync_at: Option<String>,
}

impl IntegrationItem {
    /// The job that holds this integration, if its lease is live at `now_ms`.
    pub fn live_sync_job(&self, now_ms: i64) -> Option<&SyncJobHold> {
        self.sync_job
            .as_ref()
            .filter(|hold| hold.lease_until_ms >= now_ms)
    }
}

impl Store {
    /// Marks `job` queued for the integration unless another live job holds it.
    pub async fn claim_sync_queued(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        job: &JobId,
    ) -> Result<QueueClaim, StoreError> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let out = self
            .update_integration_item(tenant, id)
            .update_expression("SET syncJob = :hold")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(syncJob) OR syncJob.leaseUntilMs < :now)",
            )
            .expression_attribute_values(
                ":hold",
                hold_attribute(job, SyncJobState::Queued, now_ms + ms(QUEUED_LEASE)),
            )
            .expression_attribute_values(":now", n(now_ms))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match out {
            Ok(_) => Ok(QueueClaim::Claimed),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                Ok(if item_returned(service.err()) {
                    QueueClaim::Busy
                } else {
                    QueueClaim::Gone
                })
            }
            Err(error) => Err(aws_error("UpdateItem", error)),
        }
    }

    /// Gives a queued claim back (its message could not be sent).
    pub async fn release_sync_claim(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        job: &JobId,
    ) -> Result<(), StoreError> {
        let out = self
            .update_integration_item(tenant, id)
            .update_expression("REMOVE syncJob")
            .condition_expression("syncJob.jobId = :job")
            .expression_attribute_values(":job", s(job.as_str()))
            .send()
            .await;
        condition_held(out).map(|_| ())
    }

    /// The runner takes `job`: the queued job of that id, or a running one whose lease ran out (its
    /// message came back after a crash), or — for a job nobody queued (an incoming webhook's
    /// `trigger_sync`) — an integration no live job holds. Returns the integration as it now is, or
    /// `None` when another job holds it: the message is then dropped.
    pub async fn start_sync_run(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        job: &JobId,
    ) -> Result<Option<IntegrationItem>, StoreError> {
        let now = chrono::Utc::now();
        let now_ms = now.timestamp_millis();
        let ours = self
            .update_integration_item(tenant, id)
            .update_expression(
                "SET syncJob.#state = :running, syncJob.leaseUntilMs = :until, \
                 syncJob.startedAt = if_not_exists(syncJob.startedAt, :started), \
                 syncState = if_not_exists(syncState, :emptyState)",
            )
            .condition_expression(
                "syncJob.jobId = :job AND (syncJob.#state = :queued OR syncJob.leaseUntilMs < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":running", s(SyncJobState::Running.as_str()))
            .expression_attribute_values(":queued", s(SyncJobState::Queued.as_str()))
            .expression_attribute_values(":until", n(now_ms + ms(RUNNING_LEASE)))
            .expression_attribute_values(":started", s(timestamp(now)))
            .expression_attribute_values(":job", s(job.as_str()))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":emptyState", AttributeValue::M(Default::default()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        if let Some(out) = unless_condition_failed("UpdateItem", ours)? {
            return out.attributes.map(IntegrationItem::from_stored).transpose();
        }
        let mut hold = hold_attribute(job, SyncJobState::Running, now_ms + ms(RUNNING_LEASE));
        if let AttributeValue::M(map) = &mut hold {
            map.insert("startedAt".to_string(), s(timestamp(now)));
        }
        let free = self
            .update_integration_item(tenant, id)
            .update_expression(
                "SET syncJob = :hold, syncState = if_not_exists(syncState, :emptyState)",
            )
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(syncJob) OR syncJob.leaseUntilMs < :now)",
            )
            .expression_attribute_values(":hold", hold)
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":emptyState", AttributeValue::M(Default::default()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        unless_condition_failed("UpdateItem", free)?
            .and_then(|out| out.attributes)
            .map(IntegrationItem::from_stored)
            .transpose()
    }

    /// After every page: the entity's checkpoint, the lease and `processed`, in one write. `false`
    /// when the job no longer holds the integration (the run then stops).
    pub async fn save_sync_progress(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        job: &JobId,
        entity: &str,
        checkpoint: &EntityCheckpoint,
        processed: u64,
    ) -> Result<bool, StoreError> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let out = self
            .update_integration_item(tenant, id)
            .update_expression(
                "SET syncJob.leaseUntilMs = :until, syncState.#entity = :checkpoint \
                 ADD syncJob.#processed :processed",
            )
            .condition_expression("syncJob.jobId = :job AND syncJob.#state = :running")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#entity", entity)
            .expression_attribute_names("#processed", "processed")
            .expression_attribute_values(":running", s(SyncJobState::Running.as_str()))
            .expression_attribute_values(":until", n(now_ms + ms(RUNNING_LEASE)))
            .expression_attribute_values(":checkpoint", super::to_attribute(checkpoint)?)
            .expression_attribute_values(":processed", n(processed))
            .expression_attribute_values(":job", s(job.as_str()))
            .send()
            .await;
        condition_held(out)
    }

    /// After every page: the lease moves on and `processed` grows. `false` when the job no longer
    /// holds the integration (the run then stops).
    pub async fn sync_heartbeat(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        job: &JobId,
        processed: u64,
    ) -> Result<bool, StoreError> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let out = self
            .update_integration_item(tenant, id)
            .update_expression(
                "SET syncJob.leaseUntilMs = :until ADD syncJob.#processed :processed",
            )
            .condition_expression("syncJob.jobId = :job AND syncJob.#state = :running")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#processed", "processed")
            .expression_attribute_values(":running", s(SyncJobState::Running.as_str()))
            .expression_attribute_values(":until", n(now_ms + ms(RUNNING_LEASE)))
            .expression_attribute_values(":processed", n(processed))
            .expression_attribute_values(":job", s(job.as_str()))
            .send()
            .await;
        condition_held(out)
    }

    /// Before a continuation is queued: the job is queued again under its id (keeping its start
    /// and progress), so the continuation's message can start it.
    pub async fn hand_off_sync_run(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        job: &JobId,
    ) -> Result<bool, StoreError> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let out = self
            .update_integration_item(tenant, id)
            .update_expression("SET syncJob.#state = :queued, syncJob.leaseUntilMs = :until")
            .condition_expression("syncJob.jobId = :job")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":queued", s(SyncJobState::Queued.as_str()))
            .expression_attribute_values(":until", n(now_ms + ms(QUEUED_LEASE)))
            .expression_attribute_values(":job", s(job.as_str()))
            .send()
            .await;
        condition_held(out)
    }

    /// The run is over: the job lets go, and the outcome, `totalSyncs`, `lastSyncAt`,
    /// `lastSyncStatus`, `lastError` and the schedule land in the same write. `None` when the job
    /// no longer held the integration (or it is gone).
    pub async fn finish_sync_run(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        job: &JobId,
        outcome: &SyncRunOutcome,
    ) -> Result<Option<IntegrationItem>, StoreError> {
        let now = timestamp(chrono::Utc::now());
        let mut request = self
            .update_integration_item(tenant, id)
            .condition_expression("syncJob.jobId = :job")
            .expression_attribute_values(":job", s(job.as_str()))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":status", s(outcome.status))
            .expression_attribute_values(
                ":error",
                outcome
                    .error
                    .clone()
                    .map(s)
                    .unwrap_or(AttributeValue::Null(true)),
            )
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew);
        let update = match &outcome.next_sync_at {
            Some(next) => {
                request = request
                    .expression_attribute_values(":next", s(next.clone()))
                    .expression_attribute_values(":gsiPk", s(keys::SYNC_DUE_PK))
                    .expression_attribute_values(":gsiSk", s(keys::sync_due_sk(next, tenant, id)));
                "SET lastSyncAt = :now, lastSyncStatus = :status, lastError = :error, \
                 nextSyncAt = :next, gsi1pk = :gsiPk, gsi1sk = :gsiSk \
                 ADD totalSyncs :one REMOVE syncJob"
            }
            None => {
                request = request.expression_attribute_values(":null", AttributeValue::Null(true));
                "SET lastSyncAt = :now, lastSyncStatus = :status, lastError = :error, \
                 nextSyncAt = :null ADD totalSyncs :one REMOVE syncJob, gsi1pk, gsi1sk"
            }
        };
        let out = request.update_expression(update).send().await;
        unless_condition_failed("UpdateItem", out)?
            .and_then(|out| out.attributes)
            .map(IntegrationItem::from_stored)
            .transpose()
    }

    /// The scheduler moves an integration it could not queue (another job holds it) or has queued
    /// to its next due time, so the index stops returning it; only when `nextSyncAt` is still the
    /// time it read (a PATCH in between wins).
    pub async fn reschedule_sync(
        &self,
        tenant: &TenantId,
        id: &IntegrationId,
        seen_next_sync_at: &str,
        next: &str,
    ) -> Result<bool, StoreError> {
        let out = self
            .update_integration_item(tenant, id)
            .update_expression("SET nextSyncAt = :next, gsi1sk = :gsiSk")
            .condition_expression("nextSyncAt = :seen")
            .expression_attribute_values(":next", s(next))
            .expression_attribute_values(":gsiSk", s(keys::sync_due_sk(next, tenant, id)))
            .expression_attribute_values(":seen", s(seen_next_sync_at))
            .send()
            .await;
        condition_held(out)
    }
}

fn hold_attribute(job: &JobId, state: SyncJobState, lease_until_ms: i64) -> AttributeValue {
    AttributeValue::M(std::collections::HashMap::from([
        ("jobId".to_string(), s(job.as_str())),
        ("state".to_string(), s(state.as_str())),
        ("leaseUntilMs".to_string(), n(lease_until_ms)),
        ("processed".to_string(), n(0)),
    ]))
}

fn ms(duration: Duration) -> i64 {
    duration.as_millis() as i64
}

fn item_returned(error: &UpdateItemError) -> bool {
    match error {
        UpdateItemError::ConditionalCheckFailedException(failed) => {
            failed.item().is_some_and(|item| !item.is_empty())
        }
        _ => true,
    }
}

/// Whether a conditional update's condition held.
fn condition_held<T>(
    out: Result<T, SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>>,
) -> Result<bool, StoreError> {
    Ok(unless_condition_failed("UpdateItem", out)?.is_some())
}
