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

#[test]
fn headers_of_every_width_render_as_decimal() {
    for n in [
        0i64,
        5,
        9,
        10,
        42,
        99,
        100,
        12345,
        -1,
        -100,
        i64::MAX,
        i64::MIN,
    ] {
        let mut r = Reply::new();
        r.int(n);
        assert_eq!(r.as_bytes(), format!(":{n}\r\n").as_bytes());
    }
    for len in [0usize, 1, 9, 10, 32, 99, 100, 1000] {
        let mut r = Reply::new();
        let v = vec![b'x'; len];
        r.bulk(&v);
        let want = [format!("${len}\r\n").into_bytes(), v, b"\r\n".to_vec()].concat();
        assert_eq!(r.as_bytes(), &want[..]);
    }
}
