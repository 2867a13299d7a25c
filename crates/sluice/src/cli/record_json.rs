//! How a consumed record is printed: its value as a line, or one JSON object. Bytes that are
//! UTF-8 print as text; others print as hex with an `*_encoding` field saying so, the same
//! convention as the admin API's message browser. Fields keep a fixed, readable order
//! (partition, offset, timestamp, key, headers, value) for people reading the stream.

use bytes::Bytes;
use serde_json::{json, Map, Value};
use sluice_records::convert::StoredRecord;

/// One record as one line of JSON, fields in the documented order (serde_json's map sorts
/// keys, so the object is written field by field).
pub fn to_json_line(partition: i32, record: &StoredRecord) -> String {
    let object = to_json(partition, record);
    let mut line = String::from("{");
    let order = ["partition", "offset", "timestamp", "key", "key_encoding", "headers", "value", "value_encoding"];
    for field in order {
        if let Some(value) = object.get(field) {
            if line.len() > 1 {
                line.push(',');
            }
            line.push_str(&format!("{}:{value}", Value::String(field.to_string())));
        }
    }
    line.push('}');
    line
}

/// One record as a JSON object: partition, offset, timestamp, key, headers, value.
pub fn to_json(partition: i32, record: &StoredRecord) -> Value {
    let mut object = Map::new();
    object.insert("partition".into(), json!(partition));
    object.insert("offset".into(), json!(record.offset));
    object.insert("timestamp".into(), json!(record.timestamp));
    put_bytes(&mut object, "key", record.key.as_ref());
    let headers: Vec<Value> = record
        .headers
        .iter()
        .map(|(key, value)| {
            let mut header = Map::new();
            header.insert("key".into(), json!(key));
            put_bytes(&mut header, "value", value.as_ref());
            Value::Object(header)
        })
        .collect();
    object.insert("headers".into(), Value::Array(headers));
    put_bytes(&mut object, "value", record.value.as_ref());
    Value::Object(object)
}

/// The value as one output line: UTF-8 as is (lossy otherwise), a null value as empty.
pub fn value_line(record: &StoredRecord) -> String {
    record.value.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default()
}

fn put_bytes(object: &mut Map<String, Value>, field: &str, bytes: Option<&Bytes>) {
    let value = match bytes {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => Value::String(text.to_string()),
            Err(_) => {
                object.insert(format!("{field}_encoding"), json!("hex"));
                Value::String(b.iter().map(|byte| format!("{byte:02x}")).collect())
            }
        },
    };
    object.insert(field.to_string(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stays_text_and_binary_becomes_hex() {
        let record = StoredRecord {
            offset: 4,
            timestamp: 1000,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(&[0xff, 0x00])),
            headers: vec![("h".into(), Some(Bytes::from_static(b"v"))), ("n".into(), None)],
        };
        let json = to_json(2, &record);
        assert_eq!(json["partition"], 2);
        assert_eq!(json["key"], "k");
        assert_eq!(json["value"], "ff00");
        assert_eq!(json["value_encoding"], "hex");
        assert_eq!(json["headers"][0]["value"], "v");
        assert_eq!(json["headers"][1]["value"], Value::Null);
        let line = to_json_line(2, &record);
        assert!(line.starts_with(r#"{"partition":2,"offset":4,"timestamp":1000,"key":"k","headers":["#), "{line}");
        assert!(line.ends_with(r#""value":"ff00","value_encoding":"hex"}"#), "{line}");
        assert_eq!(serde_json::from_str::<Value>(&line).unwrap(), json);
    }
}
