//! Proves the cluster id is created only when its file is missing: a restart keeps it,
//! and an unreadable or damaged file fails start-up instead of minting a new identity.

use sluice_broker::{Broker, BrokerConfig};

fn open(dir: &std::path::Path) -> Result<std::sync::Arc<Broker>, sluice_broker::BrokerError> {
    Broker::open(BrokerConfig::new(dir))
}

/// The first start creates an id and a restart reads the same one back.
#[test]
fn created_once_then_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = open(dir.path()).expect("first open").cluster_id().to_string();
    assert_eq!(std::fs::read_to_string(dir.path().join("cluster_id")).expect("read"), first);
    let again = open(dir.path()).expect("second open").cluster_id().to_string();
    assert_eq!(first, again);
    assert!(!dir.path().join("cluster_id.tmp").exists());
}

/// A cluster id file that cannot be read as text fails start-up and is left as it was.
#[test]
fn unreadable_id_fails_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cluster_id");
    std::fs::write(&path, [0xff, 0xfe, 0x00]).expect("write");
    let error = open(dir.path()).err().expect("start-up must fail");
    assert!(error.to_string().contains("cluster_id"), "{error}");
    assert_eq!(std::fs::read(&path).expect("read"), [0xff, 0xfe, 0x00]);
}

/// An empty cluster id file (damaged) fails start-up rather than being replaced.
#[test]
fn empty_id_fails_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cluster_id");
    std::fs::write(&path, b"").expect("write");
    assert!(open(dir.path()).is_err());
    assert_eq!(std::fs::read(&path).expect("read"), b"");
}
