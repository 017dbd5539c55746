//! Times on the command line: RFC 3339 (or milliseconds since the epoch) in, and Java's
//! SimpleDateFormat patterns (Kafka's perf tools' `--date-format`) out, in UTC, with the
//! civil-calendar arithmetic of Howard Hinnant's `days_from_civil` so no date crate is
//! needed.

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

/// Kafka's perf tools' default `--date-format`.
pub const KAFKA_DATE_FORMAT: &str = "yyyy-MM-dd HH:mm:ss:SSS";

/// A `java.text.SimpleDateFormat` pattern (Kafka's perf tools' `--date-format`), printed
/// in UTC. Letters: G y M d H k K h m s S E u D a z Z X, with Java's widths (`MMM` a short
/// month name, `MMMM` the full one, `yy` two digits, `S` milliseconds); text in single
/// quotes (`''` a quote) and every non-letter is printed as it is. The week-based letters
/// (`w W F Y`) depend on a locale and are refused, as are letters Java does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateFormat(Vec<Field>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Text(String),
    /// A pattern letter repeated `n` times.
    Letter(char, usize),
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] =
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

impl DateFormat {
    /// Parses `pattern`.
    ///
    /// # Errors
    /// A message naming the letter or the unclosed quote, for clap to show.
    pub fn parse(pattern: &str) -> Result<DateFormat, String> {
        let mut fields = Vec::new();
        let mut chars = pattern.chars().peekable();
        let mut text = String::new();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    text.push('\'');
                    continue;
                }
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            text.push('\'');
                        }
                        Some('\'') => break,
                        Some(c) => text.push(c),
                        None => return Err(format!("'{pattern}': a quote is not closed")),
                    }
                }
            } else if c.is_ascii_alphabetic() {
                if !"GyMdHkKhmsSEuDazZX".contains(c) {
                    return Err(format!("'{pattern}': the pattern letter '{c}' is not supported"));
                }
                let mut n = 1;
                while chars.peek() == Some(&c) {
                    chars.next();
                    n += 1;
                }
                if !text.is_empty() {
                    fields.push(Field::Text(std::mem::take(&mut text)));
                }
                fields.push(Field::Letter(c, n));
            } else {
                text.push(c);
            }
        }
        if !text.is_empty() {
            fields.push(Field::Text(text));
        }
        Ok(DateFormat(fields))
    }

    /// `ms` since the epoch, in UTC.
    pub fn format(&self, ms: i64) -> String {
        let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
        let (y, mo, d) = civil_from_days(days);
        let (h, min, sec, milli) =
            (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
        // 1970-01-01 was a Thursday: index 3 from Monday.
        let weekday = (days + 3).rem_euclid(7) as usize;
        let mut out = String::new();
        for field in &self.0 {
            let (c, n) = match field {
                Field::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Field::Letter(c, n) => (*c, *n),
            };
            let num = |v: i64| format!("{v:0n$}");
            let name = |full: &str| if n >= 4 { full.to_string() } else { full[..3].to_string() };
            let piece = match c {
                'G' => if y > 0 { "AD" } else { "BC" }.to_string(),
                'y' if n == 2 => format!("{:02}", y.rem_euclid(100)),
                'y' => num(y),
                'M' if n >= 3 => name(MONTHS[(mo - 1) as usize]),
                'M' => num(mo),
                'd' => num(d),
                'H' => num(h),
                'k' => num(if h == 0 { 24 } else { h }),
                'K' => num(h % 12),
                'h' => num(if h % 12 == 0 { 12 } else { h % 12 }),
                'm' => num(min),
                's' => num(sec),
                'S' => num(milli),
                'E' => name(WEEKDAYS[weekday]),
                'u' => num(weekday as i64 + 1),
                'D' => num(days - days_from_civil(y, 1, 1) + 1),
                'a' => if h < 12 { "AM" } else { "PM" }.to_string(),
                'z' => if n >= 4 { "Coordinated Universal Time" } else { "UTC" }.to_string(),
                'Z' => "+0000".to_string(),
                _ => "Z".to_string(), // 'X': ISO 8601, UTC
            };
            out.push_str(&piece);
        }
        out
    }
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
    fn simple_date_format_patterns_as_java_prints_them_in_utc() {
        // 2024-05-06T07:08:09.123Z was a Monday, day 127 of a leap year; the expected
        // strings are what java.text.SimpleDateFormat printed (Java 17, Locale.US, the
        // zone set to UTC).
        let t = 1_714_979_289_123;
        let f = |p: &str| DateFormat::parse(p).unwrap().format(t);
        assert_eq!(f("yyyy-MM-dd HH:mm:ss:SSS"), "2024-05-06 07:08:09:123");
        assert_eq!(f("yy/M/d h:mm a"), "24/5/6 7:08 AM");
        assert_eq!(f("EEE, d MMM yyyy HH:mm:ss Z"), "Mon, 6 May 2024 07:08:09 +0000");
        assert_eq!(f("EEEE MMMM dd G"), "Monday May 06 AD");
        assert_eq!(f("yyyy-MM-dd'T'HH:mm:ss.SSSX"), "2024-05-06T07:08:09.123Z");
        assert_eq!(f("D u k K z"), "127 1 7 7 UTC");
        assert_eq!(f("'o''clock' ''hh''"), "o'clock '07'");
        assert_eq!(f("S"), "123");
        assert_eq!(DateFormat::parse("HH").unwrap().format(0), "00");
        assert_eq!(DateFormat::parse("k h a").unwrap().format(0), "24 12 AM");
        assert_eq!(DateFormat::parse("E").unwrap().format(0), "Thu");
        assert!(DateFormat::parse("ww").unwrap_err().contains("'w'"));
        assert!(DateFormat::parse("q").unwrap_err().contains("'q'"));
        assert!(DateFormat::parse("'open").unwrap_err().contains("quote"));
    }

    #[test]
    fn kafka_perf_date_format_in_utc() {
        let kafka = DateFormat::parse(KAFKA_DATE_FORMAT).unwrap();
        assert_eq!(kafka.format(1_714_979_289_123), "2024-05-06 07:08:09:123");
        assert_eq!(kafka.format(0), "1970-01-01 00:00:00:000");
        assert_eq!(kafka.format(-1), "1969-12-31 23:59:59:999");
        for days in [-800_000, -1, 0, 59, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
