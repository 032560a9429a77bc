//! What chantal-fs and `chantal fetchd` say to each other over the fetcher's Unix socket
//! (`fetch.socket`): one request per connection, one JSON object per line.
//!
//! chantal-fs sends a [`Request`] naming a pool file by its sha256. The fetcher answers with
//! [`Event`]s: where the file is being written ([`Event::Part`]) and how far
//! ([`Event::Have`]), so readers get the bytes they need while the rest arrives; then the
//! pool file once it is verified and has its pool name ([`Event::Done`]), or why not
//! ([`Event::Failed`]). The connection closes after the last event.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Longest request line the fetcher reads.
pub const MAX_REQUEST: usize = 256;

/// A pool file wanted by a reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub sha256: String,
}

/// What the fetcher reports, in order: `Part` once, `Have` as bytes arrive, `Verified`, then
/// `Done` or `Failed`. `Done` and `Failed` may come alone (the pool holds the file; the file is not
/// listed, or failed moments ago).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The partial file being written, and the file's full size.
    Part { path: PathBuf, size: u64 },
    /// Bytes of the partial file that are written, from its start. Never more than the
    /// size; it can go back when a download restarts (the bytes are the same file's).
    Have { bytes: u64 },
    /// The partial file is complete and verified (size, sha256, signature): all of it may be
    /// read. Its pool name follows, once its data is on disk.
    Verified,
    /// The verified file, at its pool name.
    Done { path: PathBuf },
    /// Why the file cannot be had now (one line, for the log).
    Failed { reason: String },
}

impl Event {
    /// The event as one line of the protocol.
    pub fn line(&self) -> String {
        // Serializing these plain values cannot fail; an empty object would be read as a
        // protocol error, never as success.
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }

    /// Parses one line of the protocol.
    pub fn parse(line: &str) -> Result<Event, String> {
        serde_json::from_str(line.trim_end()).map_err(|e| format!("bad fetcher message: {e}"))
    }

    /// Whether no event follows this one.
    pub fn is_last(&self) -> bool {
        matches!(self, Event::Done { .. } | Event::Failed { .. })
    }
}

impl Request {
    pub fn line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }

    pub fn parse(line: &str) -> Result<Request, String> {
        serde_json::from_str(line.trim_end()).map_err(|e| format!("bad request: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_as_single_lines() {
        for e in [
            Event::Part {
                path: "/s/data/tmp/pkg-sha256-ab.part".into(),
                size: 7,
            },
            Event::Have { bytes: 3 },
            Event::Verified,
            Event::Done {
                path: "/s/data/sha256/ab/cd/x_y.rpm".into(),
            },
            Event::Failed {
                reason: "404 \"quoted\"\nnext".into(),
            },
        ] {
            let line = e.line();
            assert_eq!(line.matches('\n').count(), 1, "{line}");
            assert_eq!(Event::parse(&line).unwrap(), e);
        }
        assert!(Event::parse("{\"done\":{}}").is_err());
        let r = Request {
            sha256: "ab".into(),
        };
        assert_eq!(Request::parse(&r.line()).unwrap(), r);
        assert!(Request::parse("{\"sha256\":\"ab\",\"x\":1}").is_err());
    }
}
