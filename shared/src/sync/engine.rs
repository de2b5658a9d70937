//! The sync run: one job of the sync queue, from taking the integration to its log and events.
//!
//! Per entity the run reads page after page (one page in memory at a time), maps each record,
//! reads what the store holds for the page's ids in one `BatchGetItem`, writes the page's changes
//! with `BatchWriteItem`, announces them, and saves its checkpoint (the next page, the counts)
//! with the job's lease in one write. A full run then soft-deletes what it did not see. Near the
//! invocation's deadline it hands the job on to a continuation message; a provider that keeps
//! failing or throttling defers it the same way, with a delay. A crash anywhere resumes from the
//! last checkpoint, and the run's stamps on the records make the resumed page count each record
//! once (`store::sync_records`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{json, Map, Value};

use super::incremental::{
    detects_deletions, incremental_query, is_expired_token_status, next_sync_token, run_mode,
    IncrementalState, RunMode,
};
use super::mapping::{page_records, Mapped, RecordMapper};
use super::paging::{next_position, page_request, page_values, PagePosition};
use crate::catalog::{EntityDef, Provider, Values};
use crate::delivery::{emit_to, BatchCache};
use crate::domain::{IntegrationStatus, LogId, RemoteId};
use crate::events::{
    EntityName, EntityRecord, Event, RecordChange, RecordMeta, RecordSource, StatusChangeReason,
    SyncOutcome, SyncRun, SyncSummary,
};
use crate::http_client::OutgoingRequest;
use crate::oauth::{provider_credentials, refresh_now, TokenError};
use crate::queue::{Job, SyncJob, SyncTrigger};
use crate::retry::{retry_after, retry_delay, RandomJitter};
use crate::schedule;
use crate::services::Services;
use crate::store::{
    record_hash, timestamp, Admission, CheckOutcome, EntityCheckpoint, EntityRun, FinishedRun,
    IntegrationItem, IntegrationLog, LogAction, LogStatus, StoreError, SyncChange, SyncRunOutcome,
    SyncWrite, SyncedRecord,
};
use crate::sync_settings::ImportEntity;

/// Each provider request gets 30 s.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// A page body larger than this is refused (a page of records, not a download).
pub const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;
/// Requests per page while the provider answers 5xx or not at all.
const PAGE_ATTEMPTS: u32 = 3;
/// The run hands on when less than this is left of the invocation.
pub const HANDOFF_MARGIN: Duration = Duration::from_secs(60);
/// A wait (rate limit, `Retry-After`) longer than this is not slept through: the job is deferred.
const LONGEST_SLEEP: Duration = Duration::from_secs(20);
/// How long a job is deferred after a page failed every attempt.
const FAILURE_DEFERRAL: Duration = Duration::from_secs(60);
/// Deferrals of one entity run before it fails.
const MAX_DEFERRALS: u32 = 5;
/// Failed items kept per run (the log's `failedItems`).
const MAX_FAILED_ITEMS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Worth the message coming back (the store or the queue was unavailable).
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the sync queue is unavailable: {0}")]
    Queue(String),
}

/// What became of one job message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Another job holds the integration (or it is gone): the message is dropped.
    Dropped,
    /// Handed on to a continuation (deadline, or a deferral after provider failures).
    HandedOff,
    /// The run finished with this outcome.
    Finished(SyncOutcome),
}

/// Runs one sync job message until it finishes, hands off or is dropped. `deadline` is when the
/// invocation ends.
pub async fn run_job(
    services: &Services,
    job: &SyncJob,
    deadline: Instant,
) -> Result<JobOutcome, SyncError> {
    let Some(item) = services
        .store
        .start_sync_run(&job.tenant_id, &job.integration_id, &job.job_id)
        .await?
    else {
        tracing::info!(tenantId = %job.tenant_id, integrationId = %job.integration_id,
            jobId = %job.job_id, "another sync job holds the integration; this one is dropped");
        return Ok(JobOutcome::Dropped);
    };
    let started_at = item
        .sync_job
        .as_ref()
        .and_then(|hold| hold.started_at.as_deref())
        .and_then(parse_time)
        .unwrap_or_else(Utc::now);
    let mut run = Run {
        services,
        job,
        item,
        deadline,
        cache: BatchCache::default(),
        started_at,
        credentials: None,
        refreshed: false,
    };
    if job.trigger != SyncTrigger::Continuation {
        let started = Event::sync_started(&run.item, &job.job_id, started_at);
        run.emit(vec![started]).await;
    }
    run.execute().await
}

struct Run<'a> {
    services: &'a Services,
    job: &'a SyncJob,
    item: IntegrationItem,
    deadline: Instant,
    cache: BatchCache,
    started_at: DateTime<Utc>,
    credentials: Option<Map<String, Value>>,
    refreshed: bool,
}

