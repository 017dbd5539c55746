//! Which segments a partition opened after a crash recovers, and what it does with a
//! sealed segment that lost records (Kafka's `LogLoader`): the walk of a segment's bytes
//! is the segment's own (`segment::scan`).

use super::*;

/// Opens the segments of `dir` with these base offsets, in order. After a clean shutdown
/// (`recovery_point` None) none is recovered; after a crash, as in Kafka, every segment
/// with records at or past the recovery point is, the ones below it having been synced
/// after they rolled (without a checkpoint, the point is the lowest offset: every
/// segment). A recovered sealed segment that ends below its successor's base lost
/// records: the log ends there, and the later segments go.
pub(super) fn open_segments(
    dir: &Path,
    bases: &[i64],
    recovery_point: Option<i64>,
    config: &LogConfig,
    handles: &Arc<SegmentHandles>,
) -> Result<Vec<Arc<Segment>>, StorageError> {
    let interval = config.index_interval_bytes;
    let mut segments = Vec::with_capacity(bases.len().max(1));
    for (i, &base) in bases.iter().enumerate() {
        let path = dir.join(crate::storage::segment_file_name(base, "log"));
        let successor = bases.get(i + 1).copied();
        // After a crash, as in Kafka, every segment with records at or past the
        // recovery point is recovered; the ones below it were synced after they
        // rolled. Without a checkpoint that is every segment.
        let recover = recovery_point.is_some_and(|rp| successor.is_none_or(|next| next > rp));
        let segment = match successor {
            None => Segment::open(
                handles,
                dir,
                &path,
                base,
                active_role(config, 0),
                !recover,
                interval,
            )?,
            Some(_) if !recover => {
                Segment::open(handles, dir, &path, base, Role::Sealed, true, interval)?
            }
            Some(next) => {
                // Recovered as a writable segment, so that its indexes can be rebuilt
                // in place; sealed again when it is whole.
                let role = active_role(config, 0);
                let s = Segment::open(handles, dir, &path, base, role, false, interval)?;
                // A cleaned segment that ends in a hole (its last records were
                // compacted away) is whole and ends below its successor.
                let hole = s.is_whole() && s.next_offset() < next;
                if s.next_offset() != next && !hole {
                    // Records below its successor's base are gone: later segments
                    // would leave a gap, so the log ends here, as Kafka truncates.
                    tracing::warn!(
                        segment = %path.display(),
                        next_offset = s.next_offset(),
                        removed_segments = bases.len() - i - 1,
                        "a sealed segment lost records in the crash: the log is cut there"
                    );
                    for &later in &bases[i + 1..] {
                        Segment::remove_files(dir, later)?;
                    }
                    segments.push(Arc::new(s));
                    break;
                }
                s.finish_time_index(&RealIo)?;
                s.trim()?;
                drop(s);
                let sealed =
                    Segment::open(handles, dir, &path, base, Role::Sealed, true, interval)?;
                sealed.set_synced_size(0);
                sealed
            }
        };
        if recover {
            tracing::info!(segment = %path.display(), next_offset = segment.next_offset(), "recovered segment");
        }
        segments.push(Arc::new(segment));
    }
    Ok(segments)
}
