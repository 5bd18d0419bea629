//! `netban sync`: reconcile every sink now, retrying failed work at once and repairing drift
//! against what each sink lists; exit 0 only when every sink is converged.

use std::time::{Duration, Instant};

use netban_core::clock;
use netban_core::lock::ReconcileLock;
use netban_core::reconcile::{PassOptions, Scope};

use crate::cli::SyncArgs;
use crate::context::Context;
use crate::exit::{CliError, CliResult};

pub fn run(ctx: &mut Context, a: SyncArgs) -> CliResult {
    if !(a.timeout.is_finite() && a.timeout > 0.0) {
        return Err(CliError::Usage(format!(
            "--timeout {}: expected a positive number of seconds",
            a.timeout
        )));
    }
    let deadline = Instant::now() + Duration::from_secs_f64(a.timeout);
    let Some(_lock) = ReconcileLock::acquire(&ctx.config.state_dir, deadline)? else {
        return Err(CliError::Runtime(format!(
            "another netban process held the reconcile lock for {}s; try again",
            a.timeout
        )));
    };
    let store = ctx.store()?;
    let engine = ctx.engine()?;
    let keep: Vec<&str> = ctx.config.sinks.iter().map(|s| s.name()).collect();
    if !ctx.dry_run {
        store.purge_expired(clock::now())?;
        let n = store.forget_sinks_except(&keep)?;
        if n > 0 {
            tracing::warn!(
                "forgot {n} records of sinks no longer in the config (their remote entries are left alone)"
            );
        }
    }
    let opts = PassOptions {
        deadline,
        force: true,
        repair: true,
        dry_run: ctx.dry_run,
    };
    let rt = crate::context::runtime()?;
    let report = rt.block_on(engine.run(&Scope::All, opts))?;
    // Converged means: nothing is left to do, checked afresh after the pass.
    let left: Vec<(String, usize)> = engine
        .plans(clock::now())?
        .into_iter()
        .map(|p| (p.name, p.plan.steps.len()))
        .collect();
    let converged =
        left.iter().all(|(_, n)| *n == 0) && report.sinks.iter().all(|s| s.error.is_none());
    if ctx.json {
        let v = serde_json::json!({ "converged": converged, "sinks": report.sinks, "pending": left.iter().map(|(n, c)| serde_json::json!({"sink": n, "pending": c})).collect::<Vec<_>>() });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for (s, (_, pending)) in report.sinks.iter().zip(&left) {
            let mut line = format!(
                "{}: {} added, {} extended, {} removed, {} repaired, {} failed, {} pending",
                s.sink, s.added, s.extended, s.removed, s.repaired, s.failed, pending
            );
            if let Some(e) = &s.error {
                line.push_str(&format!("; last error: {e}"));
            }
            println!("{line}");
        }
    }
    if ctx.dry_run || converged {
        Ok(())
    } else {
        Err(CliError::Runtime("not converged: work is still pending (see above); it is retried by the daemon or the next `netban sync`".into()))
    }
}
