//! Per-topic settings, under Kafka's own config names, layered over the broker defaults.
//!
//! Every topic config Kafka 3.x defines is accepted, so admin tools and frameworks that set
//! them work; unknown names are refused. Those Sluice honours (`TOPIC_CONFIG_KEYS`) change
//! the log and are reported with their effective value; the others (`ACCEPTED_KEYS`) are
//! checked as Kafka checks their type, kept, and reported as set (Kafka's default
//! otherwise), with no effect here. The flush policy is expressed with Kafka's
//! `flush.messages` and `flush.ms`: `flush.messages=1` is `always` (fsync before acks=all
//! answers, with group commit), a finite `flush.ms` is `interval`, and neither is `os`.
//! `cleanup.policy` holding `compact` compacts the topic's closed segments in the background
//! (`compactor.rs`), with `min.compaction.lag.ms`, `max.compaction.lag.ms`,
//! `delete.retention.ms` and `min.cleanable.dirty.ratio` (kept with the accepted keys, read by
//! `compaction`); without `delete` no segment is deleted by time or size.

use crate::error::BrokerError;
use sluice_log::{Compaction, FlushPolicy, LogConfig};
use std::collections::BTreeMap;
use std::time::Duration;

/// Kafka's default `delete.retention.ms`: a day.
const DELETE_RETENTION_MS_DEFAULT: i64 = 86_400_000;
/// Kafka's "no limit" for `flush.*`.
const LONG_MAX: i64 = i64::MAX;
/// Smallest segment we accept: a segment must hold at least one batch header and some records.
const SEGMENT_BYTES_MIN: i64 = 1024;

/// Every topic config key Sluice honours.
pub const TOPIC_CONFIG_KEYS: &[&str] = &[
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "max.message.bytes",
    "flush.messages",
    "flush.ms",
    "index.interval.bytes",
    "message.timestamp.type",
];

/// `message.timestamp.type`'s values: the producer's time, or the broker's at append.
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// How an accepted key's value is checked: Kafka's `ConfigDef` type and valid values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    Long,
    Int,
    Double,
    Boolean,
    /// Comma-separated values (replica lists: any text).
    List,
    /// Free text (Kafka checks `message.format.version` against its versions; it is ignored
    /// since 3.0, so any version is taken).
    Text,
    /// One of these values.
    OneOf(&'static [&'static str]),
}

/// Topic configs Kafka 3.x defines that Sluice accepts and reports without effect, with
/// Kafka's defaults. Why none of them changes anything here: compression is whatever the
/// producer sent (the log stores batches verbatim), there is no tiered storage, no
/// replication throttle, and replication is Raft (a majority commits,
/// whatever `min.insync.replicas` says; there is no unclean election).
pub const ACCEPTED_KEYS: &[(&str, ConfigKind, &str)] = &[
    ("compression.gzip.level", ConfigKind::Int, "-1"),
    ("compression.lz4.level", ConfigKind::Int, "9"),
    ("compression.type", ConfigKind::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]), "producer"),
    ("compression.zstd.level", ConfigKind::Int, "3"),
    ("delete.retention.ms", ConfigKind::Long, "86400000"),
    ("file.delete.delay.ms", ConfigKind::Long, "60000"),
    ("follower.replication.throttled.replicas", ConfigKind::List, ""),
    ("leader.replication.throttled.replicas", ConfigKind::List, ""),
    ("local.retention.bytes", ConfigKind::Long, "-2"),
    ("local.retention.ms", ConfigKind::Long, "-2"),
    ("max.compaction.lag.ms", ConfigKind::Long, "9223372036854775807"),
    ("message.downconversion.enable", ConfigKind::Boolean, "true"),
    ("message.format.version", ConfigKind::Text, "3.0-IV1"),
    ("message.timestamp.after.max.ms", ConfigKind::Long, "9223372036854775807"),
    ("message.timestamp.before.max.ms", ConfigKind::Long, "9223372036854775807"),
    ("message.timestamp.difference.max.ms", ConfigKind::Long, "9223372036854775807"),
    ("min.cleanable.dirty.ratio", ConfigKind::Double, "0.5"),
    ("min.compaction.lag.ms", ConfigKind::Long, "0"),
    ("min.insync.replicas", ConfigKind::Int, "1"),
    ("preallocate", ConfigKind::Boolean, "false"),
    ("remote.log.copy.disable", ConfigKind::Boolean, "false"),
    ("remote.log.delete.on.disable", ConfigKind::Boolean, "false"),
    ("remote.storage.enable", ConfigKind::Boolean, "false"),
    ("segment.index.bytes", ConfigKind::Int, "10485760"),
    ("segment.jitter.ms", ConfigKind::Long, "0"),
    ("unclean.leader.election.enable", ConfigKind::Boolean, "false"),
];

