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

    /// Waits `d` of this clock's time. A driver that waits through its clock ("wake me at T")
    /// runs a 30-minute bake in milliseconds on a [`ManualClock`].
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
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

    /// Simulated time: waiting moves the clock forward at once, so a single driver on this clock
    /// sees exactly the time it waited, and no wall time passes.
    fn sleep(&self, d: Duration) {
        self.advance(d);
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
        let wall = std::time::Instant::now();
        c.sleep(Duration::from_secs(1800));
        assert_eq!(shared.now_millis(), 42 + 1_800_000, "waiting moves the shared time");
        assert!(wall.elapsed() < Duration::from_secs(1), "and takes no wall time");
        assert!(SystemClock.now_millis() > 1_600_000_000_000);
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch (UTC), as AWS prints dates.
pub fn format_rfc3339(epoch_secs: i64) -> String {
    let days = epoch_secs.div_euclid(86_400);
    let secs = epoch_secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod format_tests {
    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(super::format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::format_rfc3339(1_795_300_000), "2026-11-21T22:26:40Z");
        assert_eq!(super::format_rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
