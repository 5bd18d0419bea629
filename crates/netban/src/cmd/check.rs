//! `netban check`: validate the config and reach every sink, like `nginx -t`.

use std::time::{Duration, Instant};

use crate::context::Context;
use crate::exit::{CliError, CliResult};

pub fn run(ctx: &mut Context) -> CliResult {
    let mut lines = Vec::new();
    let mut ok = true;
    lines.push(format!(
        "config {}: ok, {} sink(s)",
        ctx.source.describe(),
        ctx.sinks.len()
    ));
    let store = ctx.store()?;
    let env = ctx.env()?;
    if ctx.config.host_id.is_none() {
        lines.push(format!(
            "host: {} (the host name, as host_id is not set: cloned machines share it; set host_id to a name unique in your fleet); mark {}",
            env.host_id, env.mark
        ));
    } else {
        lines.push(format!("host: {}; mark {}", env.host_id, env.mark));
    }
    let guard = ctx.guard()?;
    lines.push(format!(
        "guard: refuses IPv4 wider than /{} and IPv6 wider than /{}; {} allowlist entries from files",
        ctx.config.guard.max_prefix_v4,
        ctx.config.guard.max_prefix_v6,
        guard.allowlist_len()
    ));
    for p in guard.problems() {
        ok = false;
        lines.push(format!("guard: FAILED: {p}; fix the file"));
    }
    lines.push(format!(
        "state {}: ok, {} leases",
        store.path().display(),
        store.lease_count()?
    ));
    let now = netban_core::clock::now();
    for (jail, at, n, _) in store.mass_unbans(now - 7 * 86_400)? {
        lines.push(format!(
            "fail2ban: WARNING: jail {jail}: {n} bans were unbanned within seconds at {}: the jail's netban action had no actionflush at a stop (after a `reload` that switched actions?); restart fail2ban, never reload, after changing its netban action",
            netban_core::clock::format_utc(at)
        ));
    }
    let web = &ctx.config.web;
    if !web.listen.is_empty()
        && !is_loopback(&web.listen)
        && web.token.is_none()
        && web.token_file.is_none()
    {
        lines.push(format!(
            "web: WARNING: web.listen = {:?} is reachable from other hosts and has no token; set web.token_file",
            web.listen
        ));
    }
    let rt = crate::context::runtime()?;
    if let Some(cfg) = crate::cluster::config(&ctx.config)? {
        for w in cfg.warnings(&env.host_id) {
            lines.push(format!("cluster: WARNING: {w}"));
        }
        let line = cluster_check(&rt, cfg, &env.host_id, store.clone(), guard.clone());
        ok &= !line.contains("FAILED");
        lines.push(line);
    }
    let mut stats_line = None;
    if let Some(cfg) = crate::stats::config(ctx)? {
        let line = stats_check(ctx, &rt, &cfg);
        ok &= !line.contains("FAILED");
        lines.push(line.clone());
        stats_line = Some(line);
    }
    let mut results = Vec::new();
    for def in &ctx.sinks {
        let deadline = Instant::now() + Duration::from_secs(15);
        let result = match def.spec.build(def.name(), &env) {
            Err(e) => Err(e),
            Ok(sink) => rt.block_on(sink.check(deadline)).map_err(|e| e.message),
        };
        let result = result
            .map(|m| netban_core::config::redact_userinfo(&m))
            .map_err(|e| netban_core::config::redact_userinfo(&e));
        ok &= result.is_ok();
        for w in def.spec.warnings() {
            lines.push(format!(
                "sink {} ({}): WARNING: {w}",
                def.name(),
                def.kind()
            ));
        }
        match &result {
            Ok(msg) => lines.push(format!("sink {} ({}): ok: {msg}", def.name(), def.kind())),
            Err(e) => lines.push(format!("sink {} ({}): FAILED: {e}", def.name(), def.kind())),
        }
        results.push(serde_json::json!({"sink": def.name(), "type": def.kind(), "ok": result.is_ok(), "message": result.unwrap_or_else(|e| e)}));
    }
    if ctx.json {
        super::print_json(&serde_json::json!({
            "ok": ok, "config": ctx.config_path(), "host_id": env.host_id,
            "mark": env.mark.to_string(), "guard_problems": guard.problems(), "sinks": results, "stats": stats_line,
        }));
    } else {
        for l in &lines {
            say!("{l}");
        }
    }
    if ok {
        Ok(())
    } else {
        Err(CliError::Runtime("some checks failed (see above)".into()))
    }
}

/// True when `listen` (`host:port`) binds a loopback address.
pub fn is_loopback(listen: &str) -> bool {
    listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback())
        || listen.starts_with("localhost:")
}

/// The cluster's key and bus, reached like a sink.
fn cluster_check(
    rt: &tokio::runtime::Runtime,
    cfg: netban_cluster::ClusterConfig,
    host: &str,
    store: std::sync::Arc<netban_core::store::Store>,
    guard: netban_core::guard::Guard,
) -> String {
    let setup = netban_cluster::Setup::new(
        cfg,
        host,
        store,
        std::sync::Arc::new(move || guard.clone()),
        std::sync::Arc::new(|| {}),
    );
    let result = netban_cluster::Cluster::new(setup)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(15), c.check())
                    .await
                    .map_err(|_| "no answer within 15 s".to_string())?
                    .map_err(|e| e.to_string())
            })
        });
    match result {
        Ok(msg) => format!(
            "cluster: ok: {}",
            netban_core::config::redact_userinfo(&msg)
        ),
        Err(e) => format!(
            "cluster: FAILED: {}",
            netban_core::config::redact_userinfo(&e)
        ),
    }
}

/// The statistics' backend reached (a one-day report) and the mmdb files loaded.
fn stats_check(
    ctx: &mut Context,
    rt: &tokio::runtime::Runtime,
    cfg: &netban_stats::StatsConfig,
) -> String {
    let stats = match crate::stats::open(ctx) {
        Ok(Some(s)) => s,
        Ok(None) => return "stats: off".into(),
        Err(e) => return format!("stats: FAILED: {e}"),
    };
    let answered = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(15),
            stats.report(1, netban_core::clock::now()),
        )
        .await
    });
    let backend = stats.backend().name();
    let mut line = match answered {
        Ok(Ok(r)) => format!(
            "stats: ok: {backend} backend answers ({} bans today)",
            r.total
        ),
        Ok(Err(e)) => format!(
            "stats: FAILED: {}",
            netban_core::config::redact_userinfo(&e.to_string())
        ),
        Err(_) => format!("stats: FAILED: the {backend} backend gave no answer within 15 s"),
    };
    let (country, asn) = stats.geo().loaded();
    for (key, path, loaded) in [
        ("country_db", &cfg.country_db, country),
        ("asn_db", &cfg.asn_db, asn),
    ] {
        if let Some(p) = path
            && !loaded
        {
            line.push_str(&format!(
                "; WARNING: {key} {} cannot be read: bans are counted without it until it can",
                p.display()
            ));
        }
    }
    line
}