/// `cleanup.policy`'s values.
const CLEANUP_POLICIES: &[&str] = &["delete", "compact"];

/// One config as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    /// True when the value comes from the broker defaults, not a topic override.
    pub is_default: bool,
    pub read_only: bool,
}

/// The overrides set on one topic (persisted as given, validated on the way in).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicConfig {
    pub overrides: BTreeMap<String, String>,
}

impl TopicConfig {
    /// Builds a config from overrides, validating every one.
    pub fn from_overrides(overrides: BTreeMap<String, String>) -> Result<TopicConfig, BrokerError> {
        let config = TopicConfig { overrides };
        config.log_config(&LogConfig::default())?;
        Ok(config)
    }

    /// The effective log settings: broker defaults with this topic's overrides applied.
    pub fn log_config(&self, defaults: &LogConfig) -> Result<LogConfig, BrokerError> {
        let mut config = defaults.clone();
        for (key, value) in &self.overrides {
            apply(&mut config, key, value)?;
        }
        if !self.deletes() {
            // Compaction only: no segment is deleted by time or size.
            config.retention_age_max = None;
            config.retention_bytes_max = None;
        }
        config.compaction = self.compacts().then(|| self.compaction());
        Ok(config)
    }

    /// Whether closed segments are compacted (`cleanup.policy` holds `compact`), so every
    /// produced record needs a key.
    pub fn compacts(&self) -> bool {
        self.overrides.get("cleanup.policy").is_some_and(|policy| policy.split(',').any(|p| p.trim() == "compact"))
    }

    /// The compaction settings, from the (already validated) overrides or Kafka's defaults.
    fn compaction(&self) -> Compaction {
        let long = |key: &str, default: i64| {
            self.overrides.get(key).and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(default).max(0) as u64
        };
        let ratio = self.overrides.get("min.cleanable.dirty.ratio").and_then(|v| v.trim().parse::<f64>().ok());
        Compaction {
            lag_min: duration_ms(long("min.compaction.lag.ms", 0)),
            lag_max: self
                .overrides
                .get("max.compaction.lag.ms")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|ms| (1..LONG_MAX).contains(ms))
                .map(|ms| duration_ms(ms as u64)),
            tombstone_retention: duration_ms(long("delete.retention.ms", DELETE_RETENTION_MS_DEFAULT)),
            dirty_per_mille_min: (ratio.unwrap_or(0.5).clamp(0.0, 1.0) * 1000.0).round() as u16,
        }
    }

    /// Whether the broker stamps each produced batch with its append time
    /// (`message.timestamp.type=LogAppendTime`).
    pub fn log_append_time(&self) -> bool {
        self.overrides.get("message.timestamp.type").is_some_and(|t| t == "LogAppendTime")
    }

    /// Whether old segments are deleted by time and size (`cleanup.policy` holds `delete`).
    fn deletes(&self) -> bool {
        self.overrides.get("cleanup.policy").is_none_or(|policy| policy.split(',').any(|p| p.trim() == "delete"))
    }

    /// Every key, honoured or accepted, with its effective value, in name order.
    pub fn entries(&self, defaults: &LogConfig) -> Vec<ConfigEntry> {
        let effective = self.log_config(defaults).unwrap_or_else(|_| defaults.clone());
        let honoured = TOPIC_CONFIG_KEYS.iter().map(|key| ConfigEntry {
            name: key.to_string(),
            value: match *key {
                "cleanup.policy" => self.overrides.get(*key).cloned().unwrap_or_else(|| "delete".into()),
                "message.timestamp.type" => self.overrides.get(*key).cloned().unwrap_or_else(|| "CreateTime".into()),
                _ => value_of(&effective, key),
            },
            is_default: !self.overrides.contains_key(*key),
            read_only: false,
        });
        let accepted = ACCEPTED_KEYS.iter().map(|(key, _, default)| ConfigEntry {
            name: key.to_string(),
            value: self.overrides.get(*key).cloned().unwrap_or_else(|| default.to_string()),
            is_default: !self.overrides.contains_key(*key),
            read_only: false,
        });
        let mut entries: Vec<ConfigEntry> = honoured.chain(accepted).collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }
}

/// The kind of value `key` takes, for any key Sluice accepts (None: unknown to Kafka 3.x).
pub fn config_kind(key: &str) -> Option<ConfigKind> {
    match key {
        "cleanup.policy" => Some(ConfigKind::List),
        "segment.bytes" | "max.message.bytes" | "index.interval.bytes" => Some(ConfigKind::Int),
        "message.timestamp.type" => Some(ConfigKind::OneOf(TIMESTAMP_TYPES)),
        _ if TOPIC_CONFIG_KEYS.contains(&key) => Some(ConfigKind::Long),
        _ => ACCEPTED_KEYS.iter().find(|(k, _, _)| *k == key).map(|(_, kind, _)| *kind),
    }
}

