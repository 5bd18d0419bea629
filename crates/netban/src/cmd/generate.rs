//! `netban generate man|SHELL`: the man pages and shell completions, from the same clap
//! definitions as `--help` (packagers run it at build time).
//!
//! `generate man` prints netban(1): the synopsis, options and subcommands from clap, then
//! EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES and SEE ALSO. With `--out-dir` it writes
//! netban.1 and one page per subcommand (netban-ban.1, ..., netban-cluster-keygen.1), which
//! their parents name, plus
//! netban.toml(5). A closed pipe (`netban generate bash | head`) ends quietly (issue 7: it
//! used to panic).

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, GenerateArgs};
use crate::exit::{CliError, CliResult};

pub fn run(a: &GenerateArgs) -> CliResult {
    let mut cmd = Cli::command();
    if a.what == "man" {
        return man(cmd, a.out_dir.as_deref());
    }
    let shell: clap_complete::Shell = a.what.parse().map_err(|_| {
        CliError::Usage(format!(
            "generate {:?}: expected man, bash, zsh, fish, elvish or powershell",
            a.what.chars().take(32).collect::<String>()
        ))
    })?;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "netban", &mut buf);
    write_out(&buf)
}

fn man(cmd: clap::Command, dir: Option<&std::path::Path>) -> CliResult {
    let main = main_page(&cmd)?;
    let Some(dir) = dir else {
        return write_out(&main);
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::Runtime(format!("{}: {e}", dir.display())))?;
    let write = |name: String, bytes: Vec<u8>| -> CliResult {
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| CliError::Runtime(format!("{}: {e}", path.display())))
    };
    // One page per subcommand, and per subcommand of those (netban-cluster-keygen.1), as
    // their parents' SUBCOMMANDS sections name them.
    let mut pages: Vec<(String, String, clap::Command)> = subcommands(&cmd)
        .map(|s| ("netban".to_string(), "netban".to_string(), s.clone()))
        .collect();
    while let Some((parent, parent_bin, sub)) = pages.pop() {
        let name = format!("{parent}-{}", sub.get_name());
        let bin = format!("{parent_bin} {}", sub.get_name());
        for nested in subcommands(&sub) {
            pages.push((name.clone(), bin.clone(), nested.clone()));
        }
        let page = sub.clone().name(name.clone()).bin_name(bin);
        write(format!("{name}.1"), sub_page(page, &parent)?)?;
    }
    write("netban.toml.5".into(), CONFIG_PAGE.as_bytes().to_vec())?;
    write("netban.1".into(), main)
}

fn subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

fn render_err(e: std::io::Error) -> CliError {
    CliError::Runtime(format!("rendering a man page: {e}"))
}

/// netban(1).
fn main_page(cmd: &clap::Command) -> CliResult<Vec<u8>> {
    // The EXAMPLES of `--help` get their own section here, without the exit codes and files
    // that have theirs.
    let cmd = cmd
        .clone()
        .after_help("")
        .after_long_help("")
        .disable_help_subcommand(true);
    let man = clap_mangen::Man::new(cmd.clone());
    let mut buf = Vec::new();
    man.render_title(&mut buf).map_err(render_err)?;
    man.render_name_section(&mut buf).map_err(render_err)?;
    man.render_synopsis_section(&mut buf).map_err(render_err)?;
    man.render_description_section(&mut buf)
        .map_err(render_err)?;
    man.render_options_section(&mut buf).map_err(render_err)?;
    man.render_subcommands_section(&mut buf)
        .map_err(render_err)?;
    let see_also: Vec<String> = subcommands(&cmd)
        .map(|s| format!(".BR netban\\-{} (1),", s.get_name()))
        .collect();
    buf.extend_from_slice(MAIN_SECTIONS.as_bytes());
    buf.extend_from_slice(
        format!(
            ".SH \"SEE ALSO\"\n{}\n.BR netban.toml (5),\n.BR fail2ban (1).\nThe documentation in /usr/share/doc/netban (README.md, config.md and one page per topic).\n",
            see_also.join("\n")
        )
        .as_bytes(),
    );
    man.render_version_section(&mut buf).map_err(render_err)?;
    Ok(buf)
}

/// netban-SUB(1): clap's page, with its examples under EXAMPLES; `parent` is the page that
/// names it.
fn sub_page(cmd: clap::Command, parent: &str) -> CliResult<Vec<u8>> {
    let examples = cmd
        .get_after_help()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let man = clap_mangen::Man::new(
        cmd.clone()
            .after_help("")
            .after_long_help("")
            .disable_help_subcommand(true),
    );
    let mut buf = Vec::new();
    man.render_title(&mut buf).map_err(render_err)?;
    man.render_name_section(&mut buf).map_err(render_err)?;
    man.render_synopsis_section(&mut buf).map_err(render_err)?;
    man.render_description_section(&mut buf)
        .map_err(render_err)?;
    man.render_options_section(&mut buf).map_err(render_err)?;
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut buf)
            .map_err(render_err)?;
    }
    if !examples.trim().is_empty() {
        buf.extend_from_slice(b".SH EXAMPLES\n.nf\n");
        buf.extend_from_slice(roff_escape(examples.trim()).as_bytes());
        buf.extend_from_slice(b"\n.fi\n");
    }
    let mut see_also = String::from(".SH \"SEE ALSO\"\n");
    if parent != "netban" {
        see_also.push_str(&format!(".BR {} (1),\n", parent.replace('-', "\\-")));
    }
    see_also.push_str(".BR netban (1),\n.BR netban.toml (5).\n");
    buf.extend_from_slice(see_also.as_bytes());
    Ok(buf)
}

