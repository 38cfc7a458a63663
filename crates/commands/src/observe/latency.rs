//! The latency monitor (LATENCY LATEST HISTORY RESET GRAPH DOCTOR): events
//! slower than `latency-monitor-threshold` ms, one sample per second per
//! event (the worst), the last 160 kept; and LATENCY HISTOGRAM over the
//! per-command histograms.

use super::histogram::Summed;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::table::{lookup, table, Entry};
use damselfly_protocol::Args;
use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

const HISTORY: usize = 160;

#[derive(Default)]
struct Event {
    /// (Unix seconds, ms), oldest first.
    samples: VecDeque<(u64, u64)>,
    max: u64,
}

#[derive(Default)]
pub struct Monitor {
    events: Mutex<BTreeMap<String, Event>>,
}

impl Monitor {
    /// Records `ms` for `event` now.
    pub fn add(&self, event: &str, ms: u64) {
        let now = damselfly_storage::now_ms() / 1000;
        let mut events = self.events.lock();
        let e = events.entry(event.to_string()).or_default();
        e.max = e.max.max(ms);
        match e.samples.back_mut() {
            Some((t, v)) if *t == now => *v = (*v).max(ms),
            _ => {
                e.samples.push_back((now, ms));
                if e.samples.len() > HISTORY {
                    e.samples.pop_front();
                }
            }
        }
    }
}

/// LATENCY LATEST
pub(crate) fn latest(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let events = ctx.server.observe.latency.events.lock();
    let r = &mut *ctx.reply;
    r.array(events.len());
    for (name, e) in events.iter() {
        let (t, v) = e.samples.back().copied().unwrap_or((0, 0));
        r.array(4);
        r.bulk(name.as_bytes());
        r.int(t as i64);
        r.int(v as i64);
        r.int(e.max as i64);
    }
    Ok(())
}

/// LATENCY HISTORY event
pub(crate) fn history(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let name = String::from_utf8_lossy(args.get(2).unwrap_or_default()).into_owned();
    let events = ctx.server.observe.latency.events.lock();
    let r = &mut *ctx.reply;
    match events.get(&name) {
        None => r.array(0),
        Some(e) => {
            r.array(e.samples.len());
            for (t, v) in &e.samples {
                r.array(2);
                r.int(*t as i64);
                r.int(*v as i64);
            }
        }
    }
    Ok(())
}

/// LATENCY RESET [event ...]
pub(crate) fn reset(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let mut events = ctx.server.observe.latency.events.lock();
    let n = if args.len() == 2 {
        let n = events.len();
        events.clear();
        n
    } else {
        args.iter()
            .skip(2)
            .filter(|a| events.remove(&*String::from_utf8_lossy(a)).is_some())
            .count()
    };
    drop(events);
    ctx.reply.int(n as i64);
    Ok(())
}

/// LATENCY GRAPH event: the samples as columns of `#`, tallest = worst,
/// oldest on the left, with each column's age in seconds below.
pub(crate) fn graph(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let name = String::from_utf8_lossy(args.get(2).unwrap_or_default()).into_owned();
    let events = ctx.server.observe.latency.events.lock();
    let Some(e) = events.get(&name).filter(|e| !e.samples.is_empty()) else {
        return Err(CmdError::LatencyNoSamples(name));
    };
    let high = e.samples.iter().map(|s| s.1).max().unwrap_or(0);
    let low = e.samples.iter().map(|s| s.1).min().unwrap_or(0);
    let mut out = format!(
        "{name} - high {high} ms, low {low} ms (all time high {} ms)\n{}\n",
        e.max,
        "-".repeat(80)
    );
    const ROWS: u64 = 4;
    let cols: Vec<_> = e.samples.iter().rev().take(80).rev().collect();
    for row in (1..=ROWS).rev() {
        for (_, v) in &cols {
            let h = if high == 0 {
                0
            } else {
                (v * ROWS).div_ceil(high)
            };
            out.push(if h >= row { '#' } else { ' ' });
        }
        out.push('\n');
    }
    let now = damselfly_storage::now_ms() / 1000;
    for (t, _) in &cols {
        let age = now.saturating_sub(*t);
        let _ = write!(
            out,
            "{}",
            if age < 10 {
                age.to_string()
            } else {
                "+".into()
            }
        );
    }
    out.push('\n');
    drop(events);
    ctx.reply.verbatim("txt", out.as_bytes());
    Ok(())
}

