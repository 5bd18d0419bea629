//! `netban ban`: record a lease durably, then deliver it (daemon or inline).
//!
//! The lease is committed before any delivery is tried, so once this command exits 0 the ban
//! survives outages, crashes and restarts. A target the guard refuses is not an error (exit 0
//! and one log line), since fail2ban would otherwise retry it.

use crate::cli::BanArgs;
use crate::context::Context;
use crate::deliver::deliver;
use crate::exit::CliResult;
use crate::ops::{self, BanInput, BanOutcome, BanRequest};

/// Validates the arguments (before the config is even read: bad input is exit 2).
pub fn parse(a: &BanArgs) -> CliResult<BanRequest> {
    if let Some(f) = a.failures.as_deref()
        && !f.is_empty()
        && f.parse::<u64>().is_err()
    {
        tracing::debug!("ignoring --failures {f:?}: not a number");
    }
    BanRequest::parse(&BanInput {
        ip: a.ip.clone(),
        jail: Some(a.jail.clone()),
        bantime: a.bantime.clone().or_else(|| a.bantime_pos.clone()),
        time: a.time.clone(),
        restored: Some(a.restored.clone()),
    })
}

pub fn run(ctx: &mut Context, req: BanRequest) -> CliResult {
    if ctx.dry_run {
        let guard = ctx.guard()?;
        match guard.check(&req.target) {
            Ok(()) => println!(
                "would ban {} (jail {}) until {}",
                req.target,
                req.jail,
                req.until(netban_core::clock::now())
            ),
            Err(why) => println!("would skip {}: {why}", req.target),
        }
        return Ok(());
    }
    let store = ctx.store()?;
    let guard = ctx.guard()?;
    match ops::ban(&store, &guard, &req)? {
        BanOutcome::Recorded => deliver(ctx, vec![req.target]),
        BanOutcome::Refused(_) | BanOutcome::Ended => Ok(()),
    }
}
