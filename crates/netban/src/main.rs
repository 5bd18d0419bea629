//! The `netban` binary: parse the command line, load the config, run one command, and map the
//! outcome to DESIGN.md's exit codes. Only this file turns errors into exit codes.

#[macro_use]
mod output;
mod cli;
mod cluster;
mod cmd;
mod context;
mod daemon;
mod deliver;
mod exit;
mod logging;
mod protocol;
mod request;
mod sinks;
mod stats;
mod view;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match cmd::run(cli) {
        Ok(()) => 0,
        Err(e) => {
            // Logging may not be set up (a config error); stderr always works. Credentials in
            // a URL never reach the terminal.
            eprintln!(
                "netban: {}",
                netban_core::config::redact_userinfo(&e.to_string())
            );
            e.code()
        }
    };
    std::process::exit(code);
}
