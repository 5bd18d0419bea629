//! The report's header: date, machine, versions, sizes and the method, so a number is never
//! read without the conditions it was measured in.

use std::fmt::Write as _;
use std::fs;
use std::process::{Command, Stdio};

use crate::args::Args;

pub fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_else(|| "?".into())
}

pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

pub fn environment(args: &Args) -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let mem = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let exafs_python = netban_testsupport::exafs::venv_dir().join("bin/python");
    let exafs = command_line(
        &exafs_python.display().to_string(),
        &[
            "-c",
            "import importlib.metadata as m; print(m.version('exafs'))",
        ],
    );
    let mut s = String::new();
    let _ = writeln!(s, "- date: {}", command_line("date", &["-u", "+%F %T UTC"]));
    let _ = writeln!(
        s,
        "- machine: {cores} cores ({cpu}), {mem} RAM, {}",
        command_line("uname", &["-sr"])
    );
    let _ = writeln!(
        s,
        "- netban: {} ({})",
        command_line(&args.netban.display().to_string(), &["--version"]),
        args.netban.display()
    );
    let _ = writeln!(
        s,
        "- ExaFS {exafs} (werkzeug dev server, threaded, SQLite), behind the in-process FaultProxy; {}",
        command_line("fail2ban-server", &["--version"])
    );
    let _ = writeln!(
        s,
        "- sizes: calls {}, down {}, blackhole {}, bans {}, restore {:?}, direct {}{}",
        args.calls,
        args.down,
        args.blackhole,
        args.bans,
        args.restore,
        args.direct,
        if args.quick { " (--quick)" } else { "" }
    );
    s.push_str(
        "- method: wall time from spawn to reap (same spawn code for /bin/true and netban); \
         peak RSS from wait4; requests counted by the proxy; each burst on a fresh ExaFS; \
         restore: fail2ban's sqlite DB seeded directly (bans + bips rows, server stopped) with \
         the burst-cli addresses, time and bantime, and a restart is done when the harness's \
         probe action (the jail's last action) has logged every restored ban\n",
    );
    s
}
