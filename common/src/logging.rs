//! `--log-format json`: one JSON object per line on standard error (time, level, repo, phase,
//! message, and the event's other fields) for log shippers. The human format, the default,
//! stays as it is: one plain line per event, which journald and cron mail read well.
//!
//! The repository and phase come from the spans around the event: the engine opens a `sync`
//! span with a `repo` field per repository, and a span per phase (`fetch`, `plan`,
//! `download`, `commit`) inside it.

use std::io::Write;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A layer that writes each event as one JSON line to what `W` makes (standard error).
pub struct JsonLines<W = fn() -> std::io::Stderr> {
    make_writer: W,
}

impl JsonLines {
    /// Lines to standard error.
    pub fn stderr() -> JsonLines {
        JsonLines {
            make_writer: std::io::stderr,
        }
    }
}

impl<W> JsonLines<W> {
    /// Lines to what `make_writer` makes.
    pub fn new(make_writer: W) -> JsonLines<W> {
        JsonLines { make_writer }
    }
}

/// The fields a span was opened (or later recorded) with.
#[derive(Default)]
struct SpanFields(Map<String, Value>);

struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_string(),
            Value::String(format!("{value:?}")),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_string(), Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), value.into());
    }
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut fields = SpanFields::default();
            attrs.record(&mut Fields(&mut fields.0));
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
                values.record(&mut Fields(&mut fields.0));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Map::new();
        line.insert(
            "time".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        line.insert(
            "level".into(),
            Value::String(event.metadata().level().as_str().to_ascii_lowercase()),
        );
        let mut repo = Value::Null;
        let mut phase = Value::Null;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let ext = span.extensions();
                let fields = ext.get::<SpanFields>();
                match fields.and_then(|f| f.0.get("repo")) {
                    Some(r) => repo = r.clone(),
                    None => phase = Value::String(span.name().to_string()),
                }
            }
        }
        line.insert("repo".into(), repo);
        line.insert("phase".into(), phase);
        let mut fields = Map::new();
        event.record(&mut Fields(&mut fields));
        line.insert(
            "message".into(),
            fields
                .remove("message")
                .unwrap_or(Value::String(String::new())),
        );
        for (k, v) in fields {
            line.entry(k).or_insert(v);
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        // One write per line, so lines of concurrent events never interleave; a closed
        // standard error loses the line, nothing more.
        let _ = self.make_writer.make_writer().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[test]
    fn each_event_is_a_json_line_with_its_repo_and_phase() {
        let out = Captured::default();
        let subscriber = tracing_subscriber::registry().with(JsonLines::new(out.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!("outside any sync");
            let sync = tracing::info_span!("sync", repo = "epel");
            let _s = sync.enter();
            let phase = tracing::info_span!("download");
            let _p = phase.enter();
            tracing::info!(bytes = 5u64, "fetched \"{}\"", "x");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "warn");
        assert_eq!(lines[0]["repo"], Value::Null);
        assert_eq!(lines[0]["message"], "outside any sync");
        assert_eq!(lines[1]["level"], "info");
        assert_eq!(lines[1]["repo"], "epel");
        assert_eq!(lines[1]["phase"], "download");
        assert_eq!(lines[1]["message"], "fetched \"x\"");
        assert_eq!(lines[1]["bytes"], 5);
        assert!(chrono::DateTime::parse_from_rfc3339(lines[1]["time"].as_str().unwrap()).is_ok());
    }
}
