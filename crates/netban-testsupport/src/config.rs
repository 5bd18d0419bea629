//! One builder for the netban configs the tests and the benchmark write.
//!
//! Every test used to assemble its `netban.toml` by hand, with the same `state_dir` line, the
//! same `[[sink]]` tables and the same log settings copied from file to file. [`Config`]
//! renders them in one place, in an order TOML accepts (top-level keys, then tables, then the
//! sinks), against the directory the runner ([`crate::runner::Netban`]) owns: a relative path
//! given to the builder (a log file, an exec sink's output) lands in that directory.
//!
//! One default matters: `[web] listen = "127.0.0.1:0"`. netban's own default is a fixed port,
//! which two tests running in parallel would race for; on port 0 the kernel picks a free one,
//! and the daemon writes it to `state_dir/daemon.json`, where [`crate::daemon::Daemon`] reads
//! it. [`Config::web_listen`] changes it (`""` turns the listener off).

use std::path::{Path, PathBuf};

/// A TOML basic string for `s` (JSON string escapes are valid TOML).
pub fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// A `netban.toml` under construction.
#[derive(Debug, Clone)]
pub struct Config {
    host_id: Option<String>,
    /// Verbatim text right after the top-level keys (it may hold top-level keys itself).
    raw: Vec<String>,
    /// `[name]` tables, in first-use order; lines added to the same name join one table.
    sections: Vec<(String, Vec<String>)>,
    web_listen: Option<String>,
    log: Option<(PathBuf, Option<String>)>,
    sinks: Vec<Sink>,
}

impl Default for Config {
    fn default() -> Config {
        Config::new()
    }
}

impl Config {
    /// `state_dir` (always `<dir>/state`) and `[web] listen = "127.0.0.1:0"`, nothing else.
    pub fn new() -> Config {
        Config {
            host_id: None,
            raw: Vec::new(),
            sections: Vec::new(),
            web_listen: Some("127.0.0.1:0".into()),
            log: None,
            sinks: Vec::new(),
        }
    }

    /// Verbatim TOML placed right after `state_dir` (and `host_id`), so the line numbers of
    /// an error in it are known: the first line of `text` is line 2 without a host id.
    pub fn raw(mut self, text: impl Into<String>) -> Config {
        self.raw.push(text.into());
        self
    }

    pub fn host_id(mut self, id: impl Into<String>) -> Config {
        self.host_id = Some(id.into());
        self
    }

    /// Lines for the `[name]` table (`key = value`, one or more, newline separated).
    pub fn section(mut self, name: &str, lines: impl Into<String>) -> Config {
        let lines = lines.into();
        match self.sections.iter_mut().find(|(n, _)| n == name) {
            Some((_, have)) => have.push(lines),
            None => self.sections.push((name.to_string(), vec![lines])),
        }
        self
    }

    /// `[guard]` lines.
    pub fn guard(self, lines: impl Into<String>) -> Config {
        self.section("guard", lines)
    }

    /// `[daemon]` lines (`resync_interval = 2`, ...).
    pub fn daemon(self, lines: impl Into<String>) -> Config {
        self.section("daemon", lines)
    }

    /// `[reconcile]` lines (`inline_deadline = 2`, `retry_initial = 0.5`, ...).
    pub fn reconcile(self, lines: impl Into<String>) -> Config {
        self.section("reconcile", lines)
    }

    /// `[web] listen`; `""` turns the web listener off. The default is `127.0.0.1:0`.
    pub fn web_listen(mut self, listen: impl Into<String>) -> Config {
        self.web_listen = Some(listen.into());
        self
    }

    /// No `[web]` table at all (netban's default listen address applies).
    pub fn no_web(mut self) -> Config {
        self.web_listen = None;
        self
    }

    /// `[log] file = <file>, syslog = false` and, if given, `level`. A relative `file` is in
    /// the runner's directory.
    pub fn log_file(mut self, file: impl Into<PathBuf>, level: Option<&str>) -> Config {
        self.log = Some((file.into(), level.map(str::to_string)));
        self
    }

    /// A `[[sink]]` table.
    pub fn sink(mut self, sink: Sink) -> Config {
        self.sinks.push(sink);
        self
    }

    /// The text for a runner whose directory is `dir` (`state_dir = <dir>/state`).
    pub fn render(&self, dir: &Path) -> String {
        let mut s = format!(
            "state_dir = {}\n",
            toml_str(&dir.join("state").display().to_string())
        );
        if let Some(h) = &self.host_id {
            s.push_str(&format!("host_id = {}\n", toml_str(h)));
        }
        for r in &self.raw {
            s.push_str(r);
            if !r.ends_with('\n') {
                s.push('\n');
            }
        }
        let mut sections = self.sections.clone();
        if let Some((file, level)) = &self.log {
            let mut lines = vec![
                "syslog = false".to_string(),
                format!("file = {}", toml_str(&dir.join(file).display().to_string())),
            ];
            if let Some(l) = level {
                lines.push(format!("level = {}", toml_str(l)));
            }
            push_lines(&mut sections, "log", lines.join("\n"));
        }
        if let Some(listen) = &self.web_listen {
            push_lines(
                &mut sections,
                "web",
                format!("listen = {}", toml_str(listen)),
            );
        }
        for (name, lines) in &sections {
            s.push_str(&format!("\n[{name}]\n"));
            for l in lines {
                s.push_str(l);
                if !l.ends_with('\n') {
                    s.push('\n');
                }
            }
        }
        for sink in &self.sinks {
            s.push('\n');
            s.push_str(&sink.render(dir));
        }
        s
    }
}

