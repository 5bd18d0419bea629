//! The configuration the harness writes for the server: `fail2ban.conf`, `jail.conf` with
//! the test's jails and the probe action after each, the action files, the `sshd` filter
//! copied from the system with what it includes; checked with `fail2ban-client -t`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use super::{Fail2ban, INSTALL_HINT, Options};

/// Where the Debian package keeps the filters we copy.
const SYSTEM_FILTER_DIR: &str = "/etc/fail2ban/filter.d";

/// The probe action's file name in `action.d` (fixed: the probe is the harness's own).
const PROBE_ACTION: &str = "netban-harness-probe";

/// The probe: one line per event, `KIND JAIL IP RESTORED TIME BANTIME` (empty fields `-`).
/// Every tag is passed as its own argument to a fixed script, never pasted into it.
const PROBE_ACTION_CONF: &str = r#"# Written by netban-testsupport: records what fail2ban did, one line per event.
[Definition]
actionstart = /bin/sh -c 'printf "%%s\n" "$*" >> "$0"' "<out>" start "<name>"
actionstop = /bin/sh -c 'printf "%%s\n" "$*" >> "$0"' "<out>" stop "<name>"
actioncheck =
actionban = /bin/sh -c 'printf "%%s\n" "$*" >> "$0"' "<out>" ban "<name>" "<ip>" "<restored>" "<time>" "<bantime>"
actionunban = /bin/sh -c 'printf "%%s\n" "$*" >> "$0"' "<out>" unban "<name>" "<ip>" "<restored>" "<time>" "<bantime>"
actionprolong = /bin/sh -c 'printf "%%s\n" "$*" >> "$0"' "<out>" prolong "<name>" "<ip>" "<restored>" "<time>" "<bantime>"
actionflush = /bin/sh -c 'printf "%%s\n" "$*" >> "$0"' "<out>" flush "<name>"

[Init]
out = /dev/null
"#;

impl Fail2ban {
    pub(super) fn write_config(&self, opts: &Options) -> anyhow::Result<()> {
        let etc = self.config_dir();
        for d in ["etc/action.d", "etc/filter.d", "run", "logs"] {
            fs::create_dir_all(self.dir().join(d)).with_context(|| format!("creating {d}"))?;
        }
        let run = self.dir().join("run");
        let fail2ban_conf = format!(
            "# Written by netban-testsupport.\n[Definition]\nloglevel = {level}\nlogtarget = {log}\n\
             syslogsocket = auto\nsocket = {sock}\npidfile = {pid}\nallowipv6 = auto\n\
             dbfile = {db}\ndbpurgeage = 1d\ndbmaxmatches = 10\n",
            level = opts.loglevel,
            log = self.log_path().display(),
            sock = self.socket().display(),
            pid = run.join("fail2ban.pid").display(),
            db = run.join("fail2ban.sqlite3").display(),
        );
        fs::write(etc.join("fail2ban.conf"), fail2ban_conf)?;

        let mut jail_conf = format!(
            "# Written by netban-testsupport.\n[DEFAULT]\nbackend = polling\nusedns = no\nignoreself = false\nignoreip =\nmaxretry = {}\nfindtime = {}\nbantime = {}\n",
            opts.maxretry, opts.findtime, opts.bantime
        );
        let probe_out = self.probe_path();
        for j in &opts.jails {
            if j.name.is_empty()
                || !j
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                bail!(
                    "fail2ban harness: jail name {:?} must be letters, digits, - _ .",
                    j.name
                );
            }
            let logfile = self.dir().join("logs").join(&j.logfile);
            if !logfile.exists() {
                fs::write(&logfile, "")
                    .with_context(|| format!("creating {}", logfile.display()))?;
            }
            let _ = write!(
                jail_conf,
                "\n[{name}]\nenabled = true\nfilter = sshd\nlogpath = {log}\naction = {action}\n         {PROBE_ACTION}[out=\"{probe}\"]\n",
                name = j.name,
                log = logfile.display(),
                action = j.action.trim().replace('\n', "\n         "),
                probe = probe_out.display(),
            );
            if let Some(b) = j.bantime {
                let _ = writeln!(jail_conf, "bantime = {b}");
            }
            for (k, v) in &j.options {
                let _ = writeln!(jail_conf, "{k} = {v}");
            }
        }
        fs::write(etc.join("jail.conf"), jail_conf)?;

        for a in &opts.action_files {
            if a.file_name.contains('/') || a.file_name.starts_with('.') {
                bail!(
                    "fail2ban harness: action file name {:?} must be a plain file name",
                    a.file_name
                );
            }
            fs::write(etc.join("action.d").join(&a.file_name), &a.content)?;
        }
        fs::write(
            etc.join("action.d").join(format!("{PROBE_ACTION}.conf")),
            PROBE_ACTION_CONF,
        )?;
        copy_filter("sshd.conf", &etc.join("filter.d"))?;
        Ok(())
    }

    /// `fail2ban-client -c DIR -t`: a config error is reported before any server runs.
    pub(super) fn test_config(&self) -> anyhow::Result<()> {
        let out = Command::new(&self.client_bin)
            .arg("-c")
            .arg(self.config_dir())
            .arg("-t")
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "fail2ban-client -t refused the test configuration in {}:\n{}{}",
                self.config_dir().display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

/// Copies a filter from /etc/fail2ban/filter.d, with the files its `before`/`after` include.
fn copy_filter(name: &str, to: &Path) -> anyhow::Result<()> {
    let mut todo = vec![name.to_string()];
    let mut done = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !done.insert(name.clone()) {
            continue;
        }
        let src = Path::new(SYSTEM_FILTER_DIR).join(&name);
        let text = match fs::read_to_string(&src) {
            Ok(t) => t,
            // Includes are optional (`after = common.local` usually does not exist).
            Err(_) if done.len() > 1 => continue,
            Err(e) => panic!("{INSTALL_HINT}: cannot read {}: {e}", src.display()),
        };
        fs::write(to.join(&name), &text).with_context(|| format!("copying {}", src.display()))?;
        for line in text.lines() {
            let line = line.trim();
            if let Some((key, value)) = line.split_once('=')
                && matches!(key.trim(), "before" | "after")
            {
                todo.extend(value.split_whitespace().map(str::to_string));
            }
        }
    }
    Ok(())
}
