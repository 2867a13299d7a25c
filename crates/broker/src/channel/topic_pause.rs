//! A paused NSQ topic survives a restart, as nsqd keeps it in its metadata file: an empty
//! marker file `paused` beside the topic's channel checkpoints (`channels/<topic>/`). The
//! checkpoint loader reads only `*.json`, so the marker never looks like a channel.

use std::io;
use std::path::Path;

const MARKER: &str = "paused";

/// Records `paused` for the topic whose channel directory is `topic_dir`, durably.
pub fn write(topic_dir: &Path, paused: bool) -> io::Result<()> {
    let marker = topic_dir.join(MARKER);
    if paused {
        sluice_log::durable_dir::create_dir_all(topic_dir)?;
        sluice_log::durable_dir::create_file(&marker)
    } else {
        match std::fs::remove_file(&marker) {
            Ok(()) => sluice_log::durable_dir::sync_parent(&marker),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Whether the topic was paused when last recorded.
pub fn read(topic_dir: &Path) -> bool {
    topic_dir.join(MARKER).is_file()
}
