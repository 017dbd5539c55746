//! The bound on open segments: a segment's descriptor and memory maps live in a handle
//! that this cache may close while the segment is idle; the next read or append opens it
//! again. So descriptors and maps are bounded by `sluice.log.open.segments.max`, not by
//! the number of partitions.
//!
//! What to close is chosen by random probes with a second chance: one reference bit per
//! slot, set by each use; a probed slot whose bit is set loses the bit and stays, one
//! whose bit is clear closes. A read of an open segment costs one relaxed store and a
//! lock of its own slot, never an update of a shared LRU list. The probes are random,
//! not a CLOCK hand's, because of the loop over more active segments than the bound
//! (10,003 of them under a bound of 10,000, say): CLOCK, like LRU, closes the one needed
//! next and every use misses, while a random victim keeps all but about the excess open.
//! Closing drops only the cache's reference: a reader or writer that holds the handle
//! keeps it until it is done, so a segment closes under no one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// Why a slot gave no handle.
#[derive(Debug)]
pub(crate) enum SlotError<E> {
    /// The slot was retired (its files deleted or replaced): it never opens again.
    Retired,
    /// Opening failed.
    Open(E),
}

/// Open handles, at most `max_open` of them held by their slots.
#[derive(Debug)]
pub struct HandleCache<H> {
    max_open: usize,
    /// Slots holding a handle.
    open: AtomicUsize,
    /// Handles opened since start (first opens and reopens).
    opened: AtomicU64,
    /// Slots that held a handle when they were queued.
    ring: Mutex<Ring<H>>,
}

/// The queued slots, and the state of the generator that picks the probes.
#[derive(Debug)]
struct Ring<H> {
    slots: VecDeque<Weak<Slot<H>>>,
    random: u64,
}

impl<H> Ring<H> {
    /// Takes a slot out at a random place (xorshift64*: quality enough to spread probes).
    fn take_random(&mut self) -> Option<Weak<Slot<H>>> {
        if self.slots.is_empty() {
            return None;
        }
        self.random ^= self.random >> 12;
        self.random ^= self.random << 25;
        self.random ^= self.random >> 27;
        let r = self.random.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let i = (((r >> 32) * self.slots.len() as u64) >> 32) as usize;
        self.slots.swap_remove_back(i)
    }
}

/// One segment's place in the cache: its handle while open.
#[derive(Debug)]
pub(crate) struct Slot<H> {
    cache: Arc<HandleCache<H>>,
    state: Mutex<SlotState<H>>,
    referenced: AtomicBool,
}

#[derive(Debug)]
struct SlotState<H> {
    handle: Option<Arc<H>>,
    queued: bool,
    retired: bool,
}

impl<H> HandleCache<H> {
    /// A cache that keeps at most `max_open` handles (at least one).
    pub fn new(max_open: usize) -> Arc<Self> {
        Arc::new(HandleCache {
            max_open: max_open.max(1),
            open: AtomicUsize::new(0),
            opened: AtomicU64::new(0),
            ring: Mutex::new(Ring { slots: VecDeque::new(), random: 0x9e37_79b9_7f4a_7c15 }),
        })
    }

