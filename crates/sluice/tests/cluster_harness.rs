//! Proves the cluster harness's own parts that need no cluster: ports per IP address are free
//! and never handed out twice, and network namespaces on one bridge reach each other and the
//! root namespace over TCP until a link is cut, again once healed, and leave nothing behind.

mod cluster_support;
mod common;
mod history;

use cluster_support::netns::{self, Network};
use common::ports::free_port;
use common::wait_until;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The echo server's port inside its namespace (a fresh network stack: nothing else is there).
const ECHO_PORT: u16 = 7000;
/// Bound on one echo round trip; a cut link must fail within it.
const ECHO_TIMEOUT: Duration = Duration::from_secs(1);
/// Bound on a healed link carrying traffic again.
const HEAL_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn ports_are_free_on_their_own_address_and_never_handed_out_twice() {
    let ip = Ipv4Addr::new(127, 0, 0, 12);
    let ports: Vec<u16> = (0..200).map(|_| free_port(ip)).collect();
    assert_eq!(ports.iter().collect::<BTreeSet<_>>().len(), ports.len(), "a port was handed out twice");
    let listeners: Vec<TcpListener> =
        ports.iter().take(20).map(|p| TcpListener::bind((ip, *p)).expect("a handed-out port binds")).collect();
    assert_eq!(listeners.len(), 20);
}

/// Runs `f` on a new thread inside host `i`'s namespace (the caller's thread stays put).
fn in_namespace<T: Send>(network: &Network, i: usize, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            network.enter(i).expect("setns");
            f()
        })
        .join()
        .expect("namespace thread")
    })
}

/// Connects to `addr`, sends a line and reads it back.
fn echo(addr: SocketAddr) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, ECHO_TIMEOUT)?;
    stream.set_read_timeout(Some(ECHO_TIMEOUT))?;
    stream.write_all(b"ping\n")?;
    let mut answer = [0u8; 5];
    stream.read_exact(&mut answer)?;
    if &answer == b"ping\n" {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("echo answered {answer:?}")))
    }
}

/// Echoes every connection to `listener` until `stop`.
fn serve_echo(listener: TcpListener, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(ECHO_TIMEOUT));
                    let mut line = [0u8; 5];
                    if stream.read_exact(&mut line).is_ok() {
                        let _ = stream.write_all(&line);
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    })
}

fn command_output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect("run command");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn namespaces_talk_over_the_bridge_until_cut_and_again_once_healed() {
    // Root and iproute2 are what `scripts/install-test-deps.sh` guarantees: no silent skip.
    assert!(netns::available(), "network namespaces need root and the `ip` tool (iproute2)");
    let network = Network::create(2);
    let (ns1, ns2) = (network.namespace(1).to_string(), network.namespace(2).to_string());
    let server = SocketAddr::from((network.addr(1), ECHO_PORT));
    let listener = in_namespace(&network, 1, || TcpListener::bind(server)).expect("bind in namespace 1");
    let stop = Arc::new(AtomicBool::new(false));
    let echo_thread = serve_echo(listener, Arc::clone(&stop));

    echo(server).expect("root namespace reaches host 1 over the bridge");
    in_namespace(&network, 2, || echo(server)).expect("host 2 reaches host 1 over the bridge");

    network.cut(1);
    assert!(in_namespace(&network, 2, || echo(server)).is_err(), "host 2 still reaches a cut host 1");
    assert!(echo(server).is_err(), "the root namespace still reaches a cut host 1");

    network.heal(1);
    wait_until(HEAL_TIMEOUT, "host 2 reaching host 1 again after heal", || {
        in_namespace(&network, 2, || echo(server)).is_ok()
    });
    echo(server).expect("root namespace reaches host 1 after heal");

    stop.store(true, Ordering::SeqCst);
    echo_thread.join().expect("echo thread");
    drop(network);
    let namespaces = command_output("ip", &["netns", "list"]);
    assert!(!namespaces.contains(&ns1) && !namespaces.contains(&ns2), "namespaces left: {namespaces}");
    let links = command_output("ip", &["-o", "link", "show"]);
    let tag = ns1.trim_start_matches("sluice-").trim_end_matches("-1");
    assert!(!links.contains(&format!("s{tag}")), "links left behind: {links}");
}

#[test]
fn a_program_started_in_a_namespace_keeps_its_pid_and_lives_there() {
    // Root and iproute2 are what `scripts/install-test-deps.sh` guarantees: no silent skip.
    assert!(netns::available(), "network namespaces need root and the `ip` tool (iproute2)");
    let network = Network::create(1);
    let mut child = network.command(1, "sleep").arg("30").spawn().expect("spawn sleep in namespace");
    let pid = child.id();
    // `ip netns exec` execs in place: the PID we hold becomes `sleep` itself, so kill -9 by
    // that PID reaches the program (a node), not a wrapper.
    wait_until(Duration::from_secs(10), "the child to become `sleep`", || {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).expect("child's netns");
    let ours = std::fs::read_link("/proc/self/ns/net").expect("our netns");
    assert_ne!(theirs, ours, "the child runs in the root namespace");
    child.kill().expect("kill");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "sleep 30 was killed, not finished");
}
