//! Nodes in Linux network namespaces, each its own host on a bridge in the root namespace:
//! `ip netns add`, a veth pair per host (one end in the namespace, one on the bridge),
//! addresses 10.77.S.x/24. The test stays in the root namespace and reaches every host through
//! the bridge (10.77.S.254). `cut(i)` takes host i's link down (its packets go nowhere, as a
//! pulled cable); `heal(i)` brings it back.
//!
//! S (the subnet) is 0 unless another network of this machine uses it, so parallel tests do
//! not share a route. Every name carries this process's id and a counter; `Drop` deletes exactly
//! the namespaces and links this network created, newest first.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// First octets of every network's addresses: 10.77.S.0/24.
const SUBNET_PREFIX: [u8; 2] = [10, 77];
/// The root namespace's address on each bridge (the last usable one of the /24).
const ROOT_HOST_OCTET: u8 = 254;
/// Host i's last octet is `HOST_OCTET_BASE + i` (10.77.S.11 for node 1, like 127.0.0.11).
const HOST_OCTET_BASE: u8 = 10;
/// Hosts a network holds at most (so the octet stays below the root's).
pub const HOSTS_MAX: usize = (ROOT_HOST_OCTET - HOST_OCTET_BASE - 1) as usize;
/// Longest any single `ip` command may take (a loaded machine).
const IP_COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// Linux interface names hold at most 15 bytes (IFNAMSIZ 16 with the NUL).
const LINK_NAME_BYTES_MAX: usize = 15;

/// Subnets (S) in use by networks of this process.
static SUBNETS: Mutex<BTreeSet<u8>> = Mutex::new(BTreeSet::new());
/// Networks made by this process, for unique names.
static NETWORKS: AtomicU32 = AtomicU32::new(0);

/// Something this network created, deleted again by `Drop`.
#[derive(Debug, Clone)]
enum Created {
    Namespace(String),
    /// A link in the root namespace (a bridge, or the root end of a veth pair, whose deletion
    /// takes its namespace end with it).
    Link(String),
}

/// One host: a namespace with one address.
#[derive(Debug, Clone)]
pub struct Host {
    pub namespace: String,
    pub addr: Ipv4Addr,
    /// The veth end on the bridge, in the root namespace: what `cut` takes down.
    root_link: String,
}

pub struct Network {
    /// Unique to this network: in every name it creates.
    tag: String,
    subnet: u8,
    bridge: String,
    hosts: Vec<Host>,
    created: Vec<Created>,
}

/// Whether this machine lets us build namespaces: the `ip` tool exists and we are root.
pub fn available() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false);
    let has_ip = Command::new("ip").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    root && has_ip
}

impl Network {
    /// A bridge with `hosts` namespaces on it. Panics (a test setup failure) with `ip`'s words.
    pub fn create(hosts: usize) -> Network {
        let n = NETWORKS.fetch_add(1, Ordering::Relaxed);
        // pid and counter, base 36, cut to fit link names ("s" + tag + role + index).
        let tag = base36(u64::from(std::process::id()) * 1000 + u64::from(n % 1000));
        let subnet = claim_subnet();
        let mut network = Network { bridge: format!("s{tag}b"), tag, subnet, hosts: Vec::new(), created: Vec::new() };
        network.create_bridge();
        for _ in 0..hosts {
            network.add_host();
        }
        network
    }

    /// Adds one more host; returns its index (1-based).
    pub fn add_host(&mut self) -> usize {
        let i = self.hosts.len() + 1;
        assert!(i <= HOSTS_MAX, "a network holds at most {HOSTS_MAX} hosts");
        let namespace = format!("sluice-{}-{i}", self.tag);
        let root_link = self.link_name('h', i);
        let ns_link = self.link_name('n', i);
        let addr = self.addr_of(HOST_OCTET_BASE + i as u8);
        self.run(&["netns", "add", &namespace]);
        self.created.push(Created::Namespace(namespace.clone()));
        self.run(&["link", "add", &root_link, "type", "veth", "peer", "name", &ns_link]);
        self.created.push(Created::Link(root_link.clone()));
        self.run(&["link", "set", &ns_link, "netns", &namespace]);
        self.run(&["link", "set", &root_link, "master", &self.bridge.clone()]);
        self.run(&["link", "set", &root_link, "up"]);
        self.run(&["-n", &namespace, "link", "set", "lo", "up"]);
        self.run(&["-n", &namespace, "addr", "add", &format!("{addr}/24"), "dev", &ns_link]);
        self.run(&["-n", &namespace, "link", "set", &ns_link, "up"]);
        self.hosts.push(Host { namespace, addr, root_link });
        i
    }

