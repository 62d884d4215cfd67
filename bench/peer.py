#!/usr/bin/env python3
"""Server peer benchmark: Switchboard's server peer against a webrtc-rs server, same load, one run.

Both servers do the same job (bench/anchors/webrtc-rs-echo, crates/peer/examples/echo.rs): accept
a browser-style offer on POST /connect (data channels pre-negotiated with ids 0 and 1) and echo
every message on its channel. The load generator (`switchboard-bench peer`, on str0m) opens
COUNT connections, CONCURRENCY at a time, then pumps RATE messages per second per connection for
SECS seconds: 64-byte unreliable, then 1 KiB reliable; then FLOOD_RATE 64-byte unreliable messages
per second per connection, more than either server can echo on this machine, to see how much each
gets through when overloaded. The anchor named in the issue, geckos.io,
does not install here (its node-datachannel needs a prebuilt binary from GitHub).

Prints a table and writes it to bench/results/peer-<UTC time>.md.
"""

import json
import os
import re
import resource
import subprocess
import sys
import threading

from benchlib import ROOT, publish, utc_stamp

COUNT = int(os.environ.get("COUNT", "1000"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "32"))
SECS = int(os.environ.get("SECS", "8"))
RATE = int(os.environ.get("RATE", "10"))
FLOOD_RATE = int(os.environ.get("FLOOD_RATE", "100"))
BENCH = ROOT / "target/release/switchboard-bench"
ECHO = ROOT / "target/release/examples/echo"
ANCHOR_DIR = ROOT / "bench/anchors/webrtc-rs-echo"
ANCHOR = ANCHOR_DIR / "target/release/webrtc-rs-echo"


def sh(*args, **kw):
    print("+", " ".join(str(a) for a in args), file=sys.stderr)
    subprocess.run(args, check=True, **kw)


def serve(cmd):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = proc.stdout.readline()
    match = re.search(r"http://([^/\s]+)/", first)
    if not match:
        proc.kill()
        raise RuntimeError(f"{cmd[0]} did not start: {first!r}")
    # Keep draining its output so it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, match.group(1)


def measure(cmd):
    proc, http = serve(cmd)
    try:
        out = subprocess.run([BENCH, "peer", "--http", http, "--server-pid", str(proc.pid), "--count", str(COUNT),
                              "--concurrency", str(CONCURRENCY), "--secs", str(SECS), "--rate", str(RATE),
                              "--flood-rate", str(FLOOD_RATE)],
                             check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        # Server CPU per 1,000 echoed messages: the servers' own cost, whatever the offered load.
        for phase in ("unreliable64", "reliable1k", "flood64"):
            echoed = result.get(f"{phase}_echoed_per_s", 0) * SECS
            if echoed:
                result[f"{phase}_cpu_ms_per_1k"] = result[f"{phase}_server_cpu_s"] * 1e6 / echoed
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def ratio(ours, theirs, higher_is_better=True):
    if not ours or not theirs:
        return "n/a"
    return f"{(ours / theirs if higher_is_better else theirs / ours):.2f}x"


def main():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sh("cargo", "build", "--release", "-q", "-p", "switchboard-bench", "-p", "switchboard-peer", "--examples", "--bins", cwd=ROOT)
    sh("cargo", "build", "--release", "-q", cwd=ANCHOR_DIR)
    ours = measure([ECHO, "127.0.0.1:0", "127.0.0.1:0"])
    theirs = measure([ANCHOR, "127.0.0.1:0"])
    rows = [
        ("connections opened (of COUNT)", "connected", True, "{:,.0f}"),
        ("connections per second", "connections_per_s", True, "{:,.1f}"),
        ("connect time p50, ms (offer to both channels open)", "connect_p50_ms", False, "{:,.0f}"),
        ("connect time p99, ms", "connect_p99_ms", False, "{:,.0f}"),
        ("server CPU to accept all, s", "server_cpu_connect_s", False, "{:,.2f}"),
        ("memory per idle peer, KiB", "idle_bytes_per_peer", False, "{:,.1f}"),
        ("unreliable 64 B echoed, msgs/s", "unreliable64_echoed_per_s", True, "{:,.0f}"),
        ("server CPU during unreliable phase, s", "unreliable64_server_cpu_s", False, "{:,.2f}"),
        ("server CPU per 1,000 unreliable echoes, ms", "unreliable64_cpu_ms_per_1k", False, "{:,.0f}"),
        ("reliable 1 KiB goodput echoed, KiB/s", "reliable1k_bytes_per_s", True, "{:,.0f}"),
        ("server CPU during reliable phase, s", "reliable1k_server_cpu_s", False, "{:,.2f}"),
        ("server CPU per 1,000 reliable 1,024 B echoes, ms", "reliable1k_cpu_ms_per_1k", False, "{:,.0f}"),
        ("memory per busy peer, KiB", "reliable1k_busy_bytes_per_peer", False, "{:,.1f}"),
        ("flood: unreliable 64 B offered, msgs/s", "flood64_offered_per_s", True, "{:,.0f}"),
        ("flood: unreliable 64 B echoed, msgs/s", "flood64_echoed_per_s", True, "{:,.0f}"),
        ("flood: server CPU per 1,000 echoes, ms", "flood64_cpu_ms_per_1k", False, "{:,.0f}"),
    ]
    stamp = utc_stamp()
    lines = [f"# Server peer benchmark ({stamp})", "",
             f"{COUNT} connections ({CONCURRENCY} at a time), then {RATE} msgs/s per connection for {SECS} s per phase, "
             f"then a flood of {FLOOD_RATE} msgs/s per connection; loopback, 2 cores shared by server and load generator.", "",
             "| measure | Switchboard server peer (str0m) | webrtc-rs 0.14 echo | ratio |", "|---|---|---|---|"]
    for label, key, higher, fmt in rows:
        a, b = ours.get(key), theirs.get(key)
        scale = 1 / 1024 if "KiB" in label else 1
        show = lambda v: fmt.format(v * scale) if isinstance(v, (int, float)) else "n/a"
        lines.append(f"| {label} | {show(a)} | {show(b)} | {ratio(a, b, higher)} |")
    lines += ["", "Raw: " + json.dumps({"switchboard": ours, "webrtc_rs": theirs})]
    publish("peer", stamp, lines)


if __name__ == "__main__":
    main()
