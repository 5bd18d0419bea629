//! `netban unban`: end a ban of an address; the target leaves the sinks only when no live
//! lease is left (another jail, a peer).
//!
//! fail2ban passes `--jail` and ends its own lease. Without `--jail` (an operator at the
//! shell) every local lease of the address ends, and the command says which (issue 7: it used
//! to end only the `default` jail's, silently).
//!
//! `--everywhere` ends every lease of the address here, whatever its origin, and publishes a
//! signed revoke for the fleet; with `--dry-run` it says so, and what the sinks here would be
//! sent, and publishes nothing.

use std::time::{Duration, Instant};

use netban_core::reconcile::{LeaseEdit, Scope};
use netban_core::{Origin, Target, clock, leases};

use crate::cli::UnbanArgs;
use crate::context::Context;
use crate::deliver::deliver;
use crate::exit::{CliError, CliResult};
use crate::request;

pub fn validate(a: &UnbanArgs) -> CliResult<Target> {
    if let Some(j) = &a.jail {
        request::parse_jail(j)?;
    }
    request::parse_target(&a.ip)
}

pub fn run(ctx: &mut Context, a: UnbanArgs) -> CliResult {
    let target = validate(&a)?;
    let jail = a.jail.as_deref();
    if a.everywhere {
        return everywhere(ctx, target);
    }
    if ctx.dry_run {
        let now = clock::now();
        let live = ctx.store()?.live_leases_of(now, &[target])?;
        let ending: Vec<_> = live
            .iter()
            .filter(|l| l.origin == Origin::Local && jail.is_none_or(|j| l.jail == j))
            .map(|l| l.jail.clone())
            .collect();
        if ending.is_empty() {
            say!(
                "would do nothing: {target} has no local ban{}",
                in_jail(jail)
            );
            return Ok(());
        }
        say!("would unban {target} (jails {})", ending.join(", "));
        let edit = LeaseEdit::End {
            target,
            jail: a.jail.clone(),
            origin: Origin::Local,
        };
        preview(ctx, target, edit)?;
        return Ok(());
    }
    let ended = leases::unban(&*ctx.store()?, &target, jail, clock::now())?;
    if jail.is_none() {
        // An operator's command: say what happened.
        if ended.is_empty() {
            say!("{target}: no local ban to end");
        } else {
            let jails: Vec<&str> = ended.iter().map(|l| l.jail.as_str()).collect();
            say!("{target}: ended the bans of {}", jails.join(", "));
        }
    }
    if ended.is_empty() {
        return Ok(());
    }
    deliver(ctx, vec![target])
}

/// `--everywhere`: every lease of the target ends here, and a signed revoke goes to the
/// fleet with this host's next events (its peers end theirs when they accept it).
fn everywhere(ctx: &mut Context, target: Target) -> CliResult {
    let cluster = crate::cluster::config(&ctx.config)?;
    if !cluster.as_ref().is_some_and(|c| c.has_redis()) {
        return Err(CliError::Config(
            "unban --everywhere needs the cluster's bus: set [cluster] redis (docs/cluster.md)"
                .into(),
        ));
    }
    let host = ctx.config.host_id();
    if ctx.dry_run {
        return everywhere_dry_run(ctx, target, &host);
    }
    let store = ctx.store()?;
    let ended = netban_cluster::revoke_everywhere(&store, &target, &host, clock::now())?;
    let jails: Vec<String> = ended
        .iter()
        .map(|l| format!("{} ({})", l.jail, l.origin.as_str()))
        .collect();
    let here = if jails.is_empty() {
        "no lease".to_string()
    } else {
        format!("the leases of {}", jails.join(", "))
    };
    say!("{target}: ended {here} here; the fleet-wide unban goes out with this host's next events");
    deliver(ctx, vec![target])
}

/// What `--everywhere` would do: the leases it ends here, the revoke it publishes, what the
/// sinks here would be sent. Publishes nothing.
fn everywhere_dry_run(ctx: &mut Context, target: Target, host: &str) -> CliResult {
    let live = ctx.store()?.live_leases_of(clock::now(), &[target])?;
    if live.is_empty() {
        say!("would end no lease of {target} here (it has none)");
    } else {
        let leases: Vec<String> = live
            .iter()
            .map(|l| format!("{} ({})", l.jail, l.origin.as_str()))
            .collect();
        say!(
            "would end every lease of {target} here: {}",
            leases.join(", ")
        );
    }
    say!(
        "would publish a signed revoke of {target} from {host}, ending its leases on every host of the cluster that accepts revokes from {host} (their [cluster] revoke_from; default every host that trusts it); nothing is published now"
    );
    if !live.is_empty() {
        preview(ctx, target, LeaseEdit::EndAll { target })?;
    }
    Ok(())
}

/// What the sinks here would be sent after `edit`.
fn preview(ctx: &mut Context, target: Target, edit: LeaseEdit) -> CliResult {
    let engine = ctx.engine()?;
    let rt = crate::context::runtime()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = rt.block_on(engine.preview(&Scope::Targets(vec![target]), edit, deadline))?;
    super::print_actions(&report);
    Ok(())
}

fn in_jail(jail: Option<&str>) -> String {
    jail.map(|j| format!(" in jail {j}")).unwrap_or_default()
}
