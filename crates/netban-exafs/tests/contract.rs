//! The sink contract suite against a real ExaFS 1.4.1; the remote side is read through
//! ExaFS's own API with the operator's key (active RTBH rules), not through the sink.

use std::collections::BTreeSet;
use std::sync::Arc;

use netban_core::Target;
use netban_core::config::SinkSpec;
use netban_core::contract::{BoxFuture, Fixture};
use netban_exafs::ExafsConfig;
use netban_testsupport::exafs::{ExaFs, now_unix};

struct ExafsFixture {
    exafs: ExaFs,
}

async fn fixture() -> ExafsFixture {
    ExafsFixture {
        exafs: ExaFs::start().unwrap_or_else(|e| panic!("starting ExaFS: {e:#}")),
    }
}

impl Fixture for ExafsFixture {
    fn kind(&self) -> &str {
        "exafs"
    }

    fn spec(&self) -> Arc<dyn SinkSpec> {
        let text = format!(
            "url = {:?}\napi_key = {:?}\ncommunity = 1\n",
            self.exafs.url(),
            self.exafs.api_key()
        );
        Arc::new(toml::from_str::<ExafsConfig>(&text).expect("config"))
    }

    fn remote(&self) -> BoxFuture<'_, BTreeSet<Target>> {
        Box::pin(async move {
            let rules = self.exafs.rtbh_rules();
            rules
                .iter()
                .filter(|r| r.is_active() && r.community_id == 1)
                .map(|r| Target::parse(&r.prefix()).expect("a rule's prefix"))
                .collect()
        })
    }

    fn foreign(&self, target: Target) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            self.exafs.create_foreign_rule(
                &target.to_string(),
                now_unix() + 3600,
                "blocked by hand",
            );
            true
        })
    }

    fn delete(&self, target: Target) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            for r in self.exafs.rtbh_rules() {
                if Target::parse(&r.prefix()).ok() == Some(target) {
                    self.exafs.delete_rule(r.id);
                }
            }
            true
        })
    }
}

netban_core::sink_contract_tests!(fixture: fixture, run: netban_core::contract::run_tokio);
