#!/usr/bin/env python3
"""bench/jitter.py: how late this machine wakes a sleeping thread.

Latency target 4 (p99.9 under 1 ms) needs the machine itself to wake an
idle thread within a millisecond nearly always. This sleeps 50 us at a
time for SECONDS (default 10) and counts the wake-ups that came more than
0.5 ms and 1 ms late; then it spins for as long, reading the clock, and
reports the longest gap (a spinning thread that is never descheduled sees
none). Run it pinned where the server runs, on an otherwise idle box:

    taskset -c 1 python3 bench/jitter.py [SECONDS]
"""
import sys
import time

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
clock = time.perf_counter_ns

sleeps = late_half = late_one = 0
worst = 0
end = clock() + int(seconds * 1e9)
while True:
    before = clock()
    if before > end:
        break
    time.sleep(50e-6)
    late = clock() - before - 50_000
    sleeps += 1
    late_half += late > 500_000
    late_one += late > 1_000_000
    worst = max(worst, late)
print(f"sleep 50us x {sleeps}: late >0.5 ms {late_half}, >1 ms {late_one}, "
      f"worst {worst / 1e3:.0f} us")

gap_half = gap_one = 0
widest = 0
prev = clock()
end = prev + int(seconds * 1e9)
while prev < end:
    now = clock()
    gap = now - prev
    gap_half += gap > 500_000
    gap_one += gap > 1_000_000
    widest = max(widest, gap)
    prev = now
print(f"spin {seconds:g} s: gaps >0.5 ms {gap_half}, >1 ms {gap_one}, widest {widest / 1e3:.0f} us")
