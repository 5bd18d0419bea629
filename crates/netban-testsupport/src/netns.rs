//! A private network namespace per test, with the real nftables, iproute2 and ping in it.
//!
//! [`run`] starts a new thread, moves that thread alone into a fresh network namespace
//! (`unshare(CLONE_NEWNET)`, what `unshare -n` does), brings `lo` up and runs the test's
//! closure there. Linux keeps namespaces per thread: the rest of the test process (other
//! tests running in parallel) stays where it was, while every process the thread starts (the
//! sink's `nft`, `ip`, `ping`) and every thread it starts (a tokio runtime's workers and
//! blocking pool) inherits the new namespace. The kernel's nftables state is per namespace, so
//! each test sees an empty ruleset, and the host's firewall is never touched. When the thread
//! ends and no process is left in it, the namespace and all its tables are gone: that is the
//! clean-up, even after a panic. [`block_on`] adds a tokio runtime for async tests.
//!
//! (A helper that starts a *process* in a new namespace, `unshare -n cmd`, would need the sink
//! in a child process; keeping the test in-process keeps assertions, panics and timings
//! ordinary.) Needs root (`CAP_SYS_ADMIN` for the namespace; nft needs `CAP_NET_ADMIN` in
//! it): CI runs as root. Missing tools panic with the apt-get line: tests never skip.
//!
//! The [`Netns`] helpers read and change the namespace with the real tools, independently of
//! the driver under test: list a set, delete an element or the table by hand, put an address
//! on `lo`, send one ping from a given source.

use std::future::Future;
use std::marker::PhantomData;
use std::path::Path;
use std::process::{Command, Stdio};

/// What to install when a tool is missing (scripts/test does).
const INSTALL: &str = "apt-get install -y --no-install-recommends nftables iproute2 iputils-ping";

pub const NFT: &str = "/usr/sbin/nft";

/// Access to the namespace the current thread is in. Not `Send`: it only means something on
/// the namespace's own thread (and threads started from it).
pub struct Netns {
    _thread_bound: PhantomData<*const ()>,
}

/// An element as `nft -j list set` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// `192.0.2.1`, `2001:db8::1` or `203.0.113.0/28`.
    pub value: String,
    /// Seconds the element was added for; `None`: no timeout (permanent).
    pub timeout: Option<u64>,
    /// Seconds left.
    pub expires: Option<u64>,
    pub comment: Option<String>,
}

/// Runs `f` on a new thread inside a fresh network namespace and returns its result; a panic
/// in `f` is the caller's panic.
pub fn run<R, F>(f: F) -> R
where
    R: Send + 'static,
    F: FnOnce(&Netns) -> R + Send + 'static,
{
    let handle = std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            let ns = Netns::enter();
            f(&ns)
        })
        .expect("spawn the namespace thread");
    match handle.join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// [`run`] with a current-thread tokio runtime driving the future `f` returns.
pub fn block_on<R, F, Fut>(f: F) -> R
where
    R: Send + 'static,
    F: FnOnce(Netns) -> Fut + Send + 'static,
    Fut: Future<Output = R>,
{
    run(move |_| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(f(Netns {
            _thread_bound: PhantomData,
        }))
    })
}

