//! Runs the real `netban` binary in a temporary directory, with a config written for the test.
//!
//! The binary is a parameter: integration tests of the `netban` crate pass
//! `env!("CARGO_BIN_EXE_netban")`, the benchmark passes the release build it measures. The
//! directory holds `netban.toml` (0600: it may hold keys), the state directory `state/` and
//! whatever files the test puts there (logs, an exec sink's output); it is removed on drop.
//! Commands run with `NETBAN_CONFIG` pointing at the config, as fail2ban's action runs them.
//!
//! Also here: the few readers every test needs for what netban printed (`stdout`, `stderr`,
//! `out_text`) and for files it wrote (`read`, `tail`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result};

use crate::config::Config;

/// A netban instance: its binary, its directory and its config.
pub struct Netban {
    dir: tempfile::TempDir,
    bin: PathBuf,
    config: PathBuf,
}

impl Netban {
    /// A netban running `bin` with `config`; panics when the directory cannot be made.
    pub fn new(bin: impl AsRef<Path>, config: &Config) -> Netban {
        Netban::try_new(bin, "netban-test-", config).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// A netban whose directory name starts with `prefix` (the benchmark names its own).
    pub fn try_new(bin: impl AsRef<Path>, prefix: &str, config: &Config) -> Result<Netban> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .context("creating a temporary directory for netban")?;
        let nb = Netban {
            config: dir.path().join("netban.toml"),
            bin: bin.as_ref().to_path_buf(),
            dir,
        };
        nb.try_write_config_text(&config.render(nb.dir()))?;
        Ok(nb)
    }

    /// The directory (config, state, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A file in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// The control socket's default place, `state_dir/netban.sock`.
    pub fn socket(&self) -> PathBuf {
        self.state_dir().join("netban.sock")
    }

    /// The config file.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// The binary this netban runs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Replaces the config (same directory, same state).
    pub fn write_config(&self, config: &Config) {
        self.write_config_text(&config.render(self.dir()));
    }

    /// Replaces the config with `text` verbatim (a broken config, say).
    pub fn write_config_text(&self, text: &str) {
        self.try_write_config_text(text)
            .unwrap_or_else(|e| panic!("{e:#}"));
    }

    fn try_write_config_text(&self, text: &str) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&self.config, text)
            .with_context(|| format!("writing {}", self.config.display()))?;
        std::fs::set_permissions(&self.config, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod 600 {}", self.config.display()))
    }

    /// The config as it is on disk.
    pub fn config_text(&self) -> String {
        read(&self.config)
    }

    /// `netban` with `NETBAN_CONFIG` set (and no systemd notify socket inherited).
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("NETBAN_CONFIG", &self.config)
            .env_remove("NOTIFY_SOCKET");
        c
    }

    /// Runs `netban ARGS`; returns the output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {} {args:?}: {e}", self.bin.display()))
    }

    /// Runs `netban ARGS` and asserts the exit code.
    pub fn expect(&self, code: i32, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "netban {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
            stdout(&out),
            stderr(&out)
        );
        out
    }

    /// `netban list --json`, parsed.
    pub fn list(&self) -> serde_json::Value {
        let out = self.expect(0, &["list", "--json"]);
        serde_json::from_slice(&out.stdout).expect("list --json is JSON")
    }

    /// The targets of `netban list --json`.
    pub fn targets(&self) -> Vec<String> {
        self.list()
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["target"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `netban status --json`, parsed.
    pub fn status(&self) -> serde_json::Value {
        let out = self.expect(0, &["status", "--json"]);
        serde_json::from_slice(&out.stdout).expect("status --json is JSON")
    }

    /// This netban's ownership mark (`netban:<host>:<instance>`), from `status --json`.
    pub fn mark(&self) -> String {
        self.status()["mark"].as_str().expect("mark").to_string()
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit status, stdout and stderr, for a failing assertion.
pub fn out_text(out: &Output) -> String {
    format!(
        "exit {}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    )
}

/// A file's text, or `""` when it cannot be read (not written yet).
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The last `lines` lines of a file (or `""`).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = read(path);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
