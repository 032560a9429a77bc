//! Finding packages (`chantal package search/show`, `advisory search`): package rows by name
//! glob, exact names, NEVRA, provided capability or file, with every repository range that
//! serves them. Which snapshots and environments those ranges hold is the caller's business.

use std::collections::HashMap;

use super::super::db::{Store, Val};
use super::nevra;
use crate::catalogue::model::{FoundPackage, PackagePlace, PackageQuery};
use crate::error::Result;

/// A glob (`*`, `?`) as a lower-cased LIKE pattern with `\` as its escape character.
pub fn like_pattern(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 2);
    for c in glob.to_lowercase().chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// The bytewise range `[low, high)` of lower-cased names that start with the glob's literal
/// prefix (what comes before its first `*` or `?`); `high` is `None` when no string bounds it.
pub fn prefix_range(glob: &str) -> (String, Option<String>) {
    let prefix: String = glob
        .to_lowercase()
        .chars()
        .take_while(|c| *c != '*' && *c != '?')
        .collect();
    let mut chars: Vec<char> = prefix.chars().collect();
    // The smallest string above every string with this prefix: the last character that can be
    // incremented, incremented, and what follows it dropped.
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return (prefix, Some(chars.into_iter().collect()));
        }
    }
    (prefix, None)
}

/// A literal as a LIKE pattern matching it anywhere (`%…%`), `\`-escaped.
fn contains_pattern(literal: &str) -> String {
    let mut out = String::from("%");
    for c in literal.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Text as it appears in an XML attribute or element of the stored fragments.
pub fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Whether a primary.xml fragment lists `capability` among its provides (not its requires,
/// which the SQL prefilter cannot tell apart).
pub fn provides(primary_xml: &str, capability: &str) -> bool {
    let needle = format!("<rpm:entry name=\"{}\"", xml_escape(capability));
    let Some(start) = primary_xml.find("<rpm:provides>") else {
        return false;
    };
    let section = &primary_xml[start..];
    let section = &section[..section.find("</rpm:provides>").unwrap_or(section.len())];
    section.contains(&needle)
}

/// A search's WHERE clause over `packages p`, with its values in placeholder order. `{C}`
/// stands for the dialect's bytewise collation.
#[derive(Default)]
struct Filter {
    conds: Vec<String>,
    values: Vec<Bound>,
}

enum Bound {
    Text(String),
    Int(i64),
}

impl Filter {
    /// The next placeholder, bound to `v`.
    fn bind(&mut self, v: Bound) -> String {
        self.values.push(v);
        format!("${}", self.values.len())
    }

    fn text(&mut self, v: impl Into<String>) -> String {
        self.bind(Bound::Text(v.into()))
    }

    fn of(q: &PackageQuery<'_>) -> Filter {
        let mut f = Filter::default();
        if let Some(glob) = q.name_glob {
            // The names starting with the glob's literal prefix, from the index on
            // lower(name) (bytewise, as the index compares); LIKE then decides.
            let (low, high) = prefix_range(glob);
            if !low.is_empty() {
                let n = f.text(low);
                f.conds.push(format!("lower(p.name){{C}} >= {n}"));
                if let Some(high) = high {
                    let n = f.text(high);
                    f.conds.push(format!("lower(p.name){{C}} < {n}"));
                }
            }
            let n = f.text(like_pattern(glob));
            f.conds.push(format!("lower(p.name) LIKE {n} ESCAPE '\\'"));
        }
        if !q.names.is_empty() {
            let list: Vec<String> = q.names.iter().map(|n| f.text(*n)).collect();
            f.conds.push(format!("p.name IN ({})", list.join(", ")));
        }
        if let Some(n) = q.nevra {
            for (column, value) in [
                ("p.name", n.name.as_str()),
                ("p.version", n.version.as_str()),
                ("p.release", n.release.as_str()),
                ("p.arch", n.arch.as_str()),
            ] {
                let ph = f.text(value);
                f.conds.push(format!("{column} = {ph}"));
            }
            let ph = f.bind(Bound::Int(n.epoch));
            f.conds.push(format!("p.epoch = {ph}"));
        }
        if let Some(cap) = q.provides {
            let n = f.text(contains_pattern(&format!(
                "<rpm:entry name=\"{}\"",
                xml_escape(cap)
            )));
            f.conds.push(format!("p.primary_xml LIKE {n} ESCAPE '\\'"));
        }
        if let Some(path) = q.file {
            let n = f.text(contains_pattern(&format!(">{}</file>", xml_escape(path))));
            f.conds.push(format!(
                "(p.primary_xml LIKE {n} ESCAPE '\\' OR p.filelists_xml LIKE {n} ESCAPE '\\')"
            ));
        }
        if let Some(repo) = q.repository {
            let n = f.text(repo);
            f.conds.push(format!(
                "p.id IN (SELECT c.package_id FROM repository_content c
                            JOIN repositories r ON r.id = c.repository_id WHERE r.name = {n})"
            ));
        }
        // Rows no version references (cleanup has not run yet) are served nowhere.
        f.conds
            .push("EXISTS (SELECT 1 FROM repository_content c WHERE c.package_id = p.id)".into());
        f
    }

    fn sql(&self, d: super::super::db::Dialect) -> String {
        self.conds.join(" AND ").replace("{C}", d.collate_bytes())
    }

    fn params(&self) -> Vec<Val<'_>> {
        self.values
            .iter()
            .map(|v| match v {
                Bound::Text(t) => Val::Str(t),
                Bound::Int(i) => Val::I64(*i),
            })
            .collect()
    }
}

