//! `netban generate man|SHELL`: the man pages and shell completions, from the same clap
//! definitions as `--help` (packagers run it at build time).
//!
//! `generate man` prints netban(1); with `--out-dir` it writes netban.1 and one page per
//! subcommand (netban-ban.1, ...), which netban(1)'s SEE ALSO names. A closed pipe
//! (`netban generate bash | head`) ends quietly (issue 7: it used to panic).

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
    let page = |c: clap::Command| -> CliResult<Vec<u8>> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(c)
            .render(&mut buf)
            .map_err(|e| CliError::Runtime(format!("rendering a man page: {e}")))?;
        Ok(buf)
    };
    let also = see_also(&cmd);
    let cmd = cmd.after_long_help(also);
    let Some(dir) = dir else {
        return write_out(&page(cmd)?);
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::Runtime(format!("{}: {e}", dir.display())))?;
    let write = |name: String, bytes: Vec<u8>| -> CliResult {
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| CliError::Runtime(format!("{}: {e}", path.display())))
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("netban-{}", sub.get_name());
        let sub = sub
            .clone()
            .name(name.clone())
            .bin_name(name.replace('-', " "));
        write(format!("{name}.1"), page(sub)?)?;
    }
    write("netban.1".into(), page(cmd)?)
}

/// The SEE ALSO paragraph of netban(1).
fn see_also(cmd: &clap::Command) -> String {
    let pages: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(|s| format!("netban-{}(1)", s.get_name()))
        .collect();
    format!(
        "See also: {}, netban.toml(5), fail2ban(1).\n\nDocumentation: /usr/share/doc/netban (README, docs/).",
        pages.join(", ")
    )
}

/// Writes to stdout; a reader that went away is not an error.
fn write_out(bytes: &[u8]) -> CliResult {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Runtime(format!("writing to stdout: {e}"))),
    }
}
