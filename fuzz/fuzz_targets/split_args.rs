//! Splits arbitrary bytes as an inline request line and checks:
//!
//! - an argument list that `split_args` accepts, re-encoded (bare words where
//!   possible, quoted with escapes otherwise), splits back to itself;
//! - no argument is empty unless it came from quotes, and bare (unquoted)
//!   input yields exactly the whitespace-separated words;
//! - for a line without a newline that does not start with '*',
//!   `parse_request` on `line + "\r\n"` agrees with `split_args`.
#![no_main]

use damselfly_fuzz::{encode_inline_line, Rng};
use damselfly_protocol::{parse_request, split_args, Limits, Parsed, ProtocolError, Request};
use libfuzzer_sys::fuzz_target;

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fuzz_target!(|line: &[u8]| {
    let split = split_args(line);

    if let Some(args) = &split {
        for style in [0u8, Rng::new(line).next() as u8] {
            let enc = encode_inline_line(args, style);
            assert_eq!(split_args(&enc).as_ref(), Some(args), "style {style}");
        }
        if !line.contains(&b'"') && !line.contains(&b'\'') {
            let words: Vec<Vec<u8>> = line
                .split(|&c| is_space(c))
                .filter(|w| !w.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            assert_eq!(&words, args);
        }
    } else {
        // Only quotes can make a line unsplittable.
        assert!(line.contains(&b'"') || line.contains(&b'\''));
    }

    if line.first() != Some(&b'*') && !line.contains(&b'\n') && line.len() < 60 * 1024 {
        let mut wire = line.to_vec();
        wire.extend_from_slice(b"\r\n");
        let mut req = Request::new();
        let r = parse_request(&wire, &Limits::default(), &mut req);
        match (r, &split) {
            (Ok(Parsed::Complete { consumed }), Some(args)) => {
                assert_eq!(consumed, wire.len());
                assert!(req.is_inline());
                let got: Vec<Vec<u8>> = req.args(&wire).iter().map(<[u8]>::to_vec).collect();
                assert_eq!(&got, args);
            }
            (Err(ProtocolError::UnbalancedQuotes), None) => {}
            (other, _) => panic!("parse_request gave {other:?}, split_args gave {split:?}"),
        }
    }
});
