//! The system account the netconfd harness logs in with over SSH.
//!
//! sshd needs a real account with a login shell (the `netconf` subsystem runs as that user),
//! and password login needs a password in `/etc/shadow`. The harness creates the account
//! [`TEST_USER`] once per machine (`useradd --system`, no home) and gives it a random password
//! kept in a root-only file, under a lock so parallel test processes agree on it. Only the
//! harness's private sshd (`AllowUsers`) accepts the account.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The test account's name.
pub const TEST_USER: &str = "netban-test";

/// Where the password is kept (mode 0700 directory, 0600 file).
const STATE_DIR: &str = "/var/lib/netban-test";

/// Makes sure the account exists with a known password; returns the password.
pub fn ensure() -> Result<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "the netconfd harness must run as root: it creates the SSH test account {TEST_USER} (CI and scripts/test run as root)"
        );
    }
    fs::create_dir_all(STATE_DIR).with_context(|| format!("creating {STATE_DIR}"))?;
    fs::set_permissions(STATE_DIR, fs::Permissions::from_mode(0o700))?;
    let lock = fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(Path::new(STATE_DIR).join("lock"))
        .context("opening the test account lock")?;
    // SAFETY: flock on a file descriptor we own; released when `lock` is closed.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        bail!("locking {STATE_DIR}/lock failed");
    }
    let created = if user_exists()? {
        false
    } else {
        let out = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/bin/bash",
                "--comment",
                "netban test account (netconfd harness)",
                TEST_USER,
            ])
            .stdin(Stdio::null())
            .output()
            .context("running useradd (package passwd)")?;
        if !out.status.success() {
            bail!(
                "useradd {TEST_USER} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        true
    };
    let file = Path::new(STATE_DIR).join("password");
    if !created && let Ok(p) = fs::read_to_string(&file) {
        let p = p.trim().to_string();
        if !p.is_empty() {
            return Ok(p);
        }
    }
    let password = random_hex(16)?;
    let mut child = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running chpasswd")?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{TEST_USER}:{password}").context("writing to chpasswd")?;
    }
    let out = child.wait_with_output().context("waiting for chpasswd")?;
    if !out.status.success() {
        bail!(
            "chpasswd for {TEST_USER} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut f = fs::File::options()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&file)
        .context("writing the test password file")?;
    writeln!(f, "{password}")?;
    Ok(password)
}

fn user_exists() -> Result<bool> {
    let status = Command::new("getent")
        .args(["passwd", TEST_USER])
        .stdout(Stdio::null())
        .status()
        .context("running getent")?;
    Ok(status.success())
}

fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
