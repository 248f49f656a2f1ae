//! Event time: milliseconds since the Unix epoch, taken from the log itself.
//!
//! Invariant: nothing in this module reads the wall clock. Timestamps without
//! a zone (RFC 3164 headers, HAProxy's accept date) are local times of the
//! host that wrote them, put on UTC by a [`Zone`] (`--tz`); RFC 3339/5424
//! offsets are honoured.
//!
//! The parsers here are hand-written because they run once per log line and
//! a general-purpose date parser costs more than the rest of the line.

use std::cell::Cell;
use std::thread::LocalKey;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// Lines with no time at all (HAProxy's stderr since 2.3, `journalctl -o
/// cat`, `docker logs` without `-t`) are not thrown away: with no dated
/// line before them in their input, their events are applied in arrival
/// order at `UNTIMED + n`, the n-th such event. That is an order, not a
/// time: far below any date a parser returns (year -146 million), shown as
/// unknown by every output (`null` in JSON, "time unknown" in text), and a
/// duration with an end in it is unknown, never computed.
pub const UNTIMED: Millis = -(1 << 62);

/// The n-th (from 1) event with no time: see [`UNTIMED`].
pub fn untimed(n: u64) -> Millis {
    UNTIMED + n.min((1 << 61) - 1) as Millis
}

/// Is `t` an arrival order, not a time (see [`UNTIMED`])?
pub fn is_untimed(t: Millis) -> bool {
    t < UNTIMED / 2
}

/// The arrival order of an untimed event, `None` for a real time.
pub fn untimed_order(t: Millis) -> Option<u64> {
    is_untimed(t).then(|| (t - UNTIMED) as u64)
}

/// `Jan` -> 1 ... `Dec` -> 12.
pub fn month_from_abbr(b: &[u8]) -> Option<u32> {
    if b.len() < 3 {
        return None;
    }
    Some(match [b[0], b[1], b[2]] {
        [b'J', b'a', b'n'] => 1,
        [b'F', b'e', b'b'] => 2,
        [b'M', b'a', b'r'] => 3,
        [b'A', b'p', b'r'] => 4,
        [b'M', b'a', b'y'] => 5,
        [b'J', b'u', b'n'] => 6,
        [b'J', b'u', b'l'] => 7,
        [b'A', b'u', b'g'] => 8,
        [b'S', b'e', b'p'] => 9,
        [b'O', b'c', b't'] => 10,
        [b'N', b'o', b'v'] => 11,
        [b'D', b'e', b'c'] => 12,
        _ => return None,
    })
}

/// Days since the epoch of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[inline]
fn digits(b: &[u8]) -> Option<u32> {
    crate::bytes::digits(b).and_then(|v| u32::try_from(v).ok())
}

/// Milliseconds of a wall-clock time, with range checks.
fn hms(h: u32, m: u32, s: u32) -> Option<i64> {
    (h < 24 && m < 60 && s < 61).then(|| ((h * 3600 + m * 60 + s) as i64) * 1000)
}

/// Fraction digits (any count) to milliseconds; returns (ms, bytes consumed).
#[inline]
fn fraction_ms(b: &[u8]) -> (i64, usize) {
    // HAProxy's accept date: exactly three.
    if let [x, y, z, rest @ ..] = b {
        let d = |c: &u8| c.wrapping_sub(b'0') as i64;
        if d(x) <= 9 && d(y) <= 9 && d(z) <= 9 && !rest.first().is_some_and(u8::is_ascii_digit) {
            return (d(x) * 100 + d(y) * 10 + d(z), 3);
        }
    }
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut ms = 0i64;
    for i in 0..3 {
        ms = ms * 10 + b.get(i).filter(|_| i < n).map_or(0, |c| (c - b'0') as i64);
    }
    (ms, n)
}

/// A date without its year, as RFC 3164 writes it (`Nov 24 16:21:15`), or
/// as HAProxy before 2.3 wrote its stderr (`329/152730`: the day of the year
/// counted from 0, `tm_yday`, whose month depends on the year: `month` 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoYear {
    /// 1 to 12; 0 when `day` is a day of the year (0 to 365).
    pub month: u32,
    pub day: u32,
    pub ms_of_day: i64,
}

impl NoYear {
    pub fn with_year(self, year: i64) -> Millis {
        let days = if self.month == 0 {
            days_from_civil(year, 1, 1) + self.day as i64
        } else {
            days_from_civil(year, self.month, self.day)
        };
        days * 86_400_000 + self.ms_of_day
    }

    /// (month, day) for comparing with a reference; a day of the year is
    /// placed in a common year (one day off after February in a leap year
    /// is well within what choosing a year needs).
    fn month_day(self) -> (u32, u32) {
        if self.month != 0 {
            return (self.month, self.day);
        }
        let (_, m, d) = civil_from_days(days_from_civil(2025, 1, 1) + self.day as i64);
        (m, d)
    }
}

/// HAProxy's stderr time before 2.3: `DDD/HHMMSS`, the day of the year from
/// 0 (`tm_yday`) and the local time of day.
pub fn parse_yday_time(b: &[u8]) -> Option<NoYear> {
    if b.len() != 10 || b[3] != b'/' {
        return None;
    }
    let yday = digits(&b[0..3])?;
    let ms = hms(digits(&b[4..6])?, digits(&b[6..8])?, digits(&b[8..10])?)?;
    (yday <= 365).then_some(NoYear {
        month: 0,
        day: yday,
        ms_of_day: ms,
    })
}

