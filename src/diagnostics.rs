//! Diagnostics: the core's `tracing` records, the newest kept in a bounded ring buffer (for
//! "send logs to support") and each forwarded to the app's log listener (Logcat, os_log), in
//! the manner of application-services' rust-log-forwarder.
//!
//! Nothing logged carries a secret: call sites log ids shortened by [`short`], paths through
//! [`redact_path`], counts and outcomes; never tokens, passwords, doorcodes, keys, access
//! documents or request bytes; and any long hex run left in a message is cut short (tests/diagnostics.rs scans a whole resident's day for every
//! secret it used).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanValues};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Records the ring buffer keeps: enough for the minutes before a support request, small
/// enough (about 100 kB) to keep on a phone.
pub const CAPACITY: usize = 512;

/// One log record, its fields formatted into the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub at: SystemTime,
    pub level: Level,
    pub target: String,
    pub message: String,
}

pub type Listener = Arc<dyn Fn(&Record) + Send + Sync>;

/// The ring buffer, the level and the listener; one per process behind the global subscriber
/// ([`install`]), or a local one in tests.
pub struct Diagnostics {
    level: AtomicU8,
    capacity: usize,
    ring: Mutex<VecDeque<Record>>,
    listener: RwLock<Option<Listener>>,
}

impl Diagnostics {
    pub const fn new(capacity: usize, level: Level) -> Diagnostics {
        Diagnostics {
            level: AtomicU8::new(rank(level)),
            capacity,
            ring: Mutex::new(VecDeque::new()),
            listener: RwLock::new(None),
        }
    }

    /// Records below `level` are neither kept nor forwarded (nor even formatted).
    pub fn set_level(&self, level: Level) {
        self.level.store(rank(level), Ordering::Relaxed);
    }

    pub fn set_listener(&self, listener: Option<Listener>) {
        *self.listener.write().unwrap_or_else(|p| p.into_inner()) = listener;
    }

    /// The kept records, oldest first.
    pub fn records(&self) -> Vec<Record> {
        self.ring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn enabled(&self, level: &Level) -> bool {
        rank(*level) <= self.level.load(Ordering::Relaxed)
    }

    fn push(&self, record: Record) {
        {
            let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            if ring.len() == self.capacity {
                ring.pop_front();
            }
            ring.push_back(record.clone());
        }
        // Called with no lock held: a listener may ask for the collected logs, or log itself.
        let listener = self
            .listener
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(listener) = listener {
            listener(&record);
        }
    }

    /// The `tracing` layer that feeds this.
    pub fn layer(&'static self) -> Collect {
        Collect(self)
    }
}

/// 1 for errors up to 5 for trace, so that "at or above the level" is one comparison.
const fn rank(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        _ => 5,
    }
}

static DIAGNOSTICS: Diagnostics = Diagnostics::new(CAPACITY, Level::INFO);

/// The process's diagnostics, its subscriber installed on first use.
///
/// A global default, set once: the core's work runs on tokio's worker and blocking threads
/// (and the app's), which a thread-scoped `tracing::subscriber::set_default` would miss. When
/// the host installed a global subscriber first (a Rust app embedding the core, a test
/// harness), that one stays and receives the core's records; the ring buffer then stays empty.
pub fn install() -> &'static Diagnostics {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(DIAGNOSTICS.layer());
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    &DIAGNOSTICS
}

