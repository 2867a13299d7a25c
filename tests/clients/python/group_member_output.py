"""What the cluster group member programs (cluster_group_member.py, kafka-python;
cluster_group_member_confluent.py, confluent-kafka) share: their output lines, written whole
from any thread, and their stop signal (stdin closed by the test)."""
import sys
import threading

_lock = threading.Lock()


def line(text):
    """Writes one event line (`assigned`, `read`, `error`, `done`) and flushes it."""
    with _lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def stop_when_stdin_closes():
    """An Event set once the test closes the program's stdin."""
    stop = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    return stop
