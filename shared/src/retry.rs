//! The one backoff function of the product (outgoing deliveries, `forward` actions, the retried
//! actions of incoming webhooks) and how its waits ride on SQS.
//!
//! After failed attempt n (1-based) the next attempt waits `retryDelaySeconds × 2^(n-1)`, the
//! exponential part capped at [`MAX_DELAY`], then moved by a uniform ±20 % jitter (and capped again,
//! so at the cap waits spread over 9.6–12 h instead of all landing together). A `Retry-After` on a
//! 429 or 503 is read after the jitter: the wait is raised to it when it is larger, but never above
//! twice the jittered wait. Waits are whole seconds, SQS's unit.
//!
//! SQS delays a message by at most 15 minutes, so a wait is carried by its due time: the next
//! attempt's message holds `notBefore` and is sent with [`sqs_delay_until`]'s `delay_seconds`; a
//! message that arrives before `notBefore` (`remaining > 0`) is sent again the same way and deleted,
//! which is neither an attempt nor a request to the target. Visibility timeouts are not used for
//! waits: they count from the first receive (12 h in all), every receive counts towards the
//! dead-letter queue's `maxReceiveCount`, and the message cannot record the attempt it is on.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use http::{HeaderMap, StatusCode};
use rand::Rng;

/// No wait is longer.
pub const MAX_DELAY: Duration = Duration::from_secs(12 * 60 * 60);
/// The jitter moves a wait by up to this fraction either way.
pub const JITTER_FRACTION: f64 = 0.2;
/// The longest `DelaySeconds` SQS takes.
pub const SQS_MAX_DELAY: Duration = Duration::from_secs(15 * 60);

/// Where jitter comes from: uniform samples in `[0, 1]` (0 → −20 %, 0.5 → none, 1 → +20 %).
/// Tests pass a [`FixedJitter`] or a closure.
pub trait Jitter {
    fn sample(&mut self) -> f64;
}

/// Jitter from the thread's random generator (spread, not secrecy, is what matters here).
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomJitter;

impl Jitter for RandomJitter {
    fn sample(&mut self) -> f64 {
        rand::thread_rng().gen_range(0.0..=1.0)
    }
}

/// The same sample every time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedJitter(pub f64);

impl Jitter for FixedJitter {
    fn sample(&mut self) -> f64 {
        self.0
    }
}

impl<F: FnMut() -> f64> Jitter for F {
    fn sample(&mut self) -> f64 {
        self()
    }
}

/// The wait before the attempt that follows `failed_attempt` (1-based; 0 counts as 1), with the
/// failed response's `Retry-After` ([`retry_after`]) when it had one.
pub fn retry_delay(
    retry_delay_seconds: u32,
    failed_attempt: u32,
    retry_after: Option<Duration>,
    mut jitter: impl Jitter,
) -> Duration {
    let cap = MAX_DELAY.as_secs_f64();
    let doublings = failed_attempt.saturating_sub(1).min(63) as i32;
    let exponential = (f64::from(retry_delay_seconds) * 2f64.powi(doublings)).min(cap);
    let sample = jitter.sample();
    let sample = if sample.is_nan() {
        0.5
    } else {
        sample.clamp(0.0, 1.0)
    };
    let jittered = (exponential * (1.0 + JITTER_FRACTION * (2.0 * sample - 1.0))).min(cap);
    let delay = match retry_after {
        Some(asked) => jittered.max(asked.as_secs_f64().min(2.0 * jittered)),
        None => jittered,
    };
    Duration::from_secs(delay.min(cap).round() as u64)
}

/// The `Retry-After` to honour: only on 429 and 503, and only when it parses.
pub fn retry_after(
    status: StatusCode,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, now)
}

/// `Retry-After` (RFC 9110 §10.2.3): delta-seconds, or an HTTP-date in any of its three forms
/// (IMF-fixdate, RFC 850, asctime); a date in the past is a zero wait. `None` when it is neither.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    const HTTP_DATE_FORMATS: [&str; 3] = [
        "%a, %d %b %Y %H:%M:%S GMT",
        "%A, %d-%b-%y %H:%M:%S GMT",
        "%a %b %e %H:%M:%S %Y",
    ];
    let date = HTTP_DATE_FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())?
        .and_utc();
    Some((date - now).to_std().unwrap_or(Duration::ZERO))
}

/// How a message waits until `not_before` on SQS: send it with `delay_seconds` (0–900); when
/// `remaining` is not zero, it arrives early and is sent again with `sqs_delay_until` then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqsDelay {
    pub delay_seconds: i32,
    pub remaining: Duration,
}