/// The layer: keeps the core's own records only. Dependencies' records (HTTP, TLS,
/// Bluetooth stacks) are outside what the core can vouch for as free of secrets.
pub struct Collect(&'static Diagnostics);

fn ours(metadata: &Metadata<'_>) -> bool {
    metadata.target().starts_with("door_core")
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Collect {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        // The level changes at run time, so the core's callsites ask `enabled` every time
        // instead of caching the answer of their first use.
        match ours(metadata) {
            true => Interest::sometimes(),
            false => Interest::never(),
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        ours(metadata) && self.0.enabled(metadata.level())
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &SpanValues<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // "unlock{door=1a2b3c4d}: granted attempts=1": the spans around it, then the event.
        let mut message = String::new();
        for span in ctx
            .event_scope(event)
            .into_iter()
            .flat_map(|s| s.from_root())
        {
            message.push_str(span.name());
            if let Some(fields) = span.extensions().get::<Fields>() {
                let text = fields.text();
                if !text.is_empty() {
                    let _ = write!(message, "{{{}}}", text.trim_start());
                }
            }
            message.push_str(": ");
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        message.push_str(&fields.text());
        let metadata = event.metadata();
        self.0.push(Record {
            at: SystemTime::now(),
            level: *metadata.level(),
            target: metadata.target().to_owned(),
            message: shorten_hex_runs(&message),
        });
    }
}

/// An event's or span's fields: the message, then ` name=value` for each other field.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Fields {
    fn text(&self) -> String {
        format!("{}{}", self.message, self.rest)
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

/// An id as logs show it: its first 8 hex digits, enough to tell doors apart in a support
/// request without handing out the whole id.
pub fn short(id: &str) -> &str {
    id.char_indices().nth(8).map_or(id, |(end, _)| &id[..end])
}

/// A request path as logs show it: ids shortened, query values left out (they carry ids and
/// epochs), query names kept: `/v1/locks/1a2b3c4d/bundle?since`.
pub fn redact_path(path: &str) -> String {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let path = path
        .split('/')
        .map(|segment| match segment.len() >= 16 && is_hex(segment) {
            true => short(segment),
            false => segment,
        })
        .collect::<Vec<_>>()
        .join("/");
    if query.is_empty() {
        return path;
    }
    let names: Vec<&str> = query
        .split('&')
        .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
        .collect();
    format!("{path}?{}", names.join("&"))
}

/// Every run of 16 or more hex digits cut to its first 8: a net under the call sites' own
/// care, for a full id (or a key in hex) that an error message carries.
fn shorten_hex_runs(text: &str) -> String {
    fn flush(out: &mut String, run: &mut String) {
        out.push_str(match run.len() >= 16 {
            true => &run[..8],
            false => run,
        });
        run.clear();
    }
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut out, &mut run);
            out.push(c);
        }
    }
    flush(&mut out, &mut run);
    out
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(capacity: usize, level: Level) -> &'static Diagnostics {
        Box::leak(Box::new(Diagnostics::new(capacity, level)))
    }

    fn with<T>(d: &'static Diagnostics, f: impl FnOnce() -> T) -> T {
        let subscriber = tracing_subscriber::registry().with(d.layer());
        tracing::subscriber::with_default(subscriber, f)
    }

    #[test]
    fn the_ring_keeps_the_newest_records() {
        let d = local(3, Level::INFO);
        with(d, || {
            for i in 0..5 {
                tracing::info!(i, "record");
            }
        });
        let messages: Vec<String> = d.records().into_iter().map(|r| r.message).collect();
        assert_eq!(messages, ["record i=2", "record i=3", "record i=4"]);
    }

    #[test]
    fn the_level_filters_what_is_kept_and_forwarded_and_changes_at_run_time() {
        let d = local(16, Level::INFO);
        let heard = Arc::new(Mutex::new(Vec::new()));
        let h = heard.clone();
        d.set_listener(Some(Arc::new(move |r: &Record| {
            h.lock().unwrap().push(r.level)
        })));
        with(d, || {
            tracing::debug!("hidden");
            tracing::info!("shown");
            d.set_level(Level::DEBUG);
            tracing::debug!("now shown");
            d.set_level(Level::ERROR);
            tracing::warn!("hidden again");
            tracing::error!(code = 7, "failed");
        });
        let kept: Vec<(Level, String)> = d
            .records()
            .into_iter()
            .map(|r| (r.level, r.message))
            .collect();
        assert_eq!(
            kept,
            [
                (Level::INFO, "shown".to_owned()),
                (Level::DEBUG, "now shown".to_owned()),
                (Level::ERROR, "failed code=7".to_owned()),
            ]
        );
        assert_eq!(
            *heard.lock().unwrap(),
            [Level::INFO, Level::DEBUG, Level::ERROR]
        );
        assert!(d
            .records()
            .iter()
            .all(|r| r.target.starts_with("door_core")));
    }

    #[test]
    fn spans_prefix_their_events() {
        let d = local(4, Level::DEBUG);
        with(d, || {
            let _span = tracing::info_span!("unlock", door = "1a2b3c4d").entered();
            tracing::info!(attempts = 1, "granted");
        });
        assert_eq!(
            d.records()[0].message,
            "unlock{door=1a2b3c4d}: granted attempts=1"
        );
    }

    #[test]
    fn long_hex_runs_in_messages_are_shortened() {
        let d = local(4, Level::INFO);
        let id = "0123456789abcdef0123456789abcdef";
        with(d, || {
            tracing::warn!(error = %format!("an unlock of door {id} is under way"), "not opened");
            tracing::info!(attempts = 1, lock = "1a2b3c4d", "granted at 2026");
        });
        let messages: Vec<String> = d.records().into_iter().map(|r| r.message).collect();
        assert_eq!(
            messages,
            [
                "not opened error=an unlock of door 01234567 is under way",
                "granted at 2026 attempts=1 lock=1a2b3c4d",
            ]
        );
    }

    #[test]
    fn paths_lose_query_values_and_long_ids() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            redact_path(&format!("/v1/locks/{id}/bundle?since=12")),
            "/v1/locks/01234567/bundle?since"
        );
        assert_eq!(
            redact_path(&format!("/v1/time?lock_id={id}&epoch=ff")),
            "/v1/time?lock_id&epoch"
        );
        assert_eq!(redact_path("/v1/me/devices"), "/v1/me/devices");
        assert_eq!(short(id), "01234567");
        assert_eq!(short("ab"), "ab");
        assert_eq!(short("déjà-vu-ids"), "déjà-vu-");
    }
}
