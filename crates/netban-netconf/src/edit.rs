//! The NETCONF operations of a batch and of a listing, on an open session.
//!
//! A batch is one `<edit-config>` holding every entry (adds and removes), then one
//! `<commit/>` on the candidate; on the running datastore the edit is the change. Optionally
//! the datastore is locked around it; after a failed edit or commit the candidate is
//! discarded (with the lock held, only netban's own edit is thrown away), then unlocked.
//! When the device advertises `:rollback-on-error`, the edit asks for it, so a rejected edit
//! on `running` changes nothing.

use std::time::Instant;

use crate::config::Datastore;
use crate::error::NetconfError;
use crate::layout::Layout;
use crate::session::{CANDIDATE, ROLLBACK_ON_ERROR, Session};
use crate::xml::Element;

/// How a batch is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EditMode {
    pub datastore: Datastore,
    pub lock: bool,
    pub discard_changes: bool,
}

/// Edits `config` (the rendered content of `<config>`) into the device, committing it.
pub async fn apply(
    session: &mut Session,
    mode: EditMode,
    config: &str,
    deadline: Instant,
) -> Result<(), NetconfError> {
    if mode.datastore == Datastore::Candidate && !session.has_capability(CANDIDATE) {
        return Err(NetconfError::NoCandidate {
            addr: session.addr().to_string(),
        });
    }
    let target = format!("<nc:target><nc:{}/></nc:target>", mode.datastore.as_str());
    if mode.lock {
        session
            .rpc("lock", &format!("<nc:lock>{target}</nc:lock>"), deadline)
            .await?;
    }
    let result = edit_and_commit(session, mode, &target, config, deadline).await;
    if let Err(e) = &result {
        if e.breaks_session() {
            // The session is dropped; the device discards its changes and releases its lock.
            return result;
        }
        if mode.datastore == Datastore::Candidate
            && mode.discard_changes
            && let Err(d) = session
                .rpc("discard-changes", "<nc:discard-changes/>", deadline)
                .await
        {
            tracing::warn!(
                "netconf: {}: discard-changes after the failed edit failed too: {d}",
                session.addr()
            );
            if d.breaks_session() {
                return result;
            }
        }
    }
    if mode.lock {
        let unlock = session
            .rpc(
                "unlock",
                &format!("<nc:unlock>{target}</nc:unlock>"),
                deadline,
            )
            .await;
        if let Err(u) = unlock {
            tracing::warn!("netconf: {}: unlock failed: {u}", session.addr());
            // A failed unlock with a good edit still means the edit is in; a broken session
            // releases the lock anyway.
            if result.is_ok() && !u.breaks_session() {
                return Err(u);
            }
        }
    }
    result
}

async fn edit_and_commit(
    session: &mut Session,
    mode: EditMode,
    target: &str,
    config: &str,
    deadline: Instant,
) -> Result<(), NetconfError> {
    let rollback = if session.has_capability(ROLLBACK_ON_ERROR) {
        "<nc:error-option>rollback-on-error</nc:error-option>"
    } else {
        ""
    };
    let body = format!(
        "<nc:edit-config>{target}{rollback}<nc:config>{config}</nc:config></nc:edit-config>"
    );
    session.rpc("edit-config", &body, deadline).await?;
    if mode.datastore == Datastore::Candidate {
        session.rpc("commit", "<nc:commit/>", deadline).await?;
    }
    Ok(())
}

/// One entry as the device lists it: the prefix text and the comment, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub prefix: String,
    pub comment: Option<String>,
}

/// Reads the blocklist from `source` with the layout's filter. `None` when the layout has no
/// filter.
pub async fn read(
    session: &mut Session,
    layout: &Layout,
    source: Datastore,
    deadline: Instant,
) -> Result<Option<Vec<RawEntry>>, NetconfError> {
    let Some(filter) = &layout.list_filter else {
        return Ok(None);
    };
    let body = format!(
        r#"<nc:get-config><nc:source><nc:{}/></nc:source><nc:filter type="subtree">{filter}</nc:filter></nc:get-config>"#,
        source.as_str()
    );
    let reply = session.rpc("get-config", &body, deadline).await?;
    Ok(Some(
        reply.data.map(|d| entries(&d, layout)).unwrap_or_default(),
    ))
}

/// The entries of a `<data>` element: every `entry_element`, each `prefix_element` child of
/// it (a leaf-list gives several), with the `comment_element` child.
pub fn entries(data: &Element, layout: &Layout) -> Vec<RawEntry> {
    let mut found = Vec::new();
    data.find_all(&layout.entry_element, &mut found);
    let mut out = Vec::new();
    for e in found {
        let comment = layout
            .comment_element
            .as_deref()
            .and_then(|c| e.child(c))
            .map(|c| c.text.trim().to_string());
        for p in e.children_named(&layout.prefix_element) {
            out.push(RawEntry {
                prefix: p.text.trim().to_string(),
                comment: comment.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetconfConfig;
    use crate::presets::Preset;
    use crate::xml::parse;

    fn layout(p: Preset) -> Layout {
        NetconfConfig {
            preset: Some(p),
            ..NetconfConfig::default()
        }
        .layout()
        .unwrap()
    }

    #[test]
    fn entries_of_each_preset() {
        let data = parse(
            br#"<data><blocklist xmlns="urn:example:blocklist">
            <entry><prefix>192.0.2.1/32</prefix><comment>netban:h:1 sshd</comment></entry>
            <entry><prefix>192.0.2.2/32</prefix></entry></blocklist></data>"#,
        )
        .unwrap();
        assert_eq!(
            entries(&data, &layout(Preset::Blocklist)),
            vec![
                RawEntry {
                    prefix: "192.0.2.1/32".into(),
                    comment: Some("netban:h:1 sshd".into())
                },
                RawEntry {
                    prefix: "192.0.2.2/32".into(),
                    comment: None
                },
            ]
        );
        let data = parse(
            br#"<data><t128:config xmlns:t128="http://128technology.com/t128">
            <authy:authority xmlns:authy="http://128technology.com/t128/config/authority-config">
            <authy:tenant><authy:name>blacklist-fail2ban</authy:name><authy:member>
            <authy:neighborhood>internet</authy:neighborhood>
            <authy:address>192.0.2.1/32</authy:address><authy:address>2001:db8::/64</authy:address>
            </authy:member></authy:tenant></authy:authority></t128:config></data>"#,
        )
        .unwrap();
        let got = entries(&data, &layout(Preset::T128));
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].prefix, "2001:db8::/64");
        let data = parse(
            br#"<data><configuration><policy-options><prefix-list><name>netban</name>
            <prefix-list-item><name>192.0.2.9/32</name></prefix-list-item></prefix-list>
            </policy-options></configuration></data>"#,
        )
        .unwrap();
        let got = entries(&data, &layout(Preset::Junos));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].prefix, "192.0.2.9/32");
    }
}
