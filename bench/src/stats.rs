//! Order statistics of one benchmark's samples (median, p90, min, any nearest-rank percentile), in
//! milliseconds.

use std::time::Duration;

use serde::Serialize;

/// What the report keeps of a set of timings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub median_ms: f64,
    pub p90_ms: f64,
    pub min_ms: f64,
    pub runs: usize,
}

impl Summary {
    /// `None` for no samples: a benchmark without measurements has no figures to report.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        if ms.is_empty() {
            return None;
        }
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        let median = if n % 2 == 1 {
            ms[n / 2]
        } else {
            (ms[n / 2 - 1] + ms[n / 2]) / 2.0
        };
        Some(Summary {
            median_ms: round_to_microseconds(median),
            p90_ms: round_to_microseconds(nearest_rank(&ms, 90)),
            min_ms: round_to_microseconds(ms[0]),
            runs: n,
        })
    }
}

/// The nearest-rank `percent` percentile of `sorted` (ascending, not empty): the smallest sample
/// with at least `percent` % of the samples at or below it.
pub fn nearest_rank(sorted: &[f64], percent: usize) -> f64 {
    let rank = (sorted.len() * percent.min(100)).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Timer resolution on a noisy machine is nowhere near nanoseconds; three decimals keep the JSON honest.
pub fn round_to_microseconds(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// `numerator / denominator` to three decimals (the figure the targets are stated in).
pub fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator <= 0.0 {
        return f64::INFINITY;
    }
    (numerator / denominator * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn odd_count_median_is_the_middle_sample_whatever_the_input_order() {
        let summary = Summary::of(&ms(&[9, 1, 5])).expect("three samples");
        assert_eq!(summary.median_ms, 5.0);
        assert_eq!(summary.min_ms, 1.0);
        assert_eq!(summary.runs, 3);
    }

    #[test]
    fn even_count_median_is_the_mean_of_the_two_middle_samples() {
        let summary = Summary::of(&ms(&[4, 1, 3, 2])).expect("four samples");
        assert_eq!(summary.median_ms, 2.5);
    }

    #[test]
    fn p90_of_thirty_samples_is_the_27th_smallest() {
        let samples: Vec<u64> = (1..=30).rev().collect();
        let summary = Summary::of(&ms(&samples)).expect("thirty samples");
        assert_eq!(summary.p90_ms, 27.0);
    }

    #[test]
    fn nearest_rank_p50_and_p99_of_a_thousand_samples() {
        let sorted: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(nearest_rank(&sorted, 50), 500.0);
        assert_eq!(nearest_rank(&sorted, 99), 990.0);
        assert_eq!(nearest_rank(&sorted, 100), 1000.0);
        assert_eq!(nearest_rank(&sorted, 0), 1.0);
        assert_eq!(nearest_rank(&[4.0], 99), 4.0);
    }

    #[test]
    fn p90_of_one_sample_is_that_sample() {
        let summary = Summary::of(&ms(&[7])).expect("one sample");
        assert_eq!(
            (summary.median_ms, summary.p90_ms, summary.min_ms),
            (7.0, 7.0, 7.0)
        );
    }

    #[test]
    fn no_samples_give_no_summary() {
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn sub_millisecond_samples_keep_microsecond_precision() {
        let summary = Summary::of(&[Duration::from_nanos(1_234_567)]).expect("one sample");
        assert_eq!(summary.median_ms, 1.235);
    }

    #[test]
    fn ratio_is_rounded_to_three_decimals_and_infinite_over_zero() {
        assert_eq!(ratio(3.0, 2.0), 1.5);
        assert_eq!(ratio(2.0, 3.0), 0.667);
        assert_eq!(ratio(1.0, 0.0), f64::INFINITY);
    }
}
