//! MQTT topic names onto log topics, and topic filters (`+`, `#`) matched against names.
//!
//! The first level of an MQTT topic names the log topic, made a legal Kafka name: every
//! character outside `[A-Za-z0-9._-]` becomes `_`, an empty level or `.`/`..` becomes `_`
//! (`.`, `..` are not topic names), and it is cut to 249 bytes. The whole MQTT topic is the
//! record's key and its `mqtt-topic` header.

use sluice_broker::names::TOPIC_NAME_LEN_MAX;

/// The log topic an MQTT topic name (or a filter's literal first level) maps to.
pub fn log_topic_for(mqtt_topic: &str) -> String {
    let first = mqtt_topic.split('/').next().unwrap_or("");
    let mut name: String = first
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' { c } else { '_' })
        .collect();
    name.truncate(TOPIC_NAME_LEN_MAX);
    if name.is_empty() || name == "." || name == ".." {
        return "_".to_string();
    }
    name
}

/// Whether `filter` is a legal topic filter (§4.7): not empty, `#` only as a whole last
/// level, `+` only as a whole level.
pub fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, level)| match *level {
        "#" => i == levels.len() - 1,
        "+" => true,
        other => !other.contains(['#', '+']),
    })
}

/// The log topic a filter reads, or `None` when its first level is a wildcard (every topic).
pub fn filter_log_topic(filter: &str) -> Option<String> {
    let first = filter.split('/').next().unwrap_or("");
    match first {
        "+" | "#" => None,
        _ => Some(log_topic_for(filter)),
    }
}

/// Whether the MQTT topic `name` matches `filter` (§4.7): `+` takes one level, `#` the rest
/// (and the parent level itself); a wildcard first level never matches a name starting `$`.
pub fn matches(filter: &str, name: &str) -> bool {
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut names = name.split('/');
    for level in filter.split('/') {
        match level {
            "#" => return true,
            "+" => {
                if names.next().is_none() {
                    return false;
                }
            }
            literal => {
                if names.next() != Some(literal) {
                    return false;
                }
            }
        }
    }
    names.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_level_becomes_a_legal_topic_name() {
        assert_eq!(log_topic_for("sensors/kitchen/temp"), "sensors");
        assert_eq!(log_topic_for("plant 7:line/x"), "plant_7_line");
        assert_eq!(log_topic_for("/leading"), "_");
        assert_eq!(log_topic_for("../x"), "_");
        assert_eq!(log_topic_for("ü"), "_");
        assert_eq!(log_topic_for(&"x".repeat(300)).len(), TOPIC_NAME_LEN_MAX);
        assert!(sluice_broker::names::validate_topic_name(&log_topic_for("a b/c")).is_ok());
    }

    #[test]
    fn filters_match_as_the_spec_says() {
        assert!(matches("sport/tennis/#", "sport/tennis"));
        assert!(matches("sport/tennis/#", "sport/tennis/player1/score"));
        assert!(matches("sport/+", "sport/"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("+/+", "/finance"));
        assert!(matches("#", "a/b"));
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("+/monitor", "$SYS/monitor"));
        assert!(matches("$SYS/#", "$SYS/x"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
    }

    #[test]
    fn filter_validity() {
        for ok in ["#", "+", "a/+/b", "a/#", "+/+", "/"] {
            assert!(valid_filter(ok), "{ok}");
        }
        for bad in ["", "a#", "a/#/b", "a+/b", "#/"] {
            assert!(!valid_filter(bad), "{bad}");
        }
        assert_eq!(filter_log_topic("sensors/+/temp").as_deref(), Some("sensors"));
        assert_eq!(filter_log_topic("+/temp"), None);
    }
}