const CTX: &str = "searching packages";

pub fn find_packages<S: Store>(s: &S, q: &PackageQuery<'_>) -> Result<Vec<FoundPackage>> {
    let filter = Filter::of(q);
    s.autocommit(|db| {
        let mut found = matching_rows(db, q, &filter)?;
        if found.is_empty() {
            return Ok(found);
        }
        let mut places = places_of(db, &found, &filter)?;
        for p in &mut found {
            p.places = places.remove(&p.id).unwrap_or_default();
            if !q.with_fragment {
                p.primary_xml = None;
            }
        }
        Ok(found)
    })
}

/// The package rows the filter selects, its LIKE prefilters confirmed here, case-sensitively
/// (SQLite's LIKE ignores ASCII case, PostgreSQL's does not): both backends answer alike.
fn matching_rows(
    db: &mut dyn super::super::db::Db,
    q: &PackageQuery<'_>,
    filter: &Filter,
) -> Result<Vec<FoundPackage>> {
    let fragment = if q.provides.is_some() || q.file.is_some() || q.with_fragment {
        "p.primary_xml"
    } else {
        "NULL"
    };
    let filelists = if q.file.is_some() {
        "p.filelists_xml"
    } else {
        "NULL"
    };
    let needle = q.file.map(|path| format!(">{}</file>", xml_escape(path)));
    let mut found: Vec<FoundPackage> = db
        .all(
            CTX,
            &format!(
                "SELECT p.id, p.name, p.epoch, p.version, p.release, p.arch, p.sha256,
                        p.size_package, p.time_build, {fragment}, {filelists}
                   FROM packages p WHERE {}",
                filter.sql(db.dialect())
            ),
            &filter.params(),
            |r| {
                if let Some(needle) = &needle {
                    let has = |x: Option<String>| x.is_some_and(|x| x.contains(needle.as_str()));
                    if !has(r.opt_string(9)?) && !has(r.opt_string(10)?) {
                        return Ok(None);
                    }
                }
                Ok(Some(FoundPackage {
                    id: r.i64(0)?,
                    nevra: nevra(r, 1)?,
                    sha256: r.sha256(6)?,
                    size: r.i64(7)?,
                    build_time: r.opt_i64(8)?,
                    primary_xml: r.opt_string(9)?,
                    places: Vec::new(),
                }))
            },
        )?
        .into_iter()
        .flatten()
        .collect();
    if let Some(cap) = q.provides {
        found.retain(|p| p.primary_xml.as_deref().is_some_and(|x| provides(x, cap)));
    }
    Ok(found)
}

