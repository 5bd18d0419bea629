//! The sink contract suite against the real nft and kernel, each case in a private network
//! namespace; the remote side is read with `nft -j list table`, not through the sink.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use netban_core::Target;
use netban_core::config::SinkSpec;
use netban_core::contract::{BoxFuture, Fixture};
use netban_nft::NftConfig;
use netban_testsupport::netns;

struct NftFixture;

async fn fixture() -> NftFixture {
    NftFixture
}

/// Runs a case inside a fresh network namespace.
fn in_netns<F: Future<Output = ()>>(f: impl FnOnce() -> F + Send + 'static) {
    netns::block_on(move |_ns| f())
}

fn nft(args: &[&str]) -> Option<serde_json::Value> {
    let out = std::process::Command::new("/usr/sbin/nft")
        .args(args)
        .output()
        .expect("run nft");
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("nft -j prints JSON"))
}

/// Every element of every set of the netban table, as targets.
fn elements() -> BTreeSet<Target> {
    let Some(v) = nft(&["-j", "list", "table", "inet", "netban"]) else {
        return BTreeSet::new();
    };
    let mut out = BTreeSet::new();
    for item in v["nftables"].as_array().into_iter().flatten() {
        for e in item["set"]["elem"].as_array().into_iter().flatten() {
            let e = e.get("elem").map_or(e, |x| &x["val"]);
            let text = match e.get("prefix") {
                Some(p) => format!("{}/{}", p["addr"].as_str().unwrap_or(""), p["len"]),
                None => e.as_str().unwrap_or("").to_string(),
            };
            out.insert(Target::parse(&text).unwrap_or_else(|_| panic!("element {e}")));
        }
    }
    out
}

impl Fixture for NftFixture {
    fn kind(&self) -> &str {
        "nftables"
    }

    fn spec(&self) -> Arc<dyn SinkSpec> {
        Arc::new(NftConfig::default())
    }

    fn remote(&self) -> BoxFuture<'_, BTreeSet<Target>> {
        Box::pin(async { elements() })
    }

    fn foreign(&self, _target: Target) -> BoxFuture<'_, bool> {
        // netban owns its table: an element in it is netban's. Operators' sets
        // (create = false) are covered by tests/operator.rs.
        Box::pin(async { false })
    }

    fn delete(&self, target: Target) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let set = if target.is_host() {
                format!("hosts{}", if target.addr().is_ipv4() { 4 } else { 6 })
            } else {
                format!(
                    "nets{}_{}",
                    if target.addr().is_ipv4() { 4 } else { 6 },
                    target.prefix_len()
                )
            };
            let value = target.ip_display();
            let status = std::process::Command::new("/usr/sbin/nft")
                .args([
                    "delete",
                    "element",
                    "inet",
                    "netban",
                    &set,
                    &format!("{{ {value} }}"),
                ])
                .status()
                .expect("run nft");
            status.success()
        })
    }
}

netban_core::sink_contract_tests!(fixture: fixture, run: in_netns);
