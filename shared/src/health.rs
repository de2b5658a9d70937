//! The health score of an integration (docs/decisions.md, "Health score"), from its recent runs and tests.
//!
//! Formula (docs/decisions.md): over the last 20 outcomes, the smoothed success rate
//! `(successes + 1) / (outcomes + 1)` as a percentage, minus 10 points per consecutive failure (at
//! most 50), clamped to 0–100. A new integration scores 100; one failed test drops it to 40; it
//! climbs back as runs succeed.

use serde::{Deserialize, Serialize};

pub const WINDOW: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub score: u8,
    /// Failures ever recorded.
    pub error_count: u64,
    pub consecutive_failures: u32,
    /// The last outcomes, oldest first (true = success); internal, not returned by the API.
    #[serde(default)]
    pub recent: Vec<bool>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            score: 100,
            error_count: 0,
            consecutive_failures: 0,
            recent: Vec::new(),
        }
    }
}

impl Health {
    pub fn record(&mut self, success: bool) {
        self.recent.push(success);
        if self.recent.len() > WINDOW {
            let excess = self.recent.len() - WINDOW;
            self.recent.drain(..excess);
        }
        if success {
            self.consecutive_failures = 0;
        } else {
            self.error_count += 1;
            self.consecutive_failures += 1;
        }
        let successes = self.recent.iter().filter(|ok| **ok).count() as f64;
        let rate = (successes + 1.0) / (self.recent.len() as f64 + 1.0);
        let penalty = 10.0 * f64::from(self.consecutive_failures.min(5));
        self.score = (100.0 * rate - penalty).round().clamp(0.0, 100.0) as u8;
    }

    /// The API view: `{score, errorCount, consecutiveFailures}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "score": self.score,
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
        assert_eq!(Health::default().score, 100);
    }

    #[test]
    fn failures_lower_the_score_and_successes_restore_it() {
        let mut health = Health::default();
        health.record(false);
        assert_eq!(
            (
                health.score,
                health.consecutive_failures,
                health.error_count
            ),
            (40, 1, 1)
        );
        health.record(false);
        assert!(health.score < 40);
        for _ in 0..WINDOW {
            health.record(true);
        }
        assert_eq!(health.score, 100);
        assert_eq!(health.consecutive_failures, 0);
        assert_eq!(health.error_count, 2);
        assert_eq!(health.recent.len(), WINDOW);
    }

    #[test]
    fn the_score_never_leaves_zero_to_hundred() {
        let mut health = Health::default();
        for _ in 0..50 {
            health.record(false);
        }
        assert_eq!(health.score, 0);
    }
}
