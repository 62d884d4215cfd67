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
CEILING_DIR = ROOT / "bench/anchors/ceiling-relay"
CEILING = CEILING_DIR / "target/release/ceiling-relay"
# The WebSocket stacks the ceiling relay is measured on (bench/anchors/ceiling-relay).
CEILING_STACKS = ("tungstenite", "tokio-websockets", "fastwebsockets")
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
        elif flavor.startswith("ceiling-"):
            cmd = [CEILING, flavor.removeprefix("ceiling-"), f"127.0.0.1:{self.port}"]
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


def ceiling_binary():
    sh("cargo", "build", "--release", "-q", "--locked", cwd=CEILING_DIR)
    return CEILING


# What runs in each round: (label, server, load generator protocol, fan-out, protocol shown).
RUNS = [
    ("switchboard /ws", "switchboard", "switchboard", "direct", "Switchboard v1 JSON"),
    ("switchboard /matchbox", "switchboard", "switchboard-matchbox", "direct", "matchbox JSON"),
    ("matchbox_server", "matchbox", "matchbox", "direct", "matchbox JSON"),
    *[(f"ceiling: {stack}", f"ceiling-{stack}", "matchbox", "direct", "matchbox JSON")
      for stack in CEILING_STACKS],
    ("switchboard /ws, to the room", "switchboard", "switchboard", "room", "Switchboard v1 JSON"),
]


def us_per_msg(r):
    # CPU of the whole server process over the run (warm-up included) per delivery counted in
    # the measured window, scaled by the window's share of the run.
    total = r["delivered"] * (SECS + 2) / SECS
    return r["server_cpu_s"] * 1e6 / total


def median(values):
    return sorted(values)[len(values) // 2]


def spread(values, fmt):
    return f"{fmt(min(values))}-{fmt(max(values))}"


def main():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sh("cargo", "build", "--release", "-q", "-p", "switchboard", "-p", "switchboard-bench", cwd=ROOT)
    matchbox_binary()
    ceiling_binary()

    # Alternating rounds: every server once per round, in the same order.
    rounds = {label: [] for label, *_ in RUNS}
    for _ in range(ROUNDS):
        for label, server, load, fanout, _ in RUNS:
            result = relay(server, fanout, load=load)
            result["cpu_us_per_msg"] = us_per_msg(result)
            rounds[label].append(result)
    sb_idle = idle("switchboard")
    mb_idle = idle("matchbox")

    # Each figure is the median of its rounds; the spread (min-max) follows in brackets.
    med = {label: {key: median([r[key] for r in runs]) for key in
                   ("delivered_per_sec", "p50_us", "mean_us", "p99_us", "cpu_us_per_msg")}
           for label, runs in rounds.items()}
    rows = []
    for label, _, _, fanout, protocol in RUNS:
        runs, m = rounds[label], med[label]
        rate = lambda v: f"{v:,.0f}"
        ms = lambda v: f"{v / 1000:.1f}"
        cpu = lambda v: f"{v:.2f}"
        rows.append(f"| {label} | {protocol} | "
                    f"{rate(m['delivered_per_sec'])} ({spread([r['delivered_per_sec'] for r in runs], rate)}) | "
                    f"{ms(m['p50_us'])} | {ms(m['mean_us'])} | {ms(m['p99_us'])} ({spread([r['p99_us'] for r in runs], ms)}) | "
                    f"{cpu(m['cpu_us_per_msg'])} ({spread([r['cpu_us_per_msg'] for r in runs], cpu)}) |")
    sb, sbm, mb, room = (med[k] for k in ("switchboard /ws", "switchboard /matchbox", "matchbox_server",
                                           "switchboard /ws, to the room"))
    best_ceiling = min((med[f"ceiling: {s}"]["cpu_us_per_msg"], s) for s in CEILING_STACKS)
    ratios = [
        ("throughput, /ws vs matchbox_server", ratio(sb["delivered_per_sec"], mb["delivered_per_sec"]), "2x"),
        ("throughput, /matchbox vs matchbox_server", ratio(sbm["delivered_per_sec"], mb["delivered_per_sec"]), "2x"),
        ("p99 latency, matchbox_server / /ws", ratio(mb["p99_us"], sb["p99_us"]), "2x"),
        ("p99 latency, matchbox_server / /matchbox", ratio(mb["p99_us"], sbm["p99_us"]), "2x"),
        ("server CPU per message, matchbox_server / /ws", ratio(mb["cpu_us_per_msg"], sb["cpu_us_per_msg"]), "3x"),
        ("server CPU per message, matchbox_server / /matchbox", ratio(mb["cpu_us_per_msg"], sbm["cpu_us_per_msg"]), "3x"),
        ("server CPU per message, direct / room fan-out", ratio(sb["cpu_us_per_msg"], room["cpu_us_per_msg"]), "2x"),
        (f"server CPU per message, /ws as a multiple of the cheapest ceiling ({best_ceiling[1]})",
         f"{sb['cpu_us_per_msg'] / best_ceiling[0]:.2f}", "-"),
        (f"server CPU per message, /matchbox as a multiple of the cheapest ceiling ({best_ceiling[1]})",
         f"{sbm['cpu_us_per_msg'] / best_ceiling[0]:.2f}", "-"),
    ]
    idle_rows = []
    for s_idle, m_idle in zip(sb_idle, mb_idle):
        n = s_idle["connections"]
        idle_rows.append(f"| {n:,} | {s_idle['per_connection_bytes'] / 1024:.1f} | {m_idle['per_connection_bytes'] / 1024:.1f} | "
                         f"{ratio(m_idle['per_connection_bytes'], s_idle['per_connection_bytes'])} | "
                         f"{s_idle['rss_kib'] / 1024:.0f} / {m_idle['rss_kib'] / 1024:.0f} |")

    stamp = utc_stamp()
    lines = [
        f"# Signaling benchmark, {stamp}",
        "",
        f"Machine: {os.cpu_count()} cores; servers and load generator share them. matchbox_server "
        f"{MATCHBOX_VERSION} (crates.io); the ceiling is bench/anchors/ceiling-relay on each WebSocket stack. "
        f"Relay: {ROOMS} rooms x {PEERS} peers, each peer keeps {WINDOW} messages in flight to the rest of its "
        f"room (one message per recipient, by id, unless the row says to the room), {SECS} s measured after "
        f"2 s warm-up; medians of {ROUNDS} alternating rounds, min-max in brackets. Switchboard runs with "
        f"default settings except the per-address limits (one load generator address). Idle: rooms of 4, "
        f"connections from 32 loopback source addresses.",
        "",
        "| server | protocol | delivered msgs/s | p50 ms | mean ms | p99 ms | server CPU µs per delivered msg |",
        "|---|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "| ratio (> 1: Switchboard better) | this run | target |",
        "|---|---:|---:|",
        *[f"| {name} | {value} | {target} |" for name, value, target in ratios],
        "",
        "| idle connections | switchboard KiB per connection | matchbox_server KiB per connection | ratio | RSS MiB (switchboard / matchbox_server) |",
        "|---:|---:|---:|---:|---:|",
        *idle_rows,
        "",
        "Raw: " + json.dumps({"relay_rounds": rounds, "switchboard_idle": sb_idle, "matchbox_idle": mb_idle}),
        "",
    ]
    publish("signaling", stamp, lines)


if __name__ == "__main__":
    main()
