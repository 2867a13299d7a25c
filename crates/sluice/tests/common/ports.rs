//! Free ports per IP address: each cluster node is its own "host" (127.0.0.x), and parallel tests
//! of one binary share those addresses, so a port handed out once is never handed out again in
//! this process (a picked port is only bound later, by the broker).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Lowest port tried: above the well-known and registered services a test machine may run.
const PORT_LOW: u16 = 20_000;
/// Attempts at a random port below the ephemeral range before falling back to bind(:0).
const RANDOM_TRIES_MAX: u32 = 200;
/// The kernel's usual ephemeral range start, if /proc does not say.
const EPHEMERAL_LOW_DEFAULT: u16 = 32_768;

/// Every (address, port) this process handed out.
static HANDED_OUT: Mutex<BTreeSet<(Ipv4Addr, u16)>> = Mutex::new(BTreeSet::new());

/// A port free on `ip` a moment ago and never handed out before by this process. Preferably
/// below the kernel's ephemeral range: a node restarted on its port must not find it taken by
/// some outgoing connection's local port in the meantime. Falls back to bind(ip:0).
pub fn free_port(ip: Ipv4Addr) -> u16 {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    let ephemeral_low = ephemeral_low();
    let mut seed = seed();
    if ephemeral_low > PORT_LOW + 1000 {
        for _ in 0..RANDOM_TRIES_MAX {
            seed = xorshift(seed);
            let port = PORT_LOW + (seed % u64::from(ephemeral_low - PORT_LOW)) as u16;
            if !handed_out.contains(&(ip, port)) && TcpListener::bind((ip, port)).is_ok() {
                handed_out.insert((ip, port));
                return port;
            }
        }
    }
    for _ in 0..RANDOM_TRIES_MAX {
        let listener = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_else(|e| panic!("local addr on {ip}: {e}"));
        if handed_out.insert((ip, port)) {
            return port;
        }
    }
    panic!("no free port on {ip} after {RANDOM_TRIES_MAX} tries");
}

fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(EPHEMERAL_LOW_DEFAULT)
}

fn seed() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    (nanos ^ (u64::from(std::process::id()) << 32)) | 1
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}
