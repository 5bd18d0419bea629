//! Starting and stopping the processes of a harness: free loopback ports, spawning in a
//! process group that dies with the test thread, and killing the whole group on drop.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub fn command_exists(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(name).is_file()))
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Spawns in its own process group, with SIGTERM when the spawning thread dies.
pub fn spawn_guarded(cmd: &mut Command) -> std::io::Result<Child> {
    cmd.process_group(0);
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.spawn()
}

/// SIGTERM to the group, SIGKILL after 5 s, then reaps the leader.
pub fn kill_group(child: &mut Option<Child>) {
    let Some(mut c) = child.take() else { return };
    let Ok(pid) = i32::try_from(c.id()) else {
        let _ = c.kill();
        let _ = c.wait();
        return;
    };
    // SAFETY: kill(2) on the process group made with process_group(0).
    unsafe { libc::kill(-pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let _ = c.kill();
    let _ = c.wait();
}
