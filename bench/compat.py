#!/usr/bin/env python3
"""matchbox compatibility benchmark: the signaling bench's relay workload, in matchbox_server's
protocol, against Switchboard's `/matchbox/{room}` endpoint and against matchbox_server itself,
with the same load generator in one run (alternating rounds), plus memory per idle connection.

Builds the release binaries, installs matchbox_server from crates.io when missing, prints a table
and writes it to bench/results/compat-<UTC time>.md. Knobs as in signaling.py (ROUNDS, ROOMS,
PEERS, WINDOW, SECS, IDLE_COUNTS).
"""

import json
import os
import resource
import statistics

from benchlib import ROOT, publish, utc_stamp
from signaling import MATCHBOX_VERSION, PEERS, ROOMS, ROUNDS, SECS, WINDOW, idle, matchbox_binary, relay, sh

TARGETS = {
    # name: (server kind, load generator flavor)
    "switchboard /matchbox": ("switchboard", "switchboard-matchbox"),
    "matchbox_server": ("matchbox", "matchbox"),
}


def measured_relay(kind, flavor):
    """signaling.relay, with the server CPU per delivered message."""
    result = relay(kind, "direct", load=flavor)
    total = result["delivered"] * (SECS + 2) / SECS
    result["cpu_us_per_msg"] = result["server_cpu_s"] * 1e6 / total
    return result


def main():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sh("cargo", "build", "--release", "-q", "-p", "switchboard", "-p", "switchboard-bench", cwd=ROOT)
    matchbox_binary()
    rounds = {name: [] for name in TARGETS}
    for _ in range(ROUNDS):
        for name, (kind, flavor) in TARGETS.items():
            rounds[name].append(measured_relay(kind, flavor))
    idles = {name: idle(kind, load=flavor) for name, (kind, flavor) in TARGETS.items()}

    def med(name, key):
        return statistics.median(r[key] for r in rounds[name])

    def spread(name, key, scale=1.0, fmt="{:,.0f}"):
        values = [r[key] * scale for r in rounds[name]]
        return f"{fmt.format(min(values))}-{fmt.format(max(values))}"

    ours, theirs = "switchboard /matchbox", "matchbox_server"

    def ratio(a, b):
        return f"{a / b:.2f}x" if b else "n/a"

    rows = [
        ("delivered msgs/s", f"{med(ours, 'delivered_per_sec'):,.0f} ({spread(ours, 'delivered_per_sec')})",
         f"{med(theirs, 'delivered_per_sec'):,.0f} ({spread(theirs, 'delivered_per_sec')})",
         ratio(med(ours, "delivered_per_sec"), med(theirs, "delivered_per_sec"))),
        ("p50 latency ms", f"{med(ours, 'p50_us') / 1000:.1f}", f"{med(theirs, 'p50_us') / 1000:.1f}",
         ratio(med(theirs, "p50_us"), med(ours, "p50_us"))),
        ("mean latency ms", f"{med(ours, 'mean_us') / 1000:.1f}", f"{med(theirs, 'mean_us') / 1000:.1f}",
         ratio(med(theirs, "mean_us"), med(ours, "mean_us"))),
        ("p99 latency ms", f"{med(ours, 'p99_us') / 1000:.1f} ({spread(ours, 'p99_us', 1e-3, '{:.1f}')})",
         f"{med(theirs, 'p99_us') / 1000:.1f} ({spread(theirs, 'p99_us', 1e-3, '{:.1f}')})",
         ratio(med(theirs, "p99_us"), med(ours, "p99_us"))),
        ("server CPU per delivered msg, µs", f"{med(ours, 'cpu_us_per_msg'):.2f} ({spread(ours, 'cpu_us_per_msg', 1, '{:.2f}')})",
         f"{med(theirs, 'cpu_us_per_msg'):.2f} ({spread(theirs, 'cpu_us_per_msg', 1, '{:.2f}')})",
         ratio(med(theirs, "cpu_us_per_msg"), med(ours, "cpu_us_per_msg"))),
    ]
    for a, b in zip(idles[ours], idles[theirs]):
        rows.append((f"memory per idle connection at {a['connections']:,}, KiB", f"{a['per_connection_bytes'] / 1024:.1f}",
                     f"{b['per_connection_bytes'] / 1024:.1f}", ratio(b["per_connection_bytes"], a["per_connection_bytes"])))
    stamp = utc_stamp()
    lines = [
        f"# matchbox compatibility benchmark, {stamp}",
        "",
        f"The same load generator speaking matchbox's protocol to Switchboard's `/matchbox/{{room}}` "
        f"(`switchboard serve`, release, per-address limits raised for one load generator) and to "
        f"matchbox_server {MATCHBOX_VERSION} (crates.io). Relay: {ROOMS} rooms x {PEERS} peers, each "
        f"keeps {WINDOW} signals in flight to the rest of its room, {SECS} s after 2 s warm-up; medians "
        f"of {ROUNDS} alternating rounds, spread (min-max) in brackets. {os.cpu_count()} cores shared by "
        f"server and load generator. Ratio > 1: Switchboard is better.",
        "",
        "| metric | switchboard /matchbox | matchbox_server | ratio |",
        "|---|---:|---:|---:|",
        *[f"| {' | '.join(row)} |" for row in rows],
        "",
        "Raw: " + json.dumps({"relay_rounds": rounds, "idle": idles}),
        "",
    ]
    publish("compat", stamp, lines)


if __name__ == "__main__":
    main()
