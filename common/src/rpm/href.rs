//! Checks on location hrefs from upstream metadata. An href becomes part of a URL chantal
//! requests and a path clients see; it must stay inside the repository.

/// Longest href accepted.
const MAX_HREF: usize = 4096;

/// Accepts a relative path without `..` segments, schemes, backslashes or control characters.
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
    for segment in href.split('/') {
        if segment == ".." {
            return Err(format!("location href {href:?} contains '..'"));
        }
        if segment.eq_ignore_ascii_case("%2e%2e") {
            return Err(format!("location href {href:?} contains an encoded '..'"));
        }
    }
    if href.ends_with('/') {
        return Err(format!("location href {href:?} names a directory"));
    }
    Ok(())
}

/// The file name part of a checked href.
pub fn file_name(href: &str) -> &str {
    href.rsplit('/').next().unwrap_or(href)
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_normal_hrefs() {
        for ok in [
            "Packages/a/bash-5.1-1.x86_64.rpm",
            "repodata/abc-primary.xml.gz",
            "x.rpm",
            "./Packages/x.rpm",
        ] {
            check(ok).unwrap();
        }
    }

    #[test]
    fn refuses_hostile_hrefs() {
        for bad in [
            "",
            "/etc/passwd",
            "../../etc/passwd",
            "Packages/../../x.rpm",
            "http://evil.example/x.rpm",
            "Packages\\..\\x.rpm",
            "Packages/%2e%2e/x.rpm",
            "a\nb.rpm",
            "Packages/",
        ] {
            assert!(check(bad).is_err(), "{bad:?} accepted");
        }
    }
}
