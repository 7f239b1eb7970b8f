//! Deployment windows: when a region may be deployed, in the region's own time zone.
//!
//! A [`Window`] is a daily span of wall-clock time (`"09:00-17:00"`, or `"22:00-06:00"` which
//! crosses midnight), on some weekdays, minus frozen dates. Each allowed day `D` contributes one
//! interval of instants `[open, close)`; the weekday and freeze rules are those of the day the
//! window *opens*, so a Friday `22:00-06:00` window runs into Saturday morning even when
//! Saturdays are not listed. Intervals that touch (a `00:00-00:00` window, which lasts the whole
//! day, on consecutive days) are merged.
//!
//! Daylight saving time, with jiff's bundled IANA database:
//!
//! - a window edge is the **first instant at which the local clock shows that time or later**.
//!   For a time skipped by a spring-forward gap that is the instant of the jump: in
//!   Europe/London on 2024-03-31 a `01:30-02:30` window runs from 02:00 BST (the jump) to
//!   02:30 BST, thirty minutes. A window entirely inside a gap does not open that day.
//! - for a time repeated by a fall-back, the first occurrence: on 2024-10-27 the same window runs
//!   from 01:30 BST to 02:30 GMT, two hours, with no gap when the clock goes back.
//!
//! The window is computed from instants only: `now` and every result are epoch milliseconds.

use std::collections::BTreeSet;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;

/// Reads an RFC 3339 instant (`2026-11-23T08:00:00Z`, or with an offset) as epoch milliseconds.
pub fn parse_instant(s: &str) -> Result<i64, String> {
    s.trim()
        .parse::<Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| format!("`{s}` is not an RFC 3339 instant such as 2026-11-23T08:00:00Z: {e}"))
}

/// Why a window definition was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// The time zone is not in the IANA database.
    #[error("failed to read deployment window: unknown time zone {0:?} (use an IANA name like Europe/London)")]
    UnknownTimeZone(String),
    /// The hours are not `HH:MM-HH:MM`.
    #[error("failed to read deployment window hours {input:?}: {detail} (expected HH:MM-HH:MM, e.g. 09:00-17:00 or 22:00-06:00)")]
    Hours {
        /// What was written.
        input: String,
        /// What is wrong.
        detail: String,
    },
    /// A day is not one of mon..sun.
    #[error("failed to read deployment window day {0:?}: expected mon, tue, wed, thu, fri, sat, sun (or a range like mon-fri)")]
    Day(String),
    /// A freeze date is not `YYYY-MM-DD`.
    #[error("failed to read freeze date {0:?}: expected YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD")]
    Freeze(String),
}

/// A recurring deployment window in one time zone. See the module documentation.
#[derive(Debug, Clone)]
pub struct Window {
    tz: TimeZone,
    timezone: String,
    start: Time,
    /// Minutes after midnight; 1440 means "24:00".
    start_min: u32,
    end_min: u32,
    /// Indexed by days from Monday.
    days: [bool; 7],
    freeze: BTreeSet<Date>,
}

const DAY_MS: i64 = 86_400_000;

fn parse_hm(s: &str, allow_24: bool) -> Result<u32, String> {
    let (h, m) = s.trim().split_once(':').ok_or_else(|| format!("{s:?} is not HH:MM"))?;
    let h: u32 = h.trim().parse().map_err(|_| format!("{h:?} is not an hour"))?;
    let m: u32 = m.trim().parse().map_err(|_| format!("{m:?} is not a minute"))?;
    if m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)) {
        return Err(format!("{s:?} is not a time of day"));
    }
    Ok(h * 60 + m)
}

fn parse_day(s: &str) -> Option<usize> {
    let s = s.trim().to_ascii_lowercase();
    const NAMES: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    NAMES.iter().position(|n| s.len() >= 3 && n.starts_with(s.as_str()))
}

fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    if s.len() != 10 {
        return None;
    }
    s.parse::<Date>().ok()
}