/// How one entity's part of the job ended in this invocation.
enum EntityEnd {
    Finished,
    /// Handed off (deadline) or deferred (the continuation is queued).
    HandedOff,
    /// The job no longer holds the integration.
    Lost,
}

/// A page as the provider answered it.
struct FetchedPage {
    body: Value,
    headers: HeaderMap,
    url: url::Url,
}

/// What one page request produced.
enum Fetched {
    Page(Box<FetchedPage>),
    /// The provider said the sync token expired (its `expiredStatus`).
    TokenExpired,
    /// Try again later (the wait, and why).
    Defer(Duration, String),
    /// The entity cannot be read (a 4xx, a refused target, bad configuration).
    Fatal(String),
}

impl Run<'_> {
    async fn execute(&mut self) -> Result<JobOutcome, SyncError> {
        let Some(provider) = self
            .services
            .catalog
            .get(self.item.provider.as_str())
            .cloned()
        else {
            return self
                .finish(Some("the provider is no longer in the catalog".to_string()))
                .await;
        };
        let definitions = match provider.integration_entities(&self.item.config) {
            Ok(definitions) => definitions,
            Err(error) => return self.finish(Some(error.to_string())).await,
        };
        let entities: Vec<ImportEntity> = self
            .item
            .sync_settings
            .import_entities(&definitions)
            .into_iter()
            .filter(|entity| {
                self.job.entities.is_empty() || self.job.entities.contains(&entity.local)
            })
            .collect();
        match provider_credentials(self.services, &provider, &self.item).await {
            Ok(fields) => self.credentials = Some(crate::credentials::to_values(&fields)),
            Err(TokenError::Store(error)) => return Err(error.into()),
            Err(error) => return self.finish(Some(error.to_string())).await,
        }
        for (index, entity) in entities.iter().enumerate() {
            let Some(definition) = definitions.get(&entity.remote) else {
                continue;
            };
            let checkpoint = self
                .item
                .sync_state
                .get(&entity.local)
                .cloned()
                .unwrap_or_default();
            if checkpoint.run.is_none()
                && checkpoint
                    .last_run
                    .as_ref()
                    .is_some_and(|last| last.job_id == self.job.job_id)
            {
                continue; // finished by an earlier invocation of this job
            }
            let end = self
                .sync_entity(
                    &provider,
                    entity,
                    definition,
                    checkpoint,
                    &entities[index..],
                )
                .await?;
            match end {
                EntityEnd::Finished => {}
                EntityEnd::HandedOff => return Ok(JobOutcome::HandedOff),
                EntityEnd::Lost => return Ok(JobOutcome::Dropped),
            }
        }
        self.finish(None).await
    }

    async fn sync_entity(
        &mut self,
        provider: &Provider,
        entity: &ImportEntity,
        definition: &EntityDef,
        mut checkpoint: EntityCheckpoint,
        remaining: &[ImportEntity],
    ) -> Result<EntityEnd, SyncError> {
        let tenant = self.job.tenant_id.clone();
        let integration = self.item.id.clone();
        let Ok(entity_name) = EntityName::parse(&entity.local) else {
            return self
                .end_entity(
                    entity,
                    checkpoint,
                    None,
                    Some(format!("`{}` is not an entity name", entity.local)),
                )
                .await;
        };
        let mapper = match RecordMapper::new(
            &self.item.sync_settings,
            &entity.local,
            definition.default_mappings.as_ref(),
        ) {
            Ok(mapper) => mapper,
            Err(error) => {
                let message = format!("{}: {}", error.field, error.message);
                return self
                    .end_entity(entity, checkpoint, None, Some(message))
                    .await;
            }
        };
        let state = IncrementalState {
            sync_token: checkpoint.sync_token.clone(),
            last_success_started_at: checkpoint.last_success_started_at.clone(),
        };
        // Resume a run of this job, or (unless a full sync was asked for) an unfinished run of an
        // earlier job; otherwise start a new one.
        let resumable = checkpoint.run.as_ref().is_some_and(|run| {
            run.id.starts_with(&format!("{}.", self.job.job_id)) || !self.job.full
        });
        let mut run = match checkpoint.run.take().filter(|_| resumable) {
            Some(run) => run,
            None => {
                let mode = run_mode(definition, &state, self.job.full);
                let store_was_empty = matches!(mode, RunMode::Full)
                    && !self
                        .services
                        .store
                        .has_records(&tenant, &integration, &entity_name)
                        .await?;
                EntityRun {
                    id: format!("{}.{}", self.job.job_id, entity.local),
                    mode: mode_name(mode).to_string(),
                    started_at: timestamp(Utc::now()),
                    position: Some(position_json(&PagePosition::First)),
                    deletion_start: None,
                    counts: SyncSummary::default(),
                    failed_items: Vec::new(),
                    next_sync_token: None,
                    store_was_empty,
                    deferrals: 0,
                }
            }
        };

        loop {
            if self.near_deadline() {
                checkpoint.run = Some(run);
                return self.hand_off(entity, &checkpoint, remaining, None).await;
            }
            let mode = if run.mode == "full" {
                RunMode::Full
            } else {
                RunMode::Incremental
            };
            let Some(position) = run.position.clone() else {
                // Every page is read: a full run's deletion pass, then done. A run that began
                // with no stored record of the entity wrote every one there is itself (stamped):
                // nothing can be missing, so it reads nothing again.
                if detects_deletions(mode) && !run.store_was_empty {
                    self.deletion_pass(&entity_name, &mut run).await?;
                    if run.deletion_start.is_some() {
                        checkpoint.run = Some(run.clone());
                        if !self.save(&entity.local, &checkpoint, 0).await? {
                            return Ok(EntityEnd::Lost);
                        }
                        checkpoint.run = None;
                        continue;
                    }
                }
                return self.end_entity(entity, checkpoint, Some(run), None).await;
            };
            let position: PagePosition = match serde_json::from_value(position) {
                Ok(position) => position,
                Err(_) => PagePosition::First,
            };
            let fetched = self
                .fetch_page(provider, definition, &state, mode, &position)
                .await?;
            match fetched {
                Fetched::TokenExpired => {
                    // The provider forgot the token: a full resync, which also finds deletions.
                    tracing::info!(tenantId = %tenant, integrationId = %integration,
                        entity = %entity.local, "sync token expired; full resync");
                    checkpoint.sync_token = None;
                    run.mode = mode_name(RunMode::Full).to_string();
                    run.position = Some(position_json(&PagePosition::First));
                    run.store_was_empty = false;
                    continue;
                }
                Fetched::Defer(wait, reason) => {
                    run.deferrals += 1;
                    if run.deferrals > MAX_DEFERRALS {
                        return self
                            .end_entity(entity, checkpoint, Some(run), Some(reason))
                            .await;
                    }
                    tracing::warn!(tenantId = %tenant, integrationId = %integration,
                        entity = %entity.local, wait_s = wait.as_secs(), reason = %reason,
                        "sync deferred");
                    checkpoint.run = Some(run);
                    return self
                        .hand_off(entity, &checkpoint, remaining, Some(wait))
                        .await;
                }
                Fetched::Fatal(reason) => {
                    return self
                        .end_entity(entity, checkpoint, Some(run), Some(reason))
                        .await;
                }
                Fetched::Page(page) => {
                    let FetchedPage { body, headers, url } = *page;
                    let (page_counts, records_on_page, last_id) = match self
                        .process_page(&entity_name, definition, &mapper, &mut run, mode, &body)
                        .await?
                    {
                        Ok(processed) => processed,
                        Err(reason) => {
                            return self
                                .end_entity(entity, checkpoint, Some(run), Some(reason))
                                .await
                        }
                    };
                    if let Some(token) = next_sync_token(definition, &body) {
                        run.next_sync_token = Some(token);
                    }
                    run.position = next_position(
                        definition.pagination.as_ref(),
                        &position,
                        &body,
                        &headers,
                        records_on_page,
                        last_id.as_deref(),
                        &url,
                    )
                    .map(|next| position_json(&next));
                    run.deferrals = 0;
                    checkpoint.run = Some(run.clone());
                    if !self
                        .save(
                            &entity.local,
                            &checkpoint,
                            page_counts.total + page_counts.failed,
                        )
                        .await?
                    {
                        return Ok(EntityEnd::Lost);
                    }
                    checkpoint.run = None;
                }
            }
        }
    }

    /// One page: records read, mapped, compared with what is stored, the changes written and
    /// announced. Returns the page's counts, its record count and its last record id; `Err` when
    /// the body is not a page of this entity.
    #[allow(clippy::type_complexity)]
    async fn process_page(
        &mut self,
        entity: &EntityName,
        definition: &EntityDef,
        mapper: &RecordMapper,
        run: &mut EntityRun,
        mode: RunMode,
        body: &Value,
    ) -> Result<Result<(SyncSummary, usize, Option<String>), String>, SyncError> {
        let records = match page_records(definition, body) {
            Ok(records) => records,
            Err(error) => return Ok(Err(error.to_string())),
        };
        let records_on_page = records.len();
        let last_id = records
            .iter()
            .rev()
            .find_map(|record| record.as_ref().ok().map(|r| r.id.clone()));
        let ids: Vec<RemoteId> = records
            .iter()
            .filter_map(|record| record.as_ref().ok())
            .filter_map(|record| RemoteId::parse(&record.id).ok())
            .collect();
        let stored: HashMap<String, SyncedRecord> = if run.store_was_empty {
            HashMap::new()
        } else {
            self.services
                .store
                .synced_records(&self.job.tenant_id, &self.item.id, entity, &ids)
                .await?
        };
        let now = timestamp(Utc::now());
        let full = matches!(mode, RunMode::Full);
        let mut counts = SyncSummary::default();
        let mut writes: Vec<SyncWrite> = Vec::new();
        let mut changes: Vec<(RecordChange, EntityRecord)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for record in records {
            let record = match record {
                Ok(record) => record,
                Err(error) => {
                    counts.failed += 1;
                    push_failed(run, json!({"id": Value::Null, "error": error.to_string()}));
                    continue;
                }
            };
            counts.total += 1;
            let Ok(remote_id) = RemoteId::parse(&record.id) else {
                counts.failed += 1;
                push_failed(
                    run,
                    json!({"id": Value::Null, "error": "the remote id is empty or longer than 512 bytes"}),
                );
                continue;
            };
            if !seen.insert(record.id.clone()) {
                counts.skipped += 1; // the same id twice on one page: the first one counts
                continue;
            }
            let existing = stored.get(&record.id);
            let stamped = existing.filter(|e| e.sync_run.as_deref() == Some(run.id.as_str()));
            // A deletion marker, and a record the filters exclude, both leave the store.
            let mapped = if record.deleted {
                Ok(Mapped::FilteredOut)
            } else {
                mapper.map(record.body)
            };
            match mapped {
                Err(error) => {
                    counts.failed += 1;
                    push_failed(
                        run,
                        json!({"id": record.id, "field": error.field, "error": error.message}),
                    );
                    if let (true, Some(existing), None) = (full, existing, stamped) {
                        // Seen, so not a deletion: stamp what is stored.
                        writes.push(rewrite(&remote_id, existing, SyncChange::Unchanged));
                    }
                }
                Ok(Mapped::FilteredOut) => match (existing, stamped) {
                    (Some(e), Some(_)) => count_stamped(&mut counts, e.sync_change),
                    (Some(e), None) if !e.deleted => {
                        counts.deleted += 1;
                        let mut write = rewrite(&remote_id, e, SyncChange::Deleted);
                        write.deleted = true;
                        write.updated_at = now.clone();
                        changes.push((RecordChange::Deleted, entity_record(&write, &self.item)));
                        writes.push(write);
                    }
                    (Some(e), None) => {
                        counts.skipped += 1;
                        if full {
                            writes.push(rewrite(&remote_id, e, SyncChange::Unchanged));
                        }
                    }
                    (None, _) => counts.skipped += 1,
                },
                Ok(Mapped::Record(data)) => {
                    let hash = record_hash(&data);
                    match (existing, stamped) {
                        (Some(e), Some(_)) => {
                            count_stamped(&mut counts, e.sync_change);
                            // Written before the crash; announce it again (at least once).
                            if let Some(change) = announced_change(e.sync_change) {
                                let write = rewrite(
                                    &remote_id,
                                    e,
                                    e.sync_change.unwrap_or(SyncChange::Unchanged),
                                );
                                changes.push((change, entity_record(&write, &self.item)));
                            }
                        }
                        (Some(e), None) if e.hash == hash && !e.deleted => {
                            counts.skipped += 1;
                            if full {
                                writes.push(rewrite(&remote_id, e, SyncChange::Unchanged));
                            }
                        }
                        (Some(e), None) => {
                            counts.updated += 1;
                            let write = SyncWrite {
                                remote_id: remote_id.clone(),
                                data,
                                hash,
                                created_at: e.created_at.clone(),
                                updated_at: now.clone(),
                                deleted: false,
                                change: SyncChange::Updated,
                            };
                            changes
                                .push((RecordChange::Updated, entity_record(&write, &self.item)));
                            writes.push(write);
                        }
                        (None, _) => {
                            counts.created += 1;
                            let write = SyncWrite {
                                remote_id: remote_id.clone(),
                                data,
                                hash,
                                created_at: now.clone(),
                                updated_at: now.clone(),
                                deleted: false,
                                change: SyncChange::Created,
                            };
                            changes
                                .push((RecordChange::Created, entity_record(&write, &self.item)));
                            writes.push(write);
                        }
                    }
                }
            }
        }
        self.write_and_announce(entity, &run.id, writes, changes)
            .await?;
        run.counts.add(&counts);
        Ok(Ok((counts, records_on_page, last_id)))
    }

    /// One page of a full run's deletion pass.
    async fn deletion_pass(
        &mut self,
        entity: &EntityName,
        run: &mut EntityRun,
    ) -> Result<(), SyncError> {
        let start = run
            .deletion_start
            .take()
            .and_then(|start| serde_json::from_value::<HashMap<String, Value>>(start).ok())
            .map(attribute_key);
        let page = self
            .services
            .store
            .unseen_records(&self.job.tenant_id, &self.item.id, entity, &run.id, start)
            .await?;
        let now = timestamp(Utc::now());
        let mut writes = Vec::new();
        let mut changes = Vec::new();
        for record in &page.records {
            let stamped = record.sync_run.as_deref() == Some(run.id.as_str());
            if stamped && record.sync_change == Some(SyncChange::Missing) {
                run.counts.deleted += 1; // deleted by this pass before a crash
                continue;
            }
            if record.deleted {
                continue; // deleted by an earlier run
            }
            let Ok(remote_id) = RemoteId::parse(&record.remote_id) else {
                continue;
            };
            run.counts.deleted += 1;
            let mut write = rewrite(&remote_id, record, SyncChange::Missing);
            write.deleted = true;
            write.updated_at = now.clone();
            changes.push((RecordChange::Deleted, entity_record(&write, &self.item)));
            writes.push(write);
        }
        self.write_and_announce(entity, &run.id, writes, changes)
            .await?;
        run.deletion_start = page.next.map(|key| json_key(&key));
        Ok(())
    }

    /// A page's writes (stamped with the run), then the events of its changes.
    async fn write_and_announce(
        &self,
        entity: &EntityName,
        run_id: &str,
        writes: Vec<SyncWrite>,
        changes: Vec<(RecordChange, EntityRecord)>,
    ) -> Result<(), SyncError> {
        self.services
            .store
            .write_synced_records(&self.job.tenant_id, &self.item.id, entity, run_id, writes)
            .await?;
        let events: Vec<Event> = changes
            .into_iter()
            .map(|(change, record)| {
                Event::record(&self.job.tenant_id, entity.clone(), change, &record)
            })
            .collect();
        self.emit(events).await;
        Ok(())
    }

    /// One page request: the rate-limit bucket, then up to [`PAGE_ATTEMPTS`] requests while the
    /// provider answers 5xx or not at all, honouring `Retry-After` on a 429.
    async fn fetch_page(
        &mut self,
        provider: &Provider,
        definition: &EntityDef,
        state: &IncrementalState,
        mode: RunMode,
        position: &PagePosition,
    ) -> Result<Fetched, SyncError> {
        let rate_limit = provider.api.as_ref().and_then(|api| api.rate_limit);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Some(limit) = rate_limit {
                match self
                    .services
                    .store
                    .take_rate_token(
                        &self.job.tenant_id,
                        &self.item.provider,
                        limit.requests,
                        limit.per_seconds,
                    )
                    .await?
                {
                    Admission::Granted => {}
                    Admission::Wait(wait)
                        if wait <= LONGEST_SLEEP && !self.would_pass_deadline(wait) =>
                    {
                        tokio::time::sleep(wait).await;
                        attempt -= 1;
                        continue;
                    }
                    Admission::Wait(wait) => {
                        return Ok(Fetched::Defer(
                            wait,
                            "the provider's rate limit is used up".into(),
                        ))
                    }
                }
            }
            let request = match self.build_request(provider, definition, state, mode, position) {
                Ok(request) => request,
                Err(reason) => return Ok(Fetched::Fatal(reason)),
            };
            let url = request.url.clone();
            let origin = crate::http_client::origin_for_logs(&url);
            let failure = match self.services.provider_http.send(request).await {
                Ok(response) => {
                    let status = response.status;
                    if status.is_success() {
                        if response.body_truncated {
                            return Ok(Fetched::Fatal(format!(
                                "{origin} answered a page larger than {MAX_PAGE_BYTES} bytes"
                            )));
                        }
                        return Ok(match serde_json::from_slice::<Value>(&response.body) {
                            Ok(body) => Fetched::Page(Box::new(FetchedPage {
                                body,
                                headers: response.headers,
                                url,
                            })),
                            Err(error) => Fetched::Fatal(format!(
                                "{origin} answered {status} with a body that is not JSON ({error})"
                            )),
                        });
                    }
                    if matches!(mode, RunMode::Incremental)
                        && is_expired_token_status(definition, status.as_u16())
                    {
                        return Ok(Fetched::TokenExpired);
                    }
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        let wait = retry_after(status, &response.headers, Utc::now())
                            .unwrap_or(Duration::from_secs(30));
                        if wait <= LONGEST_SLEEP
                            && !self.would_pass_deadline(wait)
                            && attempt < PAGE_ATTEMPTS
                        {
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        return Ok(Fetched::Defer(wait, format!("{origin} answered 429")));
                    }
                    if status == StatusCode::UNAUTHORIZED
                        && provider.oauth2().is_some()
                        && !self.refreshed
                    {
                        // The token may have been revoked or rotated early: refresh once.
                        self.refreshed = true;
                        if let Some(oauth) = provider.oauth2() {
                            match refresh_now(self.services, oauth, &self.item).await {
                                Ok(item) => {
                                    self.item.token_expires_at = item.token_expires_at.clone();
                                    self.item.token_generation = item.token_generation;
                                    self.item.credentials = item.credentials.clone();
                                    match provider_credentials(self.services, provider, &item).await
                                    {
                                        Ok(fields) => {
                                            self.credentials =
                                                Some(crate::credentials::to_values(&fields))
                                        }
                                        Err(error) => return Ok(Fetched::Fatal(error.to_string())),
                                    }
                                    attempt -= 1;
                                    continue;
                                }
                                Err(error) => return Ok(Fetched::Fatal(error.to_string())),
                            }
                        }
                    }
                    if status.is_server_error() {
                        format!("{origin} answered {status}")
                    } else {
                        return Ok(Fetched::Fatal(format!("{origin} answered {status}")));
                    }
                }
                Err(error) if error.is_transient() => format!("{origin}: {error}"),
                Err(error) => return Ok(Fetched::Fatal(format!("{origin}: {error}"))),
            };
            if attempt >= PAGE_ATTEMPTS {
                return Ok(Fetched::Defer(FAILURE_DEFERRAL, failure));
            }
            let wait = retry_delay(1, attempt, None, RandomJitter);
            if self.would_pass_deadline(wait) {
                return Ok(Fetched::Defer(FAILURE_DEFERRAL, failure));
            }
            tokio::time::sleep(wait).await;
        }
    }

    fn build_request(
        &self,
        provider: &Provider,
        definition: &EntityDef,
        state: &IncrementalState,
        mode: RunMode,
        position: &PagePosition,
    ) -> Result<OutgoingRequest, String> {
        let empty = Map::new();
        let credentials = self.credentials.as_ref().unwrap_or(&empty);
        let page_values = page_values(definition.pagination.as_ref(), position);
        let values = Values::new(&self.item.config, credentials).with_page(&page_values);
        let prepared = provider
            .prepare_request(
                definition.request.method.clone(),
                &definition.request.path,
                &definition.request.params,
                &values,
            )
            .map_err(|e| e.to_string())?;
        let page = page_request(definition.pagination.as_ref(), position);
        let mut url = match page.url {
            // A link_header next page is used as given.
            Some(next) => next,
            None => {
                let mut url = prepared.url.clone();
                {
                    let mut query = url.query_pairs_mut();
                    for (name, value) in incremental_query(definition, state, mode) {
                        query.append_pair(&name, &value);
                    }
                    for (name, value) in &page.query {
                        query.append_pair(name, value);
                    }
                }
                url
            }
        };
        if url.query() == Some("") {
            url.set_query(None);
        }
        let mut request = OutgoingRequest::new(prepared.method.clone(), url)
            .timeout(PAGE_TIMEOUT)
            .max_response_bytes(MAX_PAGE_BYTES)
            .header(
                http::header::ACCEPT,
                HeaderValue::from_static("application/json"),
            );
        let body = provider
            .entity_body(&definition.request, &values)
            .map_err(|e| e.to_string())?;
        if let Some(body) = body {
            let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
            request = request
                .header(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )
                .body(bytes);
        }
        for (name, value) in &prepared.headers {
            let (Ok(name), Ok(mut value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::from_str(value),
            ) else {
                return Err(format!("the catalog header {name} cannot be sent"));
            };
            value.set_sensitive(true);
            request = request.header(name, value);
        }
        Ok(request)
    }

    /// The entity's run is over (finished, or stopped by `error`): its counts go to `last_run`, and
    /// on success the incremental state moves on. Saved with the job's lease.
    async fn end_entity(
        &mut self,
        entity: &ImportEntity,
        mut checkpoint: EntityCheckpoint,
        run: Option<EntityRun>,
        error: Option<String>,
    ) -> Result<EntityEnd, SyncError> {
        let run = run.or(checkpoint.run.take());
        if let (Some(run), None) = (&run, &error) {
            if let Some(token) = &run.next_sync_token {
                checkpoint.sync_token = Some(token.clone());
            }
            checkpoint.last_success_started_at = Some(run.started_at.clone());
        }
        checkpoint.run = None;
        checkpoint.last_run = Some(FinishedRun {
            job_id: self.job.job_id.clone(),
            counts: run.as_ref().map(|run| run.counts).unwrap_or_default(),
            failed_items: run.map(|run| run.failed_items).unwrap_or_default(),
            error,
        });
        if !self.save(&entity.local, &checkpoint, 0).await? {
            return Ok(EntityEnd::Lost);
        }
        self.item
            .sync_state
            .insert(entity.local.clone(), checkpoint);
        Ok(EntityEnd::Finished)
    }

    /// Saves the checkpoint, queues the job again under its id and returns.
    async fn hand_off(
        &mut self,
        entity: &ImportEntity,
        checkpoint: &EntityCheckpoint,
        remaining: &[ImportEntity],
        delay: Option<Duration>,
    ) -> Result<EntityEnd, SyncError> {
        let store = &self.services.store;
        if !self.save(&entity.local, checkpoint, 0).await?
            || !store
                .hand_off_sync_run(&self.job.tenant_id, &self.item.id, &self.job.job_id)
                .await?
        {
            return Ok(EntityEnd::Lost);
        }
        let continuation = Job::Sync(SyncJob {
            tenant_id: self.job.tenant_id.clone(),
            integration_id: self.item.id.clone(),
            job_id: self.job.job_id.clone(),
            trigger: SyncTrigger::Continuation,
            entities: remaining.iter().map(|e| e.local.clone()).collect(),
            full: self.job.full,
        });
        let sent = match delay {
            Some(delay) => {
                self.services
                    .queues
                    .send_delayed(&[continuation], delay.min(crate::queue::MAX_DELAY))
                    .await
            }
            None => self.services.queues.send(&[continuation]).await,
        };
        sent.map_err(|e| SyncError::Queue(e.to_string()))?;
        tracing::info!(tenantId = %self.job.tenant_id, integrationId = %self.item.id,
            jobId = %self.job.job_id, entity = %entity.local, "sync handed on to a continuation");
        Ok(EntityEnd::HandedOff)
    }

    async fn save(
        &mut self,
        entity: &str,
        checkpoint: &EntityCheckpoint,
        processed: u64,
    ) -> Result<bool, SyncError> {
        Ok(self
            .services
            .store
            .save_sync_progress(
                &self.job.tenant_id,
                &self.item.id,
                &self.job.job_id,
                entity,
                checkpoint,
                processed,
            )
            .await?)
    }

    /// The job is done: the summary of the entities it finished, the log, the integration's stats,
    /// health and schedule, and the events.
    async fn finish(&mut self, job_error: Option<String>) -> Result<JobOutcome, SyncError> {
        let mut summary = SyncSummary::default();
        let mut failed_items = Vec::new();
        let mut errors = Vec::new();
        if let Some(error) = &job_error {
            errors.push(error.clone());
        }
        for (entity, checkpoint) in &self.item.sync_state {
            if let Some(last) = checkpoint
                .last_run
                .as_ref()
                .filter(|l| l.job_id == self.job.job_id)
            {
                summary.add(&last.counts);
                failed_items.extend(last.failed_items.iter().cloned());
                if let Some(error) = &last.error {
                    errors.push(format!("{entity}: {error}"));
                }
            }
        }
        failed_items.truncate(MAX_FAILED_ITEMS);
        let outcome = if !errors.is_empty() {
            SyncOutcome::Failed
        } else if summary.failed > 0 {
            SyncOutcome::Partial
        } else {
            SyncOutcome::Success
        };
        let status = match outcome {
            SyncOutcome::Success => "success",
            SyncOutcome::Partial => "partial",
            SyncOutcome::Failed => "failed",
        };
        let error_message = (!errors.is_empty()).then(|| errors.join("; "));
        let completed_at = Utc::now();
        let finished = self
            .services
            .store
            .finish_sync_run(
                &self.job.tenant_id,
                &self.item.id,
                &self.job.job_id,
                &SyncRunOutcome {
                    status,
                    started_at: self.started_at,
                    error: error_message.clone(),
                    next_sync_at: schedule::next_sync_at_after_run(
                        &self.item.sync_settings,
                        self.started_at,
                    ),
                },
            )
            .await?;
        let Some(finished) = finished else {
            return Ok(JobOutcome::Dropped);
        };
        let log = IntegrationLog {
            id: LogId::generate(),
            integration_id: self.item.id.clone(),
            action: LogAction::Sync,
            direction: Some("incoming".to_string()),
            status: match outcome {
                SyncOutcome::Success => LogStatus::Success,
                SyncOutcome::Partial => LogStatus::Partial,
                SyncOutcome::Failed => LogStatus::Failed,
            },
            summary: serde_json::to_value(summary).ok(),
            failed_items,
            error_message: error_message.clone(),
            error_code: (outcome == SyncOutcome::Failed).then(|| "sync_failed".to_string()),
            started_at: timestamp(self.started_at),
            completed_at: timestamp(completed_at),
            duration_ms: (completed_at - self.started_at).num_milliseconds().max(0) as u64,
            job_id: Some(self.job.job_id.clone()),
        };
        self.services
            .store
            .put_integration_log(&self.job.tenant_id, &log)
            .await?;
        // Health counts every run; the status is the token lifecycle's while the integration is
        // expired (only a reconnect brings it back).
        let transition = if finished.status == IntegrationStatus::Expired {
            None
        } else {
            self.services
                .store
                .record_check_outcome(
                    &self.job.tenant_id,
                    &self.item.id,
                    &CheckOutcome {
                        success: outcome != SyncOutcome::Failed,
                        error: error_message.clone(),
                    },
                )
                .await?
        };
        let mut events = Vec::new();
        let after = transition
            .as_ref()
            .map(|t| t.item.clone())
            .unwrap_or(finished);
        if let Some(transition) = transition {
            let reason = if outcome == SyncOutcome::Failed {
                StatusChangeReason::SyncFailed
            } else {
                StatusChangeReason::SyncSucceeded
            };
            events.extend(Event::status_changed(
                &transition.item,
                transition.from,
                reason,
            ));
        }
        events.push(Event::sync_finished(
            &after,
            &SyncRun {
                job_id: self.job.job_id.clone(),
                outcome,
                summary,
                started_at: self.started_at,
                completed_at,
                error_message,
            },
        ));
        self.emit(events).await;
        tracing::info!(tenantId = %self.job.tenant_id, integrationId = %self.item.id,
            jobId = %self.job.job_id, status, total = summary.total, created = summary.created,
            updated = summary.updated, deleted = summary.deleted, failed = summary.failed,
            "sync finished");
        Ok(JobOutcome::Finished(outcome))
    }

    /// Emits events to the tenant's webhooks (read once per job). A failure is logged: the data is
    /// stored, and the next change is announced as usual.
    async fn emit(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let result = async {
            let webhooks = self
                .cache
                .enabled_webhooks(&self.services.store, &self.job.tenant_id)
                .await?;
            emit_to(
                &self.services.store,
                &self.services.queues,
                &webhooks,
                &events,
            )
            .await
            .map(|_| ())
        }
        .await;
        if let Err(error) = result {
            tracing::error!(tenantId = %self.job.tenant_id, integrationId = %self.item.id,
                error = %error, events = events.len(), "sync events could not be emitted");
        }
    }

    fn near_deadline(&self) -> bool {
        self.deadline.saturating_duration_since(Instant::now()) < HANDOFF_MARGIN
    }

    fn would_pass_deadline(&self, wait: Duration) -> bool {
        self.deadline.saturating_duration_since(Instant::now()) < HANDOFF_MARGIN + wait
    }
}