    /// Host `i` (1-based).
    pub fn host(&self, i: usize) -> &Host {
        self.hosts.get(i.wrapping_sub(1)).unwrap_or_else(|| panic!("no host {i} in a network of {}", self.hosts.len()))
    }

    pub fn addr(&self, i: usize) -> Ipv4Addr {
        self.host(i).addr
    }

    pub fn namespace(&self, i: usize) -> &str {
        &self.host(i).namespace
    }

    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }

    /// The root namespace's address on the bridge.
    pub fn root_addr(&self) -> Ipv4Addr {
        self.addr_of(ROOT_HOST_OCTET)
    }

    /// Cuts host `i` off the bridge: nothing reaches it, nothing leaves it.
    pub fn cut(&self, i: usize) {
        let link = self.host(i).root_link.clone();
        self.run(&["link", "set", &link, "down"]);
    }

    /// Puts host `i` back on the bridge.
    pub fn heal(&self, i: usize) {
        let link = self.host(i).root_link.clone();
        self.run(&["link", "set", &link, "up"]);
    }

    /// A command running `program` inside host `i`'s namespace. `ip netns exec` execs the
    /// program in place, so the child's PID is the program's own (kill -9 reaches it).
    pub fn command(&self, i: usize, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.namespace(i), program]);
        cmd
    }

    /// Moves the calling thread into host `i`'s namespace: sockets it makes from then on live
    /// there (other threads stay where they are). For tests that play a host themselves.
    pub fn enter(&self, i: usize) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        /// setns(2)'s flag for a network namespace.
        const CLONE_NEWNET: i32 = 0x4000_0000;
        extern "C" {
            fn setns(fd: i32, nstype: i32) -> i32;
        }
        let file = std::fs::File::open(format!("/run/netns/{}", self.namespace(i)))?;
        // SAFETY: setns only reads the descriptor, which stays open for the call.
        let rc = unsafe { setns(file.as_raw_fd(), CLONE_NEWNET) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    fn create_bridge(&mut self) {
        let bridge = self.bridge.clone();
        self.run(&["link", "add", &bridge, "type", "bridge"]);
        self.created.push(Created::Link(bridge.clone()));
        self.run(&["addr", "add", &format!("{}/24", self.root_addr()), "dev", &bridge]);
        self.run(&["link", "set", &bridge, "up"]);
    }

    fn link_name(&self, role: char, i: usize) -> String {
        let name = format!("s{}{role}{i}", self.tag);
        assert!(name.len() <= LINK_NAME_BYTES_MAX, "link name {name} too long");
        name
    }

    fn addr_of(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET_PREFIX[0], SUBNET_PREFIX[1], self.subnet, last)
    }

    fn run(&self, args: &[&str]) {
        let mut cmd = Command::new("ip");
        cmd.args(args).stdin(Stdio::null());
        let out = crate::common::run_bounded(&mut cmd, IP_COMMAND_TIMEOUT);
        assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for created in self.created.iter().rev() {
            let args: Vec<&str> = match created {
                Created::Namespace(name) => vec!["netns", "del", name],
                Created::Link(name) => vec!["link", "del", name],
            };
            let status = Command::new("ip").args(&args).stdout(Stdio::null()).stderr(Stdio::null()).status();
            if !status.is_ok_and(|s| s.success()) {
                eprintln!("netns cleanup: `ip {}` failed", args.join(" "));
            }
        }
        SUBNETS.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.subnet);
    }
}

/// A subnet no network of this process uses and no address of the root namespace is in.
fn claim_subnet() -> u8 {
    let mut taken = SUBNETS.lock().unwrap_or_else(|p| p.into_inner());
    let out = Command::new("ip").args(["-o", "-4", "addr", "show"]).output().map(|o| o.stdout).unwrap_or_default();
    let addresses = String::from_utf8_lossy(&out).into_owned();
    let prefix = |s: u8| format!(" {}.{}.{s}.", SUBNET_PREFIX[0], SUBNET_PREFIX[1]);
    let subnet = (0..=u8::MAX)
        .find(|s| !taken.contains(s) && !addresses.contains(&prefix(*s)))
        .unwrap_or_else(|| panic!("every 10.77.x.0/24 is taken"));
    taken.insert(subnet);
    subnet
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}