/// Checks `value` as Kafka checks a value of `kind`.
fn check_kind(kind: ConfigKind, value: &str) -> Result<(), &'static str> {
    let v = value.trim();
    let ok = match kind {
        ConfigKind::Long => v.parse::<i64>().is_ok(),
        ConfigKind::Int => v.parse::<i32>().is_ok(),
        ConfigKind::Double => v.parse::<f64>().is_ok_and(f64::is_finite),
        ConfigKind::Boolean => v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false"),
        ConfigKind::List | ConfigKind::Text => true,
        ConfigKind::OneOf(values) => values.contains(&v),
    };
    if ok {
        return Ok(());
    }
    Err(match kind {
        ConfigKind::Long => "not a long",
        ConfigKind::Int => "not an int",
        ConfigKind::Double => "not a number",
        ConfigKind::Boolean => "not true or false",
        _ => "not one of the valid values",
    })
}

/// Validates `key=value` and applies it to `config`.
fn apply(config: &mut LogConfig, key: &str, value: &str) -> Result<(), BrokerError> {
    let invalid = |why: &str| BrokerError::InvalidConfig(format!("{key}={value}: {why}"));
    let int = || value.trim().parse::<i64>().map_err(|_| invalid("not an integer"));
    match key {
        "cleanup.policy" => {
            // An empty list is Kafka 3.x's "no cleanup": nothing deleted, nothing compacted.
            let policies: Vec<&str> = value.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
            if policies.iter().any(|p| !CLEANUP_POLICIES.contains(p)) {
                return Err(invalid("must be a list of 'delete' and 'compact'"));
            }
        }
        "retention.ms" => config.retention_age_max = non_negative_or_unlimited(int()?).map(duration_ms),
        "retention.bytes" => config.retention_bytes_max = non_negative_or_unlimited(int()?),
        "segment.bytes" => {
            let v = int()?;
            if !(SEGMENT_BYTES_MIN..=i32::MAX as i64).contains(&v) {
                return Err(invalid("must be between 1024 and 2147483647"));
            }
            config.segment_bytes_max = v as u64;
        }
        "segment.ms" => {
            let v = int()?;
            if v < 1 {
                return Err(invalid("must be at least 1"));
            }
            config.segment_age_max = duration_ms(v as u64);
        }
        "max.message.bytes" => {
            let v = int()?;
            if !(0..=i32::MAX as i64).contains(&v) {
                return Err(invalid("must be between 0 and 2147483647"));
            }
            config.batch_bytes_max = v as u32;
        }
        "flush.messages" => {
            let v = int()?;
            if v < 1 {
                return Err(invalid("must be at least 1"));
            }
            if v == 1 {
                config.flush = FlushPolicy::Always;
            } else if config.flush == FlushPolicy::Always {
                config.flush = FlushPolicy::Os;
            }
        }
        "flush.ms" => {
            let v = int()?;
            if v < 0 {
                return Err(invalid("must not be negative"));
            }
            if v < LONG_MAX && config.flush != FlushPolicy::Always {
                config.flush = FlushPolicy::Interval(duration_ms(v as u64));
            }
        }
        "index.interval.bytes" => {
            let v = int()?;
            if !(0..=i32::MAX as i64).contains(&v) {
                return Err(invalid("must be between 0 and 2147483647"));
            }
            config.index_interval_bytes = v as u32;
        }
        "message.timestamp.type" => check_kind(ConfigKind::OneOf(TIMESTAMP_TYPES), value).map_err(invalid)?,
        // Read by `compaction`; Kafka's ConfigDef has it at least 1.
        "max.compaction.lag.ms" if int()? < 1 => return Err(invalid("must be at least 1")),
        _ => {
            if let Some((_, kind, _)) = ACCEPTED_KEYS.iter().find(|(k, _, _)| *k == key) {
                check_kind(*kind, value).map_err(invalid)?;
            } else {
                return Err(BrokerError::InvalidConfig(format!("unknown topic config '{key}'")));
            }
        }
    }
    Ok(())
}

fn value_of(config: &LogConfig, key: &str) -> String {
    match key {
        "cleanup.policy" => "delete".into(),
        "retention.ms" => opt_i64(config.retention_age_max.map(|d| d.as_millis() as u64)),
        "retention.bytes" => opt_i64(config.retention_bytes_max),
        "segment.bytes" => config.segment_bytes_max.to_string(),
        "segment.ms" => config.segment_age_max.as_millis().to_string(),
        "max.message.bytes" => config.batch_bytes_max.to_string(),
        "flush.messages" => match config.flush {
            FlushPolicy::Always => "1".into(),
            _ => LONG_MAX.to_string(),
        },
        "flush.ms" => match config.flush {
            FlushPolicy::Interval(d) => d.as_millis().to_string(),
            FlushPolicy::Always => "0".into(),
            FlushPolicy::Os => LONG_MAX.to_string(),
        },
        "index.interval.bytes" => config.index_interval_bytes.to_string(),
        _ => String::new(),
    }
}

