//! Glob-style matching with Redis's rules: `*`, `?`, `[abc]`, `[^abc]`,
//! `[a-z]` (reversed ranges allowed), `\x` escapes, and an unterminated `[`
//! that runs to the end of the pattern.
//!
//! Greedy matching with one backtrack point for the last `*`: O(len(pattern)
//! × len(string)) at worst, so a hostile pattern cannot stall a shard.

fn fold(c: u8, nocase: bool) -> u8 {
    if nocase {
        c.to_ascii_lowercase()
    } else {
        c
    }
}

/// Matches one non-`*` token of `pat` at `p` against `c`; returns whether it
/// matched and where the next token starts.
fn token(pat: &[u8], mut p: usize, c: u8, nocase: bool) -> (bool, usize) {
    match pat[p] {
        b'?' => (true, p + 1),
        b'[' => {
            p += 1;
            let negate = pat.get(p) == Some(&b'^');
            if negate {
                p += 1;
            }
            let mut matched = false;
            loop {
                match pat.get(p) {
                    None => break,
                    Some(b']') => {
                        p += 1;
                        break;
                    }
                    Some(b'\\') if p + 1 < pat.len() => {
                        p += 1;
                        if pat[p] == c {
                            matched = true;
                        }
                        p += 1;
                    }
                    Some(&start) if p + 2 < pat.len() && pat[p + 1] == b'-' => {
                        let (mut lo, mut hi) = (fold(start, nocase), fold(pat[p + 2], nocase));
                        if lo > hi {
                            std::mem::swap(&mut lo, &mut hi);
                        }
                        let fc = fold(c, nocase);
                        if fc >= lo && fc <= hi {
                            matched = true;
                        }
                        p += 3;
                    }
                    Some(&x) => {
                        if fold(x, nocase) == fold(c, nocase) {
                            matched = true;
                        }
                        p += 1;
                    }
                }
            }
            (matched != negate, p)
        }
        b'\\' if p + 1 < pat.len() => (fold(pat[p + 1], nocase) == fold(c, nocase), p + 2),
        x => (fold(x, nocase) == fold(c, nocase), p + 1),
    }
}

pub fn glob_match(pat: &[u8], s: &[u8], nocase: bool) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if pat.get(p) == Some(&b'*') {
            while pat.get(p) == Some(&b'*') {
                p += 1;
            }
            if p == pat.len() {
                return true;
            }
            star = Some((p, i));
            continue;
        }
        if p < pat.len() {
            let (ok, np) = token(pat, p, s[i], nocase);
            if ok {
                p = np;
                i += 1;
                continue;
            }
        }
        match star {
            Some((sp, si)) => {
                p = sp;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    while pat.get(p) == Some(&b'*') {
        p += 1;
    }
    p == pat.len()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn redis_glob_rules() {
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("[abc", "a"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("*a*a*a*a*a*a*a*a*b", &("a".repeat(40) + "b")));
        assert!(!m("*a*a*a*a*a*a*a*a*b", &"a".repeat(40)));
        assert!(glob_match(b"HELLO", b"hello", true));
    }
}
