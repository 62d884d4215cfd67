#!/usr/bin/env python3
"""Signaling benchmark: Switchboard against matchbox_server, same workload, one run.

Builds the release binaries, installs matchbox_server from crates.io when missing, runs each
server on loopback in turn with the same load generator (bench/src), prints a table and writes it
to bench/results/signaling-<UTC time>.md. See bench/README.md for what each row means.
"""

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from benchlib import ROOT, cpu_seconds, free_port, publish, utc_stamp

ROUNDS = int(os.environ.get("ROUNDS", "3"))
MATCHBOX_VERSION = "0.15.0"
ROOMS = int(os.environ.get("ROOMS", "50"))
PEERS = int(os.environ.get("PEERS", "8"))
WINDOW = int(os.environ.get("WINDOW", "8"))
SECS = int(os.environ.get("SECS", "10"))
IDLE_COUNTS = os.environ.get("IDLE_COUNTS", "10000,18000")
BENCH = ROOT / "target/release/switchboard-bench"
SWITCHBOARD = ROOT / "target/release/switchboard"
# Per-connection rates and per-address limits, raised for a load generator on one address.
LOAD_LIMITS = [
    "--messages-per-second", "1000000", "--message-burst", "1000000",
    "--joins-per-ip-per-second", "1000000", "--join-burst-per-ip", "1000000",
    "--joins-per-room-per-second", "1000000", "--join-burst-per-room", "1000000",
    "--max-pending-per-ip", "100000", "--max-pending-connections", "100000",
    "--bytes-per-second", "1000000000", "--byte-burst", "1000000000",
]


def sh(*args, **kw):
    print("+", " ".join(str(a) for a in args), file=sys.stderr)
    return subprocess.run(args, check=True, **kw)


def matchbox_binary():
    found = shutil.which("matchbox_server") or str(Path.home() / ".cargo/bin/matchbox_server")
    if not Path(found).exists():
        sh("cargo", "install", "--locked", f"matchbox_server@{MATCHBOX_VERSION}")
    return found