impl Netns {
    fn enter() -> Netns {
        for (tool, package) in [
            (NFT, "nftables"),
            ("/usr/sbin/ip", "iproute2"),
            ("/usr/bin/ping", "iputils-ping"),
        ] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing (package {package}): {INSTALL}"
            );
        }
        // SAFETY: unshare takes no pointers; CLONE_NEWNET moves only the calling thread.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert!(
            rc == 0,
            "cannot create a network namespace ({}): the nftables tests need root (CAP_SYS_ADMIN); run them as root, as CI does",
            std::io::Error::last_os_error()
        );
        let ns = Netns {
            _thread_bound: PhantomData,
        };
        ns.cmd("/usr/sbin/ip", &["link", "set", "lo", "up"]);
        ns
    }

    /// Runs a tool, panicking with its stderr when it fails; returns stdout.
    pub fn cmd(&self, program: &str, args: &[&str]) -> String {
        match self.try_cmd(program, args) {
            Ok(out) => out,
            Err(e) => panic!("{program} {}: {e}", args.join(" ")),
        }
    }

    /// Runs a tool; `Err(stderr)` when it fails.
    pub fn try_cmd(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let out = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {program}: {e} ({INSTALL})"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// `nft ARGS...` (nft joins its arguments into one command line).
    pub fn nft(&self, args: &[&str]) -> String {
        self.cmd(NFT, args)
    }

    pub fn try_nft(&self, args: &[&str]) -> Result<String, String> {
        self.try_cmd(NFT, args)
    }

    /// The names of the `inet` tables.
    pub fn tables(&self) -> Vec<String> {
        self.nft(&["list", "tables", "inet"])
            .lines()
            .filter_map(|l| l.trim().strip_prefix("table inet "))
            .map(|s| s.trim().to_string())
            .collect()
    }

    /// The elements of `set` in `table inet TABLE`, as the real nft lists them; `None` when the
    /// set (or table) does not exist.
    pub fn elements(&self, table: &str, set: &str) -> Option<Vec<Element>> {
        let out = self
            .try_nft(&["-j", "list", "set", "inet", table, set])
            .ok()?;
        let json: serde_json::Value = serde_json::from_str(&out).expect("nft -j prints JSON");
        let set = json["nftables"]
            .as_array()?
            .iter()
            .find_map(|o| o.get("set"))?
            .clone();
        let elems = set["elem"].as_array().cloned().unwrap_or_default();
        Some(elems.iter().map(element).collect())
    }

    /// Just the values of [`Netns::elements`], sorted; empty when the set does not exist.
    pub fn values(&self, table: &str, set: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .elements(table, set)
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.value)
            .collect();
        v.sort();
        v
    }

    /// Deletes one element by hand (`nft delete element inet T S { V }`).
    pub fn delete_element(&self, table: &str, set: &str, value: &str) {
        self.nft(&["delete", "element", "inet", table, set, "{", value, "}"]);
    }

    /// Adds one element by hand, with an nft element spec such as `192.0.2.9 timeout 1s`.
    pub fn add_element(&self, table: &str, set: &str, spec: &str) {
        self.nft(&["add", "element", "inet", table, set, "{", spec, "}"]);
    }

    /// Deletes a whole table by hand.
    pub fn delete_table(&self, table: &str) {
        self.nft(&["delete", "table", "inet", table]);
    }

    /// Loads a ruleset in nft syntax (an operator's own table, for `create = false` tests).
    pub fn load(&self, ruleset: &str) {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("ruleset.nft");
        std::fs::write(&file, ruleset).expect("write ruleset");
        self.nft(&["-f", file.to_str().expect("utf-8 path")]);
    }

    /// Starts `nft monitor`, which prints `# new generation N by process P (nft)` once per
    /// committed transaction: how a test counts transactions. Returns once the monitor is
    /// listening (it has seen a probe transaction of its own).
    pub fn monitor(&self) -> Monitor {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("monitor.txt");
        let file = std::fs::File::create(&path).expect("monitor file");
        let child = Command::new(NFT)
            .arg("monitor")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run nft monitor: {e} ({INSTALL})"));
        let mut monitor = Monitor {
            child,
            path,
            _dir: dir,
            base: 0,
        };
        let started = std::time::Instant::now();
        loop {
            self.nft(&["add", "table", "inet", "netns_monitor_probe"]);
            self.nft(&["delete", "table", "inet", "netns_monitor_probe"]);
            std::thread::sleep(std::time::Duration::from_millis(20));
            if monitor.generations() > 0 {
                break;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "nft monitor did not start"
            );
        }
        monitor.base = monitor.generations();
        monitor
    }

    /// Puts `addr` on `lo` (as /32 or /128), so pings can be sent from it.
    pub fn add_address(&self, addr: &str) {
        if addr.contains(':') {
            self.cmd(
                "/usr/sbin/ip",
                &[
                    "-6",
                    "addr",
                    "add",
                    &format!("{addr}/128"),
                    "dev",
                    "lo",
                    "nodad",
                ],
            );
        } else {
            self.cmd(
                "/usr/sbin/ip",
                &["addr", "add", &format!("{addr}/32"), "dev", "lo"],
            );
        }
    }

    /// True when one ping from `source` (an address on `lo`) to `dest` is answered within a
    /// second. Inside the namespace both ends are local: the echo request enters through the
    /// input hook with `source` as its source address, so a drop rule for `source` stops it.
    pub fn ping(&self, source: &str, dest: &str) -> bool {
        let family = if dest.contains(':') { "-6" } else { "-4" };
        Command::new("/usr/bin/ping")
            .args([family, "-n", "-q", "-c1", "-W1", "-I", source, dest])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run ping: {e} ({INSTALL})"))
            .success()
    }
}

/// A running `nft monitor`; killed on drop.
pub struct Monitor {
    child: std::process::Child,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
    base: usize,
}

impl Monitor {
    /// Transactions committed since the monitor was ready.
    pub fn generations(&self) -> usize {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("# new generation"))
            .count()
            .saturating_sub(self.base)
    }

    /// Waits until the monitor has printed at least `expected` transactions (it prints every
    /// element of a transaction before the generation line, which takes a while for
    /// thousands), then a moment more for any further one, and counts.
    pub fn wait_generations(&self, expected: usize) -> usize {
        let started = std::time::Instant::now();
        while self.generations() < expected
            && started.elapsed() < std::time::Duration::from_secs(20)
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        self.generations()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn element(v: &serde_json::Value) -> Element {
    let body = v.get("elem");
    let val = body.and_then(|b| b.get("val")).unwrap_or(v);
    let value = match val {
        serde_json::Value::String(s) => s.clone(),
        other => match (
            other["prefix"]["addr"].as_str(),
            other["prefix"]["len"].as_u64(),
        ) {
            (Some(a), Some(l)) => format!("{a}/{l}"),
            _ => other.to_string(),
        },
    };
    let num = |k: &str| body.and_then(|b| b.get(k)).and_then(|x| x.as_u64());
    Element {
        value,
        timeout: num("timeout"),
        expires: num("expires"),
        comment: body
            .and_then(|b| b.get("comment"))
            .and_then(|c| c.as_str())
            .map(str::to_string),
    }
}
