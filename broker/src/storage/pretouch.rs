//! The pre-toucher: a background thread that reserves blocks and faults in page-cache
//! pages ahead of each busy active segment's write position.
//!
//! A store into a mapped page the file has never had makes the kernel allocate and zero
//! a page-cache page on the writer's thread; measured here that was most of an append's
//! time (zeroing in `filemap_fault`). With this thread doing it ahead, the append path is
//! the CRC check and one memcpy into pages that are already there. When the thread falls
//! behind (or the disk is full), the writer reserves for itself, so correctness never
//! depends on it.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock, Weak};

use super::io::FileIo;
use super::segment::Segment;

/// A segment that wants blocks ahead of its writer, and the I/O to get them with.
type Request = (Weak<Segment>, Arc<dyn FileIo>);

fn sender() -> Option<&'static SyncSender<Request>> {
    static SENDER: OnceLock<Option<SyncSender<Request>>> = OnceLock::new();
    SENDER
        .get_or_init(|| {
            let (tx, rx) = sync_channel::<Request>(4096);
            std::thread::Builder::new()
                .name("sluice-pretouch".into())
                .spawn(move || {
                    for (segment, io) in rx {
                        if let Some(segment) = segment.upgrade() {
                            segment.reserve_ahead(io.as_ref());
                        }
                    }
                })
                .map_err(|e| tracing::warn!(error = %e, "no pre-toucher thread; appends fault pages in themselves"))
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Asks the pre-toucher to reserve ahead of `segment`. Never blocks: when the queue is
/// full the request is dropped and the writer reserves for itself.
pub(crate) fn request(segment: &Arc<Segment>, io: &Arc<dyn FileIo>) -> bool {
    let Some(tx) = sender() else { return false };
    match tx.try_send((Arc::downgrade(segment), Arc::clone(io))) {
        Ok(()) => true,
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
    }
}
