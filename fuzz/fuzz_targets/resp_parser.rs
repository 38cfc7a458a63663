//! Feeds arbitrary bytes to `parse_request` the way the connection loop
//! does (consume Complete frames, stop on Incomplete or an error) and checks:
//!
//! - `consumed` is in `1..=remaining` for every Complete frame; an
//!   Incomplete hint is 0 or larger than what is buffered;
//! - every argument span resolves, and multibulk arguments lie inside the
//!   frame they were parsed from; `iter()` agrees with `get()`;
//! - a frame parsed on its own gives the same result, and every prefix of
//!   it is Incomplete with a hint no larger than the frame;
//! - the arguments re-encoded as multibulk and as an inline line parse back
//!   to the same arguments;
//! - delivering the same bytes in random chunks (re-parsing from the last
//!   consumed position, as the server does) yields the same frames and the
//!   same final state;
//! - stricter limits (authentication pending, small bulk limit) only ever
//!   turn a result into an error, never change a parsed frame.
#![no_main]

use damselfly_fuzz::{encode_inline_line, encode_multibulk, Rng};
use damselfly_protocol::{parse_request, Limits, Parsed, ProtocolError, Request};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
struct Frame {
    args: Vec<Vec<u8>>,
    consumed: usize,
    inline: bool,
}

#[derive(Debug, PartialEq)]
enum End {
    /// Every byte was consumed.
    Drained,
    /// Stopped at `pos` waiting for more bytes.
    Incomplete { pos: usize, hint: usize },
    /// Stopped at `pos` with a protocol error.
    Error { pos: usize, err: ProtocolError },
}

/// Reads the arguments of the frame just parsed from `input`, checking that
/// every span resolves and (for multibulk) lies inside the frame.
fn collect_args(req: &Request, input: &[u8], consumed: usize) -> Vec<Vec<u8>> {
    let args = req.args(input);
    assert_eq!(args.len(), req.len());
    assert_eq!(args.is_empty(), req.is_empty());
    let frame = &input[..consumed];
    let lo = frame.as_ptr() as usize;
    let hi = lo + frame.len();
    let mut out = Vec::with_capacity(args.len());
    for i in 0..args.len() {
        let a = args.get(i).expect("argument span out of bounds");
        if !req.is_inline() {
            let p = a.as_ptr() as usize;
            assert!(
                a.is_empty() || (p >= lo && p + a.len() <= hi),
                "multibulk argument outside its frame"
            );
            // The bulk is followed by its two terminator bytes, in the frame.
            let off = p - lo;
            assert!(a.is_empty() || off + a.len() + 2 <= consumed);
        }
        out.push(a.to_vec());
    }
    assert!(args.get(args.len()).is_none());
    let via_iter: Vec<&[u8]> = args.iter().collect();
    assert_eq!(via_iter.len(), out.len());
    for (x, y) in via_iter.iter().zip(&out) {
        assert_eq!(*x, &y[..]);
    }
    out
}

fn parse_one(input: &[u8], limits: &Limits) -> (Result<Parsed, ProtocolError>, Vec<Vec<u8>>, bool) {
    let mut req = Request::new();
    let r = parse_request(input, limits, &mut req);
    let args = match r {
        Ok(Parsed::Complete { consumed }) => collect_args(&req, input, consumed),
        _ => Vec::new(),
    };
    (r, args, req.is_inline())
}

/// Checks that hold for one Complete frame at the front of `input`.
fn check_frame(input: &[u8], frame: &Frame, limits: &Limits, rng: &mut Rng) {
    let consumed = frame.consumed;
    if frame.inline {
        assert_ne!(input[0], b'*');
        let nl = input.iter().position(|&c| c == b'\n');
        assert_eq!(
            nl,
            Some(consumed - 1),
            "inline frame must end at the first newline"
        );
    } else {
        assert_eq!(input[0], b'*');
    }

    // The frame alone parses identically.
    let (r, args, inline) = parse_one(&input[..consumed], limits);
    assert_eq!(r, Ok(Parsed::Complete { consumed }));
    assert_eq!(args, frame.args);
    assert_eq!(inline, frame.inline);

    // Every prefix is Incomplete: check all of them for short frames, a few
    // for long ones.
    let mut cuts: Vec<usize> = Vec::new();
    if consumed <= 24 {
        cuts.extend(0..consumed);
    } else {
        cuts.extend([0, 1, consumed - 2, consumed - 1]);
        for _ in 0..4 {
            cuts.push(rng.range(0, consumed - 1));
        }
    }
    let mut req = Request::new();
    for cut in cuts {
        match parse_request(&input[..cut], limits, &mut req) {
            Ok(Parsed::Incomplete { hint }) => {
                assert!(
                    hint == 0 || (hint > cut && hint <= consumed),
                    "bad hint {hint} for a {cut}-byte prefix of a {consumed}-byte frame"
                );
            }
            other => panic!("prefix {cut} of a {consumed}-byte frame gave {other:?}"),
        }
    }

    // Round trip through the multibulk encoding (always within default limits).
    let wire = encode_multibulk(&frame.args);
    let (r, args, inline) = parse_one(&wire, &Limits::default());
    assert_eq!(
        r,
        Ok(Parsed::Complete {
            consumed: wire.len()
        })
    );
    assert_eq!(args, frame.args);
    assert!(!inline);

    // Round trip through the inline encoding.
    let style = rng.next() as u8;
    let mut line = encode_inline_line(&frame.args, style);
    assert_eq!(
        damselfly_protocol::split_args(&line).as_ref(),
        Some(&frame.args)
    );
    line.extend_from_slice(if style & 8 == 0 { b"\r\n" } else { b"\n" });
    let (r, args, inline) = parse_one(&line, &Limits::default());
    assert_eq!(
        r,
        Ok(Parsed::Complete {
            consumed: line.len()
        })
    );
    assert_eq!(args, frame.args);
    assert!(inline);
}

