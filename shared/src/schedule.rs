//! When an integration is next due for a scheduled sync (`nextSyncAt`), one rule for every writer:
//! create, PATCH, the OAuth callback and the sync runner after a run.
//!
//! - `hourly` / `daily`: due at once when scheduling is switched on (or the frequency changes), then
//!   the start of the last run plus the period.
//! - `realtime`: syncs when a push arrives, plus a safety poll every 15 minutes (so it is scheduled
//!   like the others with a 15-minute period).
//! - `manual`, or `enabled: false`: never scheduled (`nextSyncAt: null`).
//!
//! Whenever `nextSyncAt` is set the store also writes the sparse sync-due index entry the scheduler
//! queries, and removes it with it (`store::keys::sync_due_*`).

use chrono::{DateTime, Duration, Utc};

use crate::store::timestamp;
use crate::sync_settings::{SyncFrequency, SyncSettings};

/// How often a scheduled integration is due, or `None` when it is not scheduled at all.
pub fn period(settings: &SyncSettings) -> Option<Duration> {
    if !settings.enabled {
        return None;
    }
    match settings.frequency {
        SyncFrequency::Hourly => Some(Duration::hours(1)),
        SyncFrequency::Daily => Some(Duration::days(1)),
        SyncFrequency::Realtime => Some(Duration::minutes(15)),
        SyncFrequency::Manual => None,
    }
}

/// `nextSyncAt` after the settings become `settings`. `previous` is the integration's settings and
/// `nextSyncAt` before the change (`None` for a new integration): an integration already scheduled
/// at the same frequency keeps its time; anything newly scheduled is due at once.
pub fn next_sync_at_after_settings_change(
    previous: Option<(&SyncSettings, Option<&str>)>,
    settings: &SyncSettings,
    now: DateTime<Utc>,
) -> Option<String> {
    period(settings)?;
    match previous {
        Some((before, Some(scheduled)))
            if period(before).is_some() && before.frequency == settings.frequency =>
        {
            Some(scheduled.to_string())
        }
        _ => Some(timestamp(now)),
    }
}

/// `nextSyncAt` after a run that started at `run_started_at`: that start plus the period.
pub fn next_sync_at_after_run(
    settings: &SyncSettings,
    run_started_at: DateTime<Utc>,
) -> Option<String> {
    period(settings).map(|period| timestamp(run_started_at + period))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(enabled: bool, frequency: SyncFrequency) -> SyncSettings {
        SyncSettings {
            enabled,
            frequency,
            ..SyncSettings::default()
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn manual_or_disabled_is_never_scheduled() {
        let now = at("2026-12-01T10:00:00Z");
        for s in [
            settings(true, SyncFrequency::Manual),
            settings(false, SyncFrequency::Hourly),
            settings(false, SyncFrequency::Realtime),
        ] {
            assert_eq!(next_sync_at_after_settings_change(None, &s, now), None);
            assert_eq!(next_sync_at_after_run(&s, now), None);
        }
    }

    #[test]
    fn switching_scheduling_on_makes_it_due_at_once() {
        let now = at("2026-12-01T10:00:00Z");
        let hourly = settings(true, SyncFrequency::Hourly);
        assert_eq!(
            next_sync_at_after_settings_change(None, &hourly, now).as_deref(),
            Some("2026-12-01T10:00:00.000Z")
        );
        let manual = settings(true, SyncFrequency::Manual);
        assert_eq!(
            next_sync_at_after_settings_change(Some((&manual, None)), &hourly, now).as_deref(),
            Some("2026-12-01T10:00:00.000Z")
        );
    }

    #[test]
    fn a_scheduled_integration_keeps_its_time_unless_the_frequency_changes() {
        let now = at("2026-12-01T10:00:00Z");
        let hourly = settings(true, SyncFrequency::Hourly);
        let daily = settings(true, SyncFrequency::Daily);
        let kept = next_sync_at_after_settings_change(
            Some((&hourly, Some("2026-12-01T10:30:00.000Z"))),
            &hourly,
            now,
        );
        assert_eq!(kept.as_deref(), Some("2026-12-01T10:30:00.000Z"));
        let changed = next_sync_at_after_settings_change(
            Some((&hourly, Some("2026-12-01T10:30:00.000Z"))),
            &daily,
            now,
        );
        assert_eq!(changed.as_deref(), Some("2026-12-01T10:00:00.000Z"));
    }

    #[test]
    fn after_a_run_the_next_one_is_a_period_after_its_start() {
        let start = at("2026-12-01T10:00:00Z");
        assert_eq!(
            next_sync_at_after_run(&settings(true, SyncFrequency::Daily), start).as_deref(),
            Some("2026-12-02T10:00:00.000Z")
        );
        assert_eq!(
            next_sync_at_after_run(&settings(true, SyncFrequency::Realtime), start).as_deref(),
            Some("2026-12-01T10:15:00.000Z")
        );
    }
}
