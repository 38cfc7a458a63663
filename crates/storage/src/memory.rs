//! Memory accounting: `Counting`, a global allocator wrapper that keeps the
//! number of bytes live in the process (Redis's `used_memory`), so
//! `maxmemory` compares against what the keyspace, client buffers and
//! everything else really hold.
//!
//! Each thread adds to its own cache-line-sized slot with a relaxed load and
//! store (one writer per slot, no locked instruction per allocation); a read
//! sums the slots. Memory freed by another thread than the one that
//! allocated it makes slots negative, which the sum absorbs. Threads beyond
//! the slot count share the last slot with an atomic add.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering::Relaxed};

const SLOTS: usize = 256;
const SHARED: usize = SLOTS - 1;
/// A thread that has not claimed its slot yet.
const UNCLAIMED: usize = usize::MAX;

#[repr(align(64))]
struct Slot(AtomicI64);

static COUNTS: [Slot; SLOTS] = [const { Slot(AtomicI64::new(0)) }; SLOTS];
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Whether a `Counting` allocator is installed (false in unit tests of
/// library crates, where `used_memory` then reads 0).
static ACTIVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

thread_local! {
    // const-initialised and without a destructor: usable from inside the
    // allocator, even while the thread is being torn down.
    static MY_SLOT: Cell<usize> = const { Cell::new(UNCLAIMED) };
}

fn add(n: i64) {
    let slot = MY_SLOT
        .try_with(|s| {
            let mut i = s.get();
            if i == UNCLAIMED {
                i = NEXT.fetch_add(1, Relaxed).min(SHARED);
                s.set(i);
            }
            i
        })
        .unwrap_or(SHARED);
    let c = &COUNTS[slot].0;
    if slot == SHARED {
        c.fetch_add(n, Relaxed);
    } else {
        c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
    }
}

/// Bytes currently allocated through the installed `Counting` allocator.
pub fn used_memory() -> u64 {
    let claimed = NEXT.load(Relaxed).min(SHARED);
    let live: i64 = COUNTS[..claimed]
        .iter()
        .chain(std::iter::once(&COUNTS[SHARED]))
        .map(|s| s.0.load(Relaxed))
        .sum();
    live.max(0) as u64
}

static PEAK: AtomicUsize = AtomicUsize::new(0);
static STARTUP: AtomicUsize = AtomicUsize::new(0);

/// The highest `used_memory` seen by this or an earlier call.
pub fn used_memory_peak() -> u64 {
    let now = used_memory() as usize;
    (PEAK.fetch_max(now, Relaxed).max(now)) as u64
}

/// Records the memory the server uses before serving anyone
/// (INFO's `used_memory_startup`).
pub fn mark_startup() {
    STARTUP.store(used_memory() as usize, Relaxed);
}

pub fn used_memory_startup() -> u64 {
    STARTUP.load(Relaxed) as u64
}

/// Whether the process allocates through `Counting`.
pub fn accounting_active() -> bool {
    ACTIVE.load(Relaxed)
}

/// Wraps an allocator and counts the bytes it hands out.
pub struct Counting<A>(pub A);

// SAFETY: every method forwards to the wrapped allocator with the caller's
// arguments unchanged, so its guarantees carry over; the bookkeeping only
// touches atomics and a const thread-local, and never allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl's comment).
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { self.0.dealloc(ptr, layout) };
        add(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

impl<A> Counting<A> {
    /// Marks accounting as live; the binary calls this first thing.
    pub fn activate(&self) {
        ACTIVE.store(true, Relaxed);
    }
}

/// Asks mimalloc to return free memory to the OS (MEMORY PURGE).
pub fn purge() {
    // SAFETY: mi_collect takes no pointers and may be called at any time
    // from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// mimalloc's statistics report (MEMORY MALLOC-STATS).
pub fn allocator_stats() -> String {
    unsafe extern "C" fn append(msg: *const libc::c_char, arg: *mut libc::c_void) {
        if msg.is_null() || arg.is_null() {
            return;
        }
        // SAFETY: mimalloc passes a NUL-terminated message, and `arg` is the
        // `&mut String` handed to mi_stats_print_out below, alive and not
        // otherwise borrowed during that call.
        unsafe {
            let text = std::ffi::CStr::from_ptr(msg).to_string_lossy();
            (*arg.cast::<String>()).push_str(&text);
        }
    }
    let mut out = String::new();
    // SAFETY: `append` matches mi_output_fun, and the pointer to `out`
    // outlives the call, which runs `append` synchronously.
    unsafe {
        libmimalloc_sys::mi_stats_print_out(Some(append), (&mut out as *mut String).cast());
    }
    out
}

/// The process's resident set size, from /proc.
pub fn rss_bytes() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        p if p > 0 => p as u64,
        _ => 4096,
    };
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sum_across_threads_and_the_wrapper_forwards() {
        let before = used_memory() as i64;
        add(1000);
        let h = std::thread::spawn(|| add(-400));
        h.join().unwrap();
        assert_eq!(used_memory() as i64 - before, 600);
        add(-600);
        assert_eq!(used_memory() as i64, before);

        // The wrapper forwards and counts (same test: the counters are
        // process-wide, so a parallel test would disturb the exact sums).
        let a = Counting(std::alloc::System);
        let before = used_memory();
        let layout = Layout::from_size_align(4096, 8).unwrap();
        // SAFETY: a non-zero-size layout; the block is freed with the same
        // layout below, after a realloc that keeps its alignment.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            assert!(used_memory() >= before + 4096);
            let q = a.realloc(p, layout, 8192);
            assert!(!q.is_null());
            a.dealloc(q, Layout::from_size_align(8192, 8).unwrap());
        }
        assert_eq!(used_memory(), before);
        assert!(rss_bytes() > 0);
        purge();
        assert!(!allocator_stats().is_empty());
    }
}
