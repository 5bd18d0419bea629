//! [`NetconfSink`]: one device's blocklist, kept equal to netban's desired set.
//!
//! - [`NetconfSink::apply_batch`]: ALL changes of a batch in ONE `<edit-config>` and ONE
//!   `<commit/>`. The batch is all-or-nothing ([`Commit::Atomic`]): when the device rejects
//!   it, every change fails with `Retry::Later` and the engine bisects the batch to find the
//!   offending entries; when the connection fails, every change fails with `Retry::Soon`.
//!   Deleting an entry that is already gone (`data-missing`) counts as done: the driver reads
//!   the list back and edits again without the missing ones.
//! - [`NetconfSink::list`]: the blocklist as the running configuration holds it, each entry
//!   with its `Owner` from the comment mark (or the whole list netban's).
//! - [`NetconfSink::check`]: a fresh session (host key verified), the list read and counted.
//!
//! The driver logic is in these inherent methods; the `Sink` impl at the end is a thin layer

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use netban_core::Target;
use netban_core::sink::{Applied, Change, Outcome, Sink, SinkError};

use crate::build::{self, BuildError};
use crate::config::{Datastore, NetconfConfig};
use crate::device::{Device, with_session};
use crate::edit::{self, EditMode};
use crate::error::NetconfError;
use crate::layout::Layout;
use crate::listing::{self, OthersCache};
use crate::presets::Ownership;
use netban_core::config::SinkEnv;
use netban_core::sink::{Batching, Commit, HeldEntry};

/// The default batch window: changes arriving within it go to the device as one commit.
pub const DEFAULT_BATCH_WINDOW: Duration = Duration::from_secs(2);

/// The NETCONF sink of one device. See the module documentation.
pub struct NetconfSink {
    pub(crate) name: String,
    pub(crate) host_id: String,
    pub(crate) mark: String,
    pub(crate) layout: Layout,
    pub(crate) mode: EditMode,
    pub(crate) max_batch: usize,
    pub(crate) warnings: Vec<String>,
    pub(crate) device: Device,
    /// Entries of other owners, never added over nor removed.
    pub(crate) others: OthersCache,
}