fn mode_name(mode: RunMode) -> &'static str {
    match mode {
        RunMode::Full => "full",
        RunMode::Incremental => "incremental",
    }
}

fn position_json(position: &PagePosition) -> Value {
    serde_json::to_value(position).unwrap_or(Value::Null)
}

fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

fn push_failed(run: &mut EntityRun, item: Value) {
    if run.failed_items.len() < MAX_FAILED_ITEMS {
        run.failed_items.push(item);
    }
}

/// A record a run already stamped counts as what the run did to it then.
fn count_stamped(counts: &mut SyncSummary, change: Option<SyncChange>) {
    match change {
        Some(SyncChange::Created) => counts.created += 1,
        Some(SyncChange::Updated) => counts.updated += 1,
        Some(SyncChange::Deleted) | Some(SyncChange::Missing) => counts.deleted += 1,
        Some(SyncChange::Unchanged) | None => counts.skipped += 1,
    }
}

fn announced_change(change: Option<SyncChange>) -> Option<RecordChange> {
    match change {
        Some(SyncChange::Created) => Some(RecordChange::Created),
        Some(SyncChange::Updated) => Some(RecordChange::Updated),
        Some(SyncChange::Deleted) | Some(SyncChange::Missing) => Some(RecordChange::Deleted),
        _ => None,
    }
}