impl Window {
    /// Builds a window. `hours` is `HH:MM-HH:MM` (an end at or before the start crosses midnight;
    /// equal ends mean the whole day; `24:00` is accepted as an end). `days` are `mon`..`sun`
    /// (full names and ranges like `mon-fri` too; empty = every day). `freeze` are dates
    /// `YYYY-MM-DD` in the zone, or ranges `YYYY-MM-DD..YYYY-MM-DD`, on which the window does
    /// not open.
    pub fn new(timezone: &str, hours: &str, days: &[String], freeze: &[String]) -> Result<Window, WindowError> {
        let tz = TimeZone::get(timezone.trim()).map_err(|_| WindowError::UnknownTimeZone(timezone.to_string()))?;
        let hours_err = |detail: String| WindowError::Hours {
            input: hours.to_string(),
            detail,
        };
        let (a, b) = hours
            .split_once('-')
            .ok_or_else(|| hours_err("no `-` between start and end".into()))?;
        let start_min = parse_hm(a, false).map_err(hours_err)?;
        let mut end_min = parse_hm(b, true).map_err(hours_err)?;
        if end_min == 1440 {
            end_min = 0;
        }
        let start =
            Time::new((start_min / 60) as i8, (start_min % 60) as i8, 0, 0).map_err(|e| hours_err(e.to_string()))?;

        let mut day_set = [days.is_empty(); 7];
        for d in days {
            if let Some((x, y)) = d.split_once('-') {
                let (x, y) = (
                    parse_day(x).ok_or_else(|| WindowError::Day(d.clone()))?,
                    parse_day(y).ok_or_else(|| WindowError::Day(d.clone()))?,
                );
                let mut i = x;
                loop {
                    day_set[i] = true;
                    if i == y {
                        break;
                    }
                    i = (i + 1) % 7;
                }
            } else {
                day_set[parse_day(d).ok_or_else(|| WindowError::Day(d.clone()))?] = true;
            }
        }

        let mut frozen = BTreeSet::new();
        for f in freeze {
            if let Some((x, y)) = f.split_once("..") {
                let (mut x, y) = (
                    parse_date(x).ok_or_else(|| WindowError::Freeze(f.clone()))?,
                    parse_date(y).ok_or_else(|| WindowError::Freeze(f.clone()))?,
                );
                if y < x || x.until(y).map(|s| s.get_days() > 3660).unwrap_or(true) {
                    return Err(WindowError::Freeze(f.clone()));
                }
                while x <= y {
                    frozen.insert(x);
                    match x.tomorrow() {
                        Ok(n) => x = n,
                        Err(_) => break,
                    }
                }
            } else {
                frozen.insert(parse_date(f).ok_or_else(|| WindowError::Freeze(f.clone()))?);
            }
        }
        Ok(Window {
            tz,
            timezone: timezone.trim().to_string(),
            start,
            start_min,
            end_min,
            days: day_set,
            freeze: frozen,
        })
    }

    /// The IANA name of the window's time zone.
    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// `instant` as the window's local wall-clock time, `2026-11-23 08:00 GMT`.
    pub fn local_time(&self, instant_ms: i64) -> String {
        match (Timestamp::from_millisecond(instant_ms), TimeZone::get(&self.timezone)) {
            (Ok(t), Ok(tz)) => t.to_zoned(tz).strftime("%Y-%m-%d %H:%M %Z").to_string(),
            _ => format!("{instant_ms} ms"),
        }
    }

    /// Whether the window is open at `now_ms`.
    pub fn is_open(&self, now_ms: i64) -> bool {
        self.next_opening(now_ms) == Some(now_ms)
    }

    /// `now_ms` if the window is open, else the instant it next opens; `None` if it never will.
    pub fn next_opening(&self, now_ms: i64) -> Option<i64> {
        self.openings(now_ms, 1).first().map(|&(open, _)| open.max(now_ms))
    }

    /// When the window open at `now_ms` closes; `None` if it is closed now or never closes
    /// (every day, all day, with no freeze ahead).
    pub fn closes_at(&self, now_ms: i64) -> Option<i64> {
        let (open, close) = *self.openings(now_ms, 1).first()?;
        (open <= now_ms && close != i64::MAX).then_some(close)
    }

