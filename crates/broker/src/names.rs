//! Topic name rules, as Kafka enforces them (`Topic.validate`).

use crate::error::BrokerError;

/// Kafka's limit: 249, so that `<topic>-<partition>` and suffixes fit in 255-byte file names.
pub const TOPIC_NAME_LEN_MAX: usize = 249;

pub fn validate_topic_name(name: &str) -> Result<(), BrokerError> {
    if name.is_empty() {
        return Err(BrokerError::InvalidTopic("topic name is empty".into()));
    }
    if name == "." || name == ".." {
        return Err(BrokerError::InvalidTopic(format!("topic name cannot be '{name}'")));
    }
    if name.len() > TOPIC_NAME_LEN_MAX {
        return Err(BrokerError::InvalidTopic(format!("topic name is longer than {TOPIC_NAME_LEN_MAX} characters")));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_' || *c == '-')) {
        return Err(BrokerError::InvalidTopic(format!(
            "topic name '{name}' contains '{c}'; legal characters are ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kafka_legal_names_and_rejects_others() {
        for ok in ["a", "orders.v1", "my_topic-2", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "ü", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
