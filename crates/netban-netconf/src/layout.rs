//! The payload layout of a NETCONF sink: the `config` wrapper, the `add` and `remove` entry
//! templates, and how the blocklist is read back (`list_filter`, element names, ownership).
//!
//! It comes from a preset ([`crate::presets`]) overridden key by key, and is checked when the
//! config is loaded: templates well-formed, the target in every entry, the mark where
//! ownership is told by the comment.

use crate::config::NetconfConfig;
use crate::presets::{self, Ownership};
use crate::template::{Wrapper, XmlTemplate};
use crate::xml::check_fragment;

/// The checked payload layout of a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub wrapper: Wrapper,
    pub add: XmlTemplate,
    pub remove: XmlTemplate,
    /// `None`: the device is not listed (no drift repair).
    pub list_filter: Option<String>,
    pub entry_element: String,
    pub prefix_element: String,
    pub comment_element: Option<String>,
    pub ownership: Ownership,
}

impl NetconfConfig {
    /// The payload layout: the preset, overridden key by key.
    pub fn layout(&self) -> Result<Layout, String> {
        for (key, v) in [
            ("list_name", &self.list_name),
            ("neighborhood", &self.neighborhood),
        ] {
            let Some(v) = v else { continue };
            let takes = self.preset.is_some_and(|p| match key {
                "list_name" => p.takes_list_name(),
                _ => p.takes_neighborhood(),
            });
            if !takes {
                return Err(format!(
                    "{key} is used only by preset {}; write the value into config/list_filter instead",
                    if key == "list_name" {
                        "\"128t\" or \"junos\""
                    } else {
                        "\"128t\""
                    }
                ));
            }
            if v.is_empty()
                || v.len() > 64
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            {
                return Err(format!(
                    "{key} = {v:?} must be 1 to 64 letters, digits or - _ . :"
                ));
            }
        }
        let base = self
            .preset
            .map(|p| presets::layout(p, self.list_name.as_deref(), self.neighborhood.as_deref()));
        let pick = |key: &str, own: &Option<String>, preset: Option<&String>| {
            own.clone().or_else(|| preset.cloned()).ok_or_else(|| {
                format!("{key} is required without a preset (or set preset = \"blocklist\", \"128t\" or \"junos\")")
            })
        };
        let b = base.as_ref();
        let config = pick("config", &self.config, b.map(|l| &l.config))?;
        let add = pick("add", &self.add, b.map(|l| &l.add))?;
        let remove = pick("remove", &self.remove, b.map(|l| &l.remove))?;
        let list_filter = self
            .list_filter
            .clone()
            .or_else(|| b.map(|l| l.list_filter.clone()));
        let entry_element = self
            .entry_element
            .clone()
            .or_else(|| b.map(|l| l.entry_element.clone()));
        let prefix_element = self
            .prefix_element
            .clone()
            .or_else(|| b.map(|l| l.prefix_element.clone()));
        let comment_element = self
            .comment_element
            .clone()
            .or_else(|| b.and_then(|l| l.comment_element.clone()));
        let ownership =
            self.ownership
                .or(b.map(|l| l.ownership))
                .unwrap_or(if comment_element.is_some() {
                    Ownership::Mark
                } else {
                    Ownership::List
                });
        let layout = Layout {
            wrapper: Wrapper::parse(&config).map_err(|e| format!("config: {e}"))?,
            add: XmlTemplate::parse(&add).map_err(|e| format!("add: {e}"))?,
            remove: XmlTemplate::parse(&remove).map_err(|e| format!("remove: {e}"))?,
            list_filter: list_filter.clone(),
            entry_element: entry_element.clone().unwrap_or_default(),
            prefix_element: prefix_element.clone().unwrap_or_default(),
            comment_element,
            ownership,
        };
        for (key, t) in [("add", &layout.add), ("remove", &layout.remove)] {
            if !["prefix", "ip", "address"].iter().any(|p| t.uses(p)) {
                return Err(format!(
                    "{key} must contain the target: {{prefix}} (or {{ip}}, {{address}})"
                ));
            }
        }
        if let Some(f) = &list_filter {
            check_fragment(f).map_err(|e| format!("list_filter: not well-formed XML: {e}"))?;
            for (key, v) in [
                ("entry_element", &entry_element),
                ("prefix_element", &prefix_element),
            ] {
                match v {
                    None => return Err(format!("{key} is required with list_filter")),
                    Some(n) if !is_name(n) => {
                        return Err(format!(
                            "{key} = {n:?} must be an XML element name without a prefix"
                        ));
                    }
                    _ => {}
                }
            }
        }
        if let Some(n) = &layout.comment_element
            && !is_name(n)
        {
            return Err(format!(
                "comment_element = {n:?} must be an XML element name without a prefix"
            ));
        }
        if layout.ownership == Ownership::Mark {
            if layout.comment_element.is_none() {
                return Err(
                    "ownership = \"mark\" needs comment_element (where the mark is read back)"
                        .into(),
                );
            }
            if !layout.add.uses("mark") {
                return Err("ownership = \"mark\": add must write {mark} into the comment, or netban cannot recognise its entries".into());
            }
        }
        Ok(layout)
    }
}

fn is_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !n.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
}
