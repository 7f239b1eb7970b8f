//! Calls to a region made again when its error says that can help ([`RegionError::retryable`]):
//! throttling, an unreachable region, a conflict that passes. Other errors return at once.

use meridian_region::RegionError;
use std::future::Future;
use std::time::Duration;

/// Attempts at most, the first included.
pub const ATTEMPTS: u32 = 4;

/// Runs `call` until it succeeds, fails for good, or has failed [`ATTEMPTS`] times, waiting
/// 200 ms, 400 ms, 800 ms between attempts (four times that when throttled).
pub async fn retrying<T, F, Fut>(mut call: F) -> Result<T, RegionError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RegionError>>,
{
    let mut wait = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if e.retryable() && attempt < ATTEMPTS => {
                let factor = if e.kind == meridian_region::ErrorKind::Throttled {
                    4
                } else {
                    1
                };
                tokio::time::sleep(wait * factor).await;
                wait *= 2;
                attempt += 1;
            }
            Err(mut e) if e.retryable() => {
                // Exhausted: say so, and what helps.
                let hint = match e.kind {
                    meridian_region::ErrorKind::Throttled => {
                        ": the region kept throttling; raise the account's quota for this call, or lower `max-parallel-regions`"
                    }
                    meridian_region::ErrorKind::Unavailable => ": the region stayed unreachable; check the network or the service's health, then `meridian retry`",
                    _ => ": the conflict did not pass; `meridian retry` when the other operation has ended",
                };
                e.message = format!("{} (gave up after {ATTEMPTS} attempts{hint})", e.message);
                return Err(e);
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_region::ErrorKind;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn retryable_errors_are_tried_again_and_others_are_not() {
        let n = AtomicU32::new(0);
        let r = retrying(|| async {
            match n.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(RegionError::new(ErrorKind::Throttled, "Rate exceeded")),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!((r.unwrap(), n.load(Ordering::SeqCst)), (7, 3));

        // Throttled every time: given up on, saying so and what helps.
        let r: Result<(), _> =
            retrying(|| async { Err(RegionError::new(ErrorKind::Throttled, "Rate exceeded")) }).await;
        let e = r.unwrap_err();
        assert!(
            e.message
                .starts_with("Rate exceeded (gave up after 4 attempts: the region kept throttling")
                && e.message.contains("max-parallel-regions"),
            "{}",
            e.message
        );

        let n = AtomicU32::new(0);
        let r: Result<(), _> = retrying(|| async {
            n.fetch_add(1, Ordering::SeqCst);
            Err(RegionError::new(
                ErrorKind::Invalid,
                "Requires capabilities : [CAPABILITY_IAM]",
            ))
        })
        .await;
        assert_eq!((r.unwrap_err().kind, n.load(Ordering::SeqCst)), (ErrorKind::Invalid, 1));

        let n = AtomicU32::new(0);
        let r: Result<(), _> = retrying(|| async {
            n.fetch_add(1, Ordering::SeqCst);
            Err(RegionError::new(ErrorKind::Unavailable, "connection refused"))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(n.load(Ordering::SeqCst), ATTEMPTS, "gives up after {ATTEMPTS} attempts");
    }
}
