//! `netban ban`: record a lease durably, then deliver it (daemon or inline).
//!
//! The lease is committed before any delivery is tried, so once this command exits 0 the ban
//! survives outages, crashes and restarts. A target the guard refuses is not an error (exit 0
//! and one log line), since fail2ban would otherwise retry it.

use std::time::{Duration, Instant};

use netban_core::leases::{self, BanOutcome, BanRequest};
use netban_core::reconcile::{LeaseEdit, Scope};
use netban_core::{Lease, clock};

use crate::cli::BanArgs;
use crate::context::Context;
use crate::deliver::deliver;
use crate::exit::{CliError, CliResult};
use crate::request::{self, BanInput};

/// Validates the arguments (before the config is even read: bad input is exit 2).
pub fn parse(a: &BanArgs) -> CliResult<BanRequest> {
    if let (Some(flag), Some(pos)) = (&a.bantime, &a.bantime_pos)
        && flag != pos
    {
        return Err(CliError::Usage(format!(
            "two ban times given ({pos} and --bantime {flag}); give one"
        )));
    }
    request::parse(
        &BanInput {
            ip: a.ip.clone(),
            jail: Some(a.jail.clone()),
            bantime: a.bantime.clone().or_else(|| a.bantime_pos.clone()),
            time: a.time.clone(),
            restored: Some(a.restored.clone()),
            failures: a.failures.clone(),
            port: a.port.clone(),
        },
        clock::now(),
    )
}

pub fn run(ctx: &mut Context, req: BanRequest) -> CliResult {
    if ctx.dry_run {
        return dry_run(ctx, &req);
    }
    let store = ctx.store()?;
    let guard = ctx.guard()?;
    match leases::ban(&store, &guard, &req, clock::now())? {
        BanOutcome::Recorded(_) => deliver(ctx, vec![req.target]),
        BanOutcome::Refused(_) | BanOutcome::Ended => Ok(()),
    }
}

/// What the ban would do, per sink, down to the request.
fn dry_run(ctx: &mut Context, req: &BanRequest) -> CliResult {
    let guard = ctx.guard()?;
    if let Err(why) = guard.check(&req.target) {
        say!("would refuse {}: {why}", req.target);
        return Ok(());
    }
    if !req.until.is_live(clock::now()) {
        say!(
            "would skip {}: it already ended at {}",
            req.target,
            req.until
        );
        return Ok(());
    }
    say!(
        "would ban {} (jail {}) until {}",
        req.target,
        req.jail,
        req.until
    );
    let engine = ctx.engine()?;
    let edit = LeaseEdit::Add(Lease {
        target: req.target,
        jail: req.jail.clone(),
        origin: req.origin.clone(),
        until: req.until,
        bantime: req.bantime,
        since: req.since,
    });
    let rt = crate::context::runtime()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = rt.block_on(engine.preview(&Scope::Targets(vec![req.target]), edit, deadline))?;
    super::print_actions(&report);
    Ok(())
}