/// How a local time written without an offset (RFC 3164 headers, HAProxy's
/// accept date and stderr times) is put on UTC: `--tz`.
///
/// The rules are the IANA time zone database's. Two local times are not one
/// instant, and the rule here for each:
/// - **repeated** (the hour after clocks go back): the first occurrence
///   (summer time), unless this stream's last time is already more than
///   [`FOLD_SLACK`] past it: lines come in time order, so a local time that
///   went back into the repeated hour is its second pass (winter time);
/// - **skipped** (the hour clocks jump over, which a clock on that zone never
///   shows; a host on another zone does): read with the offset before the
///   jump, i.e. moved forward by the jump (02:30 in New York on a spring
///   night is 03:30 EDT), as RFC 5545 and Temporal do.
///
/// Conversion is cached per local hour whose offset is the same throughout,
/// so a line costs a comparison; only the hours around a transition ask the
/// database for each line.
#[derive(Clone, Debug)]
pub struct Zone {
    /// `None`: UTC (or a zone fixed at +00:00): times are taken as they are.
    tz: Option<jiff::tz::TimeZone>,
    name: std::sync::Arc<str>,
    /// The local hour (ms / 1 h) last converted, when one offset covers it.
    hour: i64,
    offset: Millis,
    /// The last time converted (UTC): decides a repeated hour.
    last: Option<Millis>,
}

/// How far past the first occurrence of a repeated local time this stream
/// must already be for it to be the second: more than lines arrive out of
/// order, less than the hour repeated.
pub const FOLD_SLACK: Millis = 10 * 60_000;

const HOUR_MS: Millis = 3_600_000;

/// The names the time zone database gives UTC itself (links to `Etc/UTC`:
/// no offset, no transition).
const UTC_NAMES: [&str; 8] = [
    "UTC",
    "Etc/UTC",
    "UCT",
    "Etc/UCT",
    "Universal",
    "Etc/Universal",
    "Zulu",
    "Etc/Zulu",
];