/// LATENCY DOCTOR: a short report in our own words.
pub(crate) fn doctor(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    let threshold = ctx
        .server
        .config
        .observe
        .latency_threshold
        .load(std::sync::atomic::Ordering::Relaxed);
    let events = ctx.server.observe.latency.events.lock();
    let mut out = String::new();
    if threshold == 0 {
        out.push_str(
            "Latency monitoring is off. Turn it on with CONFIG SET latency-monitor-threshold <milliseconds>.\n",
        );
    } else if events.is_empty() {
        let _ = writeln!(
            out,
            "No event has taken {threshold} ms or more since the latency monitor was last reset."
        );
    } else {
        let _ = writeln!(out, "Events that took {threshold} ms or more:\n");
        for (i, (name, e)) in events.iter().enumerate() {
            let n = e.samples.len() as u64;
            let avg = e.samples.iter().map(|s| s.1).sum::<u64>() / n.max(1);
            let _ = writeln!(
                out,
                "{}. {name}: {n} seconds with samples, average {avg} ms, worst {} ms.",
                i + 1,
                e.max
            );
        }
        out.push_str(
            "\nSLOWLOG GET shows the slow commands themselves; large keys are slow to delete, expire or evict.\n",
        );
    }
    drop(events);
    ctx.reply.verbatim("txt", out.as_bytes());
    Ok(())
}

/// The summed histogram of one command, None when it never ran.
fn summed(ctx: &Ctx, e: &Entry) -> Option<Summed> {
    let mut s = Summed::new();
    for st in ctx.server.all_thread_stats() {
        if let Some(h) = st.commands.get(e.id).and_then(|c| c.hist.get()) {
            s.add(h);
        }
    }
    (s.total > 0).then_some(s)
}

/// LATENCY HISTOGRAM [command ...]: per command, its calls and the
/// cumulative count of calls at each power-of-two bound in µs. A container
/// command stands for its subcommands; unknown names are skipped.
pub(crate) fn histogram(ctx: &mut Ctx, args: &Args) -> CmdResult {
    let mut chosen: Vec<&'static Entry> = Vec::new();
    if args.len() == 2 {
        chosen.extend(table().all.iter().copied());
    } else {
        for a in args.iter().skip(2) {
            let found = match a.iter().position(|&b| b == b'|') {
                Some(i) => lookup(&a[..i]).and_then(|p| p.sub(&a[i + 1..])),
                None => lookup(a),
            };
            let Some(e) = found else { continue };
            if e.subs.is_empty() {
                chosen.push(e);
            } else {
                chosen.extend(
                    e.cmd
                        .subcommands
                        .iter()
                        .filter_map(|s| e.sub(s.name.as_bytes())),
                );
            }
        }
    }
    let mut rows: Vec<(&str, Summed)> = Vec::new();
    for e in chosen {
        if rows.iter().any(|(n, _)| *n == e.fullname) {
            continue;
        }
        if let Some(s) = summed(ctx, e) {
            rows.push((&e.fullname, s));
        }
    }
    let r = &mut *ctx.reply;
    r.map(rows.len());
    for (name, s) in rows {
        r.bulk(name.as_bytes());
        r.map(2);
        r.bulk(b"calls");
        r.int(s.total as i64);
        r.bulk(b"histogram_usec");
        let buckets = s.cumulative_usec();
        r.map(buckets.len());
        for (us, n) in buckets {
            r.int(us as i64);
            r.int(n as i64);
        }
    }
    Ok(())
}

/// INFO latencystats lines: each command that ran, at the percentiles of
/// `latency-tracking-info-percentiles`.
pub(crate) fn info_lines(ctx: &Ctx, out: &mut String) {
    let percentiles: Vec<f64> = ctx
        .server
        .config
        .get("latency-tracking-info-percentiles")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    for e in &table().all {
        let Some(s) = summed(ctx, e) else { continue };
        let values: Vec<String> = percentiles
            .iter()
            .map(|p| format!("p{p}={:.3}", s.percentile(*p) as f64 / 1000.0))
            .collect();
        let _ = write!(
            out,
            "latency_percentiles_usec_{}:{}\r\n",
            e.fullname,
            values.join(",")
        );
    }
}

/// LATENCY HELP
pub(crate) fn help(ctx: &mut Ctx, _args: &Args) -> CmdResult {
    crate::server::reply_help(
        ctx,
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
    Ok(())
}
