//! Reading a consumer-protocol member assignment (what SyncGroup hands each member), so the
//! admin API can show which partitions each member owns. The broker never needs it itself:
//! Kafka's coordinator treats assignments as opaque bytes, and so does ours.

/// Topics one assignment may name before the rest is ignored (bounds a hostile blob).
const TOPICS_MAX: usize = 10_000;
/// Partitions one topic of an assignment may list before the rest is ignored.
const PARTITIONS_MAX: usize = 100_000;

/// The topics and partitions of a `consumer` protocol assignment (version: i16, then
/// [topic: string, partitions: [i32]], then user data, in every version 0–3). Bytes that do
/// not parse yield what was read before them; an empty or foreign blob yields nothing.
pub fn assigned_partitions(assignment: &[u8]) -> Vec<(String, Vec<i32>)> {
    let mut reader = Reader(assignment);
    let mut out = Vec::new();
    let (Some(_version), Some(topics)) = (reader.i16(), reader.i32()) else { return out };
    for _ in 0..(topics.max(0) as usize).min(TOPICS_MAX) {
        let Some(topic) = reader.string() else { break };
        let Some(count) = reader.i32() else { break };
        let mut partitions = Vec::new();
        for _ in 0..(count.max(0) as usize).min(PARTITIONS_MAX) {
            let Some(p) = reader.i32() else { break };
            partitions.push(p);
        }
        out.push((topic, partitions));
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            self.0 = &[];
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Option<i32> {
        self.take(4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        self.take(len).map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_topics_and_partitions_and_survives_garbage() {
        let mut blob = vec![0, 1, 0, 0, 0, 2];
        for (topic, parts) in [("a", &[0i32, 2][..]), ("bc", &[1i32][..])] {
            blob.extend_from_slice(&(topic.len() as i16).to_be_bytes());
            blob.extend_from_slice(topic.as_bytes());
            blob.extend_from_slice(&(parts.len() as i32).to_be_bytes());
            for p in parts {
                blob.extend_from_slice(&p.to_be_bytes());
            }
        }
        blob.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(assigned_partitions(&blob), vec![("a".to_string(), vec![0, 2]), ("bc".to_string(), vec![1])]);
        assert!(assigned_partitions(&[]).is_empty());
        assert_eq!(assigned_partitions(&blob[..blob.len() - 9]), vec![("a".to_string(), vec![0, 2])]);
    }
}
