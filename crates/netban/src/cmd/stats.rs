//! `netban stats [--days N] [--json]`: attack statistics (fleet-wide with the Redis
//! backend). When no daemon runs, the events waiting in the outbox are counted first.

use netban_core::clock;

use crate::cli::StatsArgs;
use crate::context::Context;
use crate::exit::{CliError, CliResult};

pub fn run(ctx: &mut Context, a: StatsArgs) -> CliResult {
    if !(1..=3660).contains(&a.days) {
        return Err(CliError::Usage(format!(
            "--days {}: expected 1 to 3660",
            a.days
        )));
    }
    let Some(stats) = crate::stats::open(ctx)? else {
        return Err(CliError::Config(format!(
            "statistics are off: add a [stats] section to {} (see docs/stats.md)",
            ctx.source.describe()
        )));
    };
    let store = ctx.store()?;
    let daemon = crate::deliver::daemon_alive(&ctx.config.socket_path());
    let rt = crate::context::runtime()?;
    rt.block_on(async {
        if !daemon {
            crate::stats::drain(&store, &stats)
                .await
                .map_err(|e| CliError::Runtime(format!("stats: {e}")))?;
        }
        let now = clock::now();
        let fail = |e: netban_stats::StatsError| CliError::Runtime(format!("stats: {e}"));
        if ctx.json {
            let report = stats.report(a.days, now).await.map_err(fail)?;
            super::print_json(&report);
        } else {
            let (report, details) = stats
                .summary(a.days, now, 10)
                .await
                .map_err(fail)?
                .into_parts();
            say!(
                "{}",
                netban_stats::render_table(&report, &details).trim_end()
            );
        }
        Ok(())
    })
}
