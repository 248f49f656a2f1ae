//! Which servers changed since each reader last looked.
//!
//! Two readers follow the engine's changes, each at its own pace: the
//! store (the rows its commit writes) and `/metrics` (the series it
//! updates). Both must cost what changed, not what exists: with 100,000
//! servers known, a look at every one of them is what a commit or a scrape
//! cannot afford. So where a request or a health event is applied, its
//! server is listed once for each reader that has not listed it yet (a bit
//! per reader, kept beside the server), and each reader takes its list.

/// Who takes the lists of changed servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// The store's writer: always listed (an engine without a store lists
    /// each server at most once, so the list stays bounded).
    Store = 0,
    /// The `/metrics` registry of `listen`: listed once
    /// [`Touched::follow`] asked for it.
    Metrics = 1,
}

impl Reader {
    /// This reader's bit in a server's flags.
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The lists of changed servers, one per [`Reader`] that follows.
#[derive(Debug)]
pub struct Touched<T> {
    /// The readers that follow (bits of [`Reader::bit`]).
    readers: u8,
    lists: [Vec<T>; 2],
}

impl<T> Default for Touched<T> {
    fn default() -> Self {
        Touched {
            readers: Reader::Store.bit(),
            lists: [Vec::new(), Vec::new()],
        }
    }
}

impl<T: Clone> Touched<T> {
    /// `reader` follows from now on (what changed before is for it to read
    /// whole, once).
    pub fn follow(&mut self, reader: Reader) {
        self.readers |= reader.bit();
    }

    /// A server changed: it is listed for each following reader whose bit
    /// is not set in `flags` (the server's own), and the bits are set. The
    /// common case, listed already, is one test.
    #[inline]
    pub fn mark(&mut self, flags: &mut u8, item: impl FnOnce() -> T) {
        let missing = self.readers & !*flags;
        if missing == 0 {
            return;
        }
        *flags |= missing;
        let item = item();
        if missing & Reader::Metrics.bit() != 0 {
            self.lists[Reader::Metrics as usize].push(item.clone());
        }
        if missing & Reader::Store.bit() != 0 {
            self.lists[Reader::Store as usize].push(item);
        }
    }

    /// What changed since `reader` last took its list. The caller clears
    /// `reader`'s bit in the flags of each server returned.
    pub fn take(&mut self, reader: Reader) -> Vec<T> {
        std::mem::take(&mut self.lists[reader as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reader_gets_each_change_once_at_its_own_pace() {
        let mut t = Touched::<usize>::default();
        let mut flags = [0u8; 3];
        t.mark(&mut flags[0], || 0);
        // Metrics did not follow yet: only the store lists it.
        t.follow(Reader::Metrics);
        t.mark(&mut flags[0], || 0);
        t.mark(&mut flags[1], || 1);
        t.mark(&mut flags[1], || 1);
        assert_eq!(t.take(Reader::Store), vec![0, 1]);
        for i in [0, 1] {
            flags[i] &= !Reader::Store.bit();
        }
        assert_eq!(t.take(Reader::Metrics), vec![0, 1]);
        for i in [0, 1] {
            flags[i] &= !Reader::Metrics.bit();
        }
        t.mark(&mut flags[2], || 2);
        t.mark(&mut flags[0], || 0);
        assert_eq!(t.take(Reader::Store), vec![2, 0]);
        assert_eq!(t.take(Reader::Metrics), vec![2, 0]);
        assert!(t.take(Reader::Store).is_empty());
    }
}
