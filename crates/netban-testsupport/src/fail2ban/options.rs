//! What a test runs: the jails (name, action, log file, bantime), the action files copied
//! into `action.d`, and the `[DEFAULT]` timing.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};

/// The repository's `dist/` directory (fail2ban action files, example configs).
pub fn dist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist")
}

/// A file for fail2ban's `action.d/`: a command action (`NAME.conf`) or a Python one
/// (`NAME.py`).
#[derive(Debug, Clone)]
pub struct ActionFile {
    /// The file name inside `action.d`, e.g. `netban.conf` or `netban-socket.py`.
    pub file_name: String,
    pub content: String,
}

impl ActionFile {
    pub fn new(file_name: impl Into<String>, content: impl Into<String>) -> ActionFile {
        ActionFile {
            file_name: file_name.into(),
            content: content.into(),
        }
    }

    /// Reads an action file; it keeps its file name.
    pub fn from_path(path: impl AsRef<Path>) -> anyhow::Result<ActionFile> {
        let path = path.as_ref();
        let content = fs::read_to_string(path)
            .with_context(|| format!("reading action file {}", path.display()))?;
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow!("action file {} has no usable file name", path.display()))?;
        Ok(ActionFile::new(file_name, content))
    }

    /// The repository's `dist/fail2ban/action.d/netban.conf`, the file users install.
    pub fn netban_dist() -> anyhow::Result<ActionFile> {
        ActionFile::from_path(dist_dir().join("fail2ban/action.d/netban.conf"))
    }

    /// The repository's `dist/fail2ban/action.d/netban-socket.py`, the Python action.
    pub fn netban_socket_dist() -> anyhow::Result<ActionFile> {
        ActionFile::from_path(dist_dir().join("fail2ban/action.d/netban-socket.py"))
    }
}

/// One jail of the test configuration. It uses the `sshd` filter and watches its own log file
/// (`JAIL.log`) unless [`Jail::logfile`] makes several jails share one.
#[derive(Debug, Clone)]
pub struct Jail {
    pub name: String,
    /// The jail's `action =` value, e.g. `netban[netban="/path/netban", config="/path.toml"]`.
    pub action: String,
    /// The log file's name inside the harness's `logs/` directory.
    pub logfile: String,
    /// A bantime for this jail only (seconds, -1 permanent); default: [`Options::bantime`].
    pub bantime: Option<i64>,
    /// More `key = value` lines for the jail section.
    pub options: Vec<(String, String)>,
}

impl Jail {
    /// A jail whose action is given as a raw string (any action file, e.g. `netban-socket.py[...]`).
    pub fn new(name: impl Into<String>, action: impl Into<String>) -> Jail {
        let name = name.into();
        let logfile = format!("{name}.log");
        Jail {
            name,
            action: action.into(),
            logfile,
            bantime: None,
            options: Vec::new(),
        }
    }

    /// A jail using the `netban` command action, with the binary and config as action
    /// parameters: `action = netban[netban="BINARY", config="CONFIG"]`.
    pub fn netban(
        name: impl Into<String>,
        binary: impl AsRef<Path>,
        config: impl AsRef<Path>,
    ) -> Jail {
        Jail::netban_action(name, "netban", binary.as_ref(), config.as_ref())
    }

    /// A jail using the Python action (`netban-socket.py`), which hands bans to the daemon
    /// and falls back to `binary`: `action = netban-socket.py[netban="BINARY", config="CONFIG"]`.
    pub fn netban_socket(
        name: impl Into<String>,
        binary: impl AsRef<Path>,
        config: impl AsRef<Path>,
    ) -> Jail {
        Jail::netban_action(name, "netban-socket.py", binary.as_ref(), config.as_ref())
    }

    /// `action = ACTION[netban="BINARY", config="CONFIG"]`.
    fn netban_action(name: impl Into<String>, action: &str, binary: &Path, config: &Path) -> Jail {
        let action = format!(
            "{action}[netban=\"{}\", config=\"{}\"]",
            binary.display(),
            config.display()
        );
        Jail::new(name, action)
    }

    /// Watch this log file (a name inside `logs/`); jails with the same file see the same lines.
    pub fn logfile(mut self, file_name: impl Into<String>) -> Jail {
        self.logfile = file_name.into();
        self
    }

    /// This jail's bantime (seconds, -1 permanent).
    pub fn bantime(mut self, seconds: i64) -> Jail {
        self.bantime = Some(seconds);
        self
    }

    /// Another option line for the jail section.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Jail {
        self.options.push((key.into(), value.into()));
        self
    }
}

/// What to run: jails, action files, and the `[DEFAULT]` timing of every jail.
#[derive(Debug, Clone)]
pub struct Options {
    pub jails: Vec<Jail>,
    pub action_files: Vec<ActionFile>,
    /// Seconds, -1 permanent.
    pub bantime: i64,
    pub maxretry: u32,
    pub findtime: u64,
    /// fail2ban's own `loglevel` (`INFO`, `DEBUG`, ...).
    pub loglevel: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jails: Vec::new(),
            action_files: Vec::new(),
            bantime: 600,
            maxretry: 3,
            findtime: 600,
            loglevel: "INFO".to_string(),
        }
    }
}

impl Options {
    /// No jails yet; bantime 600 s, maxretry 3, findtime 600 s.
    pub fn new() -> Options {
        Options::default()
    }

    /// The repository's `netban.conf` action and one jail per name, each calling `binary`
    /// with `config`.
    pub fn netban(
        binary: impl AsRef<Path>,
        config: impl AsRef<Path>,
        jails: &[&str],
    ) -> anyhow::Result<Options> {
        let (b, c) = (binary.as_ref(), config.as_ref());
        Ok(Options::with_jails(
            ActionFile::netban_dist()?,
            jails,
            |j| Jail::netban(j, b, c),
        ))
    }

    /// The repository's Python action and one jail per name using it.
    pub fn netban_socket(
        binary: impl AsRef<Path>,
        config: impl AsRef<Path>,
        jails: &[&str],
    ) -> anyhow::Result<Options> {
        let (b, c) = (binary.as_ref(), config.as_ref());
        Ok(Options::with_jails(
            ActionFile::netban_socket_dist()?,
            jails,
            |j| Jail::netban_socket(j, b, c),
        ))
    }

    /// `file` in `action.d` and one jail per name, made by `jail`.
    fn with_jails(file: ActionFile, jails: &[&str], jail: impl Fn(&str) -> Jail) -> Options {
        jails
            .iter()
            .fold(Options::new().action_file(file), |o, j| o.jail(jail(j)))
    }

    pub fn jail(mut self, jail: Jail) -> Options {
        self.jails.push(jail);
        self
    }

    pub fn action_file(mut self, file: ActionFile) -> Options {
        self.action_files.push(file);
        self
    }

    pub fn bantime(mut self, seconds: i64) -> Options {
        self.bantime = seconds;
        self
    }

    pub fn maxretry(mut self, n: u32) -> Options {
        self.maxretry = n;
        self
    }

    pub fn findtime(mut self, seconds: u64) -> Options {
        self.findtime = seconds;
        self
    }

    pub fn loglevel(mut self, level: impl Into<String>) -> Options {
        self.loglevel = level.into();
        self
    }
}
