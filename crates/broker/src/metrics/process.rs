//! The process's own figures under Prometheus's conventional `process_*` names, read
//! from `/proc/self` at scrape time. Elsewhere than Linux these series are simply absent.

use super::families::Family;
use prometheus::proto::MetricFamily;

/// Linux reports CPU times in clock ticks of `USER_HZ`, which is 100 on every
/// architecture's user ABI (`sysconf(_SC_CLK_TCK)` returns it); reading it would need libc.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

pub fn collect(started_at_seconds: f64, out: &mut Vec<MetricFamily>) {
    let mut start = Family::gauge("process_start_time_seconds", "When the broker started, in seconds since the epoch.");
    start.add(&[], started_at_seconds);
    start.finish(out);
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        gauge_kib(&status, "VmRSS:", "process_resident_memory_bytes", "Resident memory size in bytes.", out);
        gauge_kib(&status, "VmSize:", "process_virtual_memory_bytes", "Virtual memory size in bytes.", out);
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        let mut open = Family::gauge("process_open_fds", "Open file descriptors (files, sockets, pipes).");
        open.add(&[], entries.count() as f64);
        open.finish(out);
    }
    if let Some(limit) = std::fs::read_to_string("/proc/self/limits").ok().and_then(|l| max_open_files(&l)) {
        let mut max = Family::gauge("process_max_fds", "Limit on open file descriptors (soft RLIMIT_NOFILE).");
        max.add(&[], limit);
        max.finish(out);
    }
    if let Some(ticks) = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| cpu_ticks(&s)) {
        let mut cpu = Family::counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds.");
        cpu.add(&[], ticks as f64 / CLOCK_TICKS_PER_SECOND);
        cpu.finish(out);
    }
}

/// A `Key:   1234 kB` line of `/proc/self/status`, in bytes.
fn gauge_kib(status: &str, key: &str, name: &str, help: &str, out: &mut Vec<MetricFamily>) {
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok());
    if let Some(kib) = kib {
        let mut family = Family::gauge(name, help);
        family.add(&[], (kib * 1024) as f64);
        family.finish(out);
    }
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse::<f64>().ok()
}

/// utime + stime from `/proc/self/stat`. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) sit at 11 and 12.
    let utime = fields.get(11)?.parse::<u64>().ok()?;
    let stime = fields.get(12)?.parse::<u64>().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_formats() {
        let stat = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 123 0 0";
        assert_eq!(cpu_ticks(stat), Some(300));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024.0));
    }

    #[test]
    fn reads_this_process() {
        let mut out = Vec::new();
        collect(1.0, &mut out);
        let names: Vec<&str> = out.iter().map(|f| f.name()).collect();
        assert!(names.contains(&"process_start_time_seconds"));
        if cfg!(target_os = "linux") {
            assert!(names.contains(&"process_resident_memory_bytes"), "{names:?}");
            assert!(names.contains(&"process_open_fds"), "{names:?}");
        }
    }
}
