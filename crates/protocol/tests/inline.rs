//! Inline request splitting: quotes and escapes as Redis applies them.

use damselfly_protocol::split_args;

fn s(line: &str) -> Option<Vec<String>> {
    split_args(line.as_bytes()).map(|v| {
        v.into_iter()
            .map(|a| String::from_utf8(a).unwrap())
            .collect()
    })
}

#[test]
fn quotes_and_escapes() {
    assert_eq!(s("set k v").unwrap(), ["set", "k", "v"]);
    assert_eq!(s("  a   \"b c\"  'd e' ").unwrap(), ["a", "b c", "d e"]);
    assert_eq!(s("\"\\x41\\n\"").unwrap(), ["A\n"]);
    assert_eq!(s("'it\\'s'").unwrap(), ["it's"]);
    assert_eq!(s("a\"b c\"").unwrap(), ["ab c"]);
    assert_eq!(s("").unwrap(), Vec::<String>::new());
}

#[test]
fn unbalanced_quotes_fail() {
    assert_eq!(s("\"abc"), None);
    assert_eq!(s("'abc"), None);
    assert_eq!(s("\"a\"b"), None);
    assert_eq!(s("set \"\"\"test-key\"\"\" test-value"), None);
}
