//! `netban status`: daemon, identity, sinks, pending work, and everything that needs the
//! operator: entries left on a sink on purpose, broken allowlists, refused bans, jails whose
//! bans were all unbanned at a fail2ban stop.

use netban_core::clock;
use serde_json::json;

use crate::context::Context;
use crate::exit::CliResult;
use crate::view;

pub fn run(ctx: &mut Context) -> CliResult {
    let now = clock::now();
    let socket = ctx.config.socket_path();
    let daemon_up = crate::deliver::daemon_alive(&socket);
    let store = ctx.store()?;
    let leases = store.live_lease_count(now)?;
    let engine = ctx.engine()?;
    let env = engine.env().clone();
    let guard = engine.guard();
    let sinks = view::sinks(&engine, now)?;
    let kept = store.kept(None)?;
    let refusals = store.refusals(None, 10_000)?;
    let recent_refusals = refusals.iter().filter(|r| r.last >= now - 86_400).count();
    let mass = store.mass_unbans(now - 7 * 86_400)?;
    // The CLI's "pending" is everything still to do: adds, extends and removals.
    let out: Vec<serde_json::Value> = sinks
        .iter()
        .map(|s| {
            let m = s.summary(&kept, now);
            json!({
                "sink": m.sink, "in_place": m.in_place, "pending": m.pending + m.removing,
                "failing": m.failing, "not_enforced": m.not_enforced, "kept": m.kept,
                "oldest_pending_age": m.oldest_pending_age, "last_error": m.last_error,
            })
        })
        .collect();
    let host_defaulted = ctx.config.host_id.is_none();
    let cluster = cluster_status(ctx, &socket, daemon_up)?;
    if ctx.json {
        let v = json!({
            "daemon": {"running": daemon_up, "socket": socket},
            "config": ctx.source.describe(),
            "host_id": env.host_id, "host_id_defaulted": host_defaulted,
            "mark": env.mark.to_string(),
            "leases": leases, "sinks": out, "kept": kept,
            "guard_problems": guard.problems(),
            "refusals_24h": recent_refusals,
            "mass_unbans": mass.iter().map(|(j, at, n, r)| json!({"jail": j, "at": at, "unbanned": n, "restored": r})).collect::<Vec<_>>(),
            "cluster": cluster.as_ref().map(|(c, _)| c),
        });
        super::print_json(&v);
        return Ok(());
    }
    say!(
        "daemon: {} ({})",
        if daemon_up {
            "running"
        } else {
            "not running; bans are delivered inline"
        },
        socket.display()
    );
    say!("config: {}", ctx.source.describe());
    say!(
        "host: {}{}; mark {}",
        env.host_id,
        if host_defaulted {
            " (the host name: set host_id, clones share it)"
        } else {
            ""
        },
        env.mark
    );
    say!("leases: {leases} live");
    for s in &out {
        let mut line = format!(
            "sink {}: {} in place, {} pending",
            s["sink"].as_str().unwrap_or(""),
            s["in_place"],
            s["pending"]
        );
        if let Some(age) = s["oldest_pending_age"].as_i64() {
            line.push_str(&format!(" (oldest {}s)", age.max(0)));
        }
        if s["failing"].as_i64().unwrap_or(0) > 0 {
            line.push_str(&format!(
                ", {} failing: {}",
                s["failing"],
                s["last_error"].as_str().unwrap_or("")
            ));
        }
        if s["not_enforced"].as_i64().unwrap_or(0) > 0 {
            line.push_str(&format!(", {} NOT ENFORCED by the sink", s["not_enforced"]));
        }
        if s["kept"].as_i64().unwrap_or(0) > 0 {
            line.push_str(&format!(
                ", {} left on the sink on purpose (below)",
                s["kept"]
            ));
        }
        say!("{line}");
    }
    if let Some((c, live)) = &cluster {
        for line in crate::cluster::lines(c, *live) {
            say!("{line}");
        }
    }
    for k in &kept {
        say!(
            "WARNING: {} {} stays on the sink{}: {} ({})",
            k.sink,
            k.target,
            k.expires
                .map(|e| format!(" until {}", clock::format_utc(e)))
                .unwrap_or_default(),
            k.reason,
            k.owner
        );
    }
    for p in guard.problems() {
        say!("WARNING: guard: {p}; fix the file");
    }
    if recent_refusals > 0 {
        say!(
            "guard: refused {recent_refusals} target(s) in the last 24 h (netban explain IP says why)"
        );
    }
    for (jail, at, n, restored) in &mass {
        say!(
            "WARNING: jail {jail}: {n} bans were unbanned within seconds at {}{}: fail2ban stopped the jail without the netban action's actionflush (a `reload` that switched actions?); network bans were removed and {restored} re-added. Restart fail2ban (never reload) after changing its netban action.",
            clock::format_utc(*at),
            if *restored > 0 { ", then restored" } else { "" }
        );
    }
    Ok(())
}

/// The cluster's state: the daemon's (with its connections) when it answers, else what the
/// state database knows. The flag says which.
fn cluster_status(
    ctx: &mut Context,
    socket: &std::path::Path,
    daemon_up: bool,
) -> CliResult<Option<(netban_cluster::ClusterStatus, bool)>> {
    let Some(cfg) = crate::cluster::config(&ctx.config)? else {
        return Ok(None);
    };
    let live = daemon_up
        .then(|| {
            crate::protocol::call(
                socket,
                &crate::protocol::Request::ClusterStatus,
                std::time::Duration::from_secs(5),
            )
        })
        .flatten()
        .and_then(|r| r.cluster)
        .and_then(|v| serde_json::from_value(v).ok());
    Ok(Some(match live {
        Some(s) => (s, true),
        None => (
            netban_cluster::from_store(&*ctx.store()?, &cfg, &ctx.config.host_id())?,
            false,
        ),
    }))
}
