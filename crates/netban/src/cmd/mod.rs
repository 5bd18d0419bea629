//! One file per subcommand; [`run`] dispatches.

mod ban;
mod check;

mod flush;
mod generate;
mod list;
mod status;
mod sync;
mod unban;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::exit::{CliError, CliResult};

pub fn run(cli: Cli) -> CliResult {
    // Validate command-line input before anything else: bad input is exit 2 and touches
    // nothing, whatever the state of the config.
    let pre = match &cli.command {
        Command::Ban(a) => Some(ban::parse(a)?),
        _ => None,
    };
    if let Command::Unban(a) = &cli.command {
        unban::validate(a)?;
    }
    if let Command::Generate(a) = &cli.command {
        return generate::run(a);
    }
    let mut ctx = Context::load(&cli)?;
    match cli.command {
        Command::Ban(_) => match pre {
            Some(req) => ban::run(&mut ctx, req),
            None => Err(CliError::Runtime("internal: ban request not parsed".into())),
        },
        Command::Unban(a) => unban::run(&mut ctx, a),
        Command::Flush(a) => flush::run(&mut ctx, a),
        Command::List(a) => list::run(&mut ctx, a),
        Command::Sync(a) => sync::run(&mut ctx, a),
        Command::Check => check::run(&mut ctx),
        Command::Status => status::run(&mut ctx),
        Command::Daemon => crate::daemon::run(&mut ctx),
        Command::Generate(_) => Ok(()),
    }
}
