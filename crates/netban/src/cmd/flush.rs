//! `netban flush`: fail2ban's actionflush, run when a jail stops.
//!
//! It deliberately keeps network bans: they end on their own when their leases expire, so a
//! fail2ban restart does not unban everything network-wide and ban it again. (Without an
//! actionflush, fail2ban would run actionunban for every banned address at stop.)

use crate::cli::JailArg;
use crate::context::Context;
use crate::exit::CliResult;
use crate::ops;

pub fn run(ctx: &mut Context, a: JailArg) -> CliResult {
    if let Some(j) = &a.jail {
        ops::parse_jail(j)?;
    }
    ops::flush(&*ctx.store()?, a.jail.as_deref())?;
    Ok(())
}