impl NetconfSink {
    /// Builds the sink of one device (an element of [`NetconfConfig::expand`]); reads the
    /// password or key file; no network I/O.
    pub fn new(
        name: &str,
        config: &NetconfConfig,
        env: &SinkEnv,
    ) -> Result<NetconfSink, BuildError> {
        config
            .validate()
            .map_err(|e| BuildError(format!("{name}: {e}")))?;
        let prefixed = |e: BuildError| BuildError(format!("{name}: {e}"));
        let layout = config
            .layout()
            .map_err(|e| BuildError(format!("{name}: {e}")))?;
        let endpoint = build::endpoint(config).map_err(prefixed)?;
        let login = build::login(config).map_err(prefixed)?;
        let options = build::session_options(config);
        let warnings = config.warnings();
        for w in &warnings {
            // `netban check` and the daemon's start say it loudly; a ban's process must not.
            tracing::debug!("{name}: {w}");
        }
        Ok(NetconfSink {
            name: name.to_string(),
            host_id: env.host_id.clone(),
            mark: env.mark.to_string(),
            layout,
            mode: EditMode {
                datastore: config.datastore,
                lock: config.lock,
                discard_changes: config.discard_changes,
            },
            max_batch: config.max_batch,
            warnings,
            device: Device::new(endpoint, login, options),
            others: OthersCache::default(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn batching(&self) -> Batching {
        Batching {
            max: self.max_batch,
            window: DEFAULT_BATCH_WINDOW,
        }
    }

    pub fn commit(&self) -> Commit {
        Commit::Atomic
    }

    /// One outcome per change, in order. See the module documentation.
    pub async fn apply_batch(&self, changes: &[Change], deadline: Instant) -> Vec<Outcome> {
        if changes.is_empty() {
            return Vec::new();
        }
        // A target named twice: the last change wins (the earlier one is superseded).
        let mut last: HashMap<&Target, usize> = HashMap::new();
        for (i, c) in changes.iter().enumerate() {
            last.insert(c.target(), i);
        }
        let effective: Vec<&Change> = changes
            .iter()
            .enumerate()
            .filter(|(i, c)| last.get(c.target()) == Some(i))
            .map(|(_, c)| c)
            .collect();
        let began = Instant::now();
        let result = with_session!(self.device, deadline, |session| {
            self.edit(session, &effective, deadline).await
        });
        match result {
            Ok(()) => {
                tracing::info!(
                    "{}: {} changes committed in one edit ({} adds, {} removes) in {:.2?}",
                    self.name,
                    effective.len(),
                    effective
                        .iter()
                        .filter(|c| matches!(c, Change::Add { .. }))
                        .count(),
                    effective
                        .iter()
                        .filter(|c| matches!(c, Change::Remove { .. }))
                        .count(),
                    began.elapsed()
                );
                changes.iter().map(|_| Ok(Applied::default())).collect()
            }
            Err(e) => {
                let err = self.batch_error(&e, changes);
                match err.retry {
                    netban_core::sink::Retry::Soon => tracing::info!("{}", err.message),
                    netban_core::sink::Retry::Later => tracing::warn!("{}", err.message),
                }
                changes.iter().map(|_| Err(err.clone())).collect()
            }
        }
    }

    fn batch_error(&self, e: &NetconfError, changes: &[Change]) -> SinkError {
        let mut err = e.to_sink_error(&self.name);
        if let NetconfError::Rpc { addr, errors, .. } = e
            && e.is_rpc_tag("lock-denied")
        {
            let holder = errors
                .iter()
                .find_map(|r| r.info("session-id"))
                .map(|s| format!(" (session {s})"))
                .unwrap_or_default();
            err.message = format!(
                "{}: the {} of {addr} is locked by another session{holder}: somebody is editing the device; netban tries again soon",
                self.name,
                self.mode.datastore.as_str()
            );
            return err;
        }
        if matches!(e, NetconfError::Rpc { .. }) && err.retry == netban_core::sink::Retry::Later {
            err.message = match changes {
                [one] => format!(
                    "{}: the device refused to {} {}: {e}",
                    self.name,
                    one.verb(),
                    one.target()
                ),
                many => format!(
                    "{}: the device rejected the batch of {} changes: {e}; netban tries smaller batches to find the entries it refuses",
                    self.name,
                    many.len()
                ),
            };
        }
        err
    }

    /// The edit of one batch on `session`: without the targets other owners hold, with the
    /// `data-missing` retry.
    async fn edit(
        &self,
        session: &mut crate::session::Session,
        changes: &[&Change],
        deadline: Instant,
    ) -> Result<(), NetconfError> {
        let others = self.others(session, deadline).await?;
        let changes: Vec<&Change> = changes
            .iter()
            .copied()
            .filter(|c| {
                let theirs = others.contains(c.target());
                if theirs {
                    tracing::info!(
                        "{}: {} is held by an entry netban did not make; netban leaves it as it is ({} not sent)",
                        self.name,
                        c.target(),
                        c.verb()
                    );
                }
                !theirs
            })
            .collect();
        if changes.is_empty() {
            return Ok(());
        }
        let changes = changes.as_slice();
        let first = edit::apply(session, self.mode, &self.render(changes), deadline).await;
        let Err(e) = first else { return Ok(()) };
        let removes = changes
            .iter()
            .filter(|c| matches!(c, Change::Remove { .. }))
            .count();
        if removes == 0 || !e.is_rpc_tag("data-missing") {
            return Err(e);
        }
        // Some entries to remove are gone already: that is what netban wanted. Edit again
        // without them.
        let kept: Vec<&Change> =
            match edit::read(session, &self.layout, self.mode.datastore, deadline).await? {
                Some(held) => {
                    let present: HashSet<&str> = held.iter().map(|h| h.prefix.as_str()).collect();
                    changes
                        .iter()
                        .copied()
                        .filter(|c| match c {
                            Change::Add { .. } => true,
                            Change::Remove { target, .. } => {
                                present.contains(target.to_string().as_str())
                                    || present.contains(target.ip_display().as_str())
                            }
                        })
                        .collect()
                }
                None => {
                    // No way to list: apply the adds, then each remove alone.
                    let adds: Vec<&Change> = changes
                        .iter()
                        .copied()
                        .filter(|c| matches!(c, Change::Add { .. }))
                        .collect();
                    if !adds.is_empty() {
                        edit::apply(session, self.mode, &self.render(&adds), deadline).await?;
                    }
                    for c in changes
                        .iter()
                        .filter(|c| matches!(c, Change::Remove { .. }))
                    {
                        match edit::apply(session, self.mode, &self.render(&[*c]), deadline).await {
                            Err(e) if e.is_rpc_tag("data-missing") => {}
                            other => other?,
                        }
                    }
                    return Ok(());
                }
            };
        tracing::debug!(
            "{}: {} of {removes} entries to remove were already gone",
            self.name,
            changes.len() - kept.len()
        );
        if kept.is_empty() {
            return Ok(());
        }
        edit::apply(session, self.mode, &self.render(&kept), deadline).await
    }

    /// The targets held by other owners (listed at most once a minute); empty when netban
    /// owns the whole list or cannot list it.
    async fn others(
        &self,
        session: &mut crate::session::Session,
        deadline: Instant,
    ) -> Result<std::sync::Arc<HashSet<Target>>, NetconfError> {
        if self.layout.ownership == Ownership::List || self.layout.list_filter.is_none() {
            return Ok(Default::default());
        }
        if let Some(set) = self.others.fresh() {
            return Ok(set);
        }
        let raw = edit::read(session, &self.layout, Datastore::Running, deadline)
            .await?
            .unwrap_or_default();
        Ok(self
            .others
            .put(listing::others(&raw, &self.layout, &self.mark)))
    }

    /// What a batch of `changes` sends: the edit-config's `<config>` and the commit, for
    /// `--dry-run`.
    pub fn describe_edit(&self, changes: &[Change]) -> String {
        let refs: Vec<&Change> = changes.iter().collect();
        format!(
            "edit-config <{}> {} then {}",
            match self.mode.datastore {
                crate::config::Datastore::Candidate => "candidate",
                crate::config::Datastore::Running => "running",
            },
            self.render(&refs),
            match self.mode.datastore {
                crate::config::Datastore::Candidate => "<commit/>",
                crate::config::Datastore::Running => "nothing (running)",
            }
        )
    }

    /// The content of `<config>` for these changes.
    fn render(&self, changes: &[&Change]) -> String {
        let mut entries = String::new();
        for c in changes {
            match c {
                Change::Add { target, lease, .. } => entries.push_str(&self.layout.add.render(
                    target,
                    lease,
                    &self.host_id,
                    &self.mark,
                )),
                Change::Remove { target, lease, .. } => entries.push_str(
                    &self
                        .layout
                        .remove
                        .render(target, lease, &self.host_id, &self.mark),
                ),
            }
        }
        self.layout.wrapper.wrap(&entries)
    }

    /// What the running configuration holds; `None` without a `list_filter`.
    pub async fn list(&self, deadline: Instant) -> Result<Option<Vec<HeldEntry>>, SinkError> {
        if self.layout.list_filter.is_none() {
            return Ok(None);
        }
        let raw = with_session!(self.device, deadline, |session| {
            edit::read(session, &self.layout, Datastore::Running, deadline).await
        })
        .map_err(|e| e.to_sink_error(&self.name))?;
        Ok(raw.map(|raw| {
            if self.layout.ownership == Ownership::Mark {
                self.others
                    .put(listing::others(&raw, &self.layout, &self.mark));
            }
            listing::held_entries(raw, &self.layout, &self.mark)
        }))
    }

    /// Closes the kept session (shutdown, reload).
    pub async fn close(&self) {
        self.device.close().await;
    }
}

#[async_trait]
impl Sink for NetconfSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn batching(&self) -> Batching {
        NetconfSink::batching(self)
    }

    fn commit(&self) -> Commit {
        Commit::Atomic
    }

    fn describe(&self, change: &Change) -> String {
        self.describe_edit(std::slice::from_ref(change))
    }

    async fn apply(&self, changes: &[Change], deadline: Instant) -> Vec<Outcome> {
        self.apply_batch(changes, deadline).await
    }

    async fn held(&self, deadline: Instant) -> Result<Option<Vec<HeldEntry>>, SinkError> {
        self.list(deadline).await
    }

    async fn check(&self, deadline: Instant) -> Result<String, SinkError> {
        NetconfSink::check(self, deadline).await
    }
}
