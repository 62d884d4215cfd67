#!/usr/bin/env python3
"""Native client benchmark: two Switchboard Rust clients (switchboard-client, str0m) against two
matchbox_socket 0.15 clients (webrtc-rs) through matchbox_server, same workload, one run.

Both signaling servers run for the whole run on loopback, and so does `switchboard serve`'s STUN
server, which both stacks use as their ICE server. Each round runs `switchboard-bench clients`
once per stack, in alternating order: PAIRS pairs connect one after the other (connect time is
join to both channels open, for both sides of each pair) and stay connected (memory per connected
client is this process's RSS growth over them); then one pair sends unreliable 64 B messages at
RATE a second for SECS seconds (delivered per second at the receiver, and loss), then
RELIABLE_MIB MiB of reliable 1 KiB messages offered at once (goodput to the last one). Medians
of ROUNDS rounds, with the spread (min to max).

Prints a table and writes it to bench/results/clients-<UTC time>.md.
"""

import json
import os
import socket
import statistics
import subprocess
import sys

from benchlib import ROOT, free_port, publish, utc_stamp
from signaling import MATCHBOX_VERSION, Server, matchbox_binary, sh

ROUNDS = int(os.environ.get("ROUNDS", "3"))
PAIRS = int(os.environ.get("PAIRS", "10"))
SECS = int(os.environ.get("SECS", "3"))
RATE = int(os.environ.get("RATE", "200000"))
RELIABLE_MIB = int(os.environ.get("RELIABLE_MIB", "16"))
BENCH = ROOT / "target/release/switchboard-bench"

ROWS = [
    ("connect time p50, ms (join to channels open)", "connect_p50_ms", False, "{:,.0f}"),
    ("connect time p99, ms", "connect_p99_ms", False, "{:,.0f}"),
    ("memory per connected client, KiB", "rss_per_client_kib", False, "{:,.0f}"),
    (f"unreliable 64 B delivered, msgs/s (offered {RATE:,}/s)", "unreliable_delivered_per_s", True, "{:,.0f}"),
    ("unreliable loss", "unreliable_loss", False, "{:.2%}"),
    ("reliable 1 KiB goodput, MiB/s", "reliable_mib_per_s", True, "{:,.1f}"),
]


def measure(stack, server, stun):
    out = subprocess.run([BENCH, "clients", "--stack", stack, "--server", server, "--stun", stun,
                          "--pairs", str(PAIRS), "--secs", str(SECS), "--rate", str(RATE),
                          "--reliable-bytes", str(RELIABLE_MIB * 1024 * 1024)],
                         check=True, capture_output=True, text=True, timeout=600).stdout
    return json.loads(out.strip().splitlines()[-1])


def summary(values, fmt):
    median = statistics.median(values)
    return median, f"{fmt.format(median)} ({fmt.format(min(values))} to {fmt.format(max(values))})"


def ratio(ours, theirs, higher_is_better):
    if higher_is_better:
        return f"{ours / theirs:.2f}x" if theirs else "n/a"
    if ours == 0:
        return "n/a" if theirs == 0 else "ahead (0)"
    return f"{theirs / ours:.2f}x"


def main():
    sh("cargo", "build", "--release", "-q", "-p", "switchboard", "-p", "switchboard-bench", cwd=ROOT)
    matchbox_binary()
    # Switchboard with its STUN server (the ICE server of both stacks) and the load limits of
    # the signaling bench (one address joins many times).
    stun_port = free_port(socket.SOCK_DGRAM)
    ours = Server("switchboard", listen_args=["--stun-listen", f"127.0.0.1:{stun_port}"])
    theirs = Server("matchbox")
    runs = {"switchboard": [], "matchbox": []}
    try:
        for round_ in range(ROUNDS):
            order = ["switchboard", "matchbox"] if round_ % 2 == 0 else ["matchbox", "switchboard"]
            for stack in order:
                server = ours if stack == "switchboard" else theirs
                result = measure(stack, f"ws://127.0.0.1:{server.port}", f"127.0.0.1:{stun_port}")
                print(stack, json.dumps(result), file=sys.stderr)
                runs[stack].append(result)
    finally:
        for s in (ours, theirs):
            s.stop()
    stamp = utc_stamp()
    lines = [f"# Native client benchmark ({stamp})", "",
             f"Two native clients on loopback, {PAIRS} pairs connected one after the other and kept; then one pair: "
             f"unreliable 64 B at {RATE:,}/s for {SECS} s, then {RELIABLE_MIB} MiB of reliable 1 KiB messages. "
             f"Switchboard's Rust client (str0m) through `switchboard serve` against matchbox_socket {MATCHBOX_VERSION} "
             f"(webrtc-rs) through matchbox_server {MATCHBOX_VERSION}; both use the same STUN server. "
             f"Medians of {ROUNDS} alternating rounds (min to max); 2 cores shared by clients and servers.", "",
             "| measure | switchboard-client | matchbox_socket | ratio |", "|---|---|---|---|"]
    for label, key, higher, fmt in ROWS:
        a, a_text = summary([r[key] for r in runs["switchboard"]], fmt)
        b, b_text = summary([r[key] for r in runs["matchbox"]], fmt)
        lines.append(f"| {label} | {a_text} | {b_text} | {ratio(a, b, higher)} |")
    lines += ["", "Raw: " + json.dumps(runs)]
    publish("clients", stamp, lines)


if __name__ == "__main__":
    main()
