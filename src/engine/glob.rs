//! Redis glob patterns (`SCAN … MATCH`, `KEYS`), for keys that reach rump
//! without a SCAN: a changed key (`--live`) is copied only if the run's
//! `--match` selects it, exactly as the server would have matched it.
//!
//! The rules of Redis's `stringmatchlen`: `*` any run of bytes, `?` one
//! byte, `[abc]`, `[^abc]` and `[a-z]` classes (a range may be written
//! backwards), `\` escapes the next byte; binary-safe.

/// True when `key` matches `pattern`.
pub fn matches(pattern: &[u8], key: &[u8]) -> bool {
    // Iterative with one backtrack point: the last `*` seen. Linear in
    // practice, and never recursive, whatever the pattern.
    let (mut p, mut k) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while k < key.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, k));
                    continue;
                }
                b'?' => {
                    p += 1;
                    k += 1;
                    continue;
                }
                b'[' => {
                    if let Some((hit, next)) = class(pattern, p, key[k]) {
                        if hit {
                            p = next;
                            k += 1;
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == key[k] {
                        p += 2;
                        k += 1;
                        continue;
                    }
                }
                c => {
                    if c == key[k] {
                        p += 1;
                        k += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, sk)) => {
                p = sp;
                k = sk + 1;
                star = Some((sp, sk + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The class starting at `pattern[start] == b'['`: whether `c` is in it, and
/// where the pattern goes on. An unclosed class runs to the end, as in Redis.
fn class(pattern: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut p = start + 1;
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut hit = false;
    loop {
        match pattern.get(p) {
            None => break,
            Some(b']') => {
                p += 1;
                break;
            }
            Some(b'\\') if p + 1 < pattern.len() => {
                hit |= pattern[p + 1] == c;
                p += 2;
            }
            Some(&lo) if pattern.get(p + 1) == Some(&b'-') && p + 2 < pattern.len() => {
                let hi = pattern[p + 2];
                let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                hit |= (lo..=hi).contains(&c);
                p += 3;
            }
            Some(&b) => {
                hit |= b == c;
                p += 1;
            }
        }
    }
    Some((hit != negate, p))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn redis_glob_rules() {
        let yes = |p: &str, k: &str| assert!(matches(p.as_bytes(), k.as_bytes()), "{p} ~ {k}");
        let no = |p: &str, k: &str| assert!(!matches(p.as_bytes(), k.as_bytes()), "{p} !~ {k}");
        yes("*", "");
        yes("*", "anything");
        yes("user:*", "user:1");
        no("user:*", "users:1");
        yes("h?llo", "hello");
        no("h?llo", "hllo");
        yes("h[ae]llo", "hallo");
        no("h[ae]llo", "hillo");
        yes("h[^e]llo", "hallo");
        no("h[^e]llo", "hello");
        yes("h[a-b]llo", "hbllo");
        yes("h[b-a]llo", "hallo");
        yes("a\\*b", "a*b");
        no("a\\*b", "axb");
        yes("*a*b*c*", "xxaxxbxxcxx");
        no("*a*b*c*", "xxaxxcxxbxx");
        yes("a*", "a");
        no("", "a");
        yes("", "");
        assert!(matches(b"k:\xff*", b"k:\xff\x00z"));
    }
}
