//! The sink's listings of the kernel, each one `nft -j list ...` call, parsed.
//!
//! Which listing costs what matters (nft 1.0.6, measured with a 50,000-element set):
//! `list table`, `list set` and `list chain` fetch every element from the kernel, even with
//! `-t` (terse only leaves them out of the output): 0.4-0.7 s. `-t list ruleset` does not:
//! under 15 ms, with every table, set (without elements), chain and rule. So the structure
//! check before a batch reads `nft -j -t list ruleset inet` and picks netban's table out of
//! it; only `held` (repair) and an operator's set before a batch (`create = false`) read
//! elements.

use std::time::Instant;

use netban_core::Target;
use netban_core::sink::SinkError;

use crate::listing::{self, ListedSet, Listing};
use crate::mark;
use crate::run::{NftError, Refusal};
use crate::sink::NftSink;
use netban_core::sink::Owner;

impl NftSink {
    /// The table's sets (without elements), chains and rules; `None` when the table does
    /// not exist.
    pub(crate) async fn list_structure(
        &self,
        deadline: Instant,
    ) -> Result<Option<Listing>, SinkError> {
        let table = self.layout.table.as_str();
        let what = format!("listing the structure of {}", self.layout.table_name());
        let all = match self
            .nft
            .list(&["-t", "list", "ruleset", "inet"], &what, deadline)
            .await
        {
            Ok(bytes) => self.parse(&bytes, &what)?,
            Err(e) => return Err(self.error(&e)),
        };
        if !all.tables.iter().any(|(f, n)| f == "inet" && n == table) {
            return Ok(None);
        }
        Ok(Some(Listing {
            tables: vec![("inet".to_string(), table.to_string())],
            sets: all.sets.into_iter().filter(|s| s.table == table).collect(),
            chains: all
                .chains
                .into_iter()
                .filter(|c| c.table == table)
                .collect(),
            rules: all.rules.into_iter().filter(|r| r.table == table).collect(),
        }))
    }

    /// The whole table, elements and rules included; `None` when it does not exist.
    pub(crate) async fn list_table(&self, deadline: Instant) -> Result<Option<Listing>, SinkError> {
        let table = self.layout.table.as_str();
        let what = format!("listing {}", self.layout.table_name());
        match self
            .nft
            .list(&["list", "table", "inet", table], &what, deadline)
            .await
        {
            Ok(bytes) => self.parse(&bytes, &what).map(Some),
            Err(e) if e.refusal() == Some(Refusal::Missing) => Ok(None),
            Err(e) => Err(self.error(&e)),
        }
    }

    /// One set with its elements; `None` when it (or its table) does not exist.
    pub(crate) async fn list_set(
        &self,
        set: &str,
        deadline: Instant,
    ) -> Result<Option<ListedSet>, SinkError> {
        let table = self.layout.table.as_str();
        let what = format!("listing set {set} of {}", self.layout.table_name());
        match self
            .nft
            .list(&["list", "set", "inet", table, set], &what, deadline)
            .await
        {
            Ok(bytes) => Ok(self
                .parse(&bytes, &what)?
                .sets
                .into_iter()
                .find(|s| s.name == set)),
            Err(e) if e.refusal() == Some(Refusal::Missing) => Ok(None),
            Err(e) => Err(self.error(&e)),
        }
    }

    /// The targets an operator's set holds now, with who made each (elements that are no
    /// targets left out); a missing set is an error.
    pub(crate) async fn list_owned(
        &self,
        set: &str,
        deadline: Instant,
    ) -> Result<Vec<(Target, Owner)>, SinkError> {
        let Some(listed) = self.list_set(set, deadline).await? else {
            return Err(self.error(&NftError::Refused {
                what: format!("listing set {set} of {}", self.layout.table_name()),
                refusal: Refusal::Missing,
                text: "No such file or directory".into(),
            }));
        };
        Ok(listed
            .elements
            .into_iter()
            .filter_map(|e| {
                let owner = mark::owner(e.comment.as_deref(), &self.mark);
                e.value.ok().map(|t| (t, owner))
            })
            .collect())
    }

    fn parse(&self, bytes: &[u8], what: &str) -> Result<Listing, SinkError> {
        listing::parse(bytes).map_err(|e| SinkError::later(format!("{}: {what}: {e}", self.name)))
    }
}
