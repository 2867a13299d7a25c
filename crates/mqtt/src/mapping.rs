//! Configurable mapping rules: an MQTT topic whose first levels match a rule's prefix (`+`
//! takes any one level) goes to the rule's log topic instead of the one its first level
//! names; the first matching rule wins. Subscriptions read, besides the topic their first
//! level names, every rule topic whose prefix a matching MQTT topic could have (and not the
//! first level's topic when a rule takes every topic the filter matches).

use crate::topics;

/// One rule: MQTT topics starting with `prefix`'s levels go to `topic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRule {
    prefix: Vec<String>,
    topic: String,
}

impl MappingRule {
    /// A rule from a prefix (levels, `+` allowed, no `#`) and a legal, non-internal topic name.
    pub fn new(prefix: &str, topic: &str) -> Result<MappingRule, String> {
        if prefix.is_empty() || prefix.contains('#') || !topics::valid_filter(prefix) {
            return Err(format!("prefix {prefix:?} must be MQTT topic levels, `+` allowed, no `#`"));
        }
        if topic.starts_with("__") || sluice_broker::names::validate_topic_name(topic).is_err() {
            return Err(format!("topic {topic:?} is not a legal, non-internal topic name"));
        }
        Ok(MappingRule { prefix: prefix.split('/').map(str::to_string).collect(), topic: topic.to_string() })
    }

    /// Whether the MQTT topic name starts with the prefix's levels.
    fn takes(&self, name: &str) -> bool {
        let mut levels = name.split('/');
        self.prefix.iter().all(|p| levels.next().is_some_and(|level| p == "+" || p == level))
    }

    /// Whether some topic `filter` matches could start with the prefix.
    fn overlaps(&self, filter: &str) -> bool {
        let mut levels = filter.split('/');
        for p in &self.prefix {
            match levels.next() {
                None => return false,
                Some("#") => return true,
                Some(f) if f == "+" || p == "+" || f == p => {}
                Some(_) => return false,
            }
        }
        true
    }

    /// Whether every topic `filter` matches starts with the prefix.
    fn covers(&self, filter: &str) -> bool {
        let mut levels = filter.split('/');
        self.prefix.iter().all(|p| match levels.next() {
            None | Some("#") => false,
            Some(f) => p == "+" || (f != "+" && f == p),
        })
    }
}

/// The rules in their configured order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicMap {
    rules: Vec<MappingRule>,
}

impl TopicMap {
    pub fn new(rules: Vec<MappingRule>) -> TopicMap {
        TopicMap { rules }
    }

    /// The rules as `--mqtt-mapping` spells them, comma-separated (the effective settings).
    pub fn describe(&self) -> String {
        let rules: Vec<String> = self.rules.iter().map(|r| format!("{}={}", r.prefix.join("/"), r.topic)).collect();
        rules.join(",")
    }

    /// The log topic an MQTT topic name is published to.
    pub fn log_topic_for(&self, mqtt_topic: &str) -> String {
        match self.rules.iter().find(|r| r.takes(mqtt_topic)) {
            Some(rule) => rule.topic.clone(),
            None => topics::log_topic_for(mqtt_topic),
        }
    }

    /// The log topics a filter reads, or `None` for every topic (a wildcard first level).
    pub fn filter_log_topics(&self, filter: &str) -> Option<Vec<String>> {
        let first_level = topics::filter_log_topic(filter)?;
        let mut out = Vec::new();
        if !self.rules.iter().any(|r| r.covers(filter)) {
            out.push(first_level);
        }
        for rule in self.rules.iter().filter(|r| r.overlaps(filter)) {
            if !out.contains(&rule.topic) {
                out.push(rule.topic.clone());
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> TopicMap {
        TopicMap::new(vec![
            MappingRule::new("factory/+/sensors", "sensors").expect("rule"),
            MappingRule::new("factory", "plant").expect("rule"),
        ])
    }

    #[test]
    fn names_go_to_the_first_rule_that_takes_them() {
        let map = map();
        assert_eq!(map.log_topic_for("factory/7/sensors/temp"), "sensors");
        assert_eq!(map.log_topic_for("factory/7/sensors"), "sensors");
        assert_eq!(map.log_topic_for("factory/7/alarms"), "plant");
        assert_eq!(map.log_topic_for("home/kitchen"), "home");
        assert_eq!(TopicMap::default().log_topic_for("factory/7/sensors"), "factory");
        assert_eq!(map.describe(), "factory/+/sensors=sensors,factory=plant");
    }

    #[test]
    fn filters_read_the_topics_their_matches_may_go_to() {
        let map = map();
        assert_eq!(map.filter_log_topics("factory/+/sensors/#"), Some(vec!["sensors".into(), "plant".into()]));
        assert_eq!(map.filter_log_topics("factory/#"), Some(vec!["sensors".into(), "plant".into()]));
        assert_eq!(map.filter_log_topics("home/#"), Some(vec!["home".into()]));
        // `sensors/x` is not under a rule's prefix: its own first level.
        assert_eq!(map.filter_log_topics("sensors/#"), Some(vec!["sensors".into()]));
        assert_eq!(map.filter_log_topics("+/x"), None);
        let only = TopicMap::new(vec![MappingRule::new("factory/+/sensors", "sensors").expect("rule")]);
        assert_eq!(only.filter_log_topics("factory/1/sensors/t"), Some(vec!["sensors".into()]));
        assert_eq!(only.filter_log_topics("factory/#"), Some(vec!["factory".into(), "sensors".into()]));
    }

    #[test]
    fn bad_rules_are_refused() {
        for (prefix, topic) in [("", "t"), ("a/#", "t"), ("a+", "t"), ("a", "bad name"), ("a", "__consumer_offsets")] {
            assert!(MappingRule::new(prefix, topic).is_err(), "{prefix} {topic}");
        }
    }
}