/// Text for a roff `.nf` block: backslashes and leading dots escaped, `-` as `\-`.
fn roff_escape(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l = l.replace('\\', "\\e").replace('-', "\\-");
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const MAIN_SECTIONS: &str = r#".SH "EXIT STATUS"
.TP
.B 0
Done, or durably accepted: the ban is recorded and will be delivered. A target the guard
refuses (an allowlisted or reserved address, a too wide network) is 0 too, with a log line
saying why: fail2ban would otherwise retry it.
.TP
.B 1
Runtime failure: nothing was recorded (the state cannot be opened), or
.B sync
did not converge, or
.B check
found a sink it cannot reach.
.TP
.B 2
Bad usage or input: an address that does not parse, a bad jail name or time.
.TP
.B 3
Bad configuration: the file does not parse, a key is unknown, a value is out of range.
.SH ENVIRONMENT
.TP
.B NETBAN_CONFIG
The config file, when \-\-config is not given.
.TP
.B XDG_STATE_HOME, HOME
Where a non\-root user's state goes with the embedded default config
($XDG_STATE_HOME/netban, else ~/.local/state/netban).
.SH FILES
.TP
.I /etc/netban/netban.toml
The configuration (see
.BR netban.toml (5));
mode 0600 when it holds a secret. Without it (and without \-\-config), an embedded default
with no sinks is used.
.TP
.I /var/lib/netban/
The state directory (state_dir), 0700: netban.db (leases, sink records, the event outbox),
netban.sock (the daemon's control socket), locks/, token and listing caches, the last good
copy of each allowlist, daemon.json (where the daemon listens).
.TP
.I /etc/fail2ban/action.d/netban.conf, netban\-socket.py
The fail2ban actions (a command per ban; or the daemon's socket, in fail2ban's process).
.TP
.I /lib/systemd/system/netban.service
The daemon's unit.
.SH EXAMPLES
.nf
netban ban \-\-jail sshd \-\-bantime 3600 192.0.2.1
netban unban 192.0.2.1
netban list \-\-remote
netban explain 192.0.2.1
netban \-\-dry\-run sync
netban check
netban stats \-\-days 7
.fi
"#;

/// netban.toml(5): what the file is, where the reference is.
const CONFIG_PAGE: &str = r#".TH NETBAN.TOML 5 "" "netban" "File Formats"
.SH NAME
netban.toml \- netban's configuration
.SH SYNOPSIS
.I /etc/netban/netban.toml
.SH DESCRIPTION
A TOML file. Unknown keys, wrong types and out\-of\-range values are errors that name the
file, the line and the key
.RB ( "netban check"
validates it and reaches every sink, like
.BR "nginx \-t" ).
Top\-level keys:
.TP
.B state_dir
The state directory (absolute; default /var/lib/netban). Refused when others can write it.
.TP
.B host_id
This host's id: in templates, in the ownership mark netban:<host_id>:<instance> it puts on
what it makes, and on the cluster. Default: the host name (set it: clones share it).
.PP
Tables:
.TP
.B [guard]
allowlist (files, one CIDR per line), allow (inline CIDRs), max_prefix_v4, max_prefix_v6,
protect_own_addresses.
.TP
.B [reconcile]
inline_deadline, retry_initial, retry_max, retry_refused (seconds).
.TP
.B [daemon]
socket, resync_interval.
.TP
.B [web]
listen (default 127.0.0.1:9180), token or token_file.
.TP
.B [log]
level, file, syslog, journald.
.TP
.B [stats]
backend (sqlite or redis), country_db, asn_db, retention_days, timezone.
.TP
.B [cluster]
redis or redis_file, prefix, key_file, retention, revoke_from, [cluster.peers],
[cluster.limits], [cluster.fanout].
.TP
.B [[sink]]
One per enforcement point: name, type (exafs, exec, nftables, netconf), and optionally jails,
origins, min_origins, exclusive, batch_window; then the driver's own keys.
.SH FILES
.I /usr/share/doc/netban/examples/netban.toml.example
(every common setting, commented),
.I /usr/share/doc/netban/config.md
(every key).
.SH "SEE ALSO"
.BR netban (1).
"#;

/// Writes to stdout; a reader that went away is not an error.
fn write_out(bytes: &[u8]) -> CliResult {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Runtime(format!("writing to stdout: {e}"))),
    }
}
