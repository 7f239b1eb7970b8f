//! The SAM transform.