/// Parses everything in `data` in one go, as a connection that received it
/// in a single read.
fn run_whole(data: &[u8], limits: &Limits, rng: Option<&mut Rng>) -> (Vec<Frame>, End) {
    let mut rng = rng;
    let mut req = Request::new();
    let mut frames = Vec::new();
    let mut pos = 0;
    loop {
        if pos >= data.len() {
            assert_eq!(pos, data.len());
            return (frames, End::Drained);
        }
        let input = &data[pos..];
        match parse_request(input, limits, &mut req) {
            Ok(Parsed::Complete { consumed }) => {
                assert!(consumed > 0, "Complete frame consumed nothing");
                assert!(consumed <= input.len(), "consumed past the input");
                let frame = Frame {
                    args: collect_args(&req, input, consumed),
                    consumed,
                    inline: req.is_inline(),
                };
                // The per-frame checks cost several parses each: run them on
                // the first frames and a random eighth of the rest, so long
                // pipelines do not slow the fuzzer to a crawl.
                if let Some(rng) = rng.as_deref_mut() {
                    if frames.len() < 8 || rng.next() % 8 == 0 {
                        check_frame(input, &frame, limits, rng);
                    }
                }
                frames.push(frame);
                pos += consumed;
            }
            Ok(Parsed::Incomplete { hint }) => {
                assert!(
                    hint == 0 || hint > input.len(),
                    "hint {hint} <= buffered {}",
                    input.len()
                );
                return (frames, End::Incomplete { pos, hint });
            }
            Err(err) => {
                assert!(err.to_string().starts_with("Protocol error: "));
                return (frames, End::Error { pos, err });
            }
        }
    }
}

/// Parses `data` delivered in chunks ending at `cuts` (ascending), keeping
/// unconsumed bytes buffered between reads like the connection loop.
fn run_chunked(data: &[u8], limits: &Limits, cuts: &[usize]) -> (Vec<Frame>, End) {
    let mut req = Request::new();
    let mut frames = Vec::new();
    let mut pos = 0;
    let mut end = End::Drained;
    for &avail in cuts {
        let buf = &data[..avail];
        end = End::Drained;
        while pos < buf.len() {
            let input = &buf[pos..];
            match parse_request(input, limits, &mut req) {
                Ok(Parsed::Complete { consumed }) => {
                    assert!(consumed > 0 && consumed <= input.len());
                    frames.push(Frame {
                        args: collect_args(&req, input, consumed),
                        consumed,
                        inline: req.is_inline(),
                    });
                    pos += consumed;
                }
                Ok(Parsed::Incomplete { hint }) => {
                    assert!(hint == 0 || hint > input.len());
                    end = End::Incomplete { pos, hint };
                    break;
                }
                Err(err) => return (frames, End::Error { pos, err }),
            }
        }
    }
    (frames, end)
}

fuzz_target!(|data: &[u8]| {
    let mut rng = Rng::new(data);
    let default = Limits::default();
    let (frames, end) = run_whole(data, &default, Some(&mut rng));

    // Chunked delivery gives the same frames and final state.
    let n = rng.range(1, 8);
    let mut cuts: Vec<usize> = (1..n).map(|_| rng.range(0, data.len())).collect();
    cuts.push(data.len());
    cuts.sort_unstable();
    let (cframes, cend) = run_chunked(data, &default, &cuts);
    assert_eq!(cframes, frames, "chunked delivery changed the frames");
    assert_eq!(cend, end, "chunked delivery changed the final state");

    // Stricter limits only add errors.
    let strict = Limits {
        max_bulk_len: [0, 1, 64, 1 << 20][rng.range(0, 3)],
        auth_required: rng.next() & 1 == 1,
    };
    let (sframes, send) = run_whole(data, &strict, None);
    assert!(sframes.len() <= frames.len());
    assert_eq!(&frames[..sframes.len()], &sframes[..]);
    if !matches!(send, End::Error { .. }) {
        assert_eq!(sframes.len(), frames.len());
        assert_eq!(send, end);
    }
});
