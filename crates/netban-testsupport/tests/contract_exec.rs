//! The sink contract suite for the exec sink: the remote side is a file the commands keep
//! (one line per banned target), read directly.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use netban_core::Target;
use netban_core::config::SinkSpec;
use netban_core::contract::{BoxFuture, Fixture};
use netban_core::exec::ExecConfig;

struct ExecFixture {
    dir: tempfile::TempDir,
}

impl ExecFixture {
    fn file(&self) -> PathBuf {
        self.dir.path().join("banned")
    }
}

async fn fixture() -> ExecFixture {
    ExecFixture {
        dir: tempfile::tempdir().expect("tempdir"),
    }
}

impl Fixture for ExecFixture {
    fn kind(&self) -> &str {
        "exec"
    }

    fn spec(&self) -> Arc<dyn SinkSpec> {
        let f = self.file().display().to_string();
        // The commands keep the file as a set of `address/length` lines (a script of the
        // operator's; the sink itself runs argv, never a shell).
        let ban = format!("grep -qx \"$1\" {f} 2>/dev/null || echo \"$1\" >> {f}");
        let unban = format!("touch {f}; grep -vx \"$1\" {f} > {f}.new; mv {f}.new {f}");
        Arc::new(ExecConfig {
            ban: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                ban,
                "sh".into(),
                "{prefix}".into(),
            ]),
            unban: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                unban,
                "sh".into(),
                "{prefix}".into(),
            ]),
            ..ExecConfig::default()
        })
    }

    fn remote(&self) -> BoxFuture<'_, BTreeSet<Target>> {
        Box::pin(async move {
            std::fs::read_to_string(self.file())
                .unwrap_or_default()
                .lines()
                .map(|l| Target::parse(l).expect("the file holds targets"))
                .collect()
        })
    }

    fn foreign(&self, _target: Target) -> BoxFuture<'_, bool> {
        Box::pin(async { false })
    }

    fn delete(&self, _target: Target) -> BoxFuture<'_, bool> {
        // A command's effect cannot be listed, so there is no repair to test.
        Box::pin(async { false })
    }
}

netban_core::sink_contract_tests!(fixture: fixture, run: netban_core::contract::run_tokio);