pub fn sqs_delay_until(not_before: DateTime<Utc>, now: DateTime<Utc>) -> SqsDelay {
    let wait = (not_before - now).to_std().unwrap_or(Duration::ZERO);
    // Round up: arriving a fraction of a second late is fine, early means one more hop.
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let now_part = seconds.min(SQS_MAX_DELAY.as_secs());
    SqsDelay {
        delay_seconds: now_part as i32,
        remaining: Duration::from_secs(seconds - now_part),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use http::HeaderValue;

    use super::*;

    const NO_JITTER: FixedJitter = FixedJitter(0.5);
    const LOWEST: FixedJitter = FixedJitter(0.0);
    const HIGHEST: FixedJitter = FixedJitter(1.0);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
    }

    #[test]
    fn attempt_n_plus_one_waits_the_delay_doubled_n_minus_one_times() {
        let waits: Vec<u64> = (1..=5)
            .map(|n| retry_delay(60, n, None, NO_JITTER).as_secs())
            .collect();
        assert_eq!(waits, [60, 120, 240, 480, 960]);
        assert_eq!(retry_delay(60, 0, None, NO_JITTER), secs(60));
    }

    #[test]
    fn jitter_moves_the_wait_by_at_most_twenty_percent_either_way() {
        assert_eq!(retry_delay(100, 2, None, LOWEST), secs(160));
        assert_eq!(retry_delay(100, 2, None, HIGHEST), secs(240));
        let mut samples = [0.25, 0.75].into_iter();
        let mut next = move || samples.next().unwrap();
        assert_eq!(retry_delay(100, 1, None, &mut next), secs(90));
        assert_eq!(retry_delay(100, 1, None, &mut next), secs(110));
        // Out-of-range samples are clamped, NaN is no jitter.
        assert_eq!(retry_delay(100, 1, None, || 7.0), secs(120));
        assert_eq!(retry_delay(100, 1, None, || f64::NAN), secs(100));
    }

    #[test]
    fn random_jitter_stays_within_its_band() {
        for _ in 0..1_000 {
            let wait = retry_delay(1_000, 1, None, RandomJitter).as_secs();
            assert!((800..=1_200).contains(&wait), "{wait}");
        }
    }

    #[test]
    fn waits_are_capped_at_twelve_hours_and_spread_below_it() {
        let cap = MAX_DELAY;
        assert_eq!(retry_delay(3_600, 5, None, NO_JITTER), cap);
        assert_eq!(retry_delay(3_600, 5, None, HIGHEST), cap);
        assert_eq!(retry_delay(3_600, 5, None, LOWEST), secs(34_560));
        assert_eq!(retry_delay(u32::MAX, u32::MAX, None, HIGHEST), cap);
        assert_eq!(retry_delay(60, 10, Some(secs(u64::MAX)), HIGHEST), cap);
    }

    #[test]
    fn one_second_delays_give_growing_whole_second_gaps() {
        let waits: Vec<u64> = (1..=4)
            .map(|n| retry_delay(1, n, None, LOWEST).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 3, 6]);
    }

    #[test]
    fn retry_after_raises_the_jittered_wait_but_never_above_twice_it() {
        // Jittered wait: 100 s × 1.2 = 120 s.
        assert_eq!(retry_delay(100, 1, Some(secs(30)), HIGHEST), secs(120));
        assert_eq!(retry_delay(100, 1, Some(secs(200)), HIGHEST), secs(200));
        assert_eq!(retry_delay(100, 1, Some(secs(3_600)), HIGHEST), secs(240));
        assert_eq!(
            retry_delay(100, 1, Some(Duration::ZERO), HIGHEST),
            secs(120)
        );
    }

    #[test]
    fn retry_after_is_read_on_429_and_503_only() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(
            retry_after(StatusCode::TOO_MANY_REQUESTS, &headers, now()),
            Some(secs(120))
        );
        assert_eq!(
            retry_after(StatusCode::SERVICE_UNAVAILABLE, &headers, now()),
            Some(secs(120))
        );
        for status in [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::BAD_GATEWAY,
            StatusCode::OK,
        ] {
            assert_eq!(retry_after(status, &headers, now()), None);
        }
        assert_eq!(
            retry_after(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), now()),
            None
        );
    }

    #[test]
    fn retry_after_parses_delta_seconds_and_every_http_date_form() {
        // now() is Fri, 02 Jan 2026 03:04:05 GMT.
        for (value, expected) in [
            ("0", Some(secs(0))),
            (" 42 ", Some(secs(42))),
            ("99999999999999999999999", Some(secs(u64::MAX))),
            ("Fri, 02 Jan 2026 03:06:05 GMT", Some(secs(120))),
            ("Friday, 02-Jan-26 03:06:05 GMT", Some(secs(120))),
            ("Fri Jan  2 03:06:05 2026", Some(secs(120))),
            ("Thu, 01 Jan 2026 00:00:00 GMT", Some(Duration::ZERO)),
            ("", None),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("Sat, 02 Jan 2026 03:06:05 GMT", None),
            ("Fri, 02 Jan 2026 03:06:05 +0200", None),
        ] {
            assert_eq!(parse_retry_after(value, now()), expected, "{value:?}");
        }
    }

    #[test]
    fn waits_sqs_can_hold_are_sent_whole() {
        assert_eq!(
            sqs_delay_until(now() + chrono::TimeDelta::seconds(900), now()),
            SqsDelay {
                delay_seconds: 900,
                remaining: Duration::ZERO
            }
        );
        assert_eq!(
            sqs_delay_until(now() + chrono::TimeDelta::milliseconds(1_500), now()),
            SqsDelay {
                delay_seconds: 2,
                remaining: Duration::ZERO
            }
        );
        assert_eq!(
            sqs_delay_until(now() - chrono::TimeDelta::hours(1), now()),
            SqsDelay {
                delay_seconds: 0,
                remaining: Duration::ZERO
            }
        );
    }

    #[test]
    fn longer_waits_hop_in_fifteen_minute_steps() {
        let due = now() + chrono::TimeDelta::seconds(2_000);
        let first = sqs_delay_until(due, now());
        assert_eq!(
            first,
            SqsDelay {
                delay_seconds: 900,
                remaining: secs(1_100)
            }
        );
        let second = sqs_delay_until(due, now() + chrono::TimeDelta::seconds(900));
        assert_eq!(second.delay_seconds, 900);
        let third = sqs_delay_until(due, now() + chrono::TimeDelta::seconds(1_800));
        assert_eq!(
            third,
            SqsDelay {
                delay_seconds: 200,
                remaining: Duration::ZERO
            }
        );
        let twelve_hours = sqs_delay_until(now() + chrono::TimeDelta::hours(12), now());
        assert_eq!(twelve_hours.remaining, secs(12 * 3_600 - 900));
    }
}
