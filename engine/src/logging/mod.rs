//! Where the engine's logs go and in what shape.
//!
//! Invariant: stderr carries terminal escape codes only when it is a terminal and
//! `NO_COLOR` is unset (or empty); with `log_format: json` every line on stderr is one
//! JSON object (`timestamp`, `level`, `target`, `message`, the event's fields, the current
//! span), so `grep`, `less` and log shippers read the file as it is.
//!
//! The protocol:
//! 1. The config is loaded first (its problems go to stderr as plain text: there is no
//!    format yet to write them in).
//! 2. [`format_from_env`] reads `SWITCHYARD_LOG_FORMAT`, which overrides the config's
//!    `log_format`; a value that is neither `text` nor `json` refuses the start.
//! 3. [`init`] installs the subscriber: level filter from `SWITCHYARD_LOG` (default `info`;
//!    an invalid filter is reported once and `info` used), the chosen format, colour as
//!    above.
//! 4. Job events are logged through [`jobs`], with stable field names.
//!
//! Deliberately not done: no log files or rotation (stderr is the interface; the
//! supervisor or shipper owns the file), no per-module format.

pub mod jobs;

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The variable that overrides the config's `log_format`.
pub const FORMAT_ENV: &str = "SWITCHYARD_LOG_FORMAT";
/// The variable holding the level filter (`info`, `debug`, `info,switchyard::job=debug`).
pub const FILTER_ENV: &str = "SWITCHYARD_LOG";

/// `SWITCHYARD_LOG_FORMAT`, if set: `text` or `json`, else a message naming the variable.
pub fn format_from_env() -> Result<Option<LogFormat>, String> {
    match std::env::var(FORMAT_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => LogFormat::parse(v.trim())
            .map(Some)
            .ok_or_else(|| format!("{FORMAT_ENV}: expected 'text' or 'json', got '{v}'")),
        Err(e) => Err(format!("{FORMAT_ENV}: {e}")),
    }
}

/// Colour codes only for a person at a terminal: <https://no-color.org>.
pub fn use_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the process-wide subscriber writing to stderr. Call once.
pub fn init(format: LogFormat) {
    let (filter, bad_filter) = match std::env::var(FILTER_ENV) {
        Ok(spec) => match EnvFilter::try_new(&spec) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::new("info"),
                Some(format!("{FILTER_ENV}='{spec}' is not a valid filter ({e}); using 'info'")),
            ),
        },
        Err(_) => (EnvFilter::new("info"), None),
    };
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match format {
        LogFormat::Text => {
            let colour = use_colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
            builder.with_ansi(colour).init();
        }
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
    if let Some(warning) = bad_filter {
        tracing::warn!("{warning}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))), "an empty NO_COLOR does not count");
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }
}
