//! Request parsing: round trips, partial input, and Redis's exact protocol errors.

use damselfly_protocol::*;

fn parse_all(input: &[u8]) -> Result<(Vec<Vec<u8>>, Parsed), ProtocolError> {
    let mut req = Request::new();
    let p = parse_request(input, &Limits::default(), &mut req)?;
    Ok((req.args(input).iter().map(<[u8]>::to_vec).collect(), p))
}

#[test]
fn multibulk_set_parses_three_args() {
    let (args, p) = parse_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\nrest").unwrap();
    assert_eq!(args, vec![b"SET".to_vec(), b"k".to_vec(), b"".to_vec()]);
    assert_eq!(p, Parsed::Complete { consumed: 26 });
}

#[test]
fn partial_bulk_reports_total_length() {
    let (_, p) = parse_all(b"*1\r\n$10\r\nabc").unwrap();
    assert_eq!(p, Parsed::Incomplete { hint: 4 + 5 + 12 });
}

#[test]
fn header_without_newline_is_incomplete() {
    assert_eq!(
        parse_all(b"*1\r").unwrap().1,
        Parsed::Incomplete { hint: 0 }
    );
    assert_eq!(
        parse_all(b"*1\r\n$3\r").unwrap().1,
        Parsed::Incomplete { hint: 0 }
    );
}

#[test]
fn protocol_errors_match_redis() {
    let e = |b: &[u8]| parse_all(b).unwrap_err().to_string();
    assert_eq!(
        e(b"*3000000000\r\n"),
        "Protocol error: invalid multibulk length"
    );
    assert_eq!(
        e(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
        "Protocol error: expected '$', got 'f'"
    );
    assert_eq!(
        e(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n"),
        "Protocol error: invalid bulk length"
    );
    assert_eq!(
        e(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n"),
        "Protocol error: invalid bulk length"
    );
    assert_eq!(
        e(b"*1\r\n$blabla\r\n"),
        "Protocol error: invalid bulk length"
    );
    assert_eq!(
        e(b"set \"\"\"test-key\"\"\" v\r\n"),
        "Protocol error: unbalanced quotes in request"
    );
    assert_eq!(
        e(&[b'x'; INLINE_MAX + 1]),
        "Protocol error: too big inline request"
    );
}

#[test]
fn empty_and_negative_multibulk_are_skipped() {
    let (args, p) = parse_all(b"*-10\r\n").unwrap();
    assert!(args.is_empty());
    assert_eq!(p, Parsed::Complete { consumed: 6 });
    let (args, _) = parse_all(b"\r\n").unwrap();
    assert!(args.is_empty());
}

#[test]
fn inline_splits_and_unquotes() {
    let (args, p) = parse_all(b"set \"a b\" 'c'\r\n").unwrap();
    assert_eq!(args, vec![b"set".to_vec(), b"a b".to_vec(), b"c".to_vec()]);
    assert_eq!(p, Parsed::Complete { consumed: 15 });
}

#[test]
fn unauthenticated_limits() {
    let limits = Limits {
        auth_required: true,
        ..Limits::default()
    };
    let mut req = Request::new();
    assert_eq!(
        parse_request(b"*11\r\n", &limits, &mut req),
        Err(ProtocolError::UnauthenticatedMultibulk)
    );
    assert_eq!(
        parse_request(b"*1\r\n$16385\r\n", &limits, &mut req),
        Err(ProtocolError::UnauthenticatedBulk)
    );
}

proptest::proptest! {
    #[test]
    fn never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
        let mut req = Request::new();
        let _ = parse_request(&input, &Limits::default(), &mut req);
    }

    #[test]
    fn encoded_commands_round_trip(args in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 1..8)) {
        let mut wire = format!("*{}\r\n", args.len()).into_bytes();
        for a in &args {
            wire.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            wire.extend_from_slice(a);
            wire.extend_from_slice(b"\r\n");
        }
        let (got, p) = parse_all(&wire).unwrap();
        proptest::prop_assert_eq!(got, args);
        proptest::prop_assert_eq!(p, Parsed::Complete { consumed: wire.len() });
        for cut in 0..wire.len() {
            let mut req = Request::new();
            let r = parse_request(&wire[..cut], &Limits::default(), &mut req).unwrap();
            let incomplete = matches!(r, Parsed::Incomplete { .. });
            proptest::prop_assert!(incomplete);
        }
    }
}

#[test]
fn digit_headers_read_in_one_pass_keep_redis_rules() {
    let e = |b: &[u8]| parse_all(b).unwrap_err().to_string();
    let mb = "Protocol error: invalid multibulk length";
    let bulk = "Protocol error: invalid bulk length";
    // Leading zeros, signs and over-long numbers still go to the errors.
    assert_eq!(e(b"*01\r\n"), mb);
    assert_eq!(e(b"*+1\r\n"), mb);
    assert_eq!(e(b"*18446744073709551616\r\n"), mb);
    assert_eq!(e(b"*1\r\n$03\r\nabc\r\n"), bulk);
    assert_eq!(e(b"*1\r\n$999999999999999999\r\n"), bulk);
    assert_eq!(e(b"*1\r\n$9999999999999999999\r\n"), bulk);
    assert_eq!(e(b"*1\r\n$99999999999999999999\r\n"), bulk);
    // "0" is a length, and "\r" without its "\n" is not a header yet.
    let (args, p) = parse_all(b"*1\r\n$0\r\n\r\n").unwrap();
    assert_eq!(args, vec![Vec::<u8>::new()]);
    assert_eq!(p, Parsed::Complete { consumed: 10 });
    assert_eq!(
        parse_all(b"*1\r\n$3\r").unwrap().1,
        Parsed::Incomplete { hint: 0 }
    );
    let (args, _) = parse_all(b"*2\r\n$12\r\nabcdefghijkl\r\n$1\r\nx\r\n").unwrap();
    assert_eq!(args, vec![b"abcdefghijkl".to_vec(), b"x".to_vec()]);
}

#[test]
fn a_multibulk_head_ends_with_its_second_argument() {
    let mut req = Request::new();
    let input = b"*3\r\n$5\r\nLPUSH\r\n$1\r\nq\r\n$1\r\nv\r\n";
    parse_request(input, &Limits::default(), &mut req).unwrap();
    assert_eq!(req.head(input), Some(&b"*3\r\n$5\r\nLPUSH\r\n$1\r\nq"[..]));
    // One argument: no key, no head.
    let input = b"*1\r\n$4\r\nPING\r\n";
    parse_request(input, &Limits::default(), &mut req).unwrap();
    assert_eq!(req.head(input), None);
    // Inline arguments are not framed by their lengths: no head either.
    let input = b"LPUSH q v\r\n";
    parse_request(input, &Limits::default(), &mut req).unwrap();
    assert_eq!(req.head(input), None);
}
