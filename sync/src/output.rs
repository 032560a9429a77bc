//! Command output: standard output that a closed pipe cannot break, warnings and errors on
//! standard error, and formatting (aligned tables, sizes, times, JSON).
//!
//! A command's results go through [`Out`]. When the reader goes away (`chantal repo list |
//! head -1`), output ends quietly and the command goes on: a read-only command exits 0, as
//! coreutils do, and a sync still commits, exports and moves on to the next repository. Any
//! other write error (a full disk behind `> file`) is kept and reported once, by [`finish`],
//! after the work is done.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cli::Format;

/// Set once standard output cannot take more: further output is dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// The first write error that was not a closed pipe.
static FAILED: Mutex<Option<io::Error>> = Mutex::new(None);

/// Standard output for command results; writing to it never fails (see the module docs).
pub struct Out;

impl Out {
    fn failed(e: io::Error) {
        CLOSED.store(true, Ordering::SeqCst);
        if e.kind() != io::ErrorKind::BrokenPipe {
            let mut failed = FAILED.lock().unwrap_or_else(|p| p.into_inner());
            failed.get_or_insert(e);
        }
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !CLOSED.load(Ordering::SeqCst) {
            if let Err(e) = io::stdout().lock().write_all(buf) {
                Self::failed(e);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !CLOSED.load(Ordering::SeqCst) {
            if let Err(e) = io::stdout().lock().flush() {
                Self::failed(e);
            }
        }
        Ok(())
    }
}

/// Prints one line of results.
pub fn line(text: impl fmt::Display) {
    let _ = writeln!(Out, "{text}");
}

/// Flushes standard output; the first write error other than a closed pipe, if any.
pub fn finish() -> Option<io::Error> {
    let _ = Out.flush();
    FAILED.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// `-q`: nothing but errors on standard error.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Silences [`warn`] (`-q`, for cron: only errors reach its mail).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// `--log-format json`: warnings and errors go out as JSON log lines too, so that every line
/// on standard error parses.
static JSON_LOGS: AtomicBool = AtomicBool::new(false);

/// Sends warnings and errors through the JSON log instead of plain lines.
pub fn set_json_logs(json: bool) {
    JSON_LOGS.store(json, Ordering::Relaxed);
}

/// `chantal: warning: …` on standard error (a closed standard error is ignored); nothing
/// with `-q`.
pub fn warn(text: impl fmt::Display) {
    if QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    if JSON_LOGS.load(Ordering::Relaxed) {
        tracing::warn!("{text}");
        return;
    }
    let _ = writeln!(io::stderr().lock(), "chantal: warning: {text}");
}

/// `chantal: error: …` on standard error (a closed standard error is ignored).
pub fn error(text: impl fmt::Display) {
    if JSON_LOGS.load(Ordering::Relaxed) {
        tracing::error!("{text}");
        return;
    }
    let _ = writeln!(io::stderr().lock(), "chantal: error: {text}");
}

/// A line on standard error as it is (a closed standard error is ignored).
pub fn err_line(text: impl fmt::Display) {
    if JSON_LOGS.load(Ordering::Relaxed) {
        tracing::error!("{}", text.to_string().trim());
        return;
    }
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// Prints rows as left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// Binary units with one decimal: `1.5 GiB`, `830 B`.
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

/// A span of seconds as the configuration spells it: the largest unit that divides it
/// (`90d`, `36h`, `5m`, `61s`).
pub fn span(secs: u64) -> String {
    for (unit, per) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= per && secs.is_multiple_of(per) {
            return format!("{}{unit}", secs / per);
        }
    }
    format!("{secs}s")
}

/// `2026-11-27 23:59:01 UTC`.
pub fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Writes a JSON value followed by a newline.
pub fn json(out: &mut dyn Write, value: &serde_json::Value) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

/// A row of a listing (`repo list`, `snapshot list`): the table and the JSON come from this
/// one struct, the table's columns being fields of the JSON rows.
pub trait Row: Serialize {
    /// The table's columns: (JSON field, header), in order.
    const COLUMNS: &'static [(&'static str, &'static str)];
    /// The table's text for `field` (sizes and times as people read them).
    fn cell(&self, field: &str) -> String;
}

/// Prints rows as a table or a JSON array.
pub fn rows<R: Row>(format: Format, rows: &[R]) -> anyhow::Result<()> {
    let mut out = Out;
    match format {
        Format::Json => json(&mut out, &serde_json::to_value(rows)?)?,
        Format::Table => write_table(&mut out, rows)?,
    }
    Ok(())
}

/// Writes rows as a table.
pub fn write_table<R: Row>(out: &mut dyn Write, rows: &[R]) -> io::Result<()> {
    if let Some(first) = rows.first() {
        columns_are_fields(first).map_err(io::Error::other)?;
    }
    let header: Vec<&str> = R::COLUMNS.iter().map(|(_, h)| *h).collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| R::COLUMNS.iter().map(|(f, _)| r.cell(f)).collect())
        .collect();
    table(out, &header, &cells)
}

/// A table column that is not a JSON field is a bug: every table printed in the tests checks.
fn columns_are_fields<R: Row>(row: &R) -> Result<(), String> {
    let v = serde_json::to_value(row).map_err(|e| e.to_string())?;
    for (field, _) in R::COLUMNS {
        if v.get(field).is_none() {
            return Err(format!(
                "internal error: table column {field} is not a field of {}",
                std::any::type_name::<R>()
            ));
        }
    }
    Ok(())
}

/// A report on one thing (`repo show`, `snapshot show`, `db status`...): JSON from the
/// struct, or text written from the same struct.
pub trait Report: Serialize {
    fn text(&self, out: &mut dyn Write) -> io::Result<()>;
}

/// Prints a report as text or JSON.
pub fn report<R: Report>(format: Format, report: &R) -> anyhow::Result<()> {
    let mut out = Out;
    match format {
        Format::Json => json(&mut out, &serde_json::to_value(report)?)?,
        Format::Table => report.text(&mut out)?,
    }
    Ok(())
}

/// Serialises times as RFC 3339 with an explicit offset (`2026-11-27T23:59:01+00:00`), as
/// chantal's JSON always has.
pub mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::Serializer;

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&t.to_rfc3339()),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn tables_align() {
        let mut out = Vec::new();
        table(
            &mut out,
            &["NAME", "N"],
            &[
                vec!["a".into(), "1".into()],
                vec!["long-name".into(), "22".into()],
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME       N\na          1\nlong-name  22\n"
        );
    }

    #[derive(Serialize)]
    struct Fruit {
        name: &'static str,
        grams: u32,
    }

    impl Row for Fruit {
        const COLUMNS: &'static [(&'static str, &'static str)] =
            &[("name", "NAME"), ("weight", "WEIGHT")];
        fn cell(&self, field: &str) -> String {
            match field {
                "name" => self.name.into(),
                _ => format!("{} g", self.grams),
            }
        }
    }

    #[test]
    fn a_table_column_must_be_a_json_field() {
        let err = columns_are_fields(&Fruit {
            name: "pear",
            grams: 180,
        })
        .unwrap_err();
        assert!(err.contains("column weight"), "{err}");
    }
}