/// This machine's zone when it is UTC by name, as jiff would name it: `TZ`
/// (`UTC`, `:UTC`, a path ending in `zoneinfo/Etc/UTC`), else the target
/// of the `/etc/localtime` link. `None` for anything else, left to jiff.
///
/// Why: jiff finds a zone by name in a database it builds by walking
/// /usr/share/zoneinfo (a tenth of hapwatch's start, before the first
/// line), and most servers, containers and CI runners keep UTC.
fn local_utc_name(tz_env: Option<&std::ffi::OsStr>) -> Option<String> {
    let named = |spec: &str| -> Option<String> {
        let spec = spec.strip_prefix(':').unwrap_or(spec);
        let name = spec.rfind("zoneinfo/").map_or(spec, |i| &spec[i + 9..]);
        UTC_NAMES.contains(&name).then(|| name.to_string())
    };
    match tz_env {
        Some(tz) => named(tz.to_str()?),
        None => named(std::fs::read_link("/etc/localtime").ok()?.to_str()?),
    }
}

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            tz: None,
            name: "UTC".into(),
            hour: i64::MIN,
            offset: 0,
            last: None,
        }
    }

    /// `UTC`, `local` (this machine's zone: `TZ`, else /etc/localtime), or
    /// an IANA name (`Europe/Paris`). The error says how to find a name.
    pub fn parse(name: &str) -> Result<Zone, String> {
        let name = name.trim();
        if name == "local" {
            if let Some(n) = local_utc_name(std::env::var_os("TZ").as_deref()) {
                return Ok(Zone {
                    name: format!("local ({n})").into(),
                    ..Zone::utc()
                });
            }
        }
        let tz = match name {
            "UTC" | "utc" | "Z" | "z" | "Etc/UTC" => return Ok(Zone::utc()),
            // What jiff would read as UTC under this name, without its
            // database (as for `local` above).
            n if UTC_NAMES.contains(&n) => {
                return Ok(Zone {
                    name: n.into(),
                    ..Zone::utc()
                })
            }
            "local" => jiff::tz::TimeZone::try_system().map_err(|e| {
                format!(
                    "--tz local: this machine's time zone cannot be read ({e}); name one, e.g. --tz Europe/Paris"
                )
            })?,
            _ => jiff::tz::TimeZone::get(name).map_err(|_| {
                format!(
                    "unknown time zone {name:?}: give an IANA name such as Europe/Paris or America/New_York (`timedatectl list-timezones` or /usr/share/zoneinfo lists them), UTC, or local"
                )
            })?,
        };
        let shown = match (name, tz.iana_name()) {
            ("local", Some(n)) => format!("local ({n})"),
            _ => name.to_string(),
        };
        Ok(Zone::from_tz(tz, shown))
    }

    /// This machine's zone, UTC when it cannot be read.
    pub fn local() -> Zone {
        Zone::parse("local").unwrap_or_else(|_| Zone::utc())
    }

    fn from_tz(tz: jiff::tz::TimeZone, name: String) -> Zone {
        // UTC itself (`TZ=UTC`, /etc/localtime -> Etc/UTC) comes as a TZif
        // zone, not a fixed offset: +00:00 with no transition either way is
        // UTC, and costs nothing per line.
        let epoch = jiff::Timestamp::UNIX_EPOCH;
        let fixed_utc = tz.to_fixed_offset().is_ok_and(|o| o.seconds() == 0)
            || (tz.to_offset(epoch).seconds() == 0
                && tz.following(epoch).next().is_none()
                && tz.preceding(epoch).next().is_none());
        Zone {
            tz: (!fixed_utc).then_some(tz),
            name: name.into(),
            ..Zone::utc()
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether times are taken as they are (UTC).
    #[inline]
    pub fn is_utc(&self) -> bool {
        self.tz.is_none()
    }

    /// A local time (as milliseconds of its civil date and time, as if it
    /// were UTC) to UTC.
    #[inline]
    pub fn to_utc(&mut self, local: Millis) -> Millis {
        if self.tz.is_none() {
            return local;
        }
        let t = if local.div_euclid(HOUR_MS) == self.hour {
            local - self.offset
        } else {
            self.convert(local)
        };
        self.last = Some(t);
        t
    }

    /// The offset (ms) of `local`, as the database says it.
    fn lookup(tz: &jiff::tz::TimeZone, local: Millis) -> Option<jiff::tz::AmbiguousOffset> {
        let (y, m, d) = civil_from_days(local.div_euclid(86_400_000));
        let ms = local.rem_euclid(86_400_000);
        let dt = jiff::civil::DateTime::new(
            i16::try_from(y).ok()?,
            m as i8,
            d as i8,
            (ms / HOUR_MS) as i8,
            (ms / 60_000 % 60) as i8,
            (ms / 1000 % 60) as i8,
            (ms % 1000) as i32 * 1_000_000,
        )
        .ok()?;
        Some(tz.to_ambiguous_timestamp(dt).offset())
    }

    #[cold]
    fn convert(&mut self, local: Millis) -> Millis {
        use jiff::tz::AmbiguousOffset as A;
        let Some(tz) = &self.tz else { return local };
        let ms = |o: jiff::tz::Offset| o.seconds() as Millis * 1000;
        let hour = local.div_euclid(HOUR_MS);
        let (start, end) = (
            Self::lookup(tz, hour * HOUR_MS),
            Self::lookup(tz, hour * HOUR_MS + HOUR_MS - 1),
        );
        if let (Some(A::Unambiguous { offset: a }), Some(A::Unambiguous { offset: b })) =
            (start, end)
        {
            if a == b {
                self.hour = hour;
                self.offset = ms(a);
                return local - self.offset;
            }
        }
        match Self::lookup(tz, local) {
            Some(A::Unambiguous { offset }) => local - ms(offset),
            Some(A::Gap { before, .. }) => local - ms(before),
            Some(A::Fold { before, after }) => {
                let first = local - ms(before);
                match self.last {
                    Some(last) if last > first + FOLD_SLACK => local - ms(after),
                    _ => first,
                }
            }
            // Past year 9999 or before -9999: no rules to apply.
            None => local,
        }
    }
}

/// Whether a time read without a zone, `skew` after the time it was
/// received, is a zone left unset: more than 15 minutes off, by a whole
/// number of hours (within 2 minutes of relay delay and clock drift) that a
/// real zone has (UTC-12 to UTC+14). Returns the hours.
pub fn zone_explains(skew: Millis) -> Option<i64> {
    let hours = (skew as f64 / HOUR_MS as f64).round() as i64;
    let rest = (skew - hours * HOUR_MS).abs();
    (skew.abs() > 15 * 60_000 && rest <= 2 * 60_000 && (-12..=14).contains(&hours)).then_some(hours)
}

impl Default for Zone {
    fn default() -> Zone {
        Zone::utc()
    }
}

/// A date to the second read from the first `N` bytes of `b`, through the
/// last one read on this thread: a busy log writes many lines a second, and
/// a hit compares `N` bytes instead of parsing them. Only a date that
/// parsed is kept (so a hit is valid).
#[inline]
fn remembered<const N: usize, T: Copy>(
    last: &'static LocalKey<Cell<([u8; N], T)>>,
    b: &[u8],
    parse: fn(&[u8]) -> Option<T>,
) -> Option<T> {
    let key: [u8; N] = b.get(..N)?.try_into().ok()?;
    let (cached, value) = last.get();
    if cached == key {
        return Some(value);
    }
    let value = parse(b)?;
    last.set((key, value));
    Some(value)
}

/// `Nov 24 16:21:15` or `Nov  4 09:01:02` (space-padded day), optionally
/// followed by a fraction. Returns the date and the bytes consumed.
pub fn parse_rfc3164_date(b: &[u8]) -> Option<(NoYear, usize)> {
    // Checked before the cache too: its empty key (zeros) cannot match.
    if b.len() < 15 || b[3] != b' ' {
        return None;
    }
    thread_local!(static LAST: Cell<([u8; 15], NoYear)> = const {
        Cell::new(([0; 15], NoYear { month: 0, day: 0, ms_of_day: 0 }))
    });
    let mut date = remembered(&LAST, b, rfc3164_second)?;
    let mut used = 15;
    if b.get(15) == Some(&b'.') {
        let (f, n) = fraction_ms(&b[16..]);
        date.ms_of_day += f;
        used += 1 + n;
    }
    Some((date, used))
}

/// The first 15 bytes of [`parse_rfc3164_date`]: to the second.
fn rfc3164_second(b: &[u8]) -> Option<NoYear> {
    let month = month_from_abbr(b)?;
    let day = if b[4] == b' ' {
        digits(&b[5..6])?
    } else {
        digits(&b[4..6])?
    };
    if b[6] != b' ' || b[9] != b':' || b[12] != b':' || !(1..=31).contains(&day) {
        return None;
    }
    let ms = hms(digits(&b[7..9])?, digits(&b[10..12])?, digits(&b[13..15])?)?;
    Some(NoYear {
        month,
        day,
        ms_of_day: ms,
    })
}

/// HAProxy's accept date: `24/Nov/2026:16:21:15.230` (milliseconds optional).
/// Returns the time and the bytes consumed. Inline: once a request line,
/// and a hit on the kept second is a compare and three digits.
#[inline(always)]
pub fn parse_haproxy_date(b: &[u8]) -> Option<(Millis, usize)> {
    // Checked before the cache too: its empty key (zeros) cannot match.
    if b.len() < 20 || b[2] != b'/' {
        return None;
    }
    thread_local!(static LAST: Cell<([u8; 20], Millis)> = const { Cell::new(([0; 20], 0)) });
    let mut t = remembered(&LAST, b, haproxy_second)?;
    let mut used = 20;
    if b.get(20) == Some(&b'.') {
        let (f, n) = fraction_ms(&b[21..]);
        t += f;
        used += 1 + n;
    }
    Some((t, used))
}

/// The first 20 bytes of [`parse_haproxy_date`]: to the second.
fn haproxy_second(b: &[u8]) -> Option<Millis> {
    if b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[14] != b':' || b[17] != b':' {
        return None;
    }
    let day = digits(&b[0..2])?;
    let month = month_from_abbr(&b[3..6])?;
    let year = digits(&b[7..11])? as i64;
    if !(1..=31).contains(&day) {
        return None;
    }
    let ms = hms(
        digits(&b[12..14])?,
        digits(&b[15..17])?,
        digits(&b[18..20])?,
    )?;
    Some(days_from_civil(year, month, day) * 86_400_000 + ms)
}

/// RFC 3339 / ISO 8601 as syslog and journald write it:
/// `2026-11-24T16:21:13.123456+00:00`, `...Z`, `...+0000`, or no zone (UTC).
/// Returns the time and the bytes consumed.
pub fn parse_rfc3339(b: &[u8]) -> Option<(Millis, usize)> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let year = digits(&b[0..4])? as i64;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let mut ms = hms(
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    )?;
    let mut i = 19;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        let (f, n) = fraction_ms(&b[i + 1..]);
        ms += f;
        i += 1 + n;
    }
    let mut offset_min = 0i64;
    match b.get(i) {
        Some(b'Z') | Some(b'z') => i += 1,
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b.get(i + 1..i + 3)?)? as i64;
            let (om, len) = if b.get(i + 3) == Some(&b':') {
                (digits(b.get(i + 4..i + 6)?)? as i64, 6)
            } else {
                (digits(b.get(i + 3..i + 5)?)? as i64, 5)
            };
            offset_min = (oh * 60 + om) * if sign == b'-' { -1 } else { 1 };
            i += len;
        }
        _ => {}
    }
    Some((
        days_from_civil(year, month, day) * 86_400_000 + ms - offset_min * 60_000,
        i,
    ))
}