/// Every repository range that serves each found package, by package id.
fn places_of(
    db: &mut dyn super::super::db::Db,
    found: &[FoundPackage],
    filter: &Filter,
) -> Result<HashMap<i64, Vec<PackagePlace>>> {
    // The ids found, as a literal list when they are few (an index lookup each), else the
    // search again as a subquery.
    let (which, params) = if found.len() <= 1000 {
        let ids: Vec<String> = found.iter().map(|p| p.id.to_string()).collect();
        (ids.join(", "), Vec::new())
    } else {
        (
            format!(
                "SELECT p.id FROM packages p WHERE {}",
                filter.sql(db.dialect())
            ),
            filter.params(),
        )
    };
    let mut places: HashMap<i64, Vec<PackagePlace>> = HashMap::new();
    db.query(
        CTX,
        &format!(
            "SELECT c.package_id, r.name, c.location_href, c.added_in, c.removed_in
               FROM repository_content c JOIN repositories r ON r.id = c.repository_id
              WHERE c.package_id IN ({which})
              ORDER BY r.name, c.added_in"
        ),
        &params,
        &mut |r| {
            places.entry(r.i64(0)?).or_default().push(PackagePlace {
                repository: r.string(1)?,
                href: r.string(2)?,
                added_in: r.i64(3)?,
                removed_in: r.opt_i64(4)?,
            });
            Ok(())
        },
    )?;
    Ok(places)
}

/// The issuer key ids of a package file's signatures (`None`: never checked) and the
/// fingerprints of the trusted keys that verified them.
pub fn package_signature<S: Store>(
    s: &S,
    sha256: &crate::Sha256,
) -> Result<(Option<String>, Vec<String>)> {
    let ctx = format!("reading the signatures of {sha256}");
    s.autocommit(|db| {
        let ids = db.opt(
            &ctx,
            "SELECT key_ids FROM blob_signatures WHERE blob_sha256 = $1",
            &[sha256.into()],
            |r| r.string(0),
        )?;
        let verified = db.all(
            &ctx,
            "SELECT fingerprint FROM blob_verifications WHERE blob_sha256 = $1 ORDER BY fingerprint",
            &[sha256.into()],
            |r| r.string(0),
        )?;
        Ok((ids, verified))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_become_like_patterns() {
        assert_eq!(like_pattern("Kernel*"), "kernel%");
        assert_eq!(like_pattern("lib?_x%"), "lib_\\_x\\%");
        assert_eq!(like_pattern("a\\b"), "a\\\\b");
        assert_eq!(contains_pattern("50%_"), "%50\\%\\_%");
    }

    #[test]
    fn prefix_ranges() {
        assert_eq!(
            prefix_range("Kernel*"),
            ("kernel".into(), Some("kernem".into()))
        );
        assert_eq!(prefix_range("*x"), (String::new(), None));
        assert_eq!(prefix_range("ab?c"), ("ab".into(), Some("ac".into())));
        assert_eq!(
            prefix_range("a\u{10FFFF}"),
            ("a\u{10FFFF}".into(), Some("b".into()))
        );
    }

    proptest::proptest! {
        /// Every lower-cased name the glob's prefix starts is inside the range, and every name
        /// inside the range starts with the prefix (bytewise order, as both backends compare).
        #[test]
        fn the_range_holds_exactly_the_prefixed_names(glob in "[a-c*?-]{0,4}", name in "[a-d-]{0,6}") {
            let (low, high) = prefix_range(&glob);
            let inside = name.as_str() >= low.as_str() && high.as_deref().is_none_or(|h| name.as_str() < h);
            proptest::prop_assert_eq!(inside, name.starts_with(&low));
        }
    }

    #[test]
    fn provides_only_in_the_provides_section() {
        let x = r#"<format><rpm:provides><rpm:entry name="libfoo.so.1()(64bit)"/>
            <rpm:entry name="a&amp;b"/></rpm:provides>
            <rpm:requires><rpm:entry name="libc.so.6"/></rpm:requires></format>"#;
        assert!(provides(x, "libfoo.so.1()(64bit)"));
        assert!(provides(x, "a&b"));
        assert!(!provides(x, "libc.so.6"));
        assert!(!provides(x, "libfoo"));
        assert!(!provides("<format/>", "x"));
    }
}
