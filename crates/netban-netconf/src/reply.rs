//! What the device says: its `<hello>` (capabilities, session id) and each `<rpc-reply>`
//! (`<ok/>`, `<data>`, or one or more `<rpc-error>`s), turned into plain Rust values.
//!
//! An `<rpc-error>` of severity `warning` does not fail the call (Junos answers a delete of an
//! absent statement with a warning and `<ok/>`); it is kept so the caller can log it.

use std::fmt;

use crate::xml::{self, Element};

/// The server's `<hello>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub capabilities: Vec<String>,
    pub session_id: Option<String>,
}

impl Hello {
    pub fn parse(bytes: &[u8]) -> Result<Hello, String> {
        let root = xml::parse(bytes).map_err(|e| e.to_string())?;
        if root.name != "hello" {
            return Err(format!("expected <hello>, got <{}>", root.name));
        }
        let capabilities = root
            .child("capabilities")
            .map(|c| {
                c.children_named("capability")
                    .map(|c| c.text.trim().to_string())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Hello {
            capabilities,
            session_id: root.child_text("session-id").map(str::to_string),
        })
    }

    /// True when a capability is advertised; `uri` is compared up to any `?` parameters.
    pub fn has(&self, uri: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.split('?').next() == Some(uri))
    }
}

/// One `<rpc-error>` (RFC 6241 section 4.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RpcError {
    /// `transport`, `rpc`, `protocol` or `application`.
    pub error_type: String,
    /// e.g. `data-missing`, `lock-denied`, `invalid-value`.
    pub tag: String,
    /// `error` or `warning`.
    pub severity: String,
    pub app_tag: Option<String>,
    pub path: Option<String>,
    pub message: Option<String>,
    /// `<error-info>` children as `name=value`, e.g. `session-id=12`, `bad-element=prefix`.
    pub info: Vec<(String, String)>,
}

impl RpcError {
    fn from_element(e: &Element) -> RpcError {
        let text = |n: &str| {
            e.child_text(n)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        };
        RpcError {
            error_type: text("error-type").unwrap_or_default(),
            tag: text("error-tag").unwrap_or_default(),
            severity: text("error-severity").unwrap_or_else(|| "error".into()),
            app_tag: text("error-app-tag"),
            path: text("error-path"),
            message: text("error-message"),
            info: e
                .child("error-info")
                .map(|i| {
                    i.children
                        .iter()
                        .map(|c| (c.name.clone(), c.text.trim().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub fn is_warning(&self) -> bool {
        self.severity == "warning"
    }

    pub fn info(&self, name: &str) -> Option<&str> {
        self.info
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `application/operation-failed (must-violation) at /bl:blocklist/...: message`
impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.error_type, self.tag)?;
        if let Some(a) = &self.app_tag {
            write!(f, " ({a})")?;
        }
        if let Some(p) = &self.path {
            write!(f, " at {p}")?;
        }
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        for (k, v) in &self.info {
            if matches!(
                k.as_str(),
                "session-id" | "bad-element" | "bad-attribute" | "bad-namespace"
            ) {
                write!(f, " [{k} {v}]")?;
            }
        }
        Ok(())
    }
}

/// One `<rpc-reply>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub message_id: Option<String>,
    pub ok: bool,
    /// The `<data>` element, for `get`/`get-config`.
    pub data: Option<Element>,
    /// Errors of severity `error`: the call failed.
    pub errors: Vec<RpcError>,
    /// Errors of severity `warning`: the call did what it could.
    pub warnings: Vec<RpcError>,
}

impl Reply {
    pub fn parse(bytes: &[u8]) -> Result<Reply, String> {
        let root = xml::parse(bytes).map_err(|e| e.to_string())?;
        Reply::from_element(root)
    }

    pub fn from_element(mut root: Element) -> Result<Reply, String> {
        if root.name != "rpc-reply" {
            return Err(format!("expected <rpc-reply>, got <{}>", root.name));
        }
        let message_id = root.attribute("message-id").map(str::to_string);
        let ok = root.child("ok").is_some();
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        for e in root.children_named("rpc-error") {
            let e = RpcError::from_element(e);
            if e.is_warning() {
                warnings.push(e);
            } else {
                errors.push(e);
            }
        }
        let data = root
            .children
            .iter()
            .position(|c| c.name == "data")
            .map(|i| root.children.swap_remove(i));
        Ok(Reply {
            message_id,
            ok,
            data,
            errors,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_capabilities() {
        let h = Hello::parse(br#"<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>
            <capability>urn:ietf:params:netconf:base:1.1</capability>
            <capability>urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit</capability>
            </capabilities><session-id>4</session-id></hello>"#).unwrap();
        assert!(h.has("urn:ietf:params:netconf:base:1.1"));
        assert!(h.has("urn:ietf:params:netconf:capability:with-defaults:1.0"));
        assert!(!h.has("urn:ietf:params:netconf:base:1.0"));
        assert_eq!(h.session_id.as_deref(), Some("4"));
        assert!(Hello::parse(b"<rpc-reply/>").is_err());
    }

    #[test]
    fn rpc_error_as_netconfd_sends_it() {
        let r = Reply::parse(br#"<rpc-reply xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"
  message-id="1" xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
  <rpc-error>
    <error-type>application</error-type>
    <error-tag>operation-failed</error-tag>
    <error-severity>error</error-severity>
    <error-app-tag>must-violation</error-app-tag>
    <error-path>/bl:blocklist/bl:entry[bl:prefix='198.51.100.7/32']</error-path>
    <error-message xml:lang="en">198.51.100.0/24 may not be blocked on this device</error-message>
    <error-info><error-number xmlns="http://netconfcentral.org/ns/yuma-ncx">339</error-number></error-info>
  </rpc-error>
</rpc-reply>"#).unwrap();
        assert_eq!(r.message_id.as_deref(), Some("1"));
        assert!(!r.ok);
        assert_eq!(r.errors.len(), 1);
        assert_eq!(
            r.errors[0].to_string(),
            "application/operation-failed (must-violation) at /bl:blocklist/bl:entry[bl:prefix='198.51.100.7/32']: 198.51.100.0/24 may not be blocked on this device"
        );
        assert_eq!(r.errors[0].info("error-number"), Some("339"));
    }

    #[test]
    fn warnings_do_not_fail() {
        let r = Reply::parse(
            b"<rpc-reply message-id='2'><rpc-error><error-type>application</error-type>\
              <error-tag>data-missing</error-tag><error-severity>warning</error-severity>\
              <error-message>statement not found</error-message></rpc-error><ok/></rpc-reply>",
        )
        .unwrap();
        assert!(r.ok);
        assert!(r.errors.is_empty());
        assert_eq!(r.warnings.len(), 1);
    }
}
