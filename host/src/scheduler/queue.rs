//! The due-time queue: one binary heap of `(due, generation, monitor id)` for every monitor,
//! plus each monitor's current slot. Removing or moving a monitor earlier bumps its generation
//! so older heap entries are recognised as stale and skipped; moving it later only updates the
//! slot (the old entry is re-queued at the new time when it surfaces), so frequent pings cost
//! no heap growth.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Slot {
    due: Instant,
    generation: u64,
}

/// Due times of every scheduled monitor.
#[derive(Debug, Default)]
pub(super) struct DueQueue {
    heap: BinaryHeap<Reverse<(Instant, u64, i64)>>,
    slots: HashMap<i64, Slot>,
    generation: u64,
}

impl DueQueue {
    /// Schedules `id` at `due`, replacing any earlier schedule of it.
    pub fn set(&mut self, id: i64, due: Instant) {
        if let Some(slot) = self.slots.get_mut(&id)
            && due >= slot.due
        {
            // Later (or the same): the queued entry surfaces first and is re-queued then.
            slot.due = due;
            return;
        }
        self.generation += 1;
        let generation = self.generation;
        self.slots.insert(id, Slot { due, generation });
        self.heap.push(Reverse((due, generation, id)));
        self.compact();
    }

    /// Takes `id` out of the queue.
    pub fn remove(&mut self, id: i64) -> bool {
        self.slots.remove(&id).is_some()
    }

    /// When `id` is due, if it is scheduled.
    #[cfg(test)]
    pub fn due_of(&self, id: i64) -> Option<Instant> {
        self.slots.get(&id).map(|s| s.due)
    }

    /// Monitors scheduled.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The earliest time something may be due (never later than the real earliest).
    pub fn next_wake(&mut self) -> Option<Instant> {
        while let Some(Reverse((due, generation, id))) = self.heap.peek().copied() {
            if self.is_current(id, generation) {
                return Some(due);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes the next monitor due at or before `now` out of the queue, with its due time.
    pub fn pop_due(&mut self, now: Instant) -> Option<(i64, Instant)> {
        while let Some(Reverse((due, generation, id))) = self.heap.peek().copied() {
            if due > now {
                return None;
            }
            self.heap.pop();
            let Some(slot) = self.slots.get(&id).copied() else {
                continue; // removed
            };
            if slot.generation != generation {
                continue; // superseded by an earlier schedule
            }
            if slot.due > due {
                // Moved later: queue it again at its real time.
                self.heap.push(Reverse((slot.due, generation, id)));
                continue;
            }
            self.slots.remove(&id);
            return Some((id, due));
        }
        None
    }

    fn is_current(&self, id: i64, generation: u64) -> bool {
        self.slots
            .get(&id)
            .is_some_and(|s| s.generation == generation)
    }

    /// Drops stale heap entries once they outnumber live ones.
    fn compact(&mut self) {
        if self.heap.len() > 2 * self.slots.len() + 1024 {
            let slots = &self.slots;
            self.heap
                .retain(|Reverse((_, g, id))| slots.get(id).is_some_and(|s| s.generation == *g));
        }
    }

    #[cfg(test)]
    fn heap_len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn drain(q: &mut DueQueue, now: Instant) -> Vec<i64> {
        std::iter::from_fn(|| q.pop_due(now).map(|(id, _)| id)).collect()
    }

    #[test]
    fn pops_in_due_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut q = DueQueue::default();
        q.set(3, t0 + Duration::from_secs(3));
        q.set(1, t0 + Duration::from_secs(1));
        q.set(2, t0 + Duration::from_secs(2));
        assert_eq!(q.next_wake(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(q.pop_due(t0), None);
        assert_eq!(drain(&mut q, t0 + Duration::from_secs(2)), vec![1, 2]);
        assert_eq!(q.len(), 1);
        assert_eq!(drain(&mut q, t0 + Duration::from_secs(9)), vec![3]);
        assert_eq!(q.next_wake(), None);
    }

    #[test]
    fn removed_monitors_never_fire() {
        let t0 = Instant::now();
        let mut q = DueQueue::default();
        q.set(1, t0);
        q.set(2, t0);
        assert!(q.remove(1));
        assert!(!q.remove(1));
        assert_eq!(drain(&mut q, t0), vec![2]);
        // Removed and scheduled again: only the new schedule counts.
        q.set(5, t0 + Duration::from_secs(1));
        q.remove(5);
        q.set(5, t0 + Duration::from_secs(4));
        assert_eq!(
            drain(&mut q, t0 + Duration::from_secs(2)),
            Vec::<i64>::new()
        );
        assert_eq!(drain(&mut q, t0 + Duration::from_secs(4)), vec![5]);
    }

    #[test]
    fn moving_earlier_or_later_fires_once_at_the_new_time() {
        let t0 = Instant::now();
        let mut q = DueQueue::default();
        q.set(1, t0 + Duration::from_secs(10));
        q.set(1, t0 + Duration::from_secs(2)); // earlier
        assert_eq!(q.next_wake(), Some(t0 + Duration::from_secs(2)));
        q.set(1, t0 + Duration::from_secs(5)); // later: lazy
        assert_eq!(q.due_of(1), Some(t0 + Duration::from_secs(5)));
        assert_eq!(
            drain(&mut q, t0 + Duration::from_secs(3)),
            Vec::<i64>::new()
        );
        assert_eq!(
            q.pop_due(t0 + Duration::from_secs(5)).map(|(id, _)| id),
            Some(1)
        );
        assert_eq!(
            drain(&mut q, t0 + Duration::from_secs(60)),
            Vec::<i64>::new()
        );
    }

    #[test]
    fn moving_later_many_times_does_not_grow_the_heap() {
        let t0 = Instant::now();
        let mut q = DueQueue::default();
        for i in 0..10_000u64 {
            q.set(7, t0 + Duration::from_millis(i));
        }
        assert_eq!(q.heap_len(), 1);
        // Earlier moves create stale entries, which compaction bounds.
        for i in (0..10_000u64).rev() {
            q.set(8, t0 + Duration::from_millis(i));
        }
        assert!(q.heap_len() <= 2 * q.len() + 1025, "{}", q.heap_len());
        assert_eq!(drain(&mut q, t0 + Duration::from_secs(20)), vec![8, 7]);
    }
}