    /// The next `n` openings `(open_ms, close_ms)` that end after `from_ms`, merged where they
    /// touch. The first may have opened before `from_ms` (the window is open at `from_ms`).
    /// A window that never closes again is reported with `close_ms == i64::MAX`. Openings are
    /// looked for from two days before `from_ms`, so a long merged opening that is under way
    /// reports an `open_ms` no earlier than that.
    pub fn openings(&self, from_ms: i64, n: usize) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        if n == 0 {
            return out;
        }
        let Ok(from_ts) = Timestamp::from_millisecond(from_ms) else {
            return out;
        };
        let today = self.tz.to_datetime(from_ts).date();
        // Two days back covers windows that opened yesterday and cross midnight.
        let Ok(mut date) = today.checked_sub(jiff::Span::new().days(2)) else {
            return out;
        };
        // After the last freeze the pattern repeats weekly: a merged interval that has grown
        // for eight full days past that point has every weekday touching the next, forever.
        let last = self.freeze.last().copied().unwrap_or(today).max(today);
        let quiet = last.tomorrow().map(|d| self.midnight(d)).unwrap_or(i64::MAX / 2);
        let mut current: Option<(i64, i64)> = None;
        let mut found_after_quiet = false;
        loop {
            let interval = self.day_interval(date);
            if let Some((o, _)) = interval {
                found_after_quiet |= o >= quiet;
            } else if !found_after_quiet && self.midnight(date) > quiet.saturating_add(8 * DAY_MS) {
                // A whole week past the last freeze without an opening: there will be none.
                break;
            }
            if let Some((o, c)) = interval {
                if c > from_ms {
                    current = match current {
                        Some((co, cc)) if o <= cc => Some((co, cc.max(c))),
                        Some(done) => {
                            out.push(done);
                            if out.len() == n {
                                return out;
                            }
                            Some((o, c))
                        }
                        None => Some((o, c)),
                    };
                }
            }
            if let Some((co, cc)) = current {
                if cc.saturating_sub(co.max(quiet)) > 8 * DAY_MS {
                    out.push((co, i64::MAX));
                    return out;
                }
            }
            match date.tomorrow() {
                Ok(d) => date = d,
                Err(_) => break,
            }
        }
        if let Some(c) = current {
            out.push(c);
        }
        out.truncate(n);
        out
    }

    fn midnight(&self, date: Date) -> i64 {
        self.first_instant(date.to_datetime(Time::midnight()))
            .unwrap_or(i64::MAX / 2)
    }

    /// The interval contributed by the window opening on `date`, if it opens that day.
    fn day_interval(&self, date: Date) -> Option<(i64, i64)> {
        let weekday = date.weekday().to_monday_zero_offset() as usize;
        if !self.days[weekday] || self.freeze.contains(&date) {
            return None;
        }
        let open = self.first_instant(date.to_datetime(self.start))?;
        let end_date = if self.end_min <= self.start_min {
            date.tomorrow().ok()?
        } else {
            date
        };
        let end = Time::new((self.end_min / 60) as i8, (self.end_min % 60) as i8, 0, 0).ok()?;
        let close = self.first_instant(end_date.to_datetime(end))?;
        (close > open).then_some((open, close))
    }

    /// The first instant at which the local clock shows `dt` or later.
    fn first_instant(&self, dt: DateTime) -> Option<i64> {
        let ambiguous = self.tz.to_ambiguous_timestamp(dt);
        let ts = match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok()?,
            AmbiguousOffset::Fold { before, after } => {
                let a = before.to_timestamp(dt).ok()?;
                let b = after.to_timestamp(dt).ok()?;
                a.min(b)
            }
            AmbiguousOffset::Gap { before, after } => {
                // `dt - after` is before the jump, `dt - before` after it: the jump is the
                // first transition after the former.
                let earlier = after.to_timestamp(dt).ok()?;
                match self.tz.following(earlier).next() {
                    Some(t) => t.timestamp(),
                    None => before.to_timestamp(dt).ok()?,
                }
            }
        };
        Some(ts.as_millisecond())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn office_hours_on_weekdays() {
        let w = Window::new("Europe/Paris", "09:00-17:00", &strings(&["mon-fri"]), &[]).unwrap();
        // Tuesday 2024-06-11, Paris is UTC+2.
        assert!(w.is_open(ms("2024-06-11T07:00:00Z")));
        assert!(!w.is_open(ms("2024-06-11T06:59:59Z")));
        assert!(!w.is_open(ms("2024-06-11T15:00:00Z")));
        assert_eq!(
            w.closes_at(ms("2024-06-11T08:00:00Z")),
            Some(ms("2024-06-11T15:00:00Z"))
        );
        assert_eq!(w.closes_at(ms("2024-06-11T16:00:00Z")), None);
        let now = ms("2024-06-11T12:00:00Z");
        assert_eq!(w.next_opening(now), Some(now));
        // Friday evening -> Monday morning.
        assert_eq!(
            w.next_opening(ms("2024-06-14T18:00:00Z")),
            Some(ms("2024-06-17T07:00:00Z"))
        );
        let o = w.openings(ms("2024-06-14T18:00:00Z"), 2);
        assert_eq!(
            o,
            vec![
                (ms("2024-06-17T07:00:00Z"), ms("2024-06-17T15:00:00Z")),
                (ms("2024-06-18T07:00:00Z"), ms("2024-06-18T15:00:00Z")),
            ]
        );
    }

    #[test]
    fn crossing_midnight_uses_the_opening_day() {
        // Friday nights only, 22:00-06:00 in Sydney (AEST, UTC+10, in June).
        let w = Window::new("Australia/Sydney", "22:00-06:00", &strings(&["fri"]), &[]).unwrap();
        // Saturday 2024-06-15 03:00 local = 2024-06-14T17:00Z: still Friday's window.
        assert!(w.is_open(ms("2024-06-14T17:00:00Z")));
        assert_eq!(
            w.closes_at(ms("2024-06-14T17:00:00Z")),
            Some(ms("2024-06-14T20:00:00Z"))
        );
        // Saturday 22:00 local does not open.
        assert!(!w.is_open(ms("2024-06-15T13:00:00Z")));
        assert_eq!(
            w.next_opening(ms("2024-06-15T13:00:00Z")),
            Some(ms("2024-06-21T12:00:00Z"))
        );
        // A freeze on the Friday removes the night that starts on it, Saturday morning included.
        let frozen = Window::new(
            "Australia/Sydney",
            "22:00-06:00",
            &strings(&["fri"]),
            &strings(&["2024-06-14"]),
        )
        .unwrap();
        assert!(!frozen.is_open(ms("2024-06-14T17:00:00Z")));
    }

    #[test]
    fn london_spring_forward() {
        // 2024-03-31: 01:00 GMT -> 02:00 BST. 01:30 does not exist.
        let w = Window::new("Europe/London", "01:30-02:30", &[], &[]).unwrap();
        let o = w.openings(ms("2024-03-30T12:00:00Z"), 3);
        assert_eq!(o[0], (ms("2024-03-31T01:00:00Z"), ms("2024-03-31T01:30:00Z")));
        assert_eq!(o[1], (ms("2024-04-01T00:30:00Z"), ms("2024-04-01T01:30:00Z")));
        // The day before, a plain hour in GMT.
        let before = w.openings(ms("2024-03-29T12:00:00Z"), 1);
        assert_eq!(before[0], (ms("2024-03-30T01:30:00Z"), ms("2024-03-30T02:30:00Z")));
        assert!(w.is_open(ms("2024-03-31T01:10:00Z")));
        assert!(!w.is_open(ms("2024-03-31T00:59:59Z")));
    }

    #[test]
    fn london_fall_back() {
        // 2024-10-27: 02:00 BST -> 01:00 GMT. 01:30 happens twice.
        let w = Window::new("Europe/London", "01:30-02:30", &[], &[]).unwrap();
        let o = w.openings(ms("2024-10-26T12:00:00Z"), 2);
        assert_eq!(o[0], (ms("2024-10-27T00:30:00Z"), ms("2024-10-27T02:30:00Z")));
        assert_eq!(o[1], (ms("2024-10-28T01:30:00Z"), ms("2024-10-28T02:30:00Z")));
        // Open all along, including the repeated hour.
        assert!(w.is_open(ms("2024-10-27T01:15:00Z")));
    }

    #[test]
    fn sydney_spring_forward_swallows_a_window_inside_the_gap() {
        // 2024-10-06: 02:00 AEST -> 03:00 AEDT in Sydney; 02:00-03:00 never shows on the clock.
        let w = Window::new("Australia/Sydney", "02:00-03:00", &[], &[]).unwrap();
        let o = w.openings(ms("2024-10-04T12:00:00Z"), 2);
        // 2024-10-05 02:00 AEST = 2024-10-04T16:00Z; then straight to 2024-10-07 02:00 AEDT.
        assert_eq!(o[0], (ms("2024-10-04T16:00:00Z"), ms("2024-10-04T17:00:00Z")));
        assert_eq!(o[1], (ms("2024-10-06T15:00:00Z"), ms("2024-10-06T16:00:00Z")));
        // Autumn: 2024-04-07 03:00 AEDT -> 02:00 AEST, the window gets two hours.
        let o = w.openings(ms("2024-04-06T12:00:00Z"), 1);
        assert_eq!(o[0], (ms("2024-04-06T15:00:00Z"), ms("2024-04-06T17:00:00Z")));
    }

    #[test]
    fn half_hour_offsets() {
        // India is UTC+05:30 all year.
        let w = Window::new("Asia/Kolkata", "09:00-17:00", &[], &[]).unwrap();
        assert_eq!(
            w.next_opening(ms("2024-01-01T00:00:00Z")),
            Some(ms("2024-01-01T03:30:00Z"))
        );
        assert_eq!(
            w.closes_at(ms("2024-01-01T04:00:00Z")),
            Some(ms("2024-01-01T11:30:00Z"))
        );
        // Lord Howe Island moves by 30 minutes: 2024-10-06 02:00 +10:30 -> 02:30 +11.
        let w = Window::new("Australia/Lord_Howe", "02:00-03:00", &[], &[]).unwrap();
        let o = w.openings(ms("2024-10-05T00:00:00Z"), 1);
        // Opens at the jump (15:30Z), closes at 03:00 +11 (16:00Z): thirty minutes.
        assert_eq!(o[0], (ms("2024-10-05T15:30:00Z"), ms("2024-10-05T16:00:00Z")));
        // Adelaide: +09:30 in winter.
        let w = Window::new("Australia/Adelaide", "00:00-01:00", &[], &[]).unwrap();
        assert!(w.is_open(ms("2024-06-30T14:30:00Z")));
    }

    #[test]
    fn all_day_windows_merge_and_freezes_split_them() {
        let w = Window::new("UTC", "00:00-00:00", &[], &[]).unwrap();
        let now = ms("2024-01-10T12:00:00Z");
        assert!(w.is_open(now));
        assert_eq!(w.closes_at(now), None);
        assert_eq!(w.openings(now, 3), vec![(ms("2024-01-10T00:00:00Z"), i64::MAX)]);

        let w = Window::new(
            "UTC",
            "00:00-24:00",
            &[],
            &strings(&["2024-01-12", "2024-01-20..2024-01-21"]),
        )
        .unwrap();
        assert_eq!(w.closes_at(now), Some(ms("2024-01-12T00:00:00Z")));
        let o = w.openings(now, 3);
        assert_eq!(o[0].1, ms("2024-01-12T00:00:00Z"));
        assert_eq!(o[1], (ms("2024-01-13T00:00:00Z"), ms("2024-01-20T00:00:00Z")));
        assert_eq!(o[2], (ms("2024-01-22T00:00:00Z"), i64::MAX));
        assert_eq!(
            w.next_opening(ms("2024-01-12T05:00:00Z")),
            Some(ms("2024-01-13T00:00:00Z"))
        );
    }

    #[test]
    fn bad_definitions_are_explained() {
        let e = Window::new("Mars/Olympus", "09:00-17:00", &[], &[]).unwrap_err();
        assert!(e.to_string().contains("Mars/Olympus"));
        for h in ["9-17", "09:00", "25:00-26:00", "09:60-10:00", "24:00-01:00"] {
            let e = Window::new("UTC", h, &[], &[]).unwrap_err();
            assert!(e.to_string().contains("HH:MM-HH:MM"), "{h}: {e}");
        }
        assert!(matches!(
            Window::new("UTC", "09:00-17:00", &strings(&["funday"]), &[]),
            Err(WindowError::Day(_))
        ));
        assert!(matches!(
            Window::new("UTC", "09:00-17:00", &[], &strings(&["2024-13-01"])),
            Err(WindowError::Freeze(_))
        ));
        assert!(Window::new("UTC", "09:00-17:00", &strings(&["Monday", "TUE", "sat-sun"]), &[]).is_ok());
    }
}
