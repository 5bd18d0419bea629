//! The operations the daemon tests run: test addresses (written as fail2ban may pass them),
//! `netban ban` / `unban` as separate processes on worker threads, what must be banned after
//! them, and a seeded random mix of them (the seed is printed, `NETBAN_TEST_SEED` replays it).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netban_testsupport::runner::Netban;

/// A test address: the string given to netban and its canonical target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Addr {
    pub input: String,
    pub target: String,
}

/// The `i`-th test address (distinct for distinct `i` < 812): hosts of 198.51.100.0/24,
/// 203.0.113.0/24, 192.0.2.0/24, then 2001:db8::/64. Some are written as fail2ban may pass
/// them (IPv4-mapped IPv6, upper-case IPv6, uncompressed zeros); the target is canonical.
pub fn addr(i: usize) -> Addr {
    let (input, target) = match i {
        0..=249 => {
            let a = format!("198.51.100.{}", i + 1);
            (a.clone(), format!("{a}/32"))
        }
        250..=499 => {
            let a = format!("203.0.113.{}", i - 249);
            // Every 7th as IPv4-mapped IPv6: netban must store and post it as IPv4.
            let input = if i.is_multiple_of(7) {
                format!("::ffff:{a}")
            } else {
                a.clone()
            };
            (input, format!("{a}/32"))
        }
        500..=749 => {
            let a = format!("192.0.2.{}", i - 499);
            (a.clone(), format!("{a}/32"))
        }
        _ => {
            let n = i - 749;
            let input = match n % 3 {
                0 => format!("2001:DB8::{n:X}"),
                1 => format!("2001:db8:0:0:0:0:0:{n:x}"),
                _ => format!("2001:db8::{n:x}"),
            };
            (input, format!("2001:db8::{n:x}/128"))
        }
    };
    Addr { input, target }
}

/// One `netban ban` or `unban`.
#[derive(Debug, Clone)]
pub struct Op {
    pub ban: bool,
    pub addr: Addr,
    pub jail: String,
    pub extra: Vec<String>,
}

impl Op {
    pub fn ban(addr: Addr, jail: &str) -> Op {
        Op {
            ban: true,
            addr,
            jail: jail.to_string(),
            extra: Vec::new(),
        }
    }

    pub fn unban(addr: Addr, jail: &str) -> Op {
        Op {
            ban: false,
            addr,
            jail: jail.to_string(),
            extra: Vec::new(),
        }
    }

    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            if self.ban { "ban" } else { "unban" }.to_string(),
            "--jail".into(),
            self.jail.clone(),
        ];
        a.extend(self.extra.iter().cloned());
        a.push(self.addr.input.clone());
        a
    }

    pub fn key(&self) -> (String, String) {
        (self.addr.target.clone(), self.jail.clone())
    }
}

/// One finished op.
pub struct Done {
    pub op: Op,
    pub out: Output,
    pub took: Duration,
}

/// Runs `ops` as separate `netban` processes on `workers` threads. Ops on the same
/// (target, jail) run on the same thread in their order, so "the last op per (target, jail)"
/// is well defined; ops on different keys (including other jails of the same address) run
/// concurrently. `progress` counts finished ops.
pub fn run_ops(nb: &Netban, ops: &[Op], workers: usize, progress: &AtomicUsize) -> Vec<Done> {
    let mut queues: Vec<Vec<(usize, Op)>> = vec![Vec::new(); workers];
    let mut owner: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        let n = owner.len();
        let w = *owner.entry(op.key()).or_insert(n % workers);
        queues[w].push((i, op.clone()));
    }
    let results: Mutex<Vec<(usize, Done)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for q in queues {
            let results = &results;
            s.spawn(move || {
                for (i, op) in q {
                    let began = Instant::now();
                    let out = nb.run(&op.args().iter().map(String::as_str).collect::<Vec<_>>());
                    let took = began.elapsed();
                    progress.fetch_add(1, Ordering::SeqCst);
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((i, Done { op, out, took }));
                }
            });
        }
    });
    let mut r = results.into_inner().unwrap_or_else(|p| p.into_inner());
    r.sort_by_key(|(i, _)| *i);
    r.into_iter().map(|(_, d)| d).collect()
}

/// Asserts every op exited 0 (quietly); returns the longest wall time.
pub fn assert_all_ok(done: &[Done], ctx: impl Fn() -> String) -> Duration {
    let failed: Vec<String> = done
        .iter()
        .filter(|d| !d.out.status.success())
        .take(5)
        .map(|d| {
            format!(
                "netban {:?}: {}\nstdout: {}\nstderr: {}",
                d.op.args(),
                d.out.status,
                String::from_utf8_lossy(&d.out.stdout),
                String::from_utf8_lossy(&d.out.stderr)
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} netban calls failed; first ones:\n{}\n{}",
        done.iter().filter(|d| !d.out.status.success()).count(),
        done.len(),
        failed.join("\n"),
        ctx()
    );
    done.iter().map(|d| d.took).max().unwrap_or_default()
}

/// The targets that must be banned after `ops` ran in order: the last op per (target, jail)
/// wins; a target is banned while any jail's last op is a ban.
pub fn expected_after(ops: &[Op]) -> BTreeSet<String> {
    let mut last: BTreeMap<(String, String), bool> = BTreeMap::new();
    for op in ops {
        last.insert(op.key(), op.ban);
    }
    last.into_iter()
        .filter(|(_, ban)| *ban)
        .map(|((t, _), _)| t)
        .collect()
}

/// A small deterministic PRNG (xorshift64*), seeded per test and printed for reproduction.
pub struct Rng(u64);

impl Rng {
    pub fn new(test: &str) -> Rng {
        let seed = std::env::var("NETBAN_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        eprintln!("{test}: NETBAN_TEST_SEED={seed}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `p` percent.
    pub fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

/// `ops` random bans (`ban_pct` %) and unbans over `addrs` addresses and `jails` jails.
pub fn random_ops(
    rng: &mut Rng,
    n: usize,
    addrs: &[Addr],
    jails: &[String],
    ban_pct: u64,
) -> Vec<Op> {
    (0..n)
        .map(|_| {
            let a = addrs[rng.below(addrs.len())].clone();
            let j = &jails[rng.below(jails.len())];
            if rng.percent(ban_pct) {
                Op::ban(a, j)
            } else {
                Op::unban(a, j)
            }
        })
        .collect()
}
