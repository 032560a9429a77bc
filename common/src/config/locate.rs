//! Finding the line of a key in a YAML file, for errors that are found after deserialisation
//! (serde only reports positions while it is still reading).

/// Returns the 1-based line on which the dotted key path `path` is written in block-style YAML,
/// or the line of its deepest ancestor that is present (so a missing `credentials.password`
/// points at `credentials:`), or 1 when nothing matches.
pub fn line_of(text: &str, path: &[&str]) -> usize {
    let mut stack: Vec<(usize, &str)> = Vec::new();
    let mut best = (0usize, 1usize);
    for (index, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('-') || trimmed.starts_with("---") {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let Some((key, _)) = trimmed.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches(['"', '\'']);
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        let depth = stack
            .iter()
            .zip(path)
            .take_while(|((_, k), p)| k == *p)
            .count();
        if depth == stack.len() && depth > best.0 {
            best = (depth, index + 1);
            if depth == path.len() {
                break;
            }
        }
    }
    best.1
}

fn strip_comment(line: &str) -> &str {
    // A '#' starts a comment at the line start or after white space; good enough for keys.
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::line_of;

    const DOC: &str = "name: a\n# comment: x\nupstream:\n  url: http://x\ncredentials:\n  type: basic\n  username: u\nrpm:\n  architectures: [x86_64]\n";

    #[test]
    fn finds_nested_keys() {
        assert_eq!(line_of(DOC, &["name"]), 1);
        assert_eq!(line_of(DOC, &["upstream", "url"]), 4);
        assert_eq!(line_of(DOC, &["credentials", "username"]), 7);
        assert_eq!(line_of(DOC, &["rpm", "architectures"]), 9);
    }

    #[test]
    fn falls_back_to_the_deepest_ancestor() {
        assert_eq!(line_of(DOC, &["credentials", "password"]), 5);
        assert_eq!(line_of(DOC, &["nothing"]), 1);
    }
}