class Server:
    def __init__(self, flavor, extra=(), listen_args=("--no-stun",)):
        self.flavor = flavor
        self.port = free_port()
        env = dict(os.environ, RUST_LOG="warn")
        if flavor == "switchboard":
            # Only the limits meant for one abusive address are raised (the load generator is one
            # address and floods on purpose); all else is default. No STUN unless asked for.
            cmd = [SWITCHBOARD, "serve", "--listen", f"127.0.0.1:{self.port}", *LOAD_LIMITS, *listen_args, *extra]
        else:
            cmd = [matchbox_binary(), f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{flavor} did not start")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def bench(*args):
    out = subprocess.run([BENCH, *args], check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def relay(flavor, fanout, extra=(), load=None):
    """One relay run against server `flavor`; the load generator speaks `load` (default: the
    server's own protocol)."""
    server = Server(flavor, extra)
    try:
        before = cpu_seconds(server.proc.pid)
        [result] = bench("relay", "--server", f"127.0.0.1:{server.port}", "--flavor", load or flavor,
                         "--fanout", fanout, "--rooms", str(ROOMS), "--peers", str(PEERS),
                         "--window", str(WINDOW), "--secs", str(SECS))
        result["server_cpu_s"] = cpu_seconds(server.proc.pid) - before
        return result
    finally:
        server.stop()


def idle(flavor, load=None):
    """Memory per idle connection of server `flavor`, with clients speaking `load`."""
    server = Server(flavor)
    try:
        return bench("idle", "--server", f"127.0.0.1:{server.port}", "--server-pid", str(server.proc.pid),
                     "--flavor", load or flavor, "--counts", IDLE_COUNTS)
    finally:
        server.stop()


def ratio(a, b):
    return f"{a / b:.2f}x" if b else "n/a"


def main():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sh("cargo", "build", "--release", "-q", "-p", "switchboard", "-p", "switchboard-bench", cwd=ROOT)
    matchbox_binary()

    # Alternating rounds; each figure is the median round (by delivered msgs/s).
    rounds = {"sb_direct": [], "mb_direct": [], "sb_room": [], "sb_direct_big": []}
    for _ in range(ROUNDS):
        rounds["sb_direct"].append(relay("switchboard", "direct"))
        rounds["mb_direct"].append(relay("matchbox", "direct"))
        rounds["sb_room"].append(relay("switchboard", "room"))
        rounds["sb_direct_big"].append(relay("switchboard", "direct", ["--read-buffer-bytes", "16384"]))

    def median_round(runs):
        return sorted(runs, key=lambda r: r["delivered_per_sec"])[len(runs) // 2]

    sb_direct, mb_direct, sb_room, sb_big = (median_round(rounds[k]) for k in
                                             ("sb_direct", "mb_direct", "sb_room", "sb_direct_big"))
    sb_idle = idle("switchboard")
    mb_idle = idle("matchbox")

    def us_per_msg(r):
        # CPU of the whole server process over the run (warm-up included) per delivery counted in
        # the measured window, scaled by the window's share of the run.
        total = r["delivered"] * (SECS + 2) / SECS
        return r["server_cpu_s"] * 1e6 / total

    cores = os.cpu_count()
    rows = [
        ("relay, one message per recipient: delivered msgs/s", f"{sb_direct['delivered_per_sec']:,.0f}",
         f"{mb_direct['delivered_per_sec']:,.0f}", ratio(sb_direct["delivered_per_sec"], mb_direct["delivered_per_sec"])),
        ("relay, one message per recipient: p50 latency ms", f"{sb_direct['p50_us'] / 1000:.1f}",
         f"{mb_direct['p50_us'] / 1000:.1f}", ratio(mb_direct["p50_us"], sb_direct["p50_us"])),
        ("relay, one message per recipient: p99 latency ms", f"{sb_direct['p99_us'] / 1000:.1f}",
         f"{mb_direct['p99_us'] / 1000:.1f}", ratio(mb_direct["p99_us"], sb_direct["p99_us"])),
        ("relay: server CPU per delivered msg, µs", f"{us_per_msg(sb_direct):.2f}",
         f"{us_per_msg(mb_direct):.2f}", ratio(us_per_msg(mb_direct), us_per_msg(sb_direct))),
        ("relay, one message to the room (server fan-out): delivered msgs/s", f"{sb_room['delivered_per_sec']:,.0f}",
         "(no room send)", ratio(sb_room["delivered_per_sec"], mb_direct["delivered_per_sec"])),
        ("relay, room fan-out: p50 / p99 latency ms", f"{sb_room['p50_us'] / 1000:.1f} / {sb_room['p99_us'] / 1000:.1f}",
         "", ""),
        ("relay, one message per recipient, `--read-buffer-bytes 16384`: delivered msgs/s",
         f"{sb_big['delivered_per_sec']:,.0f}", f"{mb_direct['delivered_per_sec']:,.0f}",
         ratio(sb_big["delivered_per_sec"], mb_direct["delivered_per_sec"])),
        ("relay, `--read-buffer-bytes 16384`: server CPU per delivered msg, µs", f"{us_per_msg(sb_big):.2f}",
         f"{us_per_msg(mb_direct):.2f}", ratio(us_per_msg(mb_direct), us_per_msg(sb_big))),
    ]
    for sb, mb in zip(sb_idle, mb_idle):
        n = sb["connections"]
        rows.append((f"idle connections: memory per connection at {n:,}, KiB",
                     f"{sb['per_connection_bytes'] / 1024:.1f}", f"{mb['per_connection_bytes'] / 1024:.1f}",
                     ratio(mb["per_connection_bytes"], sb["per_connection_bytes"])))
        rows.append((f"idle connections: server RSS at {n:,}, MiB", f"{sb['rss_kib'] / 1024:.0f}",
                     f"{mb['rss_kib'] / 1024:.0f}", ""))

    stamp = utc_stamp()
    lines = [
        f"# Signaling benchmark, {stamp}",
        "",
        f"Machine: {cores} cores; servers and load generator share them. matchbox_server {MATCHBOX_VERSION} "
        f"(crates.io). Relay: {ROOMS} rooms x {PEERS} peers, each peer keeps {WINDOW} messages in flight to "
        f"the rest of its room, {SECS} s measured after 2 s warm-up; JSON on both; median of {ROUNDS} "
        f"alternating rounds (Switchboard with default settings unless the row says otherwise). Idle: rooms "
        f"of 4, connections from 32 loopback source addresses, default settings. Ratio: > 1 means "
        f"Switchboard is better.",
        "",
        "| metric | switchboard | matchbox_server | ratio |",
        "|---|---:|---:|---:|",
        *[f"| {m} | {a} | {b} | {r} |" for m, a, b, r in rows],
        "",
        "Raw: " + json.dumps({"relay_rounds": rounds, "switchboard_idle": sb_idle, "matchbox_idle": mb_idle}),
        "",
    ]
    publish("signaling", stamp, lines)


if __name__ == "__main__":
    main()
