//! Per-topic settings, under Kafka's own config names, layered over the broker defaults.
//!
//! Only settings Sluice really honours are accepted; each is reported truthfully by
//! DescribeConfigs. The flush policy is expressed with Kafka's `flush.messages` and
//! `flush.ms`: `flush.messages=1` is `always` (fsync before acks=all answers, with group
//! commit), a finite `flush.ms` is `interval`, and neither is `os`.

use crate::error::BrokerError;
use sluice_log::{FlushPolicy, LogConfig};
use std::collections::BTreeMap;
use std::time::Duration;

/// Kafka's "no limit" for `flush.*`.
const LONG_MAX: i64 = i64::MAX;
/// Smallest segment we accept: a segment must hold at least one batch header and some records.
const SEGMENT_BYTES_MIN: i64 = 1024;

/// Every topic config key Sluice accepts and reports.
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

/// Keys reported but fixed: changing them is refused.
const READ_ONLY_KEYS: &[(&str, &str)] = &[("message.timestamp.type", "CreateTime")];

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
        Ok(config)
    }

    /// Every supported key with its effective value.
    pub fn entries(&self, defaults: &LogConfig) -> Vec<ConfigEntry> {
        let effective = self.log_config(defaults).unwrap_or_else(|_| defaults.clone());
        TOPIC_CONFIG_KEYS
            .iter()
            .map(|key| ConfigEntry {
                name: key.to_string(),
                value: value_of(&effective, key),
                is_default: !self.overrides.contains_key(*key),
                read_only: READ_ONLY_KEYS.iter().any(|(k, _)| k == key),
            })
            .collect()
    }
}

/// Validates `key=value` and applies it to `config`.
fn apply(config: &mut LogConfig, key: &str, value: &str) -> Result<(), BrokerError> {
    let invalid = |why: &str| BrokerError::InvalidConfig(format!("{key}={value}: {why}"));
    let int = || value.trim().parse::<i64>().map_err(|_| invalid("not an integer"));
    match key {
        "cleanup.policy" => match value {
            "delete" => {}
            _ => return Err(invalid("only 'delete' is supported (no compaction)")),
        },
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
        _ => {
            if let Some((_, fixed)) = READ_ONLY_KEYS.iter().find(|(k, _)| *k == key) {
                if value != *fixed {
                    return Err(invalid(&format!("read-only, always {fixed}")));
                }
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
        _ => READ_ONLY_KEYS.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string()).unwrap_or_default(),
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
    fn rejects_unknown_keys_bad_values_and_compaction() {
        for (k, v) in [("cleanup.policy", "compact"), ("retention.ms", "abc"), ("segment.bytes", "10"), ("nope", "1")] {
            assert!(TopicConfig::from_overrides(overrides(&[(k, v)])).is_err(), "{k}={v}");
        }
    }
}
