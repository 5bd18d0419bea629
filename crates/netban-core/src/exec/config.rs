//! `type = "exec"`: the keys of a command sink.

use std::sync::Arc;

use serde::Deserialize;

use crate::config::{DriverConfig, SinkEnv, SinkSpec, seconds};
use crate::sink::Sink;
use crate::template::Template;

pub const DEFAULT_EXEC_TIMEOUT: f64 = 10.0;

/// The placeholder that expands to one argv element per target in a batch command.
pub const IPS: &str = "{ips}";
/// The same with `address/length` forms.
pub const PREFIXES: &str = "{prefixes}";

/// `type = "exec"`: run a command per ban and unban, or one per batch, without a shell.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecConfig {
    /// argv for a ban; the first element is the program (absolute path, or looked up in PATH).
    pub ban: Option<Vec<String>>,
    /// argv for an unban; omit when the command has nothing to undo.
    pub unban: Option<Vec<String>>,
    /// argv for a batch of bans: an element `{ips}` (or `{prefixes}`) becomes one argument
    /// per target, e.g. `["fail2ban-client", "set", "peers", "banip", "{ips}"]`.
    pub ban_batch: Option<Vec<String>>,
    /// argv for a batch of unbans, likewise.
    pub unban_batch: Option<Vec<String>>,
    /// Seconds before the command (and its process group) is killed and counted as failed.
    pub timeout: f64,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            ban: None,
            unban: None,
            ban_batch: None,
            unban_batch: None,
            timeout: DEFAULT_EXEC_TIMEOUT,
        }
    }
}

impl DriverConfig for ExecConfig {
    fn validate(&self) -> Result<(), String> {
        match (&self.ban, &self.ban_batch) {
            (None, None) => return Err("set ban (a command per target) or ban_batch".into()),
            (Some(_), Some(_)) => return Err("set ban or ban_batch, not both".into()),
            _ => {}
        }
        if self.unban.is_some() && self.unban_batch.is_some() {
            return Err("set unban or unban_batch, not both".into());
        }
        // A batched sink runs its unbans batched too, and the other way round: a mixed pair
        // would never run its unban command.
        match (&self.ban_batch, &self.unban, &self.unban_batch) {
            (Some(_), Some(_), _) => {
                return Err(
                    "ban_batch goes with unban_batch (the removes of a batch run as one command): replace unban with unban_batch".into(),
                );
            }
            (None, _, Some(_)) => {
                return Err(
                    "unban_batch goes with ban_batch (the adds of a batch run as one command): replace ban with ban_batch, or unban_batch with unban".into(),
                );
            }
            _ => {}
        }
        for (key, argv, batch) in [
            ("ban", &self.ban, false),
            ("unban", &self.unban, false),
            ("ban_batch", &self.ban_batch, true),
            ("unban_batch", &self.unban_batch, true),
        ] {
            let Some(argv) = argv else { continue };
            check_argv(key, argv, batch)?;
        }
        seconds("timeout", self.timeout, 0.01, 3600.0)
    }
}

fn check_argv(key: &str, argv: &[String], batch: bool) -> Result<(), String> {
    let Some(program) = argv.first() else {
        return Err(format!(
            "{key} must name a program: [\"/path/to/program\", \"{{ip}}\"]"
        ));
    };
    if program.contains('{') {
        return Err(format!(
            "{key}: the program ({program:?}) cannot be a template"
        ));
    }
    let mut expands = 0;
    for arg in argv {
        if batch && (arg == IPS || arg == PREFIXES) {
            expands += 1;
            continue;
        }
        let t = Template::parse(arg).map_err(|e| format!("{key}: {e}"))?;
        if batch && let Some(p) = t.placeholders().find(|p| *p != "host" && *p != "mark") {
            return Err(format!(
                "{key}: {{{p}}} differs between the targets of a batch; a batch command takes {IPS} or {PREFIXES} as a whole argument, and {{host}}"
            ));
        }
    }
    if batch && expands != 1 {
        return Err(format!(
            "{key} must have exactly one argument {IPS} (or {PREFIXES}), which becomes one argument per target"
        ));
    }
    Ok(())
}

impl SinkSpec for ExecConfig {
    fn build(&self, name: &str, env: &SinkEnv) -> Result<Arc<dyn Sink>, String> {
        Ok(Arc::new(super::ExecSink::new(name, self, env)?))
    }
}
