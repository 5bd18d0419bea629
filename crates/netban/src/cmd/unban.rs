//! `netban unban`: end one jail's lease; the target leaves the sinks only when no live lease
//! is left (another jail, a peer).

use netban_core::Target;

use crate::cli::UnbanArgs;
use crate::context::Context;
use crate::deliver::deliver;
use crate::exit::CliResult;
use crate::ops;

pub fn validate(a: &UnbanArgs) -> CliResult<Target> {
    ops::parse_jail(&a.jail)?;
    ops::parse_target(&a.ip)
}

pub fn run(ctx: &mut Context, a: UnbanArgs) -> CliResult {
    let target = validate(&a)?;
    if ctx.dry_run {
        println!("would unban {target} (jail {})", a.jail);
        return Ok(());
    }
    ops::unban(&*ctx.store()?, &target, &a.jail)?;
    deliver(ctx, vec![target])
}
