//! KIP-430 authorized operations, as Metadata, DescribeCluster and DescribeGroups report
//! them when asked: a bit field with bit `n` set for `AclOperation` code `n`. Without an
//! authorizer Kafka allows, and so reports, every operation that applies to the resource
//! type (its `AclEntry.supportedOperations`), and so does Sluice without `--authorizer acl`;
//! with it, each set is narrowed to what the principal may do (`narrowed`).

/// Kafka's `AclOperation` codes.
const READ: u32 = 3;
const WRITE: u32 = 4;
const CREATE: u32 = 5;
const DELETE: u32 = 6;
const ALTER: u32 = 7;
const DESCRIBE: u32 = 8;
const CLUSTER_ACTION: u32 = 9;
const DESCRIBE_CONFIGS: u32 = 10;
const ALTER_CONFIGS: u32 = 11;
const IDEMPOTENT_WRITE: u32 = 12;

const fn bits(operations: &[u32]) -> i32 {
    let mut field = 0;
    let mut i = 0;
    while i < operations.len() {
        field |= 1 << operations[i];
        i += 1;
    }
    field
}

/// Every operation on a topic.
pub const TOPIC: i32 = bits(&[READ, WRITE, CREATE, DESCRIBE, DELETE, ALTER, DESCRIBE_CONFIGS, ALTER_CONFIGS]);
/// Every operation on a consumer group (Kafka 3.x: groups have no configs yet).
pub const GROUP: i32 = bits(&[READ, DESCRIBE, DELETE]);
/// Every operation on the cluster.
pub const CLUSTER: i32 =
    bits(&[CREATE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, ALTER, DESCRIBE]);

// The values a Kafka 3.x broker without an authorizer sends.
const _: () = assert!(TOPIC == 3576 && GROUP == 328 && CLUSTER == 8096);

/// `set` when the request asked for the operations, else Kafka's "not asked" (i32::MIN).
pub fn if_asked(asked: bool, set: i32) -> i32 {
    if asked {
        set
    } else {
        i32::MIN
    }
}

/// KIP-430 with an authorizer: the operations of `full` that `may` allows the principal on
/// the resource (Kafka's authorizer answers per principal, implied operations included);
/// "not asked" stays not asked.
pub fn narrowed(full: i32, may: impl Fn(i8) -> bool) -> i32 {
    if full == i32::MIN {
        return full;
    }
    (0..31u8).filter(|op| full & (1 << op) != 0 && may(*op as i8)).fold(0, |set, op| set | 1 << op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowed_keeps_only_what_is_allowed_and_not_asked_stays() {
        assert_eq!(narrowed(TOPIC, |_| true), TOPIC);
        assert_eq!(narrowed(TOPIC, |_| false), 0);
        let read_and_describe = narrowed(TOPIC, |op| op == READ as i8 || op == DESCRIBE as i8);
        assert_eq!(read_and_describe, (1 << READ) | (1 << DESCRIBE));
        assert_eq!(narrowed(i32::MIN, |_| true), i32::MIN);
    }
}
