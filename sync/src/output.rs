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

/// `chantal: warning: …` on standard error (a closed standard error is ignored).
pub fn warn(text: impl fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "chantal: warning: {text}");
}

/// `chantal: error: …` on standard error (a closed standard error is ignored).
pub fn error(text: impl fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "chantal: error: {text}");
}

/// A line on standard error as it is (a closed standard error is ignored).
pub fn err_line(text: impl fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// Prints rows as left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
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

/// `2026-11-27 23:59:01 UTC`.
pub fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Writes a JSON value followed by a newline.
pub fn json(out: &mut impl Write, value: &serde_json::Value) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
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
}
