//! Open-loop latency load for a RESP server: CLIENTS connections, no
//! pipelining, requests sent on a fixed schedule that adds up to RATE per
//! second. A request's latency runs from the moment it was due, not from
//! when it could be sent, so a stalled server shows in the tail instead of
//! slowing the load down (redis-benchmark's closed loop waits for each reply
//! and, on a box where it saturates its core, measures its own queueing).
//!
//! One thread spins over non-blocking sockets, so no wake-up of the client
//! adds to what it measures. Prints one line per run:
//! `TEST rate=R achieved=A n=N p50=.. p99=.. p99.9=.. max=.. ms`.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::exit;
use std::time::{Duration, Instant};

struct Opts {
    host: String,
    port: u16,
    clients: usize,
    rate: f64,
    seconds: f64,
    warmup: f64,
    test: String,
    keys: u64,
}

const USAGE: &str = "usage: damselfly-loadgen --port P [--host H] [--clients 50] [--rate 30000] \
[--seconds 10] [--warmup 1] [--test set|get] [--keys 1000000]";

fn num<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("bad value for {name}: {value}"))
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        host: "127.0.0.1".into(),
        port: 0,
        clients: 50,
        rate: 30_000.0,
        seconds: 10.0,
        warmup: 1.0,
        test: "set".into(),
        keys: 1_000_000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [name, value] = pair else {
            return Err(format!("{} needs a value", pair[0]));
        };
        match name.as_str() {
            "--host" => o.host = value.clone(),
            "--port" => o.port = num(name, value)?,
            "--clients" => o.clients = num(name, value)?,
            "--rate" => o.rate = num(name, value)?,
            "--seconds" => o.seconds = num(name, value)?,
            "--warmup" => o.warmup = num(name, value)?,
            "--test" => o.test = value.to_ascii_lowercase(),
            "--keys" => o.keys = num(name, value)?,
            _ => return Err(format!("unknown option {name}")),
        }
    }
    if o.port == 0 || o.clients == 0 || o.rate <= 0.0 || o.keys == 0 {
        return Err("--port, --clients, --rate and --keys must be positive".into());
    }
    if o.test != "set" && o.test != "get" {
        return Err("--test is set or get".into());
    }
    Ok(o)
}

/// Latencies in 1 µs buckets up to 100 ms, and the largest seen.
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_us: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; 100_000],
            total: 0,
            max_us: 0,
        }
    }

    fn record(&mut self, d: Duration) {
        let us = d.as_micros() as u64;
        let last = self.counts.len() - 1;
        self.counts[(us as usize).min(last)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    /// The smallest latency (ms) at or below which a `q` share of requests fall.
    fn quantile_ms(&self, q: f64) -> f64 {
        let want = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (us, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= want {
                return us as f64 / 1000.0;
            }
        }
        self.max_us as f64 / 1000.0
    }
}

/// Knuth's MMIX LCG: keys only need to spread, not to be unpredictable.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn request(test: &str, key: u64, out: &mut Vec<u8>) {
    out.clear();
    let key = format!("key:{key:012}");
    if test == "set" {
        let value = [b'x'; 32];
        out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
        out.extend_from_slice(format!("${}\r\n{key}\r\n", key.len()).as_bytes());
        out.extend_from_slice(b"$32\r\n");
        out.extend_from_slice(&value);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
        out.extend_from_slice(format!("${}\r\n{key}\r\n", key.len()).as_bytes());
    }
}

/// Bytes one complete reply takes at the start of `buf` (a simple string,
/// error, integer or bulk string), or None while it is incomplete.
fn reply_len(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")? + 2;
    match buf.first()? {
        b'$' => {
            let n: i64 = std::str::from_utf8(&buf[1..line_end - 2])
                .ok()?
                .parse()
                .ok()?;
            if n < 0 {
                return Some(line_end);
            }
            let end = line_end + n as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        _ => Some(line_end),
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// When the request in flight was due; None: nothing in flight.
    due: Option<Instant>,
    /// When this connection's next request is due.
    next: Instant,
}

fn run(o: &Opts) -> Result<(), String> {
    let mut conns = Vec::with_capacity(o.clients);
    // Each connection sends every `interval`; their schedules interleave
    // evenly, so the whole load arrives at `rate`.
    let interval = Duration::from_secs_f64(o.clients as f64 / o.rate);
    let start = Instant::now() + Duration::from_millis(100);
    for i in 0..o.clients {
        let stream = TcpStream::connect((o.host.as_str(), o.port))
            .map_err(|e| format!("connect {}:{}: {e}", o.host, o.port))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream.set_nonblocking(true).map_err(|e| e.to_string())?;
        conns.push(Conn {
            stream,
            buf: Vec::with_capacity(256),
            due: None,
            next: start + Duration::from_secs_f64(i as f64 / o.rate),
        });
    }
    let measure_from = start + Duration::from_secs_f64(o.warmup);
    let end = measure_from + Duration::from_secs_f64(o.seconds);
    let mut hist = Histogram::new();
    let mut errors = 0u64;
    let mut rng = Lcg(0x5eed);
    let mut req = Vec::with_capacity(128);
    let mut chunk = [0u8; 4096];
    loop {
        let now = Instant::now();
        if now >= end && conns.iter().all(|c| c.due.is_none()) {
            break;
        }
        for c in &mut conns {
            if let Some(due) = c.due {
                match c.stream.read(&mut chunk) {
                    Ok(0) => return Err("the server closed a connection".into()),
                    Ok(n) => c.buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(format!("read: {e}")),
                }
                if let Some(len) = reply_len(&c.buf) {
                    let done = Instant::now();
                    if c.buf[0] == b'-' {
                        errors += 1;
                    }
                    c.buf.drain(..len);
                    if due >= measure_from && due < end {
                        hist.record(done - due);
                    }
                    c.due = None;
                }
            }
            if c.due.is_none() && c.next <= now && c.next < end {
                request(&o.test, rng.next(o.keys), &mut req);
                c.stream
                    .write_all(&req)
                    .map_err(|e| format!("write: {e}"))?;
                c.due = Some(c.next);
                c.next += interval;
            }
        }
    }
    if errors > 0 {
        return Err(format!("{errors} error replies"));
    }
    println!(
        "{} rate={:.0} achieved={:.0} n={} p50={:.3} p99={:.3} p99.9={:.3} max={:.3} ms",
        o.test.to_ascii_uppercase(),
        o.rate,
        hist.total as f64 / o.seconds,
        hist.total,
        hist.quantile_ms(0.50),
        hist.quantile_ms(0.99),
        hist.quantile_ms(0.999),
        hist.max_us as f64 / 1000.0
    );
    Ok(())
}

fn main() {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            exit(2);
        }
    };
    if let Err(e) = run(&opts) {
        eprintln!("damselfly-loadgen: {e}");
        exit(1);
    }
}
