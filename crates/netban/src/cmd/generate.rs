//! `netban generate man|SHELL`: the man page and shell completions, from the same clap
//! definitions as `--help` (packagers run it at build time).

use clap::CommandFactory;

use crate::cli::{Cli, GenerateArgs};
use crate::exit::{CliError, CliResult};

pub fn run(a: &GenerateArgs) -> CliResult {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout();
    if a.what == "man" {
        return clap_mangen::Man::new(cmd)
            .render(&mut out)
            .map_err(|e| CliError::Runtime(format!("writing the man page: {e}")));
    }
    let shell: clap_complete::Shell = a.what.parse().map_err(|_| {
        CliError::Usage(format!(
            "generate {:?}: expected man, bash, zsh, fish, elvish or powershell",
            a.what
        ))
    })?;
    clap_complete::generate(shell, &mut cmd, "netban", &mut out);
    Ok(())
}
