//! Meridian's shared vocabulary: region names, content digests, the clock.
//!
//! This crate is the bottom of the dependency graph. It does no I/O (besides reading the system
//! clock through [`SystemClock`], random bytes in [`random`], and the metadata of the paths
//! [`path::confine`] checks) and must stay small: every other crate depends on it.

pub mod clock;
pub mod digest;
pub mod path;
pub mod random;
pub mod region;

pub use clock::{Clock, ManualClock, SystemClock};
pub use digest::Digest;
pub use region::{RegionError, RegionId, KNOWN_REGIONS};

/// The account id local regions report in ARNs (AWS's documentation account).
pub const LOCAL_ACCOUNT_ID: &str = "123456789012";
