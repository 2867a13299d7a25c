//! The process's open-file limit (`RLIMIT_NOFILE`) and the file cache sized from it.

use std::io;

use crate::file_cache;

/// Share of the open-file limit the segment file cache may use: the rest is for client
/// connections, state files and the transient descriptors of fsyncs and scans.
pub const CACHE_SHARE_DIVISOR: u64 = 2;

/// The open-file limit before and after `raise_open_files_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFilesLimit {
    pub soft_before: u64,
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (as Kafka's and Redpanda's packaging
/// do) and sizes the shared file cache to a share of the result.
pub fn raise_open_files_limit() -> io::Result<OpenFilesLimit> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let soft_before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    let soft = limit.rlim_cur;
    file_cache::set_open_files_max(usize::try_from(soft / CACHE_SHARE_DIVISOR).unwrap_or(usize::MAX));
    Ok(OpenFilesLimit { soft_before, soft, hard: limit.rlim_max })
}