fn push_lines(sections: &mut Vec<(String, Vec<String>)>, name: &str, lines: String) {
    match sections.iter_mut().find(|(n, _)| n == name) {
        Some((_, have)) => have.push(lines),
        None => sections.push((name.to_string(), vec![lines])),
    }
}

/// One `[[sink]]` table: a name, a type and `key = value` lines in order.
#[derive(Debug, Clone)]
pub struct Sink {
    name: String,
    kind: String,
    /// `(key, TOML value)`; a value may hold `{dir}`, replaced by the runner's directory.
    keys: Vec<(String, String)>,
}

impl Sink {
    pub fn new(name: &str, kind: &str) -> Sink {
        Sink {
            name: name.into(),
            kind: kind.into(),
            keys: Vec::new(),
        }
    }

    /// Sets `key` to a TOML value (`"\"text\""`, `2`, `["a", "b"]`), replacing an earlier one.
    pub fn set(mut self, key: &str, toml_value: impl Into<String>) -> Sink {
        let v = toml_value.into();
        match self.keys.iter_mut().find(|(k, _)| k == key) {
            Some((_, have)) => *have = v,
            None => self.keys.push((key.into(), v)),
        }
        self
    }

    /// Removes `key`.
    pub fn unset(mut self, key: &str) -> Sink {
        self.keys.retain(|(k, _)| k != key);
        self
    }

    /// An ExaFS sink named `exafs`: `url`, `api_key`, `community = 1`.
    pub fn exafs(url: &str, api_key: &str) -> Sink {
        Sink::new("exafs", "exafs")
            .set("url", toml_str(url))
            .set("api_key", toml_str(api_key))
            .set("community", "1")
    }

    /// The key from a file instead of inline (`api_key_file`).
    pub fn api_key_file(self, path: &Path) -> Sink {
        self.unset("api_key")
            .set("api_key_file", toml_str(&path.display().to_string()))
    }

    /// An exec sink named `log` that appends `ban JAIL BANTIME IP` / `unban IP` lines to
    /// `file` (relative: in the runner's directory).
    pub fn exec_to_file(file: impl AsRef<Path>) -> Sink {
        let f = file.as_ref().display().to_string();
        let f = if file.as_ref().is_absolute() {
            f
        } else {
            format!("{{dir}}/{f}")
        };
        Sink::new("log", "exec")
            .set(
                "ban",
                format!(
                    r#"["/bin/sh", "-c", "echo ban $0 $1 $2 >> {f}", "{{jail}}", "{{bantime}}", "{{ip}}"]"#
                ),
            )
            .set(
                "unban",
                format!(r#"["/bin/sh", "-c", "echo unban $0 >> {f}", "{{ip}}"]"#),
            )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table, for a runner whose directory is `dir`.
    pub fn render(&self, dir: &Path) -> String {
        let mut s = format!(
            "[[sink]]\nname = {}\ntype = {}\n",
            toml_str(&self.name),
            toml_str(&self.kind)
        );
        let d = dir.display().to_string();
        for (k, v) in &self.keys {
            s.push_str(&format!("{k} = {}\n", v.replace("{dir}", &d)));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_top_level_keys_first_and_merges_tables() {
        let dir = Path::new("/tmp/nb");
        let text = Config::new()
            .host_id("h1")
            .guard("protect_own_addresses = false")
            .log_file("netban.log", Some("debug"))
            .guard("max_prefix_v4 = 24")
            .sink(Sink::exafs("http://127.0.0.1:1", "k\"ey").set("community", "2"))
            .sink(Sink::exec_to_file("sink.log"))
            .render(dir);
        assert!(
            text.starts_with("state_dir = \"/tmp/nb/state\"\nhost_id = \"h1\"\n"),
            "{text}"
        );
        assert_eq!(text.matches("[guard]").count(), 1, "{text}");
        assert!(text.contains("max_prefix_v4 = 24"), "{text}");
        assert!(text.contains("file = \"/tmp/nb/netban.log\""), "{text}");
        assert!(text.contains("listen = \"127.0.0.1:0\""), "{text}");
        assert!(
            text.contains("api_key = \"k\\\"ey\"\ncommunity = 2\n"),
            "{text}"
        );
        assert!(text.contains(">> /tmp/nb/sink.log"), "{text}");
        assert!(
            text.contains("\"{jail}\", \"{bantime}\", \"{ip}\""),
            "{text}"
        );
    }

    #[test]
    fn raw_text_follows_state_dir_so_its_line_numbers_are_known() {
        let text = Config::new()
            .no_web()
            .raw("[guard]\nmax_prefx_v6 = 64")
            .render(Path::new("/d"));
        assert_eq!(
            text,
            "state_dir = \"/d/state\"\n[guard]\nmax_prefx_v6 = 64\n"
        );
    }
}
