//! The mirror's settings by name, as a config file (`--config FILE`, Java properties
//! syntax) and the command line give them, in two stages: [`Settings`] holds the raw
//! strings, [`Settings::into_config`] validates them into a [`MirrorConfig`].
//!
//! Names: `source`, `target` (bootstrap addresses), `topics`, `exclude`, `group`,
//! `rename.prefix`, `mode` (`batches` or `records`), `max.rate` (`10000rps`, `50MBps`),
//! `max.in.flight.bytes`, `max.in.flight.batches`, `refresh.interval.ms`,
//! `commit.interval.ms`, `sync.group.offsets` (a regex of group ids), `metrics`
//! (`HOST:PORT`); and any client property prefixed `source.` or `target.`
//! (`source.client.id=...`, `target.compression.type` is not used: batches keep theirs).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::{MirrorConfig, MirrorError, Mode, Rate};

/// The mirror's own setting names (client properties go under `source.` / `target.`).
pub const NAMES: &[&str] = &[
    "source",
    "target",
    "topics",
    "exclude",
    "group",
    "rename.prefix",
    "mode",
    "max.rate",
    "max.in.flight.bytes",
    "max.in.flight.batches",
    "refresh.interval.ms",
    "commit.interval.ms",
    "sync.group.offsets",
    "metrics",
];

/// Raw settings, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    values: BTreeMap<String, String>,
    source: BTreeMap<String, String>,
    target: BTreeMap<String, String>,
}

impl Settings {
    /// No settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// The settings of a properties file.
    ///
    /// # Errors
    /// [`MirrorError::Config`] if it cannot be read, a line has no separator, or a name
    /// is unknown.
    pub fn from_file(path: &Path) -> Result<Self, MirrorError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad("config", &path.display().to_string(), &e.to_string()))?;
        Self::from_properties(&text)
    }

    /// As [`Self::from_file`], from the file's text.
    ///
    /// # Errors
    /// As [`Self::from_file`].
    pub fn from_properties(text: &str) -> Result<Self, MirrorError> {
        let mut settings = Settings::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some(at) = line.find(['=', ':']) else {
                return Err(bad(line, "", "a properties line is key=value"));
            };
            settings.set(line[..at].trim(), line[at + 1..].trim())?;
        }
        Ok(settings)
    }

    /// Sets one setting (a later set of the same name wins: flags after the file).
    ///
    /// # Errors
    /// [`MirrorError::Config`] for a name that is neither a mirror setting nor a
    /// `source.` / `target.` client property.
    pub fn set(&mut self, name: &str, value: &str) -> Result<&mut Self, MirrorError> {
        if NAMES.contains(&name) {
            self.values.insert(name.to_string(), value.to_string());
        } else if let Some(property) = name.strip_prefix("source.") {
            self.source.insert(property.to_string(), value.to_string());
        } else if let Some(property) = name.strip_prefix("target.") {
            self.target.insert(property.to_string(), value.to_string());
        } else {
            return Err(bad(
                name,
                value,
                "unknown setting (client properties take a source. or target. prefix)",
            ));
        }
        Ok(self)
    }

    /// Validates the settings; `source`, `target` and `topics` are required.
    ///
    /// # Errors
    /// [`MirrorError::Config`] naming the first missing or invalid setting.
    pub fn into_config(self) -> Result<MirrorConfig, MirrorError> {
        let get = |name: &str| self.values.get(name).map(String::as_str);
        let required =
            |name: &str| get(name).ok_or_else(|| bad(name, "", "required (flag or config file)"));
        let mut c =
            MirrorConfig::new(required("source")?, required("target")?, required("topics")?);
        for (name, value) in &self.source {
            c.source.set(name, value);
        }
        for (name, value) in &self.target {
            c.target.set(name, value);
        }
        c.exclude = get("exclude").map(str::to_string);
        if let Some(g) = get("group") {
            c.group = g.to_string();
        }
        if let Some(p) = get("rename.prefix") {
            c.rename_prefix = p.to_string();
        }
        if let Some(m) = get("mode") {
            c.mode = match m {
                "batches" => Mode::Batches,
                "records" => Mode::Records,
                _ => return Err(bad("mode", m, "batches or records")),
            };
        }
        c.sync_group_offsets = get("sync.group.offsets").map(str::to_string);
        if let Some(m) = get("metrics") {
            c.metrics = Some(
                m.parse()
                    .map_err(|_| bad("metrics", m, "an address HOST:PORT, e.g. 127.0.0.1:9464"))?,
            );
        }
        if let Some(r) = get("max.rate") {
            c.max_rate = Some(r.parse::<Rate>().map_err(|e| bad("max.rate", r, &e.to_string()))?);
        }
        let number = |name: &str| -> Result<Option<u64>, MirrorError> {
            get(name)
                .map(|v| v.parse::<u64>().map_err(|_| bad(name, v, "a non-negative integer")))
                .transpose()
        };
        if let Some(n) = number("max.in.flight.bytes")? {
            c.max_in_flight_bytes = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = number("max.in.flight.batches")? {
            c.max_in_flight_batches = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(ms) = number("refresh.interval.ms")? {
            c.refresh_interval = Duration::from_millis(ms.max(100));
        }
        if let Some(ms) = number("commit.interval.ms")? {
            c.commit_interval = Duration::from_millis(ms.max(10));
        }
        Ok(c)
    }
}

fn bad(name: &str, value: &str, reason: &str) -> MirrorError {
    MirrorError::Config { name: name.into(), value: value.into(), reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_and_later_flags_make_one_config() {
        let mut s = Settings::from_properties(
            "# mirror\nsource=a:1\ntarget = b:2\ntopics=orders.*\nmax.rate=50MBps\n\
             source.client.id=m1\ntarget.linger.ms=20\nmode=records\n\
             sync.group.offsets=app-.*\nmetrics=127.0.0.1:9464\n",
        )
        .unwrap();
        s.set("topics", "pay.*").unwrap().set("rename.prefix", "A.").unwrap();
        let c = s.into_config().unwrap();
        assert_eq!(c.topics, "pay.*", "the flag wins");
        assert_eq!((c.rename_prefix.as_str(), c.mode), ("A.", Mode::Records));
        assert_eq!(c.max_rate, Some(Rate::Bytes(50e6)));
        assert_eq!(c.source.get("bootstrap.servers"), Some("a:1"));
        assert_eq!(c.source.get("client.id"), Some("m1"));
        assert_eq!(c.target.get("linger.ms"), Some("20"));
        assert_eq!(c.group, "sluice-mirror");
        assert_eq!(c.sync_group_offsets.as_deref(), Some("app-.*"));
        assert_eq!(c.metrics, Some("127.0.0.1:9464".parse().unwrap()));
    }

    #[test]
    fn unknown_missing_and_invalid_settings_are_named() {
        let e = Settings::new().set("sorce", "a:1").unwrap_err();
        assert!(e.to_string().contains("sorce"), "{e}");
        let e = Settings::from_properties("source=a:1\ntarget=b:1\n").unwrap().into_config();
        assert!(e.unwrap_err().to_string().contains("topics"));
        let e = Settings::from_properties("source=a\ntarget=b\ntopics=t\nmax.rate=fast\n")
            .unwrap()
            .into_config()
            .unwrap_err();
        assert!(e.to_string().contains("max.rate=fast"), "{e}");
        let e = Settings::from_properties("source=a\ntarget=b\ntopics=t\nmetrics=localhost\n")
            .unwrap()
            .into_config()
            .unwrap_err();
        assert!(e.to_string().contains("metrics=localhost"), "{e}");
    }
}