/// `2026-11-24T16:21:15.230Z`: the one textual form hapwatch writes
/// ("time unknown" for an event from a line with no time, [`UNTIMED`]).
pub fn format_rfc3339_ms(t: Millis) -> String {
    if is_untimed(t) {
        return "time unknown".to_string();
    }
    match rfc3339_ms_bytes(t) {
        Some(b) => String::from_utf8(b.to_vec()).expect("ASCII digits"),
        None => {
            let days = t.div_euclid(86_400_000);
            let ms = t.rem_euclid(86_400_000);
            let (y, m, d) = civil_from_days(days);
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                y,
                m,
                d,
                ms / 3_600_000,
                ms / 60_000 % 60,
                ms / 1000 % 60,
                ms % 1000
            )
        }
    }
}

/// [`format_rfc3339_ms`] without allocating, for years 0 to 9999 (`None`
/// outside: a lying clock's year 20000 takes the slow way). A day's
/// timeline writes 300,000 of them.
fn rfc3339_ms_bytes(t: Millis) -> Option<[u8; 24]> {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400_000));
    if !(0..=9999).contains(&y) {
        return None;
    }
    let ms = t.rem_euclid(86_400_000);
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for k in (at..at + width).rev() {
            b[k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, m as i64);
    put(8, 2, d as i64);
    put(11, 2, ms / 3_600_000);
    put(14, 2, ms / 60_000 % 60);
    put(17, 2, ms / 1000 % 60);
    put(20, 3, ms % 1000);
    Some(b)
}

/// [`format_rfc3339_ms`] of a time, `None` for an arrival order
/// ([`UNTIMED`]): for fields that are `null` when the time is unknown.
pub fn format_if_timed(t: Millis) -> Option<String> {
    (!is_untimed(t)).then(|| format_rfc3339_ms(t))
}

