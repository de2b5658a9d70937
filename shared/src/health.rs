//! The health of an integration (docs/decisions.md, "Health score"), from its recent runs and tests.
//!
//! Stored as counters that every check or run updates with single atomic DynamoDB updates (`ADD`,
//! `SET`), never a read-modify-write loop, so 200 concurrent tests all land:
//! - `errorCount`: failures ever recorded (`ADD 1` per failure);
//! - `consecutiveFailures`: `ADD 1` per failure, `SET 0` per success;
//! - `outcomes`: outcomes ever recorded; the n-th outcome (0-based) is written to slot `n mod 20` of
//!   `window`, so `window` holds the last 20 outcomes.
//!
//! Score (docs/decisions.md): over the outcomes in the window, the smoothed success rate
//! `(successes + 1) / (outcomes + 1)` as a percentage, minus 10 points per consecutive failure (at
//! most 50), clamped to 0–100. A new integration scores 100; one failed test drops it to 40; it
//! climbs back as runs succeed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const WINDOW: u64 = 20;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    #[serde(default)]
    pub error_count: u64,
    #[serde(default)]
    pub consecutive_failures: u64,
    #[serde(default)]
    pub outcomes: u64,
    /// Slot (`"0"`–`"19"`) → outcome (true = success); internal, not returned by the API.
    #[serde(default)]
    pub window: BTreeMap<String, bool>,
}

impl Health {
    /// The slot the outcome numbered `sequence` (0-based) is written to.
    pub fn slot(sequence: u64) -> String {
        (sequence % WINDOW).to_string()
    }

    /// The same change the store makes atomically, for one process (tests, previews).
    pub fn record(&mut self, success: bool) {
        self.window.insert(Health::slot(self.outcomes), success);
        self.outcomes += 1;
        if success {
            self.consecutive_failures = 0;
        } else {
            self.error_count += 1;
            self.consecutive_failures += 1;
        }
    }

    pub fn score(&self) -> u8 {
        let recorded = self.window.len() as f64;
        let successes = self.window.values().filter(|ok| **ok).count() as f64;
        let rate = (successes + 1.0) / (recorded + 1.0);
        let penalty = 10.0 * self.consecutive_failures.min(5) as f64;
        (100.0 * rate - penalty).round().clamp(0.0, 100.0) as u8
    }

    /// The API view: `{score, errorCount, consecutiveFailures}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "score": self.score(),
            "errorCount": self.error_count,
            "consecutiveFailures": self.consecutive_failures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_integration_is_fully_healthy() {
        assert_eq!(Health::default().score(), 100);
    }

    #[test]
    fn failures_lower_the_score_and_successes_restore_it() {
        let mut health = Health::default();
        health.record(false);
        assert_eq!(
            (
                health.score(),
                health.consecutive_failures,
                health.error_count
            ),
            (40, 1, 1)
        );
        health.record(false);
        assert!(health.score() < 40);
        for _ in 0..WINDOW {
            health.record(true);
        }
        assert_eq!(health.score(), 100);
        assert_eq!(health.consecutive_failures, 0);
        assert_eq!(health.error_count, 2);
        assert_eq!(health.window.len() as u64, WINDOW);
    }

    #[test]
    fn the_score_never_leaves_zero_to_hundred() {
        let mut health = Health::default();
        for _ in 0..50 {
            health.record(false);
        }
        assert_eq!(health.score(), 0);
        assert_eq!(health.outcomes, 50);
    }
}
