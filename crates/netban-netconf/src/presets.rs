//! Shipped payload layouts: a generic YANG blocklist, 128T/SSR tenant members, a Junos
//! prefix-list. Each is a documented example of the `config`/`add`/`remove`/`list_filter`
//! keys; any of them can be overridden one by one (`docs/netconf.md`).
//!
//! Element names for 128T/SSR and Junos follow the vendors' published models; check them
//! against your device's YANG (`<get-schema>`) before relying on them. The generic blocklist
//! is the `urn:example:blocklist` module netban's tests load into netconfd
//! (`crates/netban-testsupport/netconfd/netban-blocklist.yang`).

use serde::Deserialize;

use crate::xml::escape;

/// `preset = "..."`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Preset {
    /// `blocklist`: list `entry` keyed by `prefix`, with a `comment`, in `urn:example:blocklist`.
    #[serde(rename = "blocklist")]
    Blocklist,
    /// `128t`: addresses of one neighborhood's member of a 128T/SSR tenant
    /// (`list_name`, default `blacklist-fail2ban`; `neighborhood`, default `internet`).
    #[serde(rename = "128t")]
    T128,
    /// `junos`: items of a Junos `policy-options prefix-list` (`list_name`, default `netban`).
    #[serde(rename = "junos")]
    Junos,
}

impl Preset {
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Blocklist => "blocklist",
            Preset::T128 => "128t",
            Preset::Junos => "junos",
        }
    }

    /// Whether `list_name` / `neighborhood` mean something for this preset.
    pub fn takes_list_name(self) -> bool {
        matches!(self, Preset::T128 | Preset::Junos)
    }
    pub fn takes_neighborhood(self) -> bool {
        self == Preset::T128
    }
}

/// How netban tells its entries from the operator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ownership {
    /// Each entry has a comment; netban's entries carry its mark there (`{mark}`).
    Mark,
    /// The whole list (tenant member, prefix-list) is netban's: every entry in it is.
    List,
}

/// The text of a layout, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutText {
    pub config: String,
    pub add: String,
    pub remove: String,
    pub list_filter: String,
    pub entry_element: String,
    pub prefix_element: String,
    pub comment_element: Option<String>,
    pub ownership: Ownership,
}

pub const DEFAULT_128T_TENANT: &str = "blacklist-fail2ban";
pub const DEFAULT_128T_NEIGHBORHOOD: &str = "internet";
pub const DEFAULT_JUNOS_LIST: &str = "netban";

/// The layout of `preset`, with the list name and neighborhood filled in.
pub fn layout(preset: Preset, list_name: Option<&str>, neighborhood: Option<&str>) -> LayoutText {
    match preset {
        Preset::Blocklist => LayoutText {
            config: r#"<blocklist xmlns="urn:example:blocklist">{entries}</blocklist>"#.into(),
            add: "<entry><prefix>{prefix}</prefix><comment>{mark} {jail}</comment></entry>".into(),
            remove: r#"<entry nc:operation="delete"><prefix>{prefix}</prefix></entry>"#.into(),
            list_filter: r#"<blocklist xmlns="urn:example:blocklist"/>"#.into(),
            entry_element: "entry".into(),
            prefix_element: "prefix".into(),
            comment_element: Some("comment".into()),
            ownership: Ownership::Mark,
        },
        Preset::T128 => {
            let tenant = escape(list_name.unwrap_or(DEFAULT_128T_TENANT)).into_owned();
            let hood = escape(neighborhood.unwrap_or(DEFAULT_128T_NEIGHBORHOOD)).into_owned();
            let open = r#"<t128:config xmlns:t128="http://128technology.com/t128"><authy:authority xmlns:authy="http://128technology.com/t128/config/authority-config"><authy:tenant>"#;
            let close = "</authy:tenant></authy:authority></t128:config>";
            LayoutText {
                config: format!(
                    "{open}<authy:name>{tenant}</authy:name><authy:member><authy:neighborhood>{hood}</authy:neighborhood>{{entries}}</authy:member>{close}"
                ),
                add: "<authy:address>{prefix}</authy:address>".into(),
                remove: r#"<authy:address nc:operation="delete">{prefix}</authy:address>"#.into(),
                list_filter: format!(
                    "{open}<authy:name>{tenant}</authy:name><authy:member><authy:neighborhood>{hood}</authy:neighborhood></authy:member>{close}"
                ),
                entry_element: "member".into(),
                prefix_element: "address".into(),
                comment_element: None,
                ownership: Ownership::List,
            }
        }
        Preset::Junos => {
            let list = escape(list_name.unwrap_or(DEFAULT_JUNOS_LIST)).into_owned();
            LayoutText {
                config: format!(
                    "<configuration><policy-options><prefix-list><name>{list}</name>{{entries}}</prefix-list></policy-options></configuration>"
                ),
                add: "<prefix-list-item><name>{prefix}</name></prefix-list-item>".into(),
                remove: r#"<prefix-list-item nc:operation="delete"><name>{prefix}</name></prefix-list-item>"#
                    .into(),
                list_filter: format!(
                    "<configuration><policy-options><prefix-list><name>{list}</name></prefix-list></policy-options></configuration>"
                ),
                entry_element: "prefix-list-item".into(),
                prefix_element: "name".into(),
                comment_element: None,
                ownership: Ownership::List,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Wrapper, XmlTemplate};
    use crate::xml::check_fragment;

    #[test]
    fn every_preset_is_well_formed() {
        for p in [Preset::Blocklist, Preset::T128, Preset::Junos] {
            let l = layout(p, Some("a&b"), Some("x<y"));
            let w = Wrapper::parse(&l.config).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            XmlTemplate::parse(&l.add).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            XmlTemplate::parse(&l.remove).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            check_fragment(&l.list_filter).unwrap_or_else(|e| panic!("{p:?}: {e}"));
            check_fragment(&w.wrap("<x/>")).unwrap();
        }
    }

    #[test]
    fn names_are_escaped_into_the_layout() {
        let l = layout(Preset::Junos, Some("a&b"), None);
        assert!(l.config.contains("<name>a&amp;b</name>"), "{}", l.config);
        let l = layout(Preset::T128, None, None);
        assert!(
            l.list_filter
                .contains("<authy:name>blacklist-fail2ban</authy:name>")
        );
        assert!(
            l.config
                .contains("<authy:neighborhood>internet</authy:neighborhood>")
        );
    }
}
