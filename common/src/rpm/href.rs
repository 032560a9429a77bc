//! Location hrefs from upstream metadata. An href is a relative path of literal bytes, exactly
//! as dnf reads it: `a%20b.rpm` names a file whose name contains `%20`, not a space. It
//! becomes part of a URL chantal requests (percent-encoded, as librepo does) and a path clients
//! see (literally); it must stay inside the repository either way.

use std::borrow::Cow;

/// The directory that holds a repository's metadata; nothing else may live there.
pub const REPODATA_DIR: &str = "repodata";

/// Longest href accepted.
const MAX_HREF: usize = 4096;

/// Accepts a relative path without `..` segments, schemes, backslashes or control characters.
/// Segments are checked literally: `.%2e` is a file name, not a parent directory, because
/// nothing decodes it (see [`url_path`]).
pub fn check(href: &str) -> Result<(), String> {
    if href.is_empty() {
        return Err("empty location href".into());
    }
    if href.len() > MAX_HREF {
        return Err(format!("location href longer than {MAX_HREF} bytes"));
    }
    if href.starts_with('/') {
        return Err(format!("absolute location href {href:?}"));
    }
    if href.contains("://") || href.contains('\\') {
        return Err(format!(
            "location href {href:?} points outside the repository"
        ));
    }
    if href.chars().any(|c| c.is_control()) {
        return Err(format!(
            "location href {href:?} contains control characters"
        ));
    }
    if href.split('/').any(|segment| segment == "..") {
        return Err(format!("location href {href:?} contains '..'"));
    }
    if normalize(href).is_empty() {
        return Err(format!("location href {href:?} names no file"));
    }
    if href.ends_with('/') || href.ends_with("/.") || href == "." {
        return Err(format!("location href {href:?} names a directory"));
    }
    Ok(())
}

/// The path an href names below the repository, as served: `.` and empty segments dropped
/// (`./Packages//a.rpm` is `Packages/a.rpm`, as a web server resolves it).
pub fn normalize(href: &str) -> Cow<'_, str> {
    let clean = href.split('/').all(|s| !s.is_empty() && s != ".");
    if clean {
        return Cow::Borrowed(href);
    }
    let parts: Vec<&str> = href
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    Cow::Owned(parts.join("/"))
}

/// The URL path of a checked href, relative to the repository's base URL: its normalised path
/// with every byte outside `A-Za-z0-9-._~` and `/` percent-encoded (lower-case hex), exactly as
/// librepo builds the URLs dnf requests, so chantal fetches the file a client would.
pub fn url_path(href: &str) -> String {
    let path = normalize(href);
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The file name part of a checked href.
pub fn file_name(href: &str) -> &str {
    href.rsplit('/').next().unwrap_or(href)
}

#[cfg(test)]
mod tests {
    use super::{check, normalize, url_path};

    #[test]
    fn accepts_normal_hrefs() {
        for ok in [
            "Packages/a/bash-5.1-1.x86_64.rpm",
            "repodata/abc-primary.xml.gz",
            "x.rpm",
            "./Packages/x.rpm",
            // Literal names: nothing decodes them, so they are files like any other.
            ".%2e/.%2e/secret.txt",
            "Packages/%2e%2e/x.rpm",
            "a%20b%41.rpm",
        ] {
            check(ok).unwrap();
        }
    }

    #[test]
    fn refuses_hostile_hrefs() {
        for bad in [
            "",
            ".",
            "./",
            "/etc/passwd",
            "../../etc/passwd",
            "Packages/../../x.rpm",
            "Packages/..",
            "http://evil.example/x.rpm",
            "Packages\\..\\x.rpm",
            "a\nb.rpm",
            "a\0b.rpm",
            "Packages/",
            "Packages/.",
        ] {
            assert!(check(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn normalises_like_a_web_server() {
        assert_eq!(normalize("Packages/a.rpm"), "Packages/a.rpm");
        assert_eq!(normalize("./Packages//./a.rpm"), "Packages/a.rpm");
    }

    #[test]
    fn urls_are_encoded_as_librepo_encodes_them() {
        // What dnf 4 (librepo) requested for these hrefs, seen in a server's log.
        for (href, url) in [
            ("a%20b%41.rpm", "a%2520b%2541.rpm"),
            ("c+d e.rpm", "c%2bd%20e.rpm"),
            (
                "g~h;i=j&k'l(m)!@,$.rpm",
                "g~h%3bi%3dj%26k%27l%28m%29%21%40%2c%24.rpm",
            ),
            ("n#o?p.rpm", "n%23o%3fp.rpm"),
            (".%2e/.%2e/secret.txt", ".%252e/.%252e/secret.txt"),
            (
                "./Packages/a-1.0-1.x86_64.rpm",
                "Packages/a-1.0-1.x86_64.rpm",
            ),
            ("Packages/é.rpm", "Packages/%c3%a9.rpm"),
        ] {
            assert_eq!(url_path(href), url, "{href}");
        }
    }
}
