//! XML in and out: escaping the values netban puts into payloads, and reading what the device
//! sends back (`<hello>`, `<rpc-reply>` with `<ok/>`, `<data>` or `<rpc-error>`).
//!
//! Replies are parsed with quick-xml into a small tree of [`Element`]s keyed by *local* names:
//! devices differ in which prefixes they use (`nc:rpc-reply`, a default namespace, ...), and
//! the blocklist is read by element names the operator configures. The input is already
//! bounded by the framing layer ([`crate::framing`]); the tree is bounded again here in depth
//! and element count, so a hostile or broken device cannot make netban build an unbounded
//! structure.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::Event;

/// The NETCONF base namespace (RFC 6241).
pub const NC_NS: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

/// Deepest element nesting accepted in a reply.
const MAX_DEPTH: usize = 128;
/// Most elements accepted in one reply (a blocklist of 100 000 entries is about 300 000).
const MAX_ELEMENTS: usize = 4_000_000;

/// Escapes text for an XML element or attribute value: `& < > " '`.
pub fn escape(value: &str) -> Cow<'_, str> {
    if !value.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 16);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// One element of a parsed document: local name, attributes by local name, the text directly
/// inside it (all text pieces joined), and its child elements in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child with this local name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every element below (and including) this one with this local name, depth first. The
    /// search does not go inside a match.
    pub fn find_all<'a>(&'a self, name: &str, out: &mut Vec<&'a Element>) {
        if self.name == name {
            out.push(self);
            return;
        }
        for c in &self.children {
            c.find_all(name, out);
        }
    }
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the message is not UTF-8")]
    NotUtf8,
    #[error("malformed XML at byte {position}: {message}")]
    Malformed { position: u64, message: String },
    #[error("no root element")]
    Empty,
    #[error("nesting deeper than {MAX_DEPTH} elements")]
    TooDeep,
    #[error("more than {MAX_ELEMENTS} elements")]
    TooMany,
}

/// Parses one document (one NETCONF message) into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    let malformed = |reader: &Reader<&[u8]>, message: String| XmlError::Malformed {
        position: reader.error_position(),
        message,
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(&reader, e.to_string()))?;
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                let _ = start;
                return Err(malformed(&reader, "content after the root element".into()));
            }
            Event::Start(start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooMany);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                stack.push(element(&start).map_err(|m| malformed(&reader, m))?);
            }
            Event::Empty(start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooMany);
                }
                let el = element(&start).map_err(|m| malformed(&reader, m))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                // quick-xml checks that end names match their start.
                let Some(done) = stack.pop() else {
                    return Err(malformed(&reader, "unexpected end tag".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(c) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&c.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                let Some(cur) = stack.last_mut() else {
                    continue;
                };
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match r.xml10_content().as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "quot" => '"',
                        "apos" => '\'',
                        other => {
                            return Err(malformed(&reader, format!("unknown entity &{other};")));
                        }
                    },
                    Err(e) => return Err(malformed(&reader, e.to_string())),
                };
                cur.text.push(resolved);
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(malformed(&reader, "unclosed element at the end".into()));
    }
    root.ok_or(XmlError::Empty)
}

fn element(start: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
    let mut attributes = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        let key = attr.key.local_name().as_ref().to_string();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?;
        attributes.push((key, value.into_owned()));
    }
    Ok(Element {
        name: start.local_name().as_ref().to_string(),
        attributes,
        text: String::new(),
        children: Vec::new(),
    })
}

/// Checks that `text` is one or more well-formed XML elements (a fragment), e.g. a template
/// rendered with sample values. Namespace prefixes are not checked.
pub fn check_fragment(text: &str) -> Result<(), String> {
    let wrapped = format!("<netban-fragment>{text}</netban-fragment>");
    parse(wrapped.as_bytes()).map(|_| ()).map_err(|e| match e {
        XmlError::Malformed { message, .. } => message,
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_all_five() {
        assert_eq!(escape("a&b<c>\"d'"), "a&amp;b&lt;c&gt;&quot;d&apos;");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn parses_local_names_text_and_entities() {
        let doc = br#"<?xml version="1.0"?>
<nc:rpc-reply xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="7">
  <nc:data><blocklist xmlns="urn:example:blocklist"><entry><prefix>192.0.2.1/32</prefix>
  <comment>a &amp; b &lt;c&gt; &#x41;<![CDATA[<x>]]></comment></entry><entry/></blocklist></nc:data>
</nc:rpc-reply>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "rpc-reply");
        assert_eq!(root.attribute("message-id"), Some("7"));
        let mut entries = Vec::new();
        root.find_all("entry", &mut entries);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].child_text("prefix"), Some("192.0.2.1/32"));
        assert_eq!(entries[0].child_text("comment"), Some("a & b <c> A<x>"));
    }

    #[test]
    fn rejects_broken_documents() {
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"<a>").is_err());
        assert!(parse(b"").is_err());
        assert!(parse(b"<a/><b/>").is_err());
        assert!(parse(b"<a>&bogus;</a>").is_err());
        assert!(parse(&[b'<', b'a', b'>', 0xff, b'<', b'/', b'a', b'>']).is_err());
        let deep = "<a>".repeat(200) + &"</a>".repeat(200);
        assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooDeep));
    }

    #[test]
    fn fragments() {
        assert!(check_fragment("<entry><prefix>x</prefix></entry><entry/>").is_ok());
        assert!(check_fragment("<entry><prefix>x</entry>").is_err());
        assert!(check_fragment("text only").is_ok());
    }
}
