//! `netban flush`: fail2ban's actionflush, run when a jail stops.
//!
//! It deliberately keeps network bans: they end on their own when their leases expire, so a
//! fail2ban restart does not unban everything network-wide and ban it again. (Without an
//! actionflush, fail2ban would run actionunban for every banned address at stop.)

use netban_core::{clock, leases};

use crate::cli::JailArg;
use crate::context::Context;
use crate::exit::CliResult;
use crate::request;

pub fn run(ctx: &mut Context, a: JailArg) -> CliResult {
    if let Some(j) = &a.jail {
        request::parse_jail(j)?;
    }
    leases::flush(&*ctx.store()?, a.jail.as_deref(), clock::now())?;
    Ok(())
}
