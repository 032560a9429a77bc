//! Printing URLs and connection strings without their secrets.

/// Masks the password in a URL (`scheme://user:secret@host/...`) or a libpq key-value
/// connection string (`host=... password=secret`). Everything else is kept so the operator
/// still recognises which server is meant.
pub fn redact_url(s: &str) -> String {
    if let Some(scheme_end) = s.find("://") {
        let rest = &s[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            if let Some(colon) = userinfo.find(':') {
                return format!(
                    "{}{}:****{}",
                    &s[..scheme_end + 3],
                    &userinfo[..colon],
                    &s[scheme_end + 3 + at..]
                );
            }
        }
        return s.to_string();
    }
    s.split(' ')
        .map(|part| match part.split_once('=') {
            Some((k, _)) if k.trim() == "password" => format!("{k}=****"),
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn masks_url_passwords_only() {
        assert_eq!(
            redact_url("postgresql://chantal:secret@localhost/chantal"),
            "postgresql://chantal:****@localhost/chantal"
        );
        assert_eq!(
            redact_url("http://u:p@proxy:3128"),
            "http://u:****@proxy:3128"
        );
        assert_eq!(
            redact_url("postgresql://chantal@localhost/chantal"),
            "postgresql://chantal@localhost/chantal"
        );
        assert_eq!(
            redact_url("https://cdn.example/a@b"),
            "https://cdn.example/a@b"
        );
    }

    #[test]
    fn masks_keyword_passwords() {
        assert_eq!(
            redact_url("host=/run/postgresql user=chantal password=secret dbname=chantal"),
            "host=/run/postgresql user=chantal password=**** dbname=chantal"
        );
    }
}