fn non_negative_or_unlimited(v: i64) -> Option<u64> {
    (v >= 0).then_some(v as u64)
}

fn opt_i64(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-1".into())
}

fn duration_ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn overrides_apply_over_defaults_and_report_truthfully() {
        let config = TopicConfig::from_overrides(overrides(&[
            ("retention.ms", "1000"),
            ("flush.ms", "50"),
            ("flush.messages", "100"),
        ]))
        .expect("valid");
        let log = config.log_config(&LogConfig::default()).expect("valid");
        assert_eq!(log.retention_age_max, Some(Duration::from_millis(1000)));
        assert_eq!(log.flush, FlushPolicy::Interval(Duration::from_millis(50)));
        let entries = config.entries(&LogConfig::default());
        let get = |k: &str| entries.iter().find(|e| e.name == k).expect("present").clone();
        assert_eq!(get("retention.ms").value, "1000");
        assert!(!get("retention.ms").is_default);
        assert_eq!(get("cleanup.policy").value, "delete");
        assert!(get("segment.bytes").is_default);
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        for (k, v) in [
            ("cleanup.policy", "compress"),
            ("retention.ms", "abc"),
            ("segment.bytes", "10"),
            ("nope", "1"),
            ("compression.type", "brotli"),
            ("min.insync.replicas", "two"),
            ("preallocate", "yes"),
            ("min.cleanable.dirty.ratio", "NaN"),
        ] {
            assert!(TopicConfig::from_overrides(overrides(&[(k, v)])).is_err(), "{k}={v}");
        }
    }

    /// Every Kafka 3.x topic config is accepted and reported as set, or with Kafka's
    /// default; those without effect leave the log settings as they were.
    #[test]
    fn accepts_and_reports_every_kafka_topic_config() {
        let set = [
            ("compression.type", "zstd"),
            ("min.insync.replicas", "2"),
            ("message.format.version", "2.8"),
            ("delete.retention.ms", "1000"),
            ("preallocate", "TRUE"),
            ("min.cleanable.dirty.ratio", "0.1"),
        ];
        let config = TopicConfig::from_overrides(overrides(&set)).expect("accepted");
        let defaults = LogConfig::default();
        assert_eq!(config.log_config(&defaults).expect("valid"), defaults);
        let entries = config.entries(&defaults);
        assert_eq!(entries.len(), TOPIC_CONFIG_KEYS.len() + ACCEPTED_KEYS.len());
        assert!(entries.windows(2).all(|w| w[0].name < w[1].name), "in name order");
        let get = |k: &str| entries.iter().find(|e| e.name == k).expect("present").clone();
        for (k, v) in set {
            assert_eq!((get(k).value.as_str(), get(k).is_default), (v, false), "{k}");
        }
        assert_eq!((get("segment.jitter.ms").value.as_str(), get("segment.jitter.ms").is_default), ("0", true));
        assert!(entries.iter().all(|e| config_kind(&e.name).is_some()), "every reported key has a kind");
    }

    /// LogAppendTime is taken (and reported) and is the only other timestamp type.
    #[test]
    fn timestamp_type_is_create_or_log_append_time() {
        let config =
            TopicConfig::from_overrides(overrides(&[("message.timestamp.type", "LogAppendTime")])).expect("ok");
        assert!(config.log_append_time());
        assert!(!TopicConfig::default().log_append_time());
        let entries = config.entries(&LogConfig::default());
        let entry = entries.iter().find(|e| e.name == "message.timestamp.type").expect("present");
        assert_eq!((entry.value.as_str(), entry.is_default), ("LogAppendTime", false));
        assert!(TopicConfig::from_overrides(overrides(&[("message.timestamp.type", "BrokerTime")])).is_err());
    }

    /// A compact-only topic keeps everything (no compaction yet); `compact,delete` and
    /// `delete` keep retention.
    #[test]
    fn compaction_without_delete_keeps_every_record() {
        let defaults = LogConfig { retention_age_max: Some(Duration::from_secs(60)), ..LogConfig::default() };
        for (policy, retained) in [("compact", false), ("compact,delete", true), ("delete", true), ("", false)] {
            let config =
                TopicConfig::from_overrides(overrides(&[("cleanup.policy", policy), ("retention.ms", "1000")]))
                    .expect("accepted");
            let log = config.log_config(&defaults).expect("valid");
            assert_eq!(log.retention_age_max.is_some(), retained, "{policy}");
            let entries = config.entries(&defaults);
            assert_eq!(entries.iter().find(|e| e.name == "cleanup.policy").expect("present").value, policy);
        }
    }
}
