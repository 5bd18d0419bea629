//! The `netban` binary: parse the command line, load the config, run one command, and map the
//! outcome to DESIGN.md's exit codes. Only this file turns errors into exit codes.

mod cli;
mod cmd;
mod context;
mod daemon;
mod deliver;
mod exit;
mod logging;
mod ops;
mod sinks;
mod view;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match cmd::run(cli) {
        Ok(()) => 0,
        Err(e) => {
            // Logging may not be set up (a config error); stderr always works.
            eprintln!("netban: {e}");
            e.code()
        }
    };
    std::process::exit(code);
}
