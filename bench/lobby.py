#!/usr/bin/env python3
"""Close-after-connect benchmark: server memory per detached peer, against a connected idle peer
in the same run.

Builds the release binaries, starts `switchboard serve` on loopback (no STUN; per-IP and total
limits raised, nothing else changed), opens peers in rooms of two that each detach after joining,
and reads the server's resident memory at several counts. Detached peers hold no socket, so they
are not bound by the 20,000 open-file limit. Prints a table and writes it to
bench/results/lobby-<UTC time>.md.
"""

import os
import resource

from benchlib import ROOT, publish, utc_stamp
from signaling import BENCH, SWITCHBOARD, Server, bench, sh

DETACHED_COUNTS = os.environ.get("DETACHED_COUNTS", "10000,50000,100000")
CONNECTED_COUNT = os.environ.get("CONNECTED_COUNT", "10000")
LIMITS = ["--max-connections", "1000000", "--max-connections-per-ip", "1000000"]


def measure(counts, detach):
    server = Server("switchboard", LIMITS)
    try:
        args = ["idle", "--server", f"127.0.0.1:{server.port}", "--server-pid", str(server.proc.pid),
                "--flavor", "switchboard", "--counts", counts, "--per-room", "2", "--sources", "64"]
        return bench(*args, *(["--detach"] if detach else []))
    finally:
        server.stop()


def main():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sh("cargo", "build", "--release", "-q", "-p", "switchboard", "-p", "switchboard-bench", cwd=ROOT)
    assert BENCH.exists() and SWITCHBOARD.exists()
    connected = measure(CONNECTED_COUNT, detach=False)
    detached = measure(DETACHED_COUNTS, detach=True)
    stamp = utc_stamp()
    lines = [
        f"# Close-after-connect: server memory per peer ({stamp})",
        "",
        "Rooms of two; `switchboard serve` defaults except raised connection limits; RSS from /proc.",
        "",
        "| peers | state | server RSS, MiB | per peer, KiB |",
        "|---|---|---|---|",
    ]
    for point in connected:
        lines.append(f"| {point['connections']:,} | connected, idle | {point['rss_kib'] / 1024:.0f} | "
                     f"{point['per_connection_bytes'] / 1024:.2f} |")
    for point in detached:
        lines.append(f"| {point['connections']:,} | detached | {point['rss_kib'] / 1024:.0f} | "
                     f"{point['per_connection_bytes'] / 1024:.2f} |")
    ratio = connected[0]["per_connection_bytes"] / detached[-1]["per_connection_bytes"]
    lines += ["", f"A detached peer costs {ratio:.0f}x less than a connected idle one "
              f"({detached[-1]['per_connection_bytes']:.0f} vs {connected[0]['per_connection_bytes']:.0f} bytes)."]
    publish("lobby", stamp, lines)


if __name__ == "__main__":
    main()
