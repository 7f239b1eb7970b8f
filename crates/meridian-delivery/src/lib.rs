//! Progressive delivery, the pure core: traffic schedules, alarm evaluation, the canary judge and
//! deployment windows. Nothing here does I/O or reads the time: callers pass the clock's reading.
