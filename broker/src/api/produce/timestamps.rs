//! Kafka's bounds on CreateTime timestamps (`message.timestamp.before.max.ms`,
//! `message.timestamp.after.max.ms`): a record whose timestamp is further from the
//! broker's clock than they allow is refused with INVALID_TIMESTAMP and a record error
//! per such record, as Kafka's LogValidator refuses it; the whole record set is refused.
//!
//! Cost: a batch's header carries its largest timestamp, so the upper bound needs no
//! record read while every batch is within it. Records are read (decompressed when their
//! batch is) only for a batch whose largest timestamp is too late, to name the records
//! at fault, and on a topic that bounds the age (`before.max.ms` set below its default of
//! Long.MAX_VALUE), whose oldest record no header tells. A header that understates its
//! largest timestamp is not caught: the broker stores and indexes that header as sent.

use sluice_protocol::error_code::ErrorCode;

use super::{Refused, MAX_CHECKED_RECORDS_BYTES, MAX_RECORD_ERRORS};
use crate::error::Refusal;
use crate::storage::ValidRecords;
use crate::topic_config::TimestampBounds;

/// Kafka's "no timestamp", which no bound applies to.
const NO_TIMESTAMP: i64 = -1;

/// Refuses the record set when a record's timestamp is outside `bounds` around `now`.
pub(super) fn check<B: AsRef<[u8]>>(
    valid: &ValidRecords<B>,
    bounds: TimestampBounds,
    now: i64,
) -> Result<(), Refused> {
    let (low, high) = bounds.range(now);
    let ages_bounded = bounds.before_max_ms != i64::MAX;
    let mut errors = Vec::new();
    for b in valid.batches() {
        let late = b.max_timestamp() > high;
        if !ages_bounded && !late {
            continue;
        }
        let records = b.records(MAX_CHECKED_RECORDS_BYTES).map_err(|e| {
            Refusal::new(
                ErrorCode::CORRUPT_MESSAGE,
                format!("the records of a batch cannot be read: {e}"),
            )
        })?;
        let found = errors.len();
        for (index, r) in records.iter().enumerate() {
            let r = r.map_err(|e| Refusal::new(ErrorCode::CORRUPT_MESSAGE, e.to_string()))?;
            let timestamp = records.timestamp(&r);
            if timestamp != NO_TIMESTAMP
                && !(low..=high).contains(&timestamp)
                && errors.len() < MAX_RECORD_ERRORS
            {
                errors.push((index as i32, out_of_range(timestamp, r.offset_delta(), low, high)));
            }
        }
        // A header whose largest timestamp is too late while no record is: it would be
        // stored and indexed as sent, so it is refused as well.
        if late && errors.len() == found && errors.len() < MAX_RECORD_ERRORS {
            errors.push((0, out_of_range(b.max_timestamp(), 0, low, high)));
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(Refused {
        refusal: Refusal::new(
            ErrorCode::INVALID_TIMESTAMP,
            "One or more records have been rejected due to invalid timestamp",
        ),
        record_errors: errors,
    })
}

/// Kafka's record error for a timestamp out of range.
fn out_of_range(timestamp: i64, offset: i32, low: i64, high: i64) -> String {
    format!(
        "Timestamp {timestamp} of message with offset {offset} is out of range. The timestamp should be within [{low}, {high}]"
    )
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sluice_protocol::record::{BatchBuilder, Compression};

    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn records(batches: &[&[i64]], compression: Compression) -> ValidRecords<Bytes> {
        let mut out = Vec::new();
        for timestamps in batches {
            let mut b = BatchBuilder::new(compression);
            for &t in *timestamps {
                b.append(t, Some(b"k"), Some(b"v"), &[]).unwrap();
            }
            out.extend(b.build().unwrap());
        }
        ValidRecords::new(Bytes::from(out)).unwrap()
    }

    fn bounds(before_max_ms: i64, after_max_ms: i64) -> TimestampBounds {
        TimestampBounds { before_max_ms, after_max_ms }
    }

    fn refused(r: Result<(), Refused>) -> Vec<i32> {
        match r {
            Ok(()) => vec![],
            Err(e) => {
                assert_eq!(e.refusal.code, ErrorCode::INVALID_TIMESTAMP);
                e.record_errors.iter().map(|(i, _)| *i).collect()
            }
        }
    }

    #[test]
    fn kafkas_defaults_refuse_only_records_over_an_hour_ahead() {
        let d = TimestampBounds::default();
        let ok = records(&[&[0, NOW - 10 * 365 * 86_400_000, NOW + 3_600_000]], Compression::None);
        assert_eq!(refused(check(&ok, d, NOW)), Vec::<i32>::new());
        let late = records(&[&[NOW], &[NOW, NOW + 3_600_001, NOW]], Compression::None);
        assert_eq!(refused(check(&late, d, NOW)), vec![1], "the second record of the second batch");
    }

    #[test]
    fn an_age_bound_reads_every_record_compressed_or_not() {
        for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
            // The first record is the newest: no header tells the oldest.
            let set = records(&[&[NOW, NOW - 5000, NOW - 999, -1]], compression);
            assert_eq!(refused(check(&set, bounds(1000, 0), NOW)), vec![1], "{compression:?}");
            assert_eq!(refused(check(&set, bounds(5000, 0), NOW)), Vec::<i32>::new());
        }
    }

    #[test]
    fn the_message_names_the_range() {
        let set = records(&[&[NOW + 10]], Compression::None);
        let e = check(&set, bounds(0, 0), NOW).err().unwrap();
        assert_eq!(
            e.refusal.message.as_deref(),
            Some("One or more records have been rejected due to invalid timestamp")
        );
        assert_eq!(
            e.record_errors[0].1,
            format!("Timestamp {} of message with offset 0 is out of range. The timestamp should be within [{NOW}, {NOW}]", NOW + 10)
        );
    }
}
