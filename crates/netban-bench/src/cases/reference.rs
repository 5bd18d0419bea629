//! `reference`: the wall time of `/bin/true`, started exactly like `netban` (same spawn
//! code): the floor every other row is compared with.

use std::process::{Command, Stdio};

use anyhow::Result;

use super::Bench;
use crate::measure::{Unit, median_i64, mib, run_timed, stats};
use crate::report::Row;

impl Bench {
    pub fn reference(&mut self) -> Result<()> {
        let n = self.args.calls.max(100);
        self.log.say(format!("reference: /bin/true x {n}"));
        for _ in 0..5 {
            run_timed(Command::new("/bin/true").stdin(Stdio::null()))?;
        }
        let mut walls = Vec::with_capacity(n);
        let mut rss = Vec::with_capacity(n);
        for _ in 0..n {
            let r = run_timed(
                Command::new("/bin/true")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )?;
            walls.push(r.wall);
            rss.push(r.maxrss_kib);
        }
        self.true_median = Some(stats(&walls).median);
        self.rows.push(Row::timing(
            "reference",
            "`/bin/true` (process start, spawned like netban)",
            &walls,
            Unit::Ms,
            format!("peak RSS {} MiB", mib(median_i64(&rss))),
        ));
        Ok(())
    }
}