    /// Slots holding a handle now.
    pub fn open_count(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Handles opened since start: first opens and reopens of closed slots.
    pub fn opened_total(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// The configured bound.
    pub fn max_open(&self) -> usize {
        self.max_open
    }

    /// A new slot, closed.
    pub(crate) fn slot(self: &Arc<Self>) -> Arc<Slot<H>> {
        Arc::new(Slot {
            cache: Arc::clone(self),
            state: Mutex::new(SlotState { handle: None, queued: false, retired: false }),
            referenced: AtomicBool::new(false),
        })
    }

    /// Drops the slot's handle, if it holds one, from the count of open ones.
    fn release(&self, state: &mut SlotState<H>) -> bool {
        let released = state.handle.take().is_some();
        if released {
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
        released
    }

    /// Queues a slot that just opened and closes idle ones until the bound holds again.
    fn admit(&self, slot: &Arc<Slot<H>>) {
        self.opened.fetch_add(1, Ordering::Relaxed);
        let excess = (self.open.fetch_add(1, Ordering::AcqRel) + 1).saturating_sub(self.max_open);
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let mut closed = 0;
        // Each probe of a used slot clears its bit, so a few probes find an idle one
        // (about the square root of the count when every slot was used); the budget
        // stops the search only when nearly every slot is mid-open (skipped, not waited
        // for).
        let mut budget = ring.slots.len() * 4 + 1;
        while closed < excess && budget > 0 {
            budget -= 1;
            let Some(weak) = ring.take_random() else { break };
            let Some(s) = weak.upgrade() else { continue };
            if s.referenced.swap(false, Ordering::Relaxed) {
                ring.slots.push_back(weak);
                continue;
            }
            // An opening in progress holds the slot's lock: pass it by.
            let Ok(mut state) = s.state.try_lock() else {
                ring.slots.push_back(weak);
                continue;
            };
            state.queued = false;
            if self.release(&mut state) {
                closed += 1;
            }
        }
        // Queued after the probes, which must not pick the slot that is being opened.
        {
            let mut s = slot.lock();
            if !s.queued && s.handle.is_some() {
                s.queued = true;
                ring.slots.push_back(Arc::downgrade(slot));
            }
        }
        // Slots dropped or closed elsewhere leave dead entries behind: sweep them out
        // before they outnumber the live ones.
        if ring.slots.len() > 2 * self.max_open + 64 {
            ring.slots.retain(|w| w.strong_count() > 0);
        }
    }
}

impl<H> Slot<H> {
    fn lock(&self) -> MutexGuard<'_, SlotState<H>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The open handle, or a new one from `open` (counted against the bound, which may
    /// close other idle slots). Concurrent callers wait for one opening.
    pub(crate) fn get<E>(
        self: &Arc<Self>,
        open: impl FnOnce() -> Result<H, E>,
    ) -> Result<Arc<H>, SlotError<E>> {
        self.referenced.store(true, Ordering::Relaxed);
        let handle = {
            let mut s = self.lock();
            if let Some(h) = &s.handle {
                return Ok(Arc::clone(h));
            }
            if s.retired {
                return Err(SlotError::Retired);
            }
            let h = Arc::new(open().map_err(SlotError::Open)?);
            s.handle = Some(Arc::clone(&h));
            h
        };
        self.cache.admit(self);
        Ok(handle)
    }

    /// Installs a handle opened outside the slot (the first open of a segment).
    pub(crate) fn install(self: &Arc<Self>, handle: Arc<H>) {
        let replaced = self.lock().handle.replace(handle).is_some();
        if replaced {
            return;
        }
        self.referenced.store(true, Ordering::Relaxed);
        self.cache.admit(self);
    }

    /// Closes the slot for good: nothing opens it again. After this returns no opening is
    /// under way, so its files may be deleted or replaced.
    pub(crate) fn retire(&self) {
        let mut s = self.lock();
        s.retired = true;
        self.cache.release(&mut s);
    }

    /// Whether the slot was retired.
    pub(crate) fn is_retired(&self) -> bool {
        self.lock().retired
    }

    /// Whether the slot holds a handle.
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.lock().handle.is_some()
    }
}

impl<H> Drop for Slot<H> {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        self.cache.release(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn opener(opens: &AtomicU32, id: u32) -> impl FnOnce() -> Result<u32, ()> + '_ {
        move || {
            opens.fetch_add(1, Ordering::Relaxed);
            Ok(id)
        }
    }

    #[test]
    fn the_bound_holds_and_a_closed_slot_reopens() {
        let cache = HandleCache::<u32>::new(3);
        let opens = AtomicU32::new(0);
        let slots: Vec<_> = (0..10).map(|_| cache.slot()).collect();
        for (i, s) in slots.iter().enumerate() {
            assert_eq!(*s.get(opener(&opens, i as u32)).unwrap(), i as u32);
            assert!(cache.open_count() <= 3, "open {} after {i}", cache.open_count());
        }
        assert_eq!(slots.iter().filter(|s| s.is_open()).count(), 3);
        let closed = slots.iter().position(|s| !s.is_open()).unwrap();
        assert_eq!(*slots[closed].get(opener(&opens, 100)).unwrap(), 100, "reopened by its opener");
        assert_eq!(opens.load(Ordering::Relaxed), 11);
        assert_eq!(cache.open_count(), 3);
    }

    /// Opens of `slots` while `order` uses them one after the other.
    fn opens_over(slots: &[Arc<Slot<u32>>], order: impl Iterator<Item = usize>) -> u32 {
        let opens = AtomicU32::new(0);
        for i in order {
            slots[i].get(opener(&opens, i as u32)).unwrap();
        }
        opens.load(Ordering::Relaxed)
    }

    #[test]
    fn slots_in_use_outlive_a_scan_of_idle_ones() {
        let cache = HandleCache::<u32>::new(100);
        let slots: Vec<_> = (0..1020).map(|_| cache.slot()).collect();
        // 20 slots in use between each of three passes over 1,000 others.
        let order = (0..3000).flat_map(|i| (0..20).chain([20 + i % 1000]));
        let opens = opens_over(&slots, order);
        let cold = 3000;
        assert!(opens - cold < 100, "{} reopens of the 20 slots in use", opens - cold);
        assert!(slots[..20].iter().all(|s| s.is_open()));
        assert_eq!(cache.open_count(), 100);
    }

    #[test]
    fn a_loop_over_a_few_more_slots_than_the_bound_keeps_most_open() {
        let cache = HandleCache::<u32>::new(100);
        let slots: Vec<_> = (0..110).map(|_| cache.slot()).collect();
        let laps = 20;
        let opens = opens_over(&slots, (0..laps * 110).map(|i| i % 110));
        // CLOCK (or LRU) would close the slot needed next: every use would open one.
        let uses = laps as u32 * 110;
        assert!(opens < uses / 3, "{opens} opens for {uses} uses");
        assert_eq!(cache.open_count(), 100);
    }

    #[test]
    fn a_held_handle_survives_its_slot_closing() {
        let cache = HandleCache::<String>::new(1);
        let a = cache.slot();
        let held = a.get(|| Ok::<_, ()>("a".to_owned())).unwrap();
        cache.slot().get(|| Ok::<_, ()>("b".to_owned())).unwrap();
        assert!(!a.is_open());
        assert_eq!(*held, "a");
    }

    #[test]
    fn a_retired_slot_never_opens_and_a_failed_open_counts_nothing() {
        let cache = HandleCache::<u32>::new(4);
        let s = cache.slot();
        assert!(matches!(s.get(|| Err::<u32, _>("EMFILE")), Err(SlotError::Open("EMFILE"))));
        assert_eq!(cache.open_count(), 0);
        s.get(|| Ok::<_, ()>(1)).unwrap();
        s.retire();
        assert_eq!(cache.open_count(), 0);
        assert!(matches!(s.get(|| Ok::<_, ()>(2)), Err(SlotError::Retired)));
        let t = cache.slot();
        t.get(|| Ok::<_, ()>(3)).unwrap();
        drop(t);
        assert_eq!(cache.open_count(), 0, "a dropped slot gives its place back");
    }

    #[test]
    fn concurrent_gets_stay_bounded_and_open_once_per_closing() {
        let cache = HandleCache::<u32>::new(4);
        let slots: Vec<_> = (0..16).map(|_| cache.slot()).collect();
        let opens = AtomicU32::new(0);
        std::thread::scope(|scope| {
            for t in 0..4 {
                let (slots, opens) = (&slots, &opens);
                scope.spawn(move || {
                    for i in 0..2000 {
                        let s = &slots[(i * 7 + t * 3) % slots.len()];
                        let h = s.get(opener(opens, (i % 16) as u32)).unwrap();
                        assert!(*h < 16);
                    }
                });
            }
        });
        assert!(cache.open_count() <= 4);
        assert_eq!(slots.iter().filter(|s| s.is_open()).count(), cache.open_count());
    }
}
