"""Start Sluice and Mosquitto side by side for the MQTT benchmarks (issue 14).

Shared by `bench-mqtt-fanout.py` and `bench-mqtt-idle.py`, and the same setup as
`bench-mqtt.sh`: each broker on free loopback ports with its own temp directory, Sluice with
its defaults (flush `always`: fsync before a QoS 1 PUBACK), Mosquitto with a config of one
loopback listener, `allow_anonymous true` and its defaults otherwise (so no persistence).
A broker is stopped by the PID this module started, never by name.
"""
import os, shutil, socket, subprocess, sys, tempfile, time


def require_mosquitto():
    """Exit with a hint when Debian's Mosquitto or its clients are missing (never installs)."""
    missing = [tool for tool in ("mosquitto", "mosquitto_pub", "mosquitto_sub") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"missing {' '.join(missing)}: install with `apt-get install -y mosquitto mosquitto-clients`")


def mosquitto_version():
    out = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "mosquitto (version unknown)"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, secs=10.0):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {secs} s")


def proc_status_kb(pid):
    """VmRSS and RssAnon of a process, kB, from /proc/PID/status."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile"):
                fields[name] = int(rest.split()[0])
    return fields


def cpu_secs(pid):
    """User + system CPU seconds the process has used (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Broker:
    """One running broker: `name`, `port` (its MQTT listener), `pid`; `stop()` ends it."""

    def __init__(self, name, argv, port, workdir):
        self.name, self.port, self.workdir = name, port, workdir
        self.log = open(os.path.join(workdir, f"{name}.log"), "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        try:
            wait_port(port)
        except RuntimeError:
            self.stop()
            raise

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start_sluice(binary, workdir, extra=()):
    port = free_port()
    argv = [binary, "serve", "--data-dir", os.path.join(workdir, "sluice-data"),
            "--mqtt-addr", f"127.0.0.1:{port}", "--kafka-addr", f"127.0.0.1:{free_port()}",
            "--nsq-tcp-addr", f"127.0.0.1:{free_port()}", "--http-addr", f"127.0.0.1:{free_port()}",
            "--mqtt-ws-addr", f"127.0.0.1:{free_port()}", *extra]
    return Broker("sluice", argv, port, workdir)


def start_mosquitto(workdir, extra_conf=""):
    port = free_port()
    conf = os.path.join(workdir, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest stderr\n{extra_conf}")
    os.chmod(workdir, 0o755)  # mosquitto started as root drops to its own user and must read its config
    os.chmod(conf, 0o644)
    return Broker("mosquitto", ["mosquitto", "-c", conf], port, workdir)


def temp_workdir(prefix):
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])
