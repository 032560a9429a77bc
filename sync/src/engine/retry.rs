//! Exponential backoff with jitter between attempts.

use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
