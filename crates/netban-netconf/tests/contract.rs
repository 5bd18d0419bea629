//! The sink contract suite against the real netconfd behind a private sshd; the remote side is
//! the running blocklist, read with OpenSSH's `ssh -s netconf` (not through the sink).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use netban_core::Target;
use netban_core::config::SinkSpec;
use netban_core::contract::{BoxFuture, Fixture};
use netban_testsupport::netconfd::Netconfd;

struct NetconfFixture {
    nc: Netconfd,
}

async fn fixture() -> NetconfFixture {
    NetconfFixture {
        nc: Netconfd::start().unwrap_or_else(|e| panic!("starting netconfd: {e:#}")),
    }
}

impl Fixture for NetconfFixture {
    fn kind(&self) -> &str {
        "netconf"
    }

    fn spec(&self) -> Arc<dyn SinkSpec> {
        Arc::new(common::config(&self.nc))
    }

    fn remote(&self) -> BoxFuture<'_, BTreeSet<Target>> {
        Box::pin(async move {
            self.nc
                .running()
                .iter()
                .map(|e| Target::parse(&e.prefix).expect("the device holds prefixes"))
                .collect()
        })
    }

    fn foreign(&self, target: Target) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            self.nc
                .add_entry(&target.to_string(), Some("blocked by hand"));
            true
        })
    }

    fn delete(&self, target: Target) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            self.nc.delete_entry(&target.to_string());
            true
        })
    }
}

netban_core::sink_contract_tests!(fixture: fixture, run: netban_core::contract::run_tokio);
