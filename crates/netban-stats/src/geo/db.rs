//! One mmdb file, re-read when it is replaced.
//!
//! GeoIP updaters (geoipupdate, a cron job fetching DB-IP lite) replace the file every week or
//! month, usually by writing a temporary file and renaming it over the old one. [`DbFile`]
//! notices a new file by its modification time, inode and size, checked at most once per
//! interval (a `stat`, no read), and loads it in full before swapping. A file that does not
//! load — missing, half written by a non-atomic copy, not an mmdb, too big — never replaces a
//! good one: lookups keep the database already loaded, and the problem is logged once per
//! version of the file, not once per lookup. When it is fixed (its stamp changes again) the
//! next check loads it.

use std::fs;
use std::io::Read as _;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use maxminddb::{PathElement, Reader};

/// The largest mmdb accepted (GeoLite2-City is ~70 MB, DB-IP city lite ~130 MB).
pub const MAX_DB_BYTES: u64 = 512 * 1024 * 1024;

/// What identifies one version of the file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    mtime_ns: i128,
    ino: u64,
    dev: u64,
    size: u64,
}

impl Stamp {
    fn of(path: &Path) -> std::io::Result<Stamp> {
        let m = fs::metadata(path)?;
        Ok(Stamp {
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
            size: m.len(),
        })
    }
}

/// One answer of one database: the data (if any) and the network it holds for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The most specific network of the database containing the address, with or without
    /// data; `None` when the database could not answer (e.g. IPv6 in an IPv4-only file).
    pub network: Option<IpNet>,
    pub country: Option<String>,
    pub asn: Option<u32>,
    pub org: Option<String>,
}

/// Which fields to read from a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Country,
    Asn,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Country => "country_db",
            Kind::Asn => "asn_db",
        }
    }
}

pub struct DbFile {
    kind: Kind,
    path: PathBuf,
    reader: Option<Reader<Vec<u8>>>,
    /// The stamp of the loaded file, or of the last version that failed to load.
    seen: Option<Stamp>,
    /// A missing file was reported (once, until it is there again).
    missing_warned: bool,
}

impl std::fmt::Debug for DbFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbFile")
            .field("kind", &self.kind)
            .field("path", &self.path)
            .field("loaded", &self.reader.is_some())
            .finish()
    }
}

impl DbFile {
    /// Loads the file if it can; a file that cannot be loaded is logged and retried later.
    pub fn open(kind: Kind, path: PathBuf) -> DbFile {
        let mut db = DbFile {
            kind,
            path,
            reader: None,
            seen: None,
            missing_warned: false,
        };
        db.refresh();
        db
    }

    pub fn is_loaded(&self) -> bool {
        self.reader.is_some()
    }

    /// Loads the file again if it changed since the last look. True when a new version was
    /// loaded (answers may differ from now on).
    pub fn refresh(&mut self) -> bool {
        let stamp = match Stamp::of(&self.path) {
            Ok(s) => s,
            Err(e) => {
                // Missing (or unreadable) now: keep what is loaded; say so once.
                if !self.missing_warned {
                    tracing::warn!(
                        "stats: cannot read {} {}: {e}; {}",
                        self.kind.key(),
                        self.path.display(),
                        self.consequence()
                    );
                    self.missing_warned = true;
                }
                self.seen = None;
                return false;
            }
        };
        self.missing_warned = false;
        if self.seen == Some(stamp) {
            return false;
        }
        self.seen = Some(stamp);
        match load(&self.path, stamp.size) {
            Ok(reader) => {
                tracing::info!(
                    "stats: loaded {} {} ({}, built {})",
                    self.kind.key(),
                    self.path.display(),
                    reader.metadata().database_type,
                    reader.metadata().build_epoch
                );
                self.reader = Some(reader);
                true
            }
            Err(e) => {
                tracing::warn!(
                    "stats: {} {} is not a usable mmdb file ({e}); {}",
                    self.kind.key(),
                    self.path.display(),
                    self.consequence()
                );
                false
            }
        }
    }

    fn consequence(&self) -> &'static str {
        if self.reader.is_some() {
            "keeping the database loaded before; replace the file with a valid one"
        } else {
            "lookups answer unknown until a valid file is there"
        }
    }

    /// Looks `addr` up. Never fails: no file, no data or a decoding error is an empty answer.
    pub fn lookup(&self, addr: IpAddr) -> Answer {
        let Some(reader) = &self.reader else {
            return Answer::default();
        };
        let Ok(found) = reader.lookup(addr) else {
            return Answer::default();
        };
        let network = found
            .network()
            .ok()
            .and_then(|n| IpNet::new(n.ip(), n.prefix()).ok())
            .map(|n| n.trunc());
        let mut answer = Answer {
            network,
            ..Answer::default()
        };
        if !found.has_data() {
            return answer;
        }
        let text = |path: &[PathElement<'_>]| -> Option<String> {
            found
                .decode_path::<String>(path)
                .ok()
                .flatten()
                .filter(|s| !s.is_empty())
        };
        match self.kind {
            Kind::Country => {
                // A country, else the country where the block is registered (anonymous and
                // satellite networks have only that one).
                answer.country = text(&[PathElement::Key("country"), PathElement::Key("iso_code")])
                    .or_else(|| {
                        text(&[
                            PathElement::Key("registered_country"),
                            PathElement::Key("iso_code"),
                        ])
                    })
                    .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
                    .map(|c| c.to_ascii_uppercase());
            }
            Kind::Asn => {
                answer.asn = found
                    .decode_path::<u32>(&[PathElement::Key("autonomous_system_number")])
                    .ok()
                    .flatten();
                answer.org = text(&[PathElement::Key("autonomous_system_organization")])
                    .map(|o| o.chars().filter(|c| !c.is_control()).take(128).collect());
            }
        }
        answer
    }
}

/// Reads and parses the whole file, capped.
fn load(path: &Path, size: u64) -> Result<Reader<Vec<u8>>, String> {
    if size > MAX_DB_BYTES {
        return Err(format!(
            "{size} bytes, more than the {MAX_DB_BYTES} accepted"
        ));
    }
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    fs::File::open(path)
        .and_then(|f| f.take(MAX_DB_BYTES + 1).read_to_end(&mut buf))
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > MAX_DB_BYTES {
        return Err(format!("more than the {MAX_DB_BYTES} bytes accepted"));
    }
    Reader::from_source(buf).map_err(|e| e.to_string())
}
