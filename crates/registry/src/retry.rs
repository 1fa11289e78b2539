//! Backoff between attempts, `Retry-After`, and a token bucket shared by download threads.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Exponential backoff: `base * 2^attempt`, capped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A `Retry-After` value in seconds (the HTTP-date form falls back to backoff), capped.
    pub fn retry_after(&self, header: Option<&str>, attempt: u32) -> Duration {
        header
            .and_then(|h| h.trim().parse::<u64>().ok())
            .map_or_else(|| self.delay(attempt), Duration::from_secs)
            .min(self.max)
    }
}

/// A token bucket in bytes per second, one second of burst; shared by all workers.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(bytes_per_sec: u64) -> Self {
        let rate = bytes_per_sec.max(1) as f64;
        RateLimiter {
            rate,
            state: Mutex::new((rate, Instant::now())),
        }
    }

    /// Take `n` bytes from the bucket, sleeping while it is in debt.
    pub fn acquire(&self, n: usize) {
        let wait = {
            let mut st = match self.state.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let now = Instant::now();
            let (tokens, last) = *st;
            let refilled =
                (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.rate);
            let left = refilled - n as f64;
            *st = (left, now);
            if left < 0.0 {
                Duration::from_secs_f64(-left / self.rate)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(b.delay(0), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(400));
        assert_eq!(b.delay(30), Duration::from_secs(1));
        assert_eq!(b.retry_after(Some("120"), 0), Duration::from_secs(1));
        assert_eq!(
            b.retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT"), 1),
            Duration::from_millis(200)
        );
        let b = Backoff {
            max: Duration::from_secs(10),
            ..b
        };
        assert_eq!(b.retry_after(Some(" 2 "), 0), Duration::from_secs(2));
    }

    #[test]
    fn rate_limiter_slows_a_burst_to_the_rate() {
        let l = RateLimiter::new(100_000);
        let start = Instant::now();
        // One second of burst is free; the next 50 kB cost about half a second.
        l.acquire(100_000);
        l.acquire(50_000);
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }
}
