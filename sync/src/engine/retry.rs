//! One retry policy for every request: exponential backoff with jitter between attempts, or
//! the server's `Retry-After` (on 429 and 503) when it gives one, capped by
//! `download.timeout`; the final error says how many retries came before it.

use std::time::Duration;

use super::error::SyncError;

/// First delay; doubled per attempt.
const BASE: Duration = Duration::from_millis(250);
/// Longest delay between two attempts.
const CAP: Duration = Duration::from_secs(30);

/// The delay before retry number `attempt` (1-based): 250 ms × 2^(attempt-1), capped, and
/// scaled by a random factor in [0.5, 1) so parallel workers do not retry in lockstep.
pub fn backoff(attempt: u32) -> Duration {
    let exp = BASE.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(CAP);
    capped.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// The retries of one request.
pub struct Retries {
    max: u32,
    done: u32,
    /// Longest wait a server's `Retry-After` may ask for.
    cap: Duration,
}

impl Retries {
    pub fn new(max: u32, cap: Duration) -> Retries {
        Retries { max, done: 0, cap }
    }

    /// How long to wait before trying again after `e`; None when `e` is final (retrying
    /// cannot help, or the retries are spent).
    pub fn next(&mut self, e: &SyncError) -> Option<Duration> {
        if !e.is_retryable() || self.done >= self.max {
            return None;
        }
        self.done += 1;
        Some(match e.retry_after() {
            Some(asked) => asked.min(self.cap),
            None => backoff(self.done),
        })
    }

    /// Retries made so far.
    pub fn done(&self) -> u32 {
        self.done
    }

    /// `e` as the request's final error: it says how many retries came before it.
    pub fn give_up(&self, e: SyncError) -> SyncError {
        if self.done == 0 {
            return e;
        }
        SyncError::Retried {
            retries: self.done,
            source: Box::new(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable(after: Option<u64>) -> SyncError {
        SyncError::Status {
            url: "http://u/x".into(),
            status: 503,
            hint: " (server error)",
            retry_after: after.map(Duration::from_secs),
        }
    }

    #[test]
    fn retries_follow_retry_after_within_the_cap_and_say_how_many_there_were() {
        let mut r = Retries::new(2, Duration::from_secs(60));
        assert_eq!(r.next(&unavailable(Some(7))), Some(Duration::from_secs(7)));
        assert_eq!(
            r.next(&unavailable(Some(3600))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(r.next(&unavailable(None)), None, "retries spent");
        assert_eq!(
            r.give_up(unavailable(None)).to_string(),
            "http://u/x: HTTP 503 (server error), after 2 retries"
        );
        let mut r = Retries::new(5, Duration::from_secs(60));
        let absent = SyncError::NotFound { url: "u".into() };
        assert_eq!(r.next(&absent), None, "not retryable");
        assert_eq!(r.give_up(absent).to_string(), "u: no such file");
        assert!(r
            .next(&unavailable(None))
            .is_some_and(|d| d < Duration::from_millis(250)));
    }

    #[test]
    fn grows_and_caps() {
        for _ in 0..100 {
            let d1 = backoff(1);
            assert!(d1 >= Duration::from_millis(125) && d1 < Duration::from_millis(250));
            let d4 = backoff(4);
            assert!(d4 >= Duration::from_millis(1000) && d4 < Duration::from_millis(2000));
            assert!(backoff(40) <= CAP);
        }
    }
}
