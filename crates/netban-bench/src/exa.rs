//! ExaFS with the fault proxy in front of it, and what the benchmark reads from them: the
//! requests the proxy saw (counted, summarised, waited for) and the rules ExaFS holds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use netban_testsupport::exafs::ExaFs;
use netban_testsupport::proxy::{FaultProxy, Seen};

use crate::ips::host_prefix;

pub const RULES_PATH: &str = "/api/v3/rules/rtbh";

/// An ExaFS with the fault proxy in front of it (netban talks to the proxy).
pub struct Exa {
    pub exafs: ExaFs,
    pub proxy: FaultProxy,
}

impl Exa {
    pub fn start() -> Result<Exa> {
        let exafs = ExaFs::start()?;
        let proxy = FaultProxy::start(exafs.authority())?;
        Ok(Exa { exafs, proxy })
    }

    pub fn rules(&self) -> usize {
        self.exafs.try_rtbh_rules().map(|r| r.len()).unwrap_or(0)
    }
}

pub fn posts_ok(proxy: &FaultProxy) -> usize {
    proxy
        .seen()
        .iter()
        .filter(|s| s.method == "POST" && s.path.starts_with(RULES_PATH) && s.status == 201)
        .count()
}

/// `3 POST /api/v3/rules/rtbh → 201, 1 GET /api/v3/auth → 200`, or `none`.
pub fn summarize(seen: &[Seen]) -> String {
    if seen.is_empty() {
        return "none".into();
    }
    let mut groups: BTreeMap<(String, String, u16), usize> = BTreeMap::new();
    for s in seen {
        let path: Vec<String> = s
            .path
            .split('/')
            .map(|seg| {
                if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                    "ID".to_string()
                } else {
                    seg.to_string()
                }
            })
            .collect();
        *groups
            .entry((s.method.clone(), path.join("/"), s.status))
            .or_default() += 1;
    }
    groups
        .iter()
        .map(|((m, p, st), n)| {
            let st = if *st == 0 {
                "no answer".to_string()
            } else {
                st.to_string()
            };
            format!("{n} {m} {p} → {st}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits until the proxy has seen `want` successful rule POSTs since its last reset.
/// Returns (first POST seen, all seen), measured from `start`.
pub fn watch_posts(
    proxy: &FaultProxy,
    want: usize,
    start: Instant,
    timeout: Duration,
    stop: &AtomicBool,
) -> (Option<Duration>, Option<Duration>) {
    let mut first = None;
    loop {
        // Cheap count first (no copy); the exact one only when it may be done.
        let any = proxy.count("POST", RULES_PATH);
        if first.is_none() && any > 0 {
            first = Some(start.elapsed());
        }
        if any >= want && posts_ok(proxy) >= want {
            return (first, Some(start.elapsed()));
        }
        if start.elapsed() > timeout || stop.load(Ordering::SeqCst) {
            return (first, None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many of `ips` ExaFS holds as active rules (read from its database).
pub fn active_in_exafs(exafs: &ExaFs, ips: &[String]) -> Result<usize> {
    let want: BTreeSet<String> = ips.iter().map(|ip| host_prefix(ip)).collect();
    Ok(exafs
        .try_rtbh_rules()?
        .iter()
        .filter(|r| r.is_active() && want.contains(&r.prefix()))
        .count())
}
