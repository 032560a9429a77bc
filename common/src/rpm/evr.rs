//! rpm's version ordering: `rpmvercmp` on version and release strings, and epoch-version-release
//! comparison. One implementation for retention, diffs and everything else that orders
//! packages; the test vectors are rpm's own (tests/rpmvercmp.at).

use std::cmp::Ordering;

/// Compares two version (or release) strings the way rpm does: alternating runs of digits
/// (compared numerically, a number beats letters) and letters (compared as strings),
/// separators ignored, `~` sorting before anything (even the end of the string) and `^` after
/// the base version but before any further segment.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    while i < a.len() || j < b.len() {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            match (ca, cb) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(x), _) if x != b'^' => return Ordering::Greater,
                (_, Some(y)) if y != b'^' => return Ordering::Less,
                _ => {}
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(ca), Some(_)) = (ca, cb) else {
            break;
        };
        let numeric = ca.is_ascii_digit();
        let run = |s: &[u8], start: usize| {
            let mut end = start;
            while end < s.len()
                && (if numeric {
                    s[end].is_ascii_digit()
                } else {
                    s[end].is_ascii_alphabetic()
                })
            {
                end += 1;
            }
            end
        };
        let (ea, eb) = (run(a, i), run(b, j));
        if eb == j {
            // The other side has a segment of the other kind: numbers are newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (mut sa, mut sb) = (&a[i..ea], &b[j..eb]);
        if numeric {
            while sa.len() > 1 && sa[0] == b'0' {
                sa = &sa[1..];
            }
            while sb.len() > 1 && sb[0] == b'0' {
                sb = &sb[1..];
            }
            match sa.len().cmp(&sb.len()) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        match sa.cmp(sb) {
            Ordering::Equal => {}
            other => return other,
        }
        i = ea;
        j = eb;
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// Epoch, then version, then release.
pub fn compare_evr(a: (i64, &str, &str), b: (i64, &str, &str)) -> Ordering {
    a.0.cmp(&b.0)
        .then_with(|| rpmvercmp(a.1, b.1))
        .then_with(|| rpmvercmp(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rpm's tests/rpmvercmp.at, including the tilde and caret cases.
    const VECTORS: &[(&str, &str, i32)] = &[
        ("1.0", "1.0", 0),
        ("1.0", "2.0", -1),
        ("2.0", "1.0", 1),
        ("2.0.1", "2.0.1", 0),
        ("2.0", "2.0.1", -1),
        ("2.0.1", "2.0", 1),
        ("2.0.1a", "2.0.1a", 0),
        ("2.0.1a", "2.0.1", 1),
        ("2.0.1", "2.0.1a", -1),
        ("5.5p1", "5.5p1", 0),
        ("5.5p1", "5.5p2", -1),
        ("5.5p2", "5.5p1", 1),
        ("5.5p10", "5.5p10", 0),
        ("5.5p1", "5.5p10", -1),
        ("5.5p10", "5.5p1", 1),
        ("10xyz", "10.1xyz", -1),
        ("10.1xyz", "10xyz", 1),
        ("xyz10", "xyz10", 0),
        ("xyz10", "xyz10.1", -1),
        ("xyz10.1", "xyz10", 1),
        ("xyz.4", "xyz.4", 0),
        ("xyz.4", "8", -1),
        ("8", "xyz.4", 1),
        ("xyz.4", "2", -1),
        ("2", "xyz.4", 1),
        ("5.5p2", "5.6p1", -1),
        ("5.6p1", "5.5p2", 1),
        ("5.6p1", "6.5p1", -1),
        ("6.5p1", "5.6p1", 1),
        ("6.0.rc1", "6.0", 1),
        ("6.0", "6.0.rc1", -1),
        ("10b2", "10a1", 1),
        ("10a2", "10b2", -1),
        ("1.0aa", "1.0aa", 0),
        ("1.0a", "1.0aa", -1),
        ("1.0aa", "1.0a", 1),
        ("10.0001", "10.0001", 0),
        ("10.0001", "10.1", 0),
        ("10.1", "10.0001", 0),
        ("10.0001", "10.0039", -1),
        ("10.0039", "10.0001", 1),
        ("4.999.9", "5.0", -1),
        ("5.0", "4.999.9", 1),
        ("20101121", "20101121", 0),
        ("20101121", "20101122", -1),
        ("20101122", "20101121", 1),
        ("2_0", "2_0", 0),
        ("2.0", "2_0", 0),
        ("2_0", "2.0", 0),
        ("a", "a", 0),
        ("a+", "a+", 0),
        ("a+", "a_", 0),
        ("a_", "a+", 0),
        ("+a", "+a", 0),
        ("+a", "_a", 0),
        ("_a", "+a", 0),
        ("+_", "+_", 0),
        ("_+", "+_", 0),
        ("_+", "_+", 0),
        ("+", "_", 0),
        ("_", "+", 0),
        ("1.0~rc1", "1.0~rc1", 0),
        ("1.0~rc1", "1.0", -1),
        ("1.0", "1.0~rc1", 1),
        ("1.0~rc1", "1.0~rc2", -1),
        ("1.0~rc2", "1.0~rc1", 1),
        ("1.0~rc1~git123", "1.0~rc1~git123", 0),
        ("1.0~rc1~git123", "1.0~rc1", -1),
        ("1.0~rc1", "1.0~rc1~git123", 1),
        ("1.0^", "1.0^", 0),
        ("1.0^", "1.0", 1),
        ("1.0", "1.0^", -1),
        ("1.0^git1", "1.0^git1", 0),
        ("1.0^git1", "1.0", 1),
        ("1.0", "1.0^git1", -1),
        ("1.0^git1", "1.0^git2", -1),
        ("1.0^git2", "1.0^git1", 1),
        ("1.0^git1", "1.01", -1),
        ("1.01", "1.0^git1", 1),
        ("1.0^20160101", "1.0^20160101", 0),
        ("1.0^20160101", "1.0.1", -1),
        ("1.0.1", "1.0^20160101", 1),
        ("1.0^20160101^git1", "1.0^20160101^git1", 0),
        ("1.0^20160102", "1.0^20160101^git1", 1),
        ("1.0^20160101^git1", "1.0^20160102", -1),
        ("1.0~rc1^git1", "1.0~rc1^git1", 0),
        ("1.0~rc1^git1", "1.0~rc1", 1),
        ("1.0~rc1", "1.0~rc1^git1", -1),
        ("1.0^git1~pre", "1.0^git1~pre", 0),
        ("1.0^git1", "1.0^git1~pre", 1),
        ("1.0^git1~pre", "1.0^git1", -1),
    ];

    #[test]
    fn rpm_test_vectors() {
        for (a, b, expected) in VECTORS {
            let got = match rpmvercmp(a, b) {
                Ordering::Less => -1,
                Ordering::Equal => 0,
                Ordering::Greater => 1,
            };
            assert_eq!(got, *expected, "rpmvercmp({a}, {b})");
        }
    }

    #[test]
    fn epoch_wins_then_version_then_release() {
        assert_eq!(
            compare_evr((1, "1.0", "1"), (0, "9.9", "9")),
            Ordering::Greater
        );
        assert_eq!(
            compare_evr((0, "2.0", "1"), (0, "2.0~rc1", "9")),
            Ordering::Greater
        );
        assert_eq!(
            compare_evr((0, "2.0", "1.el9"), (0, "2.0", "2.el9")),
            Ordering::Less
        );
        assert_eq!(
            compare_evr((0, "2.0", "1"), (0, "2.0", "1")),
            Ordering::Equal
        );
    }
}
