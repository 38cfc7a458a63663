//! A monotonic clock read from the CPU's time-stamp counter (x86_64).
//!
//! Every command reads the clock once; `clock_gettime`'s vDSO fences its
//! `rdtsc` (`lfence` waits for outstanding loads), which made it 3-6% of a
//! pipelined command's CPU. Here a plain `rdtsc` is turned into
//! CLOCK_MONOTONIC nanoseconds along a line that each worker tick
//! (`calibrate_clock`) measures against the real clock.
//!
//! Invariants:
//! - Only used where the kernel itself trusts the TSC: `constant_tsc` and
//!   `nonstop_tsc` in /proc/cpuinfo and `tsc` as the clocksource;
//!   elsewhere, and on threads not calibrated twice yet, `mono_ns` reads
//!   clock_gettime.
//! - A thread's readings never go back (each is at least the last one).
//! - A calibration that finds the line more than `MAX_DRIFT_NS` off turns
//!   the TSC off for that thread: readings stay within that of
//!   CLOCK_MONOTONIC, well under the 1 ms that expiry resolves.

use std::cell::Cell;
use std::sync::OnceLock;

/// The line is measured over at least this long (ns), for its slope.
const MIN_SPAN_NS: u64 = 1_000_000_000;

/// Farther than this off the real clock at a calibration, the TSC is not
/// trusted again on this thread.
pub(crate) const MAX_DRIFT_NS: u64 = 200_000;

/// TSC ticks to CLOCK_MONOTONIC ns.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Line {
    /// The last calibration: a TSC reading and the real clock at it.
    tsc: u64,
    ns: u64,
    /// Where the slope was last measured from.
    anchor_tsc: u64,
    anchor_ns: u64,
    /// Nanoseconds per tick times 2^32; 0 until measured.
    mult: u64,
    /// The last reading handed out.
    last: u64,
    /// Set when the TSC disagreed with the real clock.
    off: bool,
}

impl Line {
    /// The clock at TSC reading `t` (`None` while unmeasured or off); at
    /// least the last reading.
    pub(crate) fn read(&mut self, t: u64) -> Option<u64> {
        if self.mult == 0 || self.off {
            return None;
        }
        let ticks = u128::from(t.saturating_sub(self.tsc));
        let ns = self.ns + ((ticks * u128::from(self.mult)) >> 32) as u64;
        self.last = self.last.max(ns);
        Some(self.last)
    }

    /// The real clock read `ns` at TSC reading `t`.
    pub(crate) fn calibrate(&mut self, t: u64, ns: u64) {
        if self.off {
            return;
        }
        if self.mult != 0 {
            let ticks = u128::from(t.saturating_sub(self.tsc));
            let predicted = self.ns + ((ticks * u128::from(self.mult)) >> 32) as u64;
            if predicted.abs_diff(ns) > MAX_DRIFT_NS {
                self.off = true;
                return;
            }
        }
        if self.anchor_tsc == 0 || t <= self.anchor_tsc || ns < self.anchor_ns {
            self.anchor_tsc = t;
            self.anchor_ns = ns;
        } else if ns - self.anchor_ns >= MIN_SPAN_NS {
            let span = u128::from(ns - self.anchor_ns) << 32;
            self.mult = u64::try_from(span / u128::from(t - self.anchor_tsc)).unwrap_or(0);
            self.anchor_tsc = t;
            self.anchor_ns = ns;
        }
        self.tsc = t;
        self.ns = ns;
    }
}

thread_local! {
    static LINE: Cell<Line> = Cell::new(Line::default());
}

/// Whether this machine's TSC may stand in for CLOCK_MONOTONIC.
pub(crate) fn usable() -> bool {
    static USABLE: OnceLock<bool> = OnceLock::new();
    *USABLE.get_or_init(|| {
        cfg!(target_arch = "x86_64")
            && std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| {
                c.lines().find(|l| l.starts_with("flags")).is_some_and(|l| {
                    let flags: Vec<&str> = l.split_whitespace().collect();
                    flags.contains(&"constant_tsc") && flags.contains(&"nonstop_tsc")
                })
            })
            && std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|s| s.trim() == "tsc")
    })
}

/// The time-stamp counter (0 off x86_64).
pub(crate) fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: rdtsc exists on every x86_64 CPU; it reads a counter and
    // touches no memory.
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// This thread's TSC clock, if it is calibrated and trusted.
pub(crate) fn now() -> Option<u64> {
    LINE.with(|l| {
        let mut line = l.get();
        let ns = line.read(rdtsc())?;
        l.set(line);
        Some(ns)
    })
}

/// Feeds this thread's line a (TSC, CLOCK_MONOTONIC) pair read together.
pub(crate) fn calibrate(t: u64, ns: u64) {
    if usable() {
        LINE.with(|l| {
            let mut line = l.get();
            line.calibrate(t, ns);
            l.set(line);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_follows_two_calibrations() {
        let mut l = Line::default();
        l.calibrate(1_000, 5_000_000_000);
        assert_eq!(l.read(2_000), None, "no slope from one point");
        // Three ticks a nanosecond.
        l.calibrate(1_000 + 3_000_000_000, 6_000_000_000);
        let at = |l: &mut Line, t: u64| l.read(1_000 + t).unwrap_or(0);
        assert!(at(&mut l, 3_003_000_000).abs_diff(6_001_000_000) <= 1);
        let ahead = at(&mut l, 3_030_000_000);
        assert!(ahead.abs_diff(6_010_000_000) <= 1);
        // The clock says the line ran 50 us fast: readings wait for it
        // rather than go back.
        l.calibrate(1_000 + 3_030_000_000, 6_009_950_000);
        assert_eq!(at(&mut l, 3_030_000_003), ahead);
        assert!(at(&mut l, 3_060_000_000) > ahead);
    }

    #[test]
    fn a_line_that_drifts_is_given_up() {
        let mut l = Line::default();
        l.calibrate(1, 1_000_000_000);
        l.calibrate(1 + 1_000_000_000, 2_000_000_000);
        assert!(l.read(1 + 1_500_000_000).is_some());
        // The TSC says 1 s passed; the clock says 1.001 s.
        l.calibrate(1 + 2_000_000_000, 3_001_000_000);
        assert_eq!(l.read(1 + 2_000_000_001), None);
        l.calibrate(1 + 3_000_000_000, 4_001_000_000);
        assert_eq!(l.read(1 + 3_000_000_001), None);
    }

    #[test]
    fn short_spans_do_not_measure_the_slope() {
        let mut l = Line::default();
        l.calibrate(10, 1_000);
        l.calibrate(20, 1_000 + MIN_SPAN_NS - 1);
        assert_eq!(l.read(30), None);
        l.calibrate(30, 1_000 + MIN_SPAN_NS);
        assert!(l.read(30).is_some());
    }
}
