//! Reading Redis replies (`XREAD`, `XREVRANGE`, `HGETALL`, `XINFO STREAM`) as plain data.
//!
//! Replies arrive as nested [`Value`]s, in RESP2 arrays or RESP3 maps depending on the
//! connection; these helpers accept both and never panic on an unexpected shape: whatever
//! does not fit is skipped (an entry) or reported (the caller's error).

use redis::Value;

/// One stream entry: its id and the value of field `e` (absent: not a netban entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub event: Option<Vec<u8>>,
}

/// The bytes of a string reply.
pub fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

/// A string reply as text.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::Int(i) => Some(i.to_string()),
        _ => bytes(v).map(|b| String::from_utf8_lossy(b).into_owned()),
    }
}

/// The field/value pairs of a hash-like reply (a flat array or a map).
pub fn pairs(v: &Value) -> Vec<(&Value, &Value)> {
    match v {
        Value::Array(items) => items.chunks_exact(2).map(|c| (&c[0], &c[1])).collect(),
        Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
        _ => Vec::new(),
    }
}

/// The entries of an `XRANGE` / `XREVRANGE` reply (also the entry list inside `XREAD`).
pub fn entries(v: &Value) -> Vec<Entry> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(parts) = item else {
                return None;
            };
            let id = text(parts.first()?)?;
            let event = parts.get(1).and_then(|fields| {
                pairs(fields)
                    .into_iter()
                    .find(|(k, _)| bytes(k) == Some(b"e"))
                    .and_then(|(_, v)| bytes(v).map(<[u8]>::to_vec))
            });
            Some(Entry { id, event })
        })
        .collect()
}

/// The entries of an `XREAD` reply for one stream (nil, a timeout: none).
pub fn xread(v: &Value) -> Vec<Entry> {
    match v {
        Value::Array(streams) => streams
            .iter()
            .filter_map(|s| match s {
                Value::Array(kv) if kv.len() == 2 => Some(entries(&kv[1])),
                _ => None,
            })
            .flatten()
            .collect(),
        Value::Map(m) => m.iter().flat_map(|(_, e)| entries(e)).collect(),
        _ => Vec::new(),
    }
}

/// The values of a `HGETALL` reply.
pub fn hash_values(v: &Value) -> Vec<Vec<u8>> {
    pairs(v)
        .into_iter()
        .filter_map(|(_, v)| bytes(v).map(<[u8]>::to_vec))
        .collect()
}

/// One field of an `XINFO STREAM` reply, as text.
pub fn info_field(v: &Value, field: &str) -> Option<String> {
    pairs(v)
        .into_iter()
        .find(|(k, _)| bytes(k) == Some(field.as_bytes()))
        .and_then(|(_, v)| text(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn reads_xread_and_tolerates_garbage() {
        let reply = Value::Array(vec![Value::Array(vec![
            b("netban:bus:stream"),
            Value::Array(vec![
                Value::Array(vec![b("1-0"), Value::Array(vec![b("e"), b("x")])]),
                Value::Array(vec![b("2-0"), Value::Array(vec![b("other"), b("y")])]),
                Value::Int(5),
            ]),
        ])]);
        assert_eq!(
            xread(&reply),
            vec![
                Entry {
                    id: "1-0".into(),
                    event: Some(b"x".to_vec())
                },
                Entry {
                    id: "2-0".into(),
                    event: None
                }
            ]
        );
        assert!(xread(&Value::Nil).is_empty());
        assert!(xread(&Value::Int(3)).is_empty());
        assert_eq!(
            hash_values(&Value::Array(vec![b("k"), b("v"), b("odd")])),
            vec![b"v".to_vec()]
        );
    }
}
