//! Time comes from an injected [`Clock`], so that a 30-minute canary bake runs in milliseconds in
//! tests and a demo can compress time. Nothing in Meridian should call `SystemTime::now()` or sleep
//! directly where a deadline matters.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type EpochMillis = i64;

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time, in milliseconds since the Unix epoch.
    fn now_millis(&self) -> EpochMillis;
}

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> EpochMillis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to. Cloning shares the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<EpochMillis>>);

impl ManualClock {
    pub fn new(start: EpochMillis) -> Self {
        ManualClock(Arc::new(Mutex::new(start)))
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by.as_millis() as i64;
    }

    pub fn set(&self, to: EpochMillis) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> EpochMillis {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        let shared = c.clone();
        assert_eq!(c.now_millis(), 1_000);
        shared.advance(Duration::from_secs(5));
        assert_eq!(c.now_millis(), 6_000);
        c.set(42);
        assert_eq!(shared.now_millis(), 42);
        assert!(SystemClock.now_millis() > 1_600_000_000_000);
    }
}
