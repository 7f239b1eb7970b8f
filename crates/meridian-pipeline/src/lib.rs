//! Pipeline definitions (in progress).
