//! Times on the command line: RFC 3339 (or milliseconds since the epoch) in, and Kafka's
//! perf-tool date format out, in UTC, with the civil-calendar arithmetic of Howard
//! Hinnant's `days_from_civil` so no date crate is needed.

/// Milliseconds since the epoch of `s`: plain milliseconds (`1714000000000`), or RFC 3339
/// (`2024-05-06T07:08:09.123Z`, `2024-05-06T09:08:09+02:00`); a space may stand for the
/// `T`, and a time without a zone (or a date alone) is UTC.
///
/// # Errors
/// A message naming what is wrong, for clap to show.
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let bad = |why: &str| format!("'{s}' is not milliseconds or an RFC 3339 time: {why}");
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, String> {
        let part = b.get(from..from + len).ok_or_else(|| bad("it ends too soon"))?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad("expected digits"));
        }
        Ok(part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, want: &[u8]| -> Result<(), String> {
        match b.get(at) {
            Some(c) if want.contains(c) => Ok(()),
            _ => Err(bad(&format!("expected '{}' at character {}", want[0] as char, at + 1))),
        }
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    sep(4, b"-")?;
    sep(7, b"-")?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad("no such date"));
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    if b.len() == 10 {
        return Ok(ms);
    }
    sep(10, b"Tt ")?;
    sep(13, b":")?;
    sep(16, b":")?;
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad("no such time of day"));
    }
    ms += ((hour * 60 + minute) * 60 + second) * 1000;
    let mut at = 19;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let digits = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad("expected digits after '.'"));
        }
        // Milliseconds: the first three digits, padded; finer digits are dropped.
        let frac = num(at, digits.min(3))?;
        ms += frac * 10_i64.pow(3 - digits.min(3) as u32);
        at += digits;
    }
    match b.get(at) {
        None | Some(b'Z' | b'z') if at + 1 >= b.len() => Ok(ms),
        Some(sign @ (b'+' | b'-')) if b.len() == at + 6 => {
            sep(at + 3, b":")?;
            let offset = (num(at + 1, 2)? * 60 + num(at + 4, 2)?) * 60_000;
            Ok(if *sign == b'+' { ms - offset } else { ms + offset })
        }
        _ => Err(bad("expected Z or an offset such as +02:00 after the time")),
    }
}

/// `ms` as Kafka's perf tools print times (`yyyy-MM-dd HH:mm:ss:SSS`), in UTC.
pub fn format_utc(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}:{s:02}:{milli:03}")
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01: the inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3339_and_milliseconds() {
        // 2024-05-06T07:08:09.123Z, computed independently: `date -u -d ... +%s%3N`.
        let t = 1_714_979_289_123;
        assert_eq!(parse_datetime("1714979289123"), Ok(t));
        assert_eq!(parse_datetime("2024-05-06T07:08:09.123Z"), Ok(t));
        assert_eq!(parse_datetime("2024-05-06t07:08:09.123456z"), Ok(t));
        assert_eq!(parse_datetime("2024-05-06 09:08:09.123+02:00"), Ok(t));
        assert_eq!(parse_datetime("2024-05-06T02:38:09.123-04:30"), Ok(t));
        assert_eq!(parse_datetime("2024-05-06T07:08:09.1Z"), Ok(t - 23));
        assert_eq!(parse_datetime("2024-05-06T07:08:09"), Ok(t - 123));
        assert_eq!(parse_datetime("1970-01-01"), Ok(0));
        assert_eq!(parse_datetime("1969-12-31T23:59:59.999Z"), Ok(-1));
        assert_eq!(parse_datetime("2000-02-29T00:00:00Z"), Ok(951_782_400_000));
    }

    #[test]
    fn malformed_times_are_refused_with_the_reason() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2023-02-29",
            "2024-05-06T25:00:00Z",
            "2024-05-06T07:08",
            "2024-05-06T07:08:09+0200",
            "2024-05-06T07:08:09.Z",
        ] {
            let e = parse_datetime(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{bad}: {e}");
        }
    }

    #[test]
    fn kafka_perf_date_format_in_utc() {
        assert_eq!(format_utc(1_714_979_289_123), "2024-05-06 07:08:09:123");
        assert_eq!(format_utc(0), "1970-01-01 00:00:00:000");
        assert_eq!(format_utc(-1), "1969-12-31 23:59:59:999");
        for days in [-800_000, -1, 0, 59, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
