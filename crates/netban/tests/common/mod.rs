//! Runs the real `netban` binary in a temporary directory with a config written for the test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Netban {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Netban {
    /// A netban whose config is `state_dir = <tmp>/state` followed by `extra` (TOML).
    pub fn new(extra: &str) -> Netban {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("netban.toml");
        let text = format!(
            "state_dir = \"{}\"\n{extra}",
            dir.path().join("state").display()
        );
        std::fs::write(&config, text).expect("write config");
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        Netban { dir, config }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_netban"));
        c.env("NETBAN_CONFIG", &self.config)
            .env_remove("NOTIFY_SOCKET");
        c
    }

    /// Runs `netban ARGS`; returns the output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run netban")
    }

    /// Runs `netban ARGS` and asserts the exit code.
    pub fn expect(&self, code: i32, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "netban {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `netban list --json`, parsed.
    pub fn list(&self) -> serde_json::Value {
        let out = self.expect(0, &["list", "--json"]);
        serde_json::from_slice(&out.stdout).expect("list --json is JSON")
    }

    /// This netban's ownership mark (`netban:<host>:<instance>`), from `status --json`.
    pub fn mark(&self) -> String {
        let out = self.expect(0, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
        v["mark"].as_str().expect("mark").to_string()
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
}

/// An exec sink named `log` that appends `ban JAIL BANTIME IP` / `unban IP` lines to `file`.
pub fn exec_sink(file: &Path) -> String {
    format!(
        r#"
[[sink]]
name = "log"
type = "exec"
ban = ["/bin/sh", "-c", "echo ban $0 $1 $2 >> {f}", "{{jail}}", "{{bantime}}", "{{ip}}"]
unban = ["/bin/sh", "-c", "echo unban $0 >> {f}", "{{ip}}"]
"#,
        f = file.display()
    )
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
