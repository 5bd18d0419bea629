//! The files of one netconfd harness instance, in its directory (mode 0755, so that the
//! NETCONF subsystem, running as the test user, reaches the server socket):
//!
//! | file | what |
//! |---|---|
//! | `netban-blocklist.yang` | the YANG module netconfd loads (no code: data is stored and validated) |
//! | `startup.xml` | the saved configuration; netconfd writes running here on every commit |
//! | `yuma/data/` | netconfd's `--yuma-home` (it must exist) |
//! | `host_key`, `other_host_key` | the server's ed25519 host key; another one for mismatch tests |
//! | `client_key`, `other_client_key` | the test user's authorized key; a key that is not authorized |
//! | `password`, `wrong_password` | the test user's password (0600); a wrong one |
//! | `known_hosts`, `wrong_known_hosts`, `unrelated_known_hosts` | right key; another key for this host; another host |
//! | `sshd_config` | the private sshd: loopback, own host key, `AllowUsers`, `Subsystem netconf` |

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Result;

use crate::netconfd_user::TEST_USER;
use crate::ssh_keys::{keygen, write_private};

const YANG: &str = include_str!("../netconfd/netban-blocklist.yang");
const EMPTY_STARTUP: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"/>\n";

/// Writes everything that does not depend on the port.
pub fn populate(d: &Path, password: &str) -> Result<()> {
    fs::set_permissions(d, fs::Permissions::from_mode(0o755))?;
    fs::create_dir_all(d.join("yuma/data"))?;
    fs::write(d.join("netban-blocklist.yang"), YANG)?;
    fs::write(d.join("startup.xml"), EMPTY_STARTUP)?;
    for key in [
        "host_key",
        "other_host_key",
        "client_key",
        "other_client_key",
    ] {
        keygen(&d.join(key))?;
    }
    fs::copy(d.join("client_key.pub"), d.join("authorized_keys"))?;
    fs::set_permissions(d.join("authorized_keys"), fs::Permissions::from_mode(0o644))?;
    write_private(&d.join("password"), &format!("{password}\n"))?;
    write_private(&d.join("wrong_password"), "not-the-password\n")?;
    Ok(())
}

/// Writes the known_hosts files and the sshd config for `port`.
pub fn for_port(d: &Path, port: u16) -> Result<()> {
    let key = fs::read_to_string(d.join("host_key.pub"))?;
    let other = fs::read_to_string(d.join("other_host_key.pub"))?;
    let name = format!("[127.0.0.1]:{port}");
    let field = |k: &str| k.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    fs::write(d.join("known_hosts"), format!("{name} {}\n", field(&key)))?;
    fs::write(
        d.join("wrong_known_hosts"),
        format!("{name} {}\n", field(&other)),
    )?;
    fs::write(
        d.join("unrelated_known_hosts"),
        format!("[192.0.2.99]:830 {}\n", field(&key)),
    )?;
    let sock = d.join("ncxserver.sock");
    // StrictModes no: /tmp is world-writable, and OpenSSH's strict modes refuse an
    // AuthorizedKeysFile below it.
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
         UsePAM no\nAllowUsers {TEST_USER}\nPermitRootLogin no\nPasswordAuthentication yes\n\
         KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
         AuthorizedKeysFile {dir}/authorized_keys\nStrictModes no\nLogLevel VERBOSE\n\
         MaxStartups 100:30:200\nMaxSessions 100\n\
         Subsystem netconf \"/usr/sbin/netconf-subsystem --ncxserver-sockname={port}@{sock}\"\n",
        dir = d.display(),
        sock = sock.display(),
    );
    fs::write(d.join("sshd_config"), config)?;
    Ok(())
}
