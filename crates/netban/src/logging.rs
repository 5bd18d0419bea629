//! Logging: quiet stderr (warn and above unless -v), plus the log file, syslog and journald
//! the config asks for, at the configured level.
//!
//! fail2ban reads an action's output only after it exits, and a large output blocks it, so a
//! successful `netban ban` prints nothing. Decisions (banned, skipped because ..., pending
//! because ...) are one line each at info. Secrets never reach a log line: config types
//! redact them in `Debug`, no code formats a key or token, and every line passes through
//! [`netban_core::config::redact_userinfo`] on its way out (a URL pasted with its password
//! is redacted in stderr, the file, syslog and journald alike).
//!
//! stderr lines are `2026-12-02T10:10:00Z WARN message`: a timestamp, the level, the text.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::sync::{Mutex, OnceLock};

use netban_core::config::LogConfig;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub fn init(config: &LogConfig, verbose: u8) {
    let stderr_level = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let level = parse_level(&config.level);
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(|| Redacting(std::io::stderr()))
        .event_format(Line)
        .with_filter(stderr_level);

    let file = config.file.as_ref().and_then(|path| {
        match OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
        {
            Ok(f) => {
                let f = std::sync::Arc::new(Mutex::new(f));
                Some(
                    tracing_subscriber::fmt::layer()
                        .with_writer(move || Redacting(SharedFile(f.clone())))
                        .event_format(Line)
                        .with_filter(level),
                )
            }
            Err(e) => {
                eprintln!(
                    "netban: cannot open log file {}: {e}; logging to stderr only",
                    path.display()
                );
                None
            }
        }
    });
    let syslog = (config.syslog && std::path::Path::new("/dev/log").exists()).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(Syslog)
            .without_time()
            .with_target(false)
            .with_level(false)
            .with_ansi(false)
            .with_filter(level)
    });
    let journald = if config.journald {
        match tracing_journald::layer() {
            Ok(l) => Some(
                l.with_syslog_identifier("netban".to_string())
                    .with_filter(level),
            ),
            Err(e) => {
                eprintln!("netban: journald is not reachable ({e}); not logging to it");
                None
            }
        }
    } else {
        None
    };
    // A second init (tests) keeps the first subscriber; nothing to report.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .with(syslog)
        .with(journald)
        .try_init();
}

fn parse_level(s: &str) -> LevelFilter {
    match s {
        "error" => LevelFilter::ERROR,
        "warn" => LevelFilter::WARN,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => LevelFilter::INFO,
    }
}

/// Sends each formatted event as one RFC 3164 datagram to /dev/log (facility daemon).
struct Syslog;

struct SyslogLine {
    severity: u8,
    buf: Vec<u8>,
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine;
    fn make_writer(&'a self) -> SyslogLine {
        SyslogLine {
            severity: 6,
            buf: Vec::new(),
        }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> SyslogLine {
        let severity = match *meta.level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        SyslogLine {
            severity,
            buf: Vec::new(),
        }
    }
}

impl Write for SyslogLine {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        static SOCKET: OnceLock<Option<UnixDatagram>> = OnceLock::new();
        let Some(sock) = SOCKET.get_or_init(|| {
            let s = UnixDatagram::unbound().ok()?;
            s.connect("/dev/log").ok()?;
            Some(s)
        }) else {
            return;
        };
        let text = netban_core::config::redact_userinfo(&String::from_utf8_lossy(&self.buf));
        let msg = format!(
            "<{}>netban[{}]: {}",
            3 * 8 + self.severity,
            std::process::id(),
            text.trim_end()
        );
        // Best effort: a full or missing syslog never fails a ban.
        let _ = sock.send(msg.as_bytes());
    }
}

/// One log line: `2026-12-02T10:10:00Z WARN message`.
struct Line;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Line
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let now = netban_core::clock::format_utc(netban_core::clock::now());
        write!(writer, "{now} {} ", event.metadata().level())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Redacts URL credentials in whatever passes through (one formatted line per write).
struct Redacting<W: Write>(W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(data);
        let clean = netban_core::config::redact_userinfo(&text);
        self.0.write_all(clean.as_bytes())?;
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The log file, shared by every event's writer.
struct SharedFile(std::sync::Arc<Mutex<std::fs::File>>);

impl Write for SharedFile {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).write(data)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}