/// serde: event times as [`format_rfc3339_ms`] text, `null` for an event
/// with no time ([`UNTIMED`]).
pub fn serialize_rfc3339<S: serde::Serializer>(t: &Millis, s: S) -> Result<S::Ok, S::Error> {
    if is_untimed(*t) {
        return s.serialize_none();
    }
    match rfc3339_ms_bytes(*t) {
        Some(b) => s.serialize_str(std::str::from_utf8(&b).expect("ASCII digits")),
        None => s.serialize_str(&format_rfc3339_ms(*t)),
    }
}

/// A time given on the command line: RFC 3339 (`2026-11-24T16:21:00Z`, zone
/// optional, `T` or space), a date alone (`2026-11-24`), or HAProxy's own form
/// (`24/Nov/2026:16:21:00`).
pub fn parse_user_time(s: &str) -> Option<Millis> {
    let b = s.trim().as_bytes();
    if let Some((t, n)) = parse_rfc3339(b) {
        return (n == b.len()).then_some(t);
    }
    if let Some((t, n)) = parse_haproxy_date(b) {
        return (n == b.len()).then_some(t);
    }
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        let (y, m, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
        if (1..=12).contains(&m) && (1..=31).contains(&d) {
            return Some(days_from_civil(y as i64, m, d) * 86_400_000);
        }
    }
    None
}

/// Picks the year of RFC 3164 dates, which carry none.
///
/// The best evidence is the most recent full date seen in the same stream
/// (HAProxy's request lines carry their accept date with a year): a January
/// line after a December anchor belongs to the next year, a December line
/// after a January anchor to the previous one. Without any anchor, the file's
/// modification time (or `--year`) is used, and a date later in the year than
/// that reference belongs to the year before.
#[derive(Clone, Debug)]
pub struct YearResolver {
    anchor: Option<(i64, u32)>,
    fallback_year: i64,
    fallback_ref: Option<(u32, u32)>,
}

impl YearResolver {
    /// `year`: from `--year`, or the year of the input's modification time,
    /// with `reference` the (month, day) of that time.
    pub fn new(year: i64, reference: Option<(u32, u32)>) -> Self {
        YearResolver {
            anchor: None,
            fallback_year: year,
            // A date up to a day after the reference is still this year:
            // a host a few hours ahead (its zone unset) is a clock to
            // quarantine, not a line from last year.
            fallback_ref: reference.map(|(m, d)| {
                let (_, m, d) = civil_from_days(days_from_civil(year, m, d) + 1);
                (m, d)
            }),
        }
    }

    /// A full date seen in the stream.
    pub fn observe(&mut self, t: Millis) {
        let (y, m, _) = civil_from_days(t.div_euclid(86_400_000));
        self.anchor = Some((y, m));
    }

    pub fn anchor(&self) -> Option<(i64, u32)> {
        self.anchor
    }

    pub fn set_anchor(&mut self, a: Option<(i64, u32)>) {
        if a.is_some() {
            self.anchor = a;
        }
    }

    pub fn resolve(&mut self, d: NoYear) -> Millis {
        let (month, day) = d.month_day();
        let year = match self.anchor {
            Some((y, 12)) if month == 1 => y + 1,
            Some((y, 1)) if month == 12 => y - 1,
            Some((y, _)) => y,
            None => match self.fallback_ref {
                Some(r) if (month, day) > r => self.fallback_year - 1,
                _ => self.fallback_year,
            },
        };
        let t = d.with_year(year);
        // A resolved date is itself evidence for the next one: this is what
        // carries a stream of health lines alone across New Year.
        self.anchor = Some((year, month));
        t
    }
}