/// The stored record again, stamped with `change`.
fn rewrite(remote_id: &RemoteId, stored: &SyncedRecord, change: SyncChange) -> SyncWrite {
    SyncWrite {
        remote_id: remote_id.clone(),
        data: stored.data.clone(),
        hash: stored.hash.clone(),
        created_at: stored.created_at.clone(),
        updated_at: stored.updated_at.clone(),
        deleted: stored.deleted,
        change,
    }
}

fn entity_record(write: &SyncWrite, item: &IntegrationItem) -> EntityRecord {
    EntityRecord {
        id: write.remote_id.to_string(),
        data: write.data.clone(),
        meta: RecordMeta {
            hash: write.hash.clone(),
            created_at: write.created_at.clone(),
            updated_at: write.updated_at.clone(),
            deleted: write.deleted,
        },
        source: RecordSource::Integration(item.id.clone()),
    }
}

/// A DynamoDB start key kept in the checkpoint as JSON (its attributes are strings).
fn json_key(key: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> Value {
    Value::Object(
        key.iter()
            .filter_map(|(name, value)| {
                value
                    .as_s()
                    .ok()
                    .map(|s| (name.clone(), Value::String(s.clone())))
            })
            .collect(),
    )
}

fn attribute_key(
    key: HashMap<String, Value>,
) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    key.into_iter()
        .filter_map(|(name, value)| match value {
            Value::String(text) => Some((name, aws_sdk_dynamodb::types::AttributeValue::S(text))),
            _ => None,
        })
        .collect()
}
