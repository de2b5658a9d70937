//! Full or incremental: what a run of one entity asks for, and what it keeps for the next run.
//!
//! - `sync_token`: the token at `next` in a response (Google puts it on the last page) is kept and
//!   sent as `param` on every page of the next run; a response with `expiredStatus` (Google: 410)
//!   means the token expired, and the runner starts over with a full run.
//! - `updated_since`: sends the start of the last successful run minus
//!   [`UPDATED_SINCE_OVERLAP_SECONDS`], in the entity's format (RFC 3339 in UTC to the second, or
//!   epoch seconds or milliseconds); records seen again are skipped by their hash.
//! - absent or `none`: every run is full. Full runs of any entity detect deletions by absence.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::token_text;
use crate::catalog::{EntityDef, Incremental, TimeFormat};
use crate::inbound::path::value_at;

/// How far before the last successful run's start an `updated_since` run reads: changes written
/// while that run was listing are read again rather than lost.
pub const UPDATED_SINCE_OVERLAP_SECONDS: i64 = 60;

/// What the runner keeps per (integration, entity) between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IncrementalState {
    /// The sync token the last successful run ended with (`sync_token` entities).
    pub sync_token: Option<String>,
    /// RFC 3339 start of the last successful run (`updated_since` entities).
    pub last_success_started_at: Option<String>,
}

impl IncrementalState {
    /// The state a successful run leaves: it started at `started_at` and the provider's last
    /// response carried `sync_token` (`None` for entities without one, or when the provider sent
    /// none: the next run is then full rather than resent a spent token).
    pub fn after_success(started_at: DateTime<Utc>, sync_token: Option<String>) -> Self {
        IncrementalState {
            sync_token,
            last_success_started_at: Some(started_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
        }
    }

    fn watermark(&self) -> Option<DateTime<Utc>> {
        let text = self.last_success_started_at.as_deref()?;
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|instant| instant.with_timezone(&Utc))
    }

    fn token(&self) -> Option<&str> {
        self.sync_token.as_deref().filter(|token| !token.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// Every record, with deletion detection by absence.
    Full,
    /// Only changes since the saved token or watermark.
    Incremental,
}

/// Incremental only when the entity is incremental, the state holds what it sends (a non-empty
/// token, a readable RFC 3339 watermark) and a full run was not asked for.
pub fn run_mode(entity: &EntityDef, state: &IncrementalState, force_full: bool) -> RunMode {
    let ready = match &entity.incremental {
        _ if force_full => false,
        Some(Incremental::SyncToken { .. }) => state.token().is_some(),
        Some(Incremental::UpdatedSince { .. }) => state.watermark().is_some(),
        Some(Incremental::None {}) | None => false,
    };
    if ready {
        RunMode::Incremental
    } else {
        RunMode::Full
    }
}

/// The query parameters an incremental run sends on every page (none for a full run): the sync
/// token, or the watermark minus the overlap.
pub fn incremental_query(
    entity: &EntityDef,
    state: &IncrementalState,
    mode: RunMode,
) -> Vec<(String, String)> {
    if mode == RunMode::Full {
        return Vec::new();
    }
    match &entity.incremental {
        Some(Incremental::SyncToken { param, .. }) => state
            .token()
            .map(|token| vec![(param.clone(), token.to_string())])
            .unwrap_or_default(),
        Some(Incremental::UpdatedSince { param, format }) => state
            .watermark()
            .and_then(|watermark| {
                watermark
                    .checked_sub_signed(chrono::TimeDelta::seconds(UPDATED_SINCE_OVERLAP_SECONDS))
            })
            .map(|since| vec![(param.clone(), formatted(since, *format))])
            .unwrap_or_default(),
        Some(Incremental::None {}) | None => Vec::new(),
    }
}

fn formatted(instant: DateTime<Utc>, format: TimeFormat) -> String {
    match format {
        // Whole seconds (truncated, so the overlap only grows): some providers refuse fractions.
        TimeFormat::Rfc3339 => instant.to_rfc3339_opts(SecondsFormat::Secs, true),
        TimeFormat::EpochS => instant.timestamp().to_string(),
        TimeFormat::EpochMs => instant.timestamp_millis().to_string(),
    }
}

/// The sync token in a response body, for `sync_token` entities: a non-empty string (or a number,
/// as its text) at `next`. The runner keeps the last one a run sees.
pub fn next_sync_token(entity: &EntityDef, body: &Value) -> Option<String> {
    match &entity.incremental {
        Some(Incremental::SyncToken { next, .. }) => token_text(value_at(body, next)),
        _ => None,
    }
}

/// Whether a response with `status` says the sync token expired (the entity's `expiredStatus`).
pub fn is_expired_token_status(entity: &EntityDef, status: u16) -> bool {
    matches!(
        &entity.incremental,
        Some(Incremental::SyncToken { expired_status: Some(expired), .. }) if *expired == status
    )
}

/// Whether records not seen in this run are deletions: in full runs, of any entity.
pub fn detects_deletions(mode: RunMode) -> bool {
    mode == RunMode::Full
}
