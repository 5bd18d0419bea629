//! Parts of the config file that other crates read: each `[[sink]]`, `[stats]`, `[cluster]`.
//!
//! Core does not know every driver's keys (a driver's config struct lives in the driver's
//! crate), so these parts are handed over as a [`Section`]: where the part is in the file,
//! deserialized on demand by the crate that owns its keys. The text is parsed again for
//! that (a config is a few kilobytes), which keeps the spans: an unknown or mistyped key
//! inside a `[[sink]]` points at its own line, not at the `[[sink]]` header (serde's
//! internally tagged enums lose the spans, serde#1547, which is what issue 6 found).

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::ConfigError;

/// A part of the config file: `key` (and `index` for `[[key]]` arrays of tables), minus the
/// keys already read by core (`without`).
#[derive(Clone)]
pub struct Section {
    source: Arc<str>,
    path: Arc<Path>,
    key: &'static str,
    index: Option<usize>,
    without: &'static [&'static str],
    span: std::ops::Range<usize>,
}

impl std::fmt::Debug for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The text may hold secrets: show where it is, not what it says.
        write!(f, "Section({}:{})", self.path.display(), self.line())
    }
}

impl Section {
    /// Deserializes the part into `T`; errors name the file, line and key.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let mut doc = DeTable::parse(&self.source).map_err(|e| self.error(e))?;
        let Some(mut value) = doc.get_mut().remove(self.key) else {
            return Err(self.invalid("section vanished while reading it"));
        };
        if let Some(i) = self.index {
            let DeValue::Array(items) = value.into_inner() else {
                return Err(self.invalid("expected [[...]] tables"));
            };
            let Some(item) = items.into_iter().nth(i) else {
                return Err(self.invalid("section vanished while reading it"));
            };
            value = item;
        }
        if let DeValue::Table(t) = value.get_mut() {
            for k in self.without {
                t.remove(*k);
            }
        }
        T::deserialize(ValueDeserializer::from(value)).map_err(|e| self.error(e))
    }

    /// The same part without `keys` (read elsewhere): a driver's struct that denies unknown
    /// fields sees only its own.
    pub fn without(&self, keys: &'static [&'static str]) -> Section {
        Section {
            without: keys,
            ..self.clone()
        }
    }

    /// The part's text as written (for telling whether it changed between two loads).
    pub fn text(&self) -> &str {
        self.source.get(self.span.clone()).unwrap_or("")
    }

    /// The line the part starts on (1-based).
    pub fn line(&self) -> usize {
        line_of(&self.source, self.span.start)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A config error about this part.
    pub fn invalid(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            message: format!("line {}: {}", self.line(), message.into()),
        }
    }

    /// Turns a toml error into one that shows the line in the whole file.
    fn error(&self, mut e: toml::de::Error) -> ConfigError {
        let message = match e.span() {
            Some(span) => {
                e.set_input(Some(&self.source));
                let line = line_of(&self.source, span.start);
                // toml's own text already says "line N, column M" with a snippet; keep the
                // first line of it short and first.
                format!("line {line}: {}\n{}", e.message(), e.to_string().trim_end())
            }
            None => format!("line {}: {}", self.line(), e.message()),
        };
        ConfigError::Parse {
            path: self.path.to_path_buf(),
            message,
        }
    }
}

fn line_of(source: &str, offset: usize) -> usize {
    source
        .get(..offset)
        .map_or(0, |s| s.bytes().filter(|&b| b == b'\n').count())
        + 1
}

/// The parts taken out of a file, by key.
pub(super) type Parts = Vec<(&'static str, Section)>;

/// Splits `text`: the parts named in `parts` (`("sink", true)` for an array of tables)
/// become [`Section`]s (the elements of an array each their own), and the rest is
/// deserialized into `T`.
pub(super) fn split<T: DeserializeOwned>(
    text: &str,
    path: &Path,
    parts: &[(&'static str, bool)],
) -> Result<(T, Parts), ConfigError> {
    let source: Arc<str> = Arc::from(text);
    let path: Arc<Path> = Arc::from(path);
    let parse_error = |mut e: toml::de::Error| {
        e.set_input(Some(text));
        ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        }
    };
    let mut doc = DeTable::parse(text).map_err(parse_error)?;
    let mut sections = Vec::new();
    for (key, array) in parts {
        let Some(value) = doc.get_mut().remove(*key) else {
            continue;
        };
        let section = |index, span| Section {
            source: source.clone(),
            path: path.clone(),
            key,
            index,
            without: &[],
            span,
        };
        if *array {
            match value.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if !item.get_ref().is_table() {
                            return Err(ConfigError::Invalid {
                                path: path.to_path_buf(),
                                message: format!(
                                    "line {}: {key} must be written [[{key}]], a table per entry",
                                    line_of(text, item.span().start)
                                ),
                            });
                        }
                        sections.push((*key, section(Some(i), extent(item))));
                    }
                }
                _ => {
                    return Err(ConfigError::Invalid {
                        path: path.to_path_buf(),
                        message: format!(
                            "line {}: {key} must be written [[{key}]], a table per entry",
                            line_of(text, value.span().start)
                        ),
                    });
                }
            }
        } else {
            if !value.get_ref().is_table() {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    message: format!(
                        "line {}: {key} must be a table: [{key}]",
                        line_of(text, value.span().start)
                    ),
                });
            }
            sections.push((*key, section(None, extent(&value))));
        }
    }
    let rest = T::deserialize(toml::de::Deserializer::from(doc)).map_err(parse_error)?;
    Ok((rest, sections))
}

/// Where a value really is in the text: a table's own span is only its `[header]`, so take in
/// every key and value under it.
fn extent(v: &toml::Spanned<DeValue<'_>>) -> std::ops::Range<usize> {
    let mut r = v.span();
    let mut widen = |s: std::ops::Range<usize>| {
        r.start = r.start.min(s.start);
        r.end = r.end.max(s.end);
    };
    match v.get_ref() {
        DeValue::Table(t) => {
            for (k, v) in t.iter() {
                widen(k.span());
                widen(extent(v));
            }
        }
        DeValue::Array(items) => {
            for i in items.iter() {
                widen(extent(i));
            }
        }
        _ => {}
    }
    r
}