/// `2m05s`, `1h02m`, `350ms`.
pub fn human(ms: Millis) -> String {
    let s = ms / 1000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{}.{:01}s", s, ms % 1000 / 100)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if ms < 86_400_000 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else {
        format!("{}d{:02}h", s / 86_400, s / 3600 % 24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `local` on a UTC machine is known without jiff's database, by the
    /// name jiff gives it; any other zone is left to jiff.
    #[test]
    fn a_utc_machine_is_known_by_name_without_the_database() {
        use std::ffi::OsStr;
        let name = |tz: &str| local_utc_name(Some(OsStr::new(tz)));
        assert_eq!(name("UTC").as_deref(), Some("UTC"));
        assert_eq!(name(":Etc/UTC").as_deref(), Some("Etc/UTC"));
        assert_eq!(
            name("/usr/share/zoneinfo/Etc/UTC").as_deref(),
            Some("Etc/UTC")
        );
        assert_eq!(name(":/usr/share/zoneinfo/Zulu").as_deref(), Some("Zulu"));
        for other in ["", "Europe/Paris", "UTC0", "GMT", "EST5EDT", "/tmp/UTC"] {
            assert_eq!(name(other), None, "{other}");
        }
        // jiff reads each of these names as UTC, and names it so; `--tz`
        // with one of them gives the zone jiff's reading gave.
        for n in UTC_NAMES {
            let tz = jiff::tz::TimeZone::get(n).expect(n);
            assert_eq!(tz.iana_name(), Some(n));
            let by_jiff = Zone::from_tz(tz, n.into());
            assert!(by_jiff.is_utc(), "{n}");
            let z = Zone::parse(n).unwrap();
            assert!(z.is_utc(), "{n}");
            let shown = if n == "Etc/UTC" { "UTC" } else { n };
            assert_eq!(z.name(), shown);
        }
        // So a machine on UTC shows what it showed when jiff read it.
        if let Some(n) = local_utc_name(std::env::var_os("TZ").as_deref()) {
            let tz = jiff::tz::TimeZone::try_system().unwrap();
            assert_eq!(tz.iana_name(), Some(n.as_str()));
        }
    }

    #[test]
    fn an_arrival_order_is_never_taken_for_a_time() {
        let (first, far) = (untimed(1), untimed(u64::MAX));
        assert!(is_untimed(first) && is_untimed(far) && first < far);
        assert_eq!(untimed_order(first), Some(1));
        // The oldest date a parser gives, and a lying clock's, are times.
        for t in [
            0,
            -62_135_596_800_000,
            parse_user_time("9999-12-31").unwrap(),
        ] {
            assert!(!is_untimed(t) && untimed_order(t).is_none(), "{t}");
        }
        assert_eq!(format_rfc3339_ms(first), "time unknown");
        #[derive(serde::Serialize)]
        struct At(#[serde(serialize_with = "serialize_rfc3339")] Millis);
        assert_eq!(serde_json::to_string(&At(first)).unwrap(), "null");
        // Durations between orders and times stay far from overflow.
        assert!(parse_user_time("9999-12-31")
            .unwrap()
            .checked_sub(first)
            .is_some());
    }

    fn local(s: &str) -> Millis {
        parse_rfc3339(s.as_bytes()).unwrap().0
    }

    fn utc(z: &mut Zone, s: &str) -> String {
        format_rfc3339_ms(z.to_utc(local(s)))
    }

    #[test]
    fn zones_by_the_database() {
        let mut tokyo = Zone::parse("Asia/Tokyo").unwrap();
        assert_eq!(
            utc(&mut tokyo, "2026-11-25T01:23:14.123"),
            "2026-11-24T16:23:14.123Z"
        );
        let mut utc_zone = Zone::parse("UTC").unwrap();
        assert!(utc_zone.is_utc());
        // The database's own UTC zones are UTC too (no cost per line); a
        // zone at +00:00 only in winter is not.
        assert!(Zone::parse("Etc/UTC").unwrap().is_utc());
        assert!(Zone::from_tz(jiff::tz::TimeZone::get("Etc/UTC").unwrap(), "x".into()).is_utc());
        assert!(!Zone::parse("Europe/London").unwrap().is_utc());
        assert_eq!(
            utc(&mut utc_zone, "2026-11-24T16:23:14"),
            "2026-11-24T16:23:14.000Z"
        );
        // New York: EST in November, EDT in July.
        let mut ny = Zone::parse("America/New_York").unwrap();
        assert_eq!(
            utc(&mut ny, "2026-11-24T11:23:14"),
            "2026-11-24T16:23:14.000Z"
        );
        assert_eq!(
            utc(&mut ny, "2026-07-01T12:00:00"),
            "2026-07-01T16:00:00.000Z"
        );
        let e = Zone::parse("Mars/Olympus_Mons").unwrap_err();
        assert!(e.contains("timedatectl list-timezones"), "{e}");
    }

    #[test]
    fn a_repeated_hour_is_read_in_stream_order() {
        // 2026-11-01: New York's clocks go back from 02:00 EDT to 01:00 EST.
        let mut ny = Zone::parse("America/New_York").unwrap();
        let stream = [
            ("2026-11-01T00:59:00", "2026-11-01T04:59:00.000Z"),
            ("2026-11-01T01:10:00", "2026-11-01T05:10:00.000Z"), // first pass, EDT
            ("2026-11-01T01:59:59", "2026-11-01T05:59:59.000Z"),
            ("2026-11-01T01:58:00", "2026-11-01T05:58:00.000Z"), // a late line: still EDT
            ("2026-11-01T01:00:30", "2026-11-01T06:00:30.000Z"), // went back: EST
            ("2026-11-01T01:30:00", "2026-11-01T06:30:00.000Z"),
            ("2026-11-01T02:00:00", "2026-11-01T07:00:00.000Z"),
        ];
        for (l, want) in stream {
            assert_eq!(utc(&mut ny, l), want, "{l}");
        }
        // Alone (no earlier line), a repeated time is its first occurrence.
        let mut fresh = Zone::parse("America/New_York").unwrap();
        assert_eq!(
            utc(&mut fresh, "2026-11-01T01:30:00"),
            "2026-11-01T05:30:00.000Z"
        );
    }

    #[test]
    fn a_skipped_hour_is_moved_forward_by_the_jump() {
        // 2026-03-08: New York jumps from 02:00 EST to 03:00 EDT.
        let mut ny = Zone::parse("America/New_York").unwrap();
        assert_eq!(
            utc(&mut ny, "2026-03-08T01:59:00"),
            "2026-03-08T06:59:00.000Z"
        );
        assert_eq!(
            utc(&mut ny, "2026-03-08T02:30:00"),
            "2026-03-08T07:30:00.000Z"
        );
        assert_eq!(
            utc(&mut ny, "2026-03-08T03:30:00"),
            "2026-03-08T07:30:00.000Z"
        );
        assert_eq!(
            utc(&mut ny, "2026-03-08T04:00:00"),
            "2026-03-08T08:00:00.000Z"
        );
    }

    #[test]
    fn the_hour_cache_agrees_with_the_database_across_a_year() {
        // Every 7 minutes through 2026 in zones with whole-hour, half-hour
        // and 30-minute-DST rules: the cached path equals asking jiff.
        for name in [
            "America/New_York",
            "Europe/Paris",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
        ] {
            let mut z = Zone::parse(name).unwrap();
            let tz = jiff::tz::TimeZone::get(name).unwrap();
            let start = local("2026-01-01T00:00:00");
            for k in 0..(365 * 24 * 60 / 7) {
                let l = start + k * 7 * 60_000;
                let want = match Zone::lookup(&tz, l).unwrap() {
                    jiff::tz::AmbiguousOffset::Unambiguous { offset } => {
                        l - offset.seconds() as Millis * 1000
                    }
                    _ => continue,
                };
                assert_eq!(z.to_utc(l), want, "{name} {}", format_rfc3339_ms(l));
            }
        }
    }

    #[test]
    fn a_whole_hour_off_is_a_zone_left_unset() {
        let h = HOUR_MS;
        assert_eq!(zone_explains(9 * h + 30_000), Some(9)); // Tokyo read as UTC
        assert_eq!(zone_explains(-5 * h - 90_000), Some(-5)); // New York
        assert_eq!(zone_explains(5 * 60_000), None); // a slow relay
        assert_eq!(zone_explains(2 * h + 20 * 60_000), None); // a backlog
        assert_eq!(zone_explains(30 * h), None); // an old file replayed
    }

    #[test]
    fn old_stderr_day_of_year() {
        let d = parse_yday_time(b"329/152730").unwrap();
        // tm_yday 329 of 2026 (a common year) is 26 November.
        assert_eq!(
            format_rfc3339_ms(d.with_year(2026)),
            "2026-11-26T15:27:30.000Z"
        );
        // ...and of 2024 (leap), 25 November.
        assert_eq!(
            format_rfc3339_ms(d.with_year(2024)),
            "2024-11-25T15:27:30.000Z"
        );
        assert_eq!(
            format_rfc3339_ms(YearResolver::new(2026, Some((11, 30))).resolve(d)),
            "2026-11-26T15:27:30.000Z"
        );
        assert!(parse_yday_time(b"366/000000").is_none());
        assert!(parse_yday_time(b"049/246000").is_none());
    }

    #[test]
    fn haproxy_date() {
        let (t, n) = parse_haproxy_date(b"24/Nov/2026:16:21:15.230] x").unwrap();
        assert_eq!(n, 24);
        assert_eq!(format_rfc3339_ms(t), "2026-11-24T16:21:15.230Z");
        // The digits written by hand agree with `format!` from year 0 to
        // 9999 and past either end (which take `format!` itself).
        for t in [
            i64::MIN / 4,
            -62_167_219_200_001, // 0000-01-01 minus 1 ms
            -62_167_219_200_000,
            -1,
            0,
            1_795_478_400_123,
            253_402_300_799_999, // 9999-12-31T23:59:59.999
            253_402_300_800_000,
            i64::MAX / 4,
        ]
        .into_iter()
        .chain((0..2000).map(|k| k * 7_919_999_999_977 - 60_000_000_000_000))
        {
            let (y, m, d) = civil_from_days(t.div_euclid(86_400_000));
            let ms = t.rem_euclid(86_400_000);
            let want = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                ms / 3_600_000,
                ms / 60_000 % 60,
                ms / 1000 % 60,
                ms % 1000
            );
            assert_eq!(format_rfc3339_ms(t), want, "{t}");
        }
        let (t, _) = parse_haproxy_date(b"06/Feb/2009:12:14:14 +0100").unwrap();
        assert_eq!(format_rfc3339_ms(t), "2009-02-06T12:14:14.000Z");
        assert!(parse_haproxy_date(b"32/Nov/2026:16:21:15.230").is_none());
        assert!(parse_haproxy_date(b"24/Foo/2026:16:21:15.230").is_none());
    }

    #[test]
    fn fractions_of_any_length() {
        for (f, want) in [
            (&b"230] x"[..], (230, 3)),
            (b"230", (230, 3)),
            (b"2]", (200, 1)),
            (b"23]", (230, 2)),
            (b"2345]", (234, 4)),
            (b"123456+00:00", (123, 6)),
            (b"]", (0, 0)),
            (b"", (0, 0)),
            (b"23x", (230, 2)),
        ] {
            assert_eq!(fraction_ms(f), want, "{}", String::from_utf8_lossy(f));
        }
    }

    /// The last second read is kept per thread: a hit, a miss, a date that
    /// differs in one byte and a bad date after a good one all read as
    /// parsed afresh.
    #[test]
    fn the_second_kept_never_changes_an_answer() {
        let run = || {
            let mut got = Vec::new();
            for d in [
                &b"24/Nov/2026:16:21:15.230"[..],
                b"24/Nov/2026:16:21:15.231",
                b"24/Nov/2026:16:21:15",
                b"24/Nov/2026:16:21:16.001",
                b"24/Nov/2026:16:21:6X.001",
                b"24/Nov/2026:16:21:16.002",
                b"25/Nov/2026:16:21:16.002",
                b"\0\0/Nov/2026:16:21:16.002",
                &[0u8; 24],
            ] {
                got.push(parse_haproxy_date(d));
            }
            for d in [
                &b"Nov 24 16:21:15 lb1"[..],
                b"Nov 24 16:21:15.250 lb1",
                b"Nov 24 16:21:16 lb1",
                b"Nov 24 16:21:6X lb1",
                b"Nov  4 16:21:16 lb1",
                b"Nov 24 16:21:16 lb1",
                &[0u8; 20],
            ] {
                got.push(parse_rfc3164_date(d).map(|(d, n)| (d.with_year(2026), n)));
            }
            got
        };
        let first = run();
        assert_eq!(first, run(), "the same answers with the caches warm");
        let at = |k: usize| first[k].map(|(t, n)| (format_rfc3339_ms(t), n));
        assert_eq!(at(0), Some(("2026-11-24T16:21:15.230Z".into(), 24)));
        assert_eq!(at(1), Some(("2026-11-24T16:21:15.231Z".into(), 24)));
        assert_eq!(at(2), Some(("2026-11-24T16:21:15.000Z".into(), 20)));
        assert_eq!(first[4], None);
        assert_eq!(first[6].unwrap().0 - first[5].unwrap().0, 86_400_000);
        assert_eq!((first[7], first[8]), (None, None));
        assert_eq!(at(9), Some(("2026-11-24T16:21:15.000Z".into(), 15)));
        assert_eq!(at(10), Some(("2026-11-24T16:21:15.250Z".into(), 19)));
        assert_eq!(first[12], None);
        assert_eq!(first[14].unwrap().0 - first[13].unwrap().0, 20 * 86_400_000);
        assert_eq!(first[15], None);
        // Each against a thread with cold caches.
        for (k, want) in first.iter().enumerate() {
            let alone = std::thread::spawn(move || run()[k]).join().unwrap();
            assert_eq!(alone, *want, "{k}");
        }
    }

    #[test]
    fn rfc3339_forms() {
        let want = "2026-11-24T16:21:13.123Z";
        for s in [
            "2026-11-24T16:21:13.123456+00:00",
            "2026-11-24T17:21:13.123+01:00",
            "2026-11-24T16:21:13.123Z",
            "2026-11-24T11:21:13.123-0500",
        ] {
            let (t, n) = parse_rfc3339(s.as_bytes()).unwrap();
            assert_eq!(n, s.len(), "{s}");
            assert_eq!(format_rfc3339_ms(t), want, "{s}");
        }
    }

    #[test]
    fn rfc3164_padded_day() {
        let (d, n) = parse_rfc3164_date(b"Nov  4 09:01:02 host").unwrap();
        assert_eq!((d.month, d.day, n), (11, 4, 15));
        assert_eq!(
            format_rfc3339_ms(d.with_year(2026)),
            "2026-11-04T09:01:02.000Z"
        );
        assert!(parse_rfc3164_date(b"Nov 44 09:01:02 host").is_none());
    }

    #[test]
    fn civil_roundtrip() {
        for days in [-1000i64, 0, 1, 59, 365, 10957, 20416, 100000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn year_rollover() {
        let mut r = YearResolver::new(2027, Some((1, 2)));
        // No anchor: December is after the reference date, so last year.
        let dec = NoYear {
            month: 12,
            day: 31,
            ms_of_day: 0,
        };
        let jan = NoYear {
            month: 1,
            day: 1,
            ms_of_day: 0,
        };
        assert!(format_rfc3339_ms(r.resolve(dec)).starts_with("2026-12-31"));
        assert!(format_rfc3339_ms(r.resolve(jan)).starts_with("2027-01-01"));
        let mut r = YearResolver::new(2000, None);
        r.observe(parse_haproxy_date(b"31/Dec/2026:23:59:59.000").unwrap().0);
        assert!(format_rfc3339_ms(r.resolve(jan)).starts_with("2027-01-01"));
    }

    #[test]
    fn user_times() {
        assert_eq!(
            parse_user_time("2026-11-24T16:21:00Z"),
            parse_user_time("24/Nov/2026:16:21:00")
        );
        assert!(parse_user_time("2026-11-24").is_some());
        assert!(parse_user_time("yesterday").is_none());
    }
}

/// [`parse_duration`] for what must be more than zero (a commit interval,
/// an age to retain).
pub fn parse_positive_duration(s: &str) -> Result<Millis, String> {
    match parse_duration(s)? {
        0 => Err(format!("`{s}` must be more than zero")),
        ms => Ok(ms),
    }
}

/// A duration as people write it in flags, rule files and the config file:
/// a whole number and a unit, `500ms`, `30s`, `10m`, `2h`, `30d`. The one
/// parser of the crate; zero is allowed (callers that need more say so).
/// The error says what to write instead.
pub fn parse_duration(s: &str) -> Result<Millis, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: use a number and d, h, m, s or ms (30d)"))?;
    let unit_ms = match unit {
        "d" => 86_400_000,
        "h" => 3_600_000,
        "m" => 60_000,
        "s" => 1000,
        "ms" => 1,
        _ => return Err(format!("`{s}`: the unit must be d, h, m, s or ms (30d)")),
    };
    n.checked_mul(unit_ms)
        .ok_or_else(|| format!("`{s}` is out of range"))
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;

    #[test]
    fn durations_as_written() {
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("30s"), Ok(30_000));
        assert_eq!(parse_duration("10m"), Ok(600_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000));
        assert_eq!(parse_duration("30d"), Ok(2_592_000_000));
        assert_eq!(parse_duration("0s"), Ok(0));
        for bad in [
            "",
            "10",
            "ten minutes",
            "10 m",
            "-5s",
            "5w",
            "99999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
