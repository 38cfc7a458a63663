//! Reply encoding in RESP2 and RESP3.

use damselfly_protocol::*;

#[test]
fn doubles_print_like_percent_17g() {
    assert_eq!(format_double(1.5), "1.5");
    assert_eq!(format_double(0.1), "0.10000000000000001");
    assert_eq!(format_double(1e17), "1e+17");
    assert_eq!(format_double(1.0e16), "10000000000000000");
    assert_eq!(format_double(12345.678), "12345.678");
    assert_eq!(format_double(0.0001), "0.0001");
    assert_eq!(format_double(0.00001), "1.0000000000000001e-05");
    assert_eq!(format_double(-3.0), "-3");
    assert_eq!(format_double(f64::INFINITY), "inf");
}

#[test]
fn resp2_and_resp3_nulls_differ() {
    let mut r = Reply::new();
    r.null();
    r.null_array();
    assert_eq!(r.as_bytes(), b"$-1\r\n*-1\r\n");
    let mut r = Reply::new();
    r.set_resp3(true);
    r.null();
    r.map(1);
    r.double(2.5);
    assert_eq!(r.as_bytes(), b"_\r\n%1\r\n,2.5\r\n");
}

#[test]
fn errors_stay_on_one_line() {
    let mut r = Reply::new();
    r.error("ERR bad\r\nthing");
    assert_eq!(r.as_bytes(), b"-ERR bad  thing\r\n");
}
