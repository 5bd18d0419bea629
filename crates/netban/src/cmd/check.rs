//! `netban check`: validate the config and reach every sink, like `nginx -t`.

use std::time::{Duration, Instant};

use crate::context::Context;
use crate::exit::{CliError, CliResult};

pub fn run(ctx: &mut Context) -> CliResult {
    let mut lines = Vec::new();
    let mut ok = true;
    lines.push(format!(
        "config {}: ok, {} sink(s)",
        ctx.config_path.display(),
        ctx.config.sinks.len()
    ));
    let guard = ctx.guard()?;
    lines.push(format!(
        "guard: refuses IPv4 wider than /{} and IPv6 wider than /{}; {} allowlist entries from files",
        ctx.config.guard.max_prefix_v4,
        ctx.config.guard.max_prefix_v6,
        guard.allowlist_len()
    ));
    let store = ctx.store()?;
    lines.push(format!(
        "state {}: ok, {} leases",
        store.path().display(),
        store.lease_count()?
    ));
    let factory = crate::sinks::Factory::new(&ctx.config);
    let rt = crate::context::runtime()?;
    let mut results = Vec::new();
    for sink_cfg in &ctx.config.sinks {
        let deadline = Instant::now() + Duration::from_secs(15);
        let result = match netban_core::reconcile::SinkFactory::build(&factory, sink_cfg) {
            Err(e) => Err(e),
            Ok(sink) => rt.block_on(sink.check(deadline)).map_err(|e| e.message),
        };
        ok &= result.is_ok();
        match &result {
            Ok(msg) => lines.push(format!(
                "sink {} ({}): ok: {msg}",
                sink_cfg.name(),
                sink_cfg.kind()
            )),
            Err(e) => lines.push(format!(
                "sink {} ({}): FAILED: {e}",
                sink_cfg.name(),
                sink_cfg.kind()
            )),
        }
        results.push(serde_json::json!({"sink": sink_cfg.name(), "type": sink_cfg.kind(), "ok": result.is_ok(), "message": result.unwrap_or_else(|e| e)}));
    }
    if ctx.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"ok": ok, "config": ctx.config_path, "sinks": results})
            )
            .unwrap_or_default()
        );
    } else {
        for l in &lines {
            println!("{l}");
        }
    }
    if ok {
        Ok(())
    } else {
        Err(CliError::Runtime(
            "some sinks cannot be reached (see above)".into(),
        ))
    }
}
