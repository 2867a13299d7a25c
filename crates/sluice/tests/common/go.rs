//! Builds the Go client programs under `tests/clients/` in GOPATH mode against Debian's
//! sarama 1.22 (`/usr/share/gocode`), once per test binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::run_ok;

/// Bound for compiling (the first build compiles sarama and its cgo zstd binding).
const GO_BUILD_TIMEOUT: Duration = Duration::from_secs(600);
/// Debian's GOPATH holding sarama and its dependencies.
const SYSTEM_GOPATH: &str = "/usr/share/gocode";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Copies `tests/clients/<clients_dir>` into a private GOPATH as package `package`, builds
/// `programs` (e.g. `./syncproducer`) and returns the directory holding the binaries.
pub fn build_programs(clients_dir: &str, package: &str, programs: &[&str]) -> PathBuf {
    let sources = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients").join(clients_dir);
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(clients_dir);
    let gopath = root.join("gopath");
    let src = gopath.join("src").join(package);
    let bin = root.join("bin");
    let _ = std::fs::remove_dir_all(&src);
    copy_dir(&sources, &src);
    std::fs::create_dir_all(&bin).unwrap();
    run_ok(
        Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .args(programs)
            .current_dir(&src)
            .env("GO111MODULE", "off")
            .env("GOFLAGS", "")
            .env("GOPATH", format!("{}:{SYSTEM_GOPATH}", gopath.display()))
            .env("GOCACHE", root.join("gocache"))
            .stdin(Stdio::null()),
        GO_BUILD_TIMEOUT,
    );
    bin
}
