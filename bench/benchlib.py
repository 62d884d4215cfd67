"""Helpers shared by the benchmark drivers: ports, process statistics, result files."""

import os
import socket
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port(kind=socket.SOCK_STREAM):
    """A free loopback port (TCP by default, UDP with kind=socket.SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """User + system CPU time of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    """Resident memory of a process, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))


def utc_stamp():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%MZ")


def publish(name, stamp, lines):
    """Prints the report and writes it to bench/results/<name>-<stamp>.md."""
    text = "\n".join(lines)
    out = ROOT / "bench/results" / f"{name}-{stamp}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written to {out.relative_to(ROOT)}")
